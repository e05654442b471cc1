/**
 * The numbers every rehearsal report carries, computed from the client's own log of operations
 * (see DESIGN.md "Measurement definitions"). Everything here is a pure function of its arguments:
 * no clock, no I/O, so each definition is tested on hand-made logs.
 *
 * Time convention: every op has startMs (request issued) and endMs (outcome known to the client),
 * epoch milliseconds. An outcome is *observed* at endMs: an acknowledgement is the moment a write
 * became durable from the client's point of view, a failure the moment the client saw the error.
 */

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
  /** The cutover interval (e.g. fence start → switch done). Without it every failure belongs. */
  cutoverStart?: number;
  cutoverEnd?: number;
  /** A failure belongs to the cutover when [start,end] overlaps [cutoverStart − before, cutoverEnd + after]. */
  marginBeforeMs?: number;
  /** Generous by default: clients keep seeing errors until their DNS cache (TTL) and timeouts run out. */
  marginAfterMs?: number;
  /** Times at which k6 dropped an iteration: counted as failures observed at that instant. */
  dropped?: number[];
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
  droppedInWindow: number;
  /** Failures ignored because they are outside the cutover interval ± margins. */
  outsideFailures: number;
  firstFailureId?: string;
  lastFailureId?: string;
}

export const DEFAULT_MARGIN_BEFORE_MS = 1_000;
export const DEFAULT_MARGIN_AFTER_MS = 10_000;

/**
 * From the last success before the first failure to the first success after the last failure that
 * belongs to the cutover. "Belongs": the failed op's [startMs, endMs] overlaps the cutover interval
 * widened by marginBeforeMs / marginAfterMs (defaults 1 s / 10 s); with no interval given, every
 * failure belongs. Indeterminate ops count as failures here: the client saw an error either way.
 * Successes between the first and the last failure do not shorten the window (interleaved errors
 * are still an outage to the clients that got them).
 */
export function errorWindow(ops: readonly OpOutcome[], opts: ErrorWindowOptions = {}): ErrorWindow {
  const hasInterval = opts.cutoverStart !== undefined || opts.cutoverEnd !== undefined;
  const lo = (opts.cutoverStart ?? opts.cutoverEnd ?? -Infinity) - (opts.marginBeforeMs ?? DEFAULT_MARGIN_BEFORE_MS);
  const hi = (opts.cutoverEnd ?? opts.cutoverStart ?? Infinity) + (opts.marginAfterMs ?? DEFAULT_MARGIN_AFTER_MS);
  const belongs = (s: number, e: number) => !hasInterval || (e >= lo && s <= hi);

  type Ev = { t: number; id?: string; indeterminate: boolean; dropped: boolean };
  const failures: Ev[] = [];
  let outside = 0;
  for (const op of ops) {
    if (op.status === 'ok') continue;
    if (belongs(op.startMs, op.endMs)) failures.push({ t: op.endMs, id: op.id, indeterminate: op.status === 'indeterminate', dropped: false });
    else outside++;
  }
  for (const t of opts.dropped ?? []) {
    if (belongs(t, t)) failures.push({ t, indeterminate: false, dropped: true });
    else outside++;
  }
  const empty: ErrorWindow = { ms: 0, openStart: false, openEnd: false, failures: 0, indeterminate: 0, droppedInWindow: 0, outsideFailures: outside };
  if (failures.length === 0) return empty;

  let first = failures[0];
  let last = failures[0];
  for (const f of failures) {
    if (f.t < first.t) first = f;
    if (f.t > last.t) last = f;
  }
  let before = -Infinity;
  let after = Infinity;
  for (const op of ops) {
    if (op.status !== 'ok') continue;
    if (op.endMs <= first.t && op.endMs > before) before = op.endMs;
    if (op.endMs >= last.t && op.endMs < after) after = op.endMs;
  }
  const openStart = before === -Infinity;
  const openEnd = after === Infinity;
  const startMs = openStart ? first.t : before;
  const endMs = openEnd ? last.t : after;
  return {
    ms: endMs - startMs,
    startMs,
    endMs,
    openStart,
    openEnd,
    failures: failures.filter((f) => !f.dropped).length,
    indeterminate: failures.filter((f) => f.indeterminate).length,
    droppedInWindow: failures.filter((f) => f.dropped).length,
    outsideFailures: outside,
    firstFailureId: first.id,
    lastFailureId: last.id,
  };
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

/** Nearest-rank percentile of an ascending array (p in 0..100); 0 for an empty array. */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sortedAsc.length);
  return sortedAsc[Math.min(sortedAsc.length, Math.max(1, rank)) - 1];
}

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
