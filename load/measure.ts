/**
 * The numbers every rehearsal report carries, computed from the client's own log of operations
 * (see DESIGN.md "Measurement definitions"). Everything here is a pure function of its arguments:
 * no clock, no I/O, so each definition is tested on hand-made logs.
 *
 * Time convention: every op has startMs (request issued) and endMs (outcome known to the client),
 * epoch milliseconds. An outcome is *observed* at endMs: an acknowledgement is the moment a write
 * became durable from the client's point of view, a failure the moment the client saw the error.
 */
import { percentile } from '../reports/stats.ts';

export type OpStatus = 'ok' | 'fail' | 'indeterminate';

export interface OpOutcome {
  /** Client-generated request id (unique per run). */
  id: string;
  kind: 'write' | 'read';
  /** Which endpoint (payment, ledger, notification, status, balance, …) when known. */
  op?: string;
  startMs: number;
  endMs: number;
  /**
   * ok: 2xx (for a write: committed and acknowledged);
   * fail: the app answered that nothing was committed, or the request never left the client;
   * indeterminate: timeout / reset / an error answer that cannot say whether COMMIT happened.
   */
  status: OpStatus;
  httpStatus?: number;
  error?: string;
}

export interface Interval {
  startMs: number;
  endMs: number;
}

// ---------------------------------------------------------------------------------------------
// error window

export interface ErrorWindowOptions {
  /** The cutover interval (e.g. fence start → resume done). Without it every failure belongs. */
  cutoverStart?: number;
  cutoverEnd?: number;
  /** Failures overlapping [cutoverStart − before, cutoverEnd] belong (requests in flight when the fence struck). */
  marginBeforeMs?: number;
  /**
   * A burst of failures that starts in (cutoverEnd, cutoverEnd + after] belongs when no quiet
   * stretch separates it from the end of the cutover: clients draining their DNS cache, pool and
   * retries. It only decides membership; a belonging burst ends where its failures end.
   */
  marginAfterMs?: number;
  /**
   * Clients saw at least this long of successes and no failure: what separates two bursts
   * (default 1 s; measureRun uses five request intervals when that is longer).
   */
  quietMs?: number;
}

export interface ErrorWindow {
  /** 0 when no failure belongs to the cutover. */
  ms: number;
  startMs?: number;
  endMs?: number;
  /** No success before the first failure: the window starts at the first failure itself. */
  openStart: boolean;
  /** No success after the last failure: the window ends at the last failure (the run ended down). */
  openEnd: boolean;
  /** Non-ok ops (fail + indeterminate) that belong to the cutover, and how many were indeterminate. */
  failures: number;
  indeterminate: number;
  /** Bursts of failures that belong to the cutover. */
  bursts: number;
  /** Failures that do not belong to the cutover (outside the widening, or a burst of their own). */
  outsideFailures: number;
  firstFailureId?: string;
  lastFailureId?: string;
}

export const DEFAULT_MARGIN_BEFORE_MS = 1_000;
export const DEFAULT_MARGIN_AFTER_MS = 10_000;
export const DEFAULT_QUIET_MS = 1_000;

/** Sorted success end times, with "was there a quiet stretch between a and b" in O(log n). */
function quietness(ops: readonly OpOutcome[], quietMs: number) {
  const ok = ops.filter((o) => o.status === 'ok').map((o) => o.endMs).sort((x, y) => x - y);
  /** index of the first success ending strictly after t */
  const after = (t: number) => {
    let lo = 0;
    let hi = ok.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ok[mid] <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  /** Successes ending in (a, b) span at least quietMs (callers pass a and b with no failure between). */
  return (a: number, b: number): boolean => {
    const i = after(a);
    const j = after(b - 1e-9) - 1; // last success ending before b
    return i < ok.length && j >= i && ok[j] - ok[i] >= quietMs;
  };
}

/**
 * From the last success before the first failure to the first success after the last failure that
 * belongs to the cutover. Failures (fail and indeterminate: the client saw an error either way;
 * dropped iterations are not failures here, see attributeDrops) are grouped into bursts separated
 * by a quiet stretch (`quietMs` of successes with no failure). A burst belongs when one of its
 * failures overlaps [cutoverStart − marginBefore, cutoverEnd], or when it starts within marginAfter
 * of cutoverEnd with no quiet stretch since. The widening only decides membership: a belonging
 * burst ends where its failures end, wherever that is. With no interval given, every failure
 * belongs. Successes inside a burst do not shorten the window (interleaved errors are still an
 * outage to the clients that got them).
 */
export function errorWindow(ops: readonly OpOutcome[], opts: ErrorWindowOptions = {}): ErrorWindow {
  const fails = ops.filter((o) => o.status !== 'ok').sort((a, b) => a.endMs - b.endMs);
  const empty: ErrorWindow = { ms: 0, openStart: false, openEnd: false, failures: 0, indeterminate: 0, bursts: 0, outsideFailures: fails.length };
  if (fails.length === 0) return { ...empty, outsideFailures: 0 };
  const quietMs = opts.quietMs ?? DEFAULT_QUIET_MS;
  const quiet = quietness(ops, quietMs);
  const bursts: OpOutcome[][] = [];
  for (const f of fails) {
    const cur = bursts[bursts.length - 1];
    if (cur && !quiet(cur[cur.length - 1].endMs, f.endMs)) cur.push(f);
    else bursts.push([f]);
  }
  const hasInterval = opts.cutoverStart !== undefined || opts.cutoverEnd !== undefined;
  const cutStart = opts.cutoverStart ?? opts.cutoverEnd ?? 0;
  const cutEnd = opts.cutoverEnd ?? opts.cutoverStart ?? 0;
  const lo = cutStart - (opts.marginBeforeMs ?? DEFAULT_MARGIN_BEFORE_MS);
  const hi = cutEnd + (opts.marginAfterMs ?? DEFAULT_MARGIN_AFTER_MS);
  let failureAfterCutover = false; // an earlier burst already reached past the cutover's end
  const belongs = (b: OpOutcome[]): boolean => {
    if (!hasInterval) return true;
    const overlapsCore = b.some((f) => f.endMs >= lo && f.startMs <= cutEnd);
    const first = b[0];
    const chained = !overlapsCore && !failureAfterCutover && first.endMs > cutEnd && first.endMs <= hi && !quiet(cutEnd, first.endMs);
    if (b[b.length - 1].endMs > cutEnd) failureAfterCutover = true;
    return overlapsCore || chained;
  };
  const mine = bursts.filter(belongs);
  const belonging = mine.flat();
  if (belonging.length === 0) return empty;
  const first = mine[0][0];
  const lastBurst = mine[mine.length - 1];
  const last = lastBurst[lastBurst.length - 1];
  let before = -Infinity;
  let after = Infinity;
  for (const op of ops) {
    if (op.status !== 'ok') continue;
    if (op.endMs <= first.endMs && op.endMs > before) before = op.endMs;
    if (op.endMs >= last.endMs && op.endMs < after) after = op.endMs;
  }
  const openStart = before === -Infinity;
  const openEnd = after === Infinity;
  const startMs = openStart ? first.endMs : before;
  const endMs = openEnd ? last.endMs : after;
  return {
    ms: endMs - startMs,
    startMs,
    endMs,
    openStart,
    openEnd,
    failures: belonging.length,
    indeterminate: belonging.filter((f) => f.status === 'indeterminate').length,
    bursts: mine.length,
    outsideFailures: fails.length - belonging.length,
    firstFailureId: first.id,
    lastFailureId: last.id,
  };
}

// ---------------------------------------------------------------------------------------------
// dropped iterations

export interface DropAttribution {
  total: number;
  /** Drops attributed to the cutover: the excess over the background rate, when they cluster in it. */
  cutover: number;
  background: number;
}

/** A drop cluster needs at least this many drops above the background (a handful is noise). */
export const DROP_CLUSTER_MIN = 5;

/**
 * Dropped iterations (k6 could not start a request: no VU free) are their own figure, never
 * failures in the error window. They belong to the cutover only when they cluster in it: inside
 * the widened cutover interval W = [start − before, end + after] there are at least twice as many
 * as the background rate (drops per second in the rest of `range`) predicts, and at least
 * DROP_CLUSTER_MIN more. Then the excess over that prediction is the cutover's; the rest is
 * background.
 */
export function attributeDrops(droppedAt: readonly number[], opts: { cutoverStart?: number; cutoverEnd?: number; range: Interval; marginBeforeMs?: number; marginAfterMs?: number }): DropAttribution {
  const total = droppedAt.length;
  if (opts.cutoverStart === undefined || opts.cutoverEnd === undefined || total === 0) return { total, cutover: 0, background: total };
  const wLo = Math.max(opts.range.startMs, opts.cutoverStart - (opts.marginBeforeMs ?? DEFAULT_MARGIN_BEFORE_MS));
  const wHi = Math.min(opts.range.endMs, opts.cutoverEnd + (opts.marginAfterMs ?? DEFAULT_MARGIN_AFTER_MS));
  const wLen = Math.max(0, wHi - wLo);
  const outsideLen = Math.max(0, opts.range.endMs - opts.range.startMs - wLen);
  const inW = droppedAt.filter((t) => t >= wLo && t <= wHi).length;
  const rate = outsideLen > 0 ? (total - inW) / outsideLen : 0;
  const expected = rate * wLen;
  const excess = inW - expected;
  const clustered = excess >= Math.max(DROP_CLUSTER_MIN, expected);
  const cutover = clustered ? Math.round(excess) : 0;
  return { total, cutover, background: total - cutover };
}

// ---------------------------------------------------------------------------------------------
// saturation

/** When a lab counts as saturated (reports/README.md "Saturation" explains each). */
export const SATURATION_LIMITS = {
  /** successful requests per second in the calm interval, as a share of the requested rate */
  minAchievedRatio: 0.95,
  /** iterations k6 could not start in the calm interval, as a share of the requested arrivals … */
  maxDroppedRatio: 0.01,
  /** … and never fewer than this many (a few drops while k6 grows its VU pool are not saturation) */
  minDroppedCount: 10,
  /** latency p99 in the calm interval */
  maxP99Ms: 500,
} as const;

export interface SaturationCheck {
  requestedPerSec: number;
  achievedPerSec: number;
  dropped: number;
  p99Ms: number;
  saturated: boolean;
  reasons: string[];
}

/** Could the lab sustain `requestedPerSec` in the calm interval? Pure; see SATURATION_LIMITS. */
export function saturation(ops: readonly OpOutcome[], droppedAt: readonly number[], calm: Interval, requestedPerSec: number, limits = SATURATION_LIMITS): SaturationCheck {
  const secs = Math.max(1e-9, (calm.endMs - calm.startMs) / 1000);
  const ok = ops.filter((o) => o.status === 'ok' && o.endMs >= calm.startMs && o.endMs <= calm.endMs).length;
  const achievedPerSec = Math.round((ok / secs) * 10) / 10;
  const dropped = droppedAt.filter((t) => t >= calm.startMs && t <= calm.endMs).length;
  const p99Ms = Math.round(latencyStats(ops, calm).p99);
  const requested = requestedPerSec * secs;
  const reasons: string[] = [];
  if (achievedPerSec < requestedPerSec * limits.minAchievedRatio) reasons.push(`achieved ${achievedPerSec} of ${requestedPerSec} req/s (< ${Math.round(limits.minAchievedRatio * 100)} %)`);
  if (dropped > Math.max(limits.minDroppedCount, requested * limits.maxDroppedRatio))
    reasons.push(`${dropped} iterations dropped (> ${Math.round(limits.maxDroppedRatio * 1000) / 10} % of ${Math.round(requested)} requested, and > ${limits.minDroppedCount})`);
  if (p99Ms > limits.maxP99Ms) reasons.push(`latency p99 ${p99Ms} ms (> ${limits.maxP99Ms} ms)`);
  return { requestedPerSec, achievedPerSec, dropped, p99Ms, saturated: reasons.length > 0, reasons };
}

// ---------------------------------------------------------------------------------------------
// stall window

export interface StallWindow {
  /** Longest gap between two consecutive acknowledgements (0 with fewer than two). */
  ms: number;
  startMs?: number;
  endMs?: number;
  /** The acknowledgements on either side of the gap. */
  beforeId?: string;
  afterId?: string;
}

/**
 * The longest gap between two consecutive successful acknowledgements, ordered by end time.
 * A pause-style switch shows up here (requests held, then released) rather than as errors.
 * `within` restricts the acks considered (e.g. to the load's steady part).
 */
export function stallWindow(ops: readonly OpOutcome[], within?: Interval): StallWindow {
  const acks = ops
    .filter((o) => o.status === 'ok' && (!within || (o.endMs >= within.startMs && o.endMs <= within.endMs)))
    .sort((a, b) => a.endMs - b.endMs);
  const res: StallWindow = { ms: 0 };
  for (let i = 1; i < acks.length; i++) {
    const gap = acks[i].endMs - acks[i - 1].endMs;
    if (gap > res.ms) {
      res.ms = gap;
      res.startMs = acks[i - 1].endMs;
      res.endMs = acks[i].endMs;
      res.beforeId = acks[i - 1].id;
      res.afterId = acks[i].id;
    }
  }
  return res;
}

/** Downtime as the client saw it: errors or a stall, whichever was longer. */
export function downtimeMs(errorWindowMs: number, stallWindowMs: number): number {
  return Math.max(errorWindowMs, stallWindowMs);
}

// ---------------------------------------------------------------------------------------------
// latency

export { percentile } from '../reports/stats.ts';

export interface LatencyStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LatencyOptions {
  /** Which outcomes to include. Default ok and fail: an indeterminate op's duration is its timeout, not a latency. */
  statuses?: OpStatus[];
  kind?: 'write' | 'read';
}

/** p50/p99/max of the durations of ops whose [start, end] overlaps the interval. */
export function latencyStats(ops: readonly OpOutcome[], interval: Interval, opts: LatencyOptions = {}): LatencyStats {
  const statuses = new Set(opts.statuses ?? ['ok', 'fail']);
  const d = ops
    .filter((o) => statuses.has(o.status) && (!opts.kind || o.kind === opts.kind) && o.startMs <= interval.endMs && o.endMs >= interval.startMs)
    .map((o) => o.endMs - o.startMs)
    .sort((a, b) => a - b);
  return { count: d.length, p50: percentile(d, 50), p99: percentile(d, 99), max: d.length ? d[d.length - 1] : 0 };
}

/**
 * Latency during the switch beside the same figures from a calm interval of equal length that
 * ends `gapMs` before the switch (clipped to the start of the log). Convenience over latencyStats.
 */
export function switchVsCalm(ops: readonly OpOutcome[], cutover: Interval, opts: LatencyOptions & { calm?: Interval; gapMs?: number } = {}): { during: LatencyStats; calm: LatencyStats; calmInterval: Interval } {
  let calm = opts.calm;
  if (!calm) {
    const firstStart = ops.reduce((m, o) => Math.min(m, o.startMs), Infinity);
    const len = Math.max(1, cutover.endMs - cutover.startMs);
    const end = cutover.startMs - (opts.gapMs ?? 1_000);
    calm = { startMs: Math.max(firstStart, end - len), endMs: end };
  }
  return { during: latencyStats(ops, cutover, opts), calm: latencyStats(ops, calm, opts), calmInterval: calm };
}

// ---------------------------------------------------------------------------------------------
// acknowledged-write check (Jepsen-style)

export interface AckCheckInput {
  /** The outcome log; only kind 'write' ops are considered. */
  ops: readonly OpOutcome[];
  /** Request ids present on the new primary after cutover (restricted to this run). */
  presentIds: Iterable<string>;
  /** Request ids whose domain rows appear more than once on the new primary, with their count. */
  duplicateCounts?: ReadonlyMap<string, number> | Record<string, number>;
  /** Request ids of rows that reached the old primary after the fence. */
  oldPrimaryIdsAfterFence?: Iterable<string>;
}

export interface AckCheck {
  attempted: number;
  acknowledged: number;
  /** Acknowledged (2xx after COMMIT) but missing on the new primary. Must be empty. */
  lost: string[];
  /** Present on the new primary but never attempted by this run. */
  unexpected: string[];
  /** Indeterminate ops that did land. */
  recovered: string[];
  /** Indeterminate ops that did not land (the client could not know; not a loss). */
  indeterminateMissing: string[];
  /** The app said "not committed" but the row is there: the app's answer was wrong. */
  failedButPresent: string[];
  /** Request ids whose write appears more than once. */
  duplicates: string[];
  /** Writes that reached the old primary after it was fenced. */
  splitBrain: string[];
}

/**
 * Acknowledged ids against what the new primary holds. An id is judged on its strongest client
 * outcome: a request retried by k6 under the same id counts as acknowledged if any attempt was.
 */
export function checkAcknowledged(input: AckCheckInput): AckCheck {
  const present = input.presentIds instanceof Set ? (input.presentIds as Set<string>) : new Set(input.presentIds);
  const rank: Record<OpStatus, number> = { fail: 0, indeterminate: 1, ok: 2 };
  const best = new Map<string, OpStatus>();
  for (const op of input.ops) {
    if (op.kind !== 'write') continue;
    const prev = best.get(op.id);
    if (!prev || rank[op.status] > rank[prev]) best.set(op.id, op.status);
  }
  const res: AckCheck = { attempted: best.size, acknowledged: 0, lost: [], unexpected: [], recovered: [], indeterminateMissing: [], failedButPresent: [], duplicates: [], splitBrain: [] };
  for (const [id, st] of best) {
    const here = present.has(id);
    if (st === 'ok') {
      res.acknowledged++;
      if (!here) res.lost.push(id);
    } else if (st === 'indeterminate') {
      (here ? res.recovered : res.indeterminateMissing).push(id);
    } else if (here) res.failedButPresent.push(id);
  }
  for (const id of present) if (!best.has(id)) res.unexpected.push(id);
  const dups = input.duplicateCounts instanceof Map ? [...input.duplicateCounts] : Object.entries(input.duplicateCounts ?? {});
  for (const [id, n] of dups) if (n > 1) res.duplicates.push(id);
  res.splitBrain = [...new Set(input.oldPrimaryIdsAfterFence ?? [])];
  for (const k of ['lost', 'unexpected', 'recovered', 'indeterminateMissing', 'failedButPresent', 'duplicates', 'splitBrain'] as const) res[k].sort();
  return res;
}

// ---------------------------------------------------------------------------------------------
// timeline and aggregation

export interface TimelinePoint {
  /** Bucket start, epoch ms. */
  tMs: number;
  okPerSec: number;
  /** fail + indeterminate. */
  failPerSec: number;
  indeterminatePerSec: number;
  /** p99 of acknowledged ops ending in the bucket (0 when none). */
  latencyP99Ms: number;
}

/** Ops bucketed by end time: throughput of successes and failures, and p99 latency, per bucket. */
export function timeline(ops: readonly OpOutcome[], bucketMs: number, range?: Interval): TimelinePoint[] {
  if (!(bucketMs > 0)) throw new RangeError(`timeline bucket must be > 0 ms (got ${bucketMs})`);
  if (ops.length === 0 && !range) return [];
  const t0 = range?.startMs ?? ops.reduce((m, o) => Math.min(m, o.endMs), Infinity);
  const t1 = range?.endMs ?? ops.reduce((m, o) => Math.max(m, o.endMs), -Infinity);
  const origin = Math.floor(t0 / bucketMs) * bucketMs;
  const n = Math.floor((t1 - origin) / bucketMs) + 1;
  const ok = new Array<number>(n).fill(0);
  const fail = new Array<number>(n).fill(0);
  const ind = new Array<number>(n).fill(0);
  const lat: number[][] = Array.from({ length: n }, () => []);
  for (const o of ops) {
    if (o.endMs < t0 || o.endMs > t1) continue;
    const i = Math.floor((o.endMs - origin) / bucketMs);
    if (o.status === 'ok') {
      ok[i]++;
      lat[i].push(o.endMs - o.startMs);
    } else {
      fail[i]++;
      if (o.status === 'indeterminate') ind[i]++;
    }
  }
  const perSec = 1000 / bucketMs;
  return ok.map((_, i) => ({
    tMs: origin + i * bucketMs,
    okPerSec: ok[i] * perSec,
    failPerSec: fail[i] * perSec,
    indeterminatePerSec: ind[i] * perSec,
    latencyP99Ms: percentile(lat[i].sort((a, b) => a - b), 99),
  }));
}
