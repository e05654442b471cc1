/**
 * Turns what one rehearsal run observed (the client's outcome log, what the new and old primaries
 * hold, the switchover's phases, the faults that fired) into the report model's Run, and many runs
 * into the aggregate and the verdict. Pure: no clock, no I/O; tested on hand-made inputs.
 *
 * Nothing unknown is a pass: a figure the run could not measure is NotMeasured with the reason, its
 * budget fails, and the verdict names it.
 */
import { errorWindow, stallWindow, downtimeMs, switchVsCalm, checkAcknowledged, timeline, attributeDrops, saturation, DEFAULT_MARGIN_BEFORE_MS, DEFAULT_QUIET_MS, type OpOutcome, type AckCheck } from '../../load/measure.ts';
import { percentile } from '../../reports/stats.ts';
import { notMeasured, isNotMeasured, valueOf, unmeasured, type AfterSwitch, type BlockedWindow, type ClusterTimelinePoint, type Run, type BudgetResult, type DriftFinding, type Phase, type InjectedFault, type Measured, type NotMeasured, type Saturation, type Replication, type DriftStage } from '../../reports/model.ts';
import type { Scenario } from '../../scenarios/schema.ts';
import { saturationText, describeInjected, leftBehind } from '../../reports/format.ts';

export interface PhaseTiming {
  name: string;
  startMs: number; // epoch
  endMs: number; // epoch
  outcome: Phase['outcome'];
  detail?: string;
}

/** The acknowledged-write check as load/check.ts checkRun returns it (oldChecked/oldError: the split-brain read). */
export type AckObservation = AckCheck & { oldChecked?: boolean; oldError?: string };

export interface RunObservation {
  index: number;
  /** Epoch ms when the load started: every offset in the Run is relative to it. */
  loadStartMs: number;
  loadEndMs: number;
  startedAt: string;
  durationMs: number;
  ops: OpOutcome[];
  droppedAt: number[];
  /** The acknowledged-write check (load/check.ts checkRun), why it could not run, or what to compute it from. */
  ack?: AckObservation | NotMeasured;
  presentIds?: Iterable<string>;
  duplicateCounts?: Record<string, number>;
  oldPrimaryIdsAfterFence?: Iterable<string>;
  phases: PhaseTiming[];
  faults: InjectedFault[];
  lagSamples?: Array<{ tMs: number; bytes: number }>;
  switchover?: Run['switchover'];
  error?: string;
  /** Drift found after the switch (for the drift budget), or why it could not be had. */
  driftAfter?: DriftFinding[] | NotMeasured;
  /** The requested arrival rate (default: the scenario's). */
  requestedPerSec?: number;
  /** Epoch ms before which the load is not calm (load.during sync: the end of post-data). */
  calmFromMs?: number;
  replication?: Replication;
  /** The clusters' own timeline (offsets from loadStartMs), when it was sampled. */
  clusterTimeline?: ClusterTimelinePoint[];
  /** Replication objects removed after the run, and those left behind. */
  cleanup?: Run['cleanup'];
  /** Shadow reads of the scenario's queries file, or why they could not run (undefined: none asked). */
  shadow?: Run['shadow'];
  /** Epoch ms when the switch moved traffic (dns: the record changed; before the switch phase's own wait). */
  switchChangedAtMs?: number;
  /** The switch phase's replication swap, ms (only with reverse replication). */
  switchSwapMs?: number;
  /** Epoch ms of each move of the app to a new database address (the sample app reports them); undefined: the app does not say. */
  appAddressChangesMs?: number[];
  /**
   * Epoch ms when the load's end lifted faults that were still in force (FaultInjector.liftedAtMs):
   * the windows are measured from requests that ended before it, so an outage the lab ended by
   * removing its fault is "had not ended", never a figure.
   */
  faultsLiftedAtMs?: number;
  /** The rollback leg (migration.rollbackAfter): its phases, its acknowledged-write check (on the old primary, split-brain on the new), its error. */
  rollback?: { phases: PhaseTiming[]; ack?: AckObservation | NotMeasured; error?: string };
}

/**
 * Where the client log is split between the forward cutover and the rollback: half-way between the
 * forward cutover's end and the rollback's (fence) start.
 */
export function rollbackSplitMs(forward: PhaseTiming[], rollback: PhaseTiming[]): number | undefined {
  const f = cutoverInterval(forward);
  const b = cutoverInterval(rollback);
  if (!b) return undefined;
  return f ? (f.endMs + b.startMs) / 2 : b.startMs - DEFAULT_MARGIN_BEFORE_MS;
}

/** The load's first seconds (k6 allocating VUs, the app's pool connecting) are not calm. */
export const WARMUP_MS = 2_000;
/** A calm interval shorter than this cannot say whether the lab kept up. */
export const MIN_CALM_MS = 1_000;
/** The load must go on at least this long after resume, or nobody saw whether clients recovered. */
export const MIN_TAIL_MS = 1_000;

/** The cutover interval clients can feel: from the fence (or the first phase) to the end of resume. */
export function cutoverInterval(phases: PhaseTiming[]): { startMs: number; endMs: number } | undefined {
  if (!phases.length) return undefined;
  const fence = phases.find((p) => p.name === 'fence');
  const resume = phases.find((p) => p.name === 'resume') ?? phases.find((p) => p.name === 'switch');
  const startMs = fence?.startMs ?? Math.min(...phases.map((p) => p.startMs));
  const endMs = resume?.endMs ?? Math.max(...phases.map((p) => p.endMs));
  return { startMs, endMs: Math.max(startMs, endMs) };
}

const SEVERITY_RANK = { none: 0, info: 1, warning: 2, error: 3 } as const;

export function driftBudget(findings: DriftFinding[] | NotMeasured, allowed: Scenario['budgets']['allowedDrift']): BudgetResult {
  if (isNotMeasured(findings)) return { name: 'driftAfterSwitch', limit: 0, actual: findings, pass: false, unit: 'findings' };
  const over = findings.filter((f) => SEVERITY_RANK[f.severity] > SEVERITY_RANK[allowed]).length;
  return { name: 'driftAfterSwitch', limit: 0, actual: over, pass: over === 0, unit: 'findings' };
}

function budget(name: string, limit: number, actual: Measured<number>, unit: string): BudgetResult {
  return { name, limit, actual, pass: typeof actual === 'number' && actual <= limit, unit };
}

/** The worst value of a cluster-timeline figure, or why there is none. */
function worst(points: readonly ClusterTimelinePoint[] | undefined, pick: (p: ClusterTimelinePoint) => number | null, what: string): Measured<number> {
  if (!points?.length) return notMeasured(`the cluster timeline was not sampled, so the ${what} is unknown`);
  const v = points.map(pick).filter((x): x is number => x !== null);
  if (!v.length) return notMeasured(`no sample of the cluster timeline had the ${what} (${points.length} sample(s); the slot or a side did not answer)`);
  return Math.max(...v);
}

/** Budgets on what the clusters went through (only those the scenario sets). */
export function clusterBudgets(points: readonly ClusterTimelinePoint[] | undefined, b: Pick<Scenario['budgets'], 'maxWalRetainedBytes' | 'maxXminAge'>): BudgetResult[] {
  const out: BudgetResult[] = [];
  if (b.maxWalRetainedBytes !== undefined) out.push(budget('maxWalRetainedBytes', b.maxWalRetainedBytes, worst(points, (p) => p.walRetainedBytes, 'WAL retained by the slot'), 'bytes'));
  if (b.maxXminAge !== undefined) out.push(budget('maxXminAge', b.maxXminAge, worst(points, (p) => p.xminAge, "slot's xmin age"), 'transactions'));
  return out;
}

/** A fault's effects outlast it a little (reconnects, retries): the calm interval keeps this far away. */
export const FAULT_SETTLE_MS = 1_000;

/** The longest part of [startMs, endMs] that no applied fault touched (FAULT_SETTLE_MS after each included). */
export function faultFree(startMs: number, endMs: number, faults: readonly InjectedFault[], loadStartMs: number): { startMs: number; endMs: number } {
  let pieces = [{ startMs, endMs }];
  for (const f of faults) {
    if (f.error) continue; // never applied
    const lo = loadStartMs + f.atMs;
    const hi = f.durationMs !== undefined ? lo + f.durationMs + FAULT_SETTLE_MS : Infinity;
    pieces = pieces.flatMap((p) => [
      ...(lo > p.startMs ? [{ startMs: p.startMs, endMs: Math.min(p.endMs, lo) }] : []),
      ...(hi < p.endMs ? [{ startMs: Math.max(p.startMs, hi), endMs: p.endMs }] : []),
    ]).filter((p) => p.endMs > p.startMs);
  }
  return pieces.reduce((best, p) => (p.endMs - p.startMs > best.endMs - best.startMs ? p : best), { startMs, endMs: startMs });
}

/**
 * The calm interval (after the warm-up, before the cutover, away from the scenario's own faults)
 * and whether the lab sustained the load in it.
 */
export function measureSaturation(o: RunObservation, cutStart: number | undefined, requestedPerSec: number): Measured<Saturation> {
  const from = Math.max(o.loadStartMs + WARMUP_MS, o.calmFromMs ?? -Infinity);
  // calm ends before the cutover, and where the load stopped issuing requests
  const lastIssued = o.ops.reduce((m, x) => Math.max(m, x.startMs), o.loadStartMs);
  const to = Math.min(cutStart !== undefined ? cutStart - DEFAULT_MARGIN_BEFORE_MS : o.loadEndMs, lastIssued);
  const { startMs, endMs } = faultFree(from, to, o.faults, o.loadStartMs);
  if (endMs - startMs < MIN_CALM_MS) {
    const faulted = endMs - startMs < to - from;
    return notMeasured(
      `the load ran calm for only ${Math.max(0, Math.round(endMs - startMs))} ms before the cutover (needs ${MIN_CALM_MS} ms after a ${WARMUP_MS} ms warm-up${o.calmFromMs !== undefined ? ' and the end of post-data' : ''}${faulted ? ', away from the faults' : ''}): start the switch later (load.switchAt)${faulted ? ' or the faults earlier' : ''}`,
    );
  }
  const s = saturation(o.ops, o.droppedAt, { startMs, endMs }, requestedPerSec);
  return { calm: { startMs: startMs - o.loadStartMs, endMs: endMs - o.loadStartMs }, ...s };
}

/** How long after resume the first seconds on the new primary are measured. */
export const AFTER_SWITCH_MS = 10_000;

/**
 * Latency of the successful requests that started in the first 10 s after resume (up to the
 * load's last request, or `untilMs`) beside those of the calm interval, p50/p95/p99 and ratios.
 */
export function measureAfterSwitch(o: RunObservation, cut: { startMs: number; endMs: number } | undefined, sat: Measured<Saturation>, readiness: boolean, untilMs = Infinity): Measured<AfterSwitch> {
  if (!cut) return notMeasured('the switchover reported no phases, so there is no "after the switch" to measure');
  const calm = valueOf(sat);
  if (!calm) return notMeasured(`there is no calm interval to compare with (${(sat as NotMeasured).notMeasured})`);
  const lastIssued = o.ops.reduce((m, x) => (x.startMs < untilMs ? Math.max(m, x.startMs) : m), -Infinity);
  const from = cut.endMs;
  const to = Math.min(from + AFTER_SWITCH_MS, lastIssued);
  const okIn = (a: number, b: number) =>
    o.ops
      .filter((x) => x.status === 'ok' && x.startMs >= a && x.startMs <= b)
      .map((x) => x.endMs - x.startMs)
      .sort((x, y) => x - y);
  const first = to > from ? okIn(from, to) : [];
  if (!first.length) return notMeasured(to > from ? `no request succeeded in the ${Math.round((to - from) / 100) / 10} s after resume` : 'the load issued no request after resume');
  const base = okIn(o.loadStartMs + calm.calm.startMs, o.loadStartMs + calm.calm.endMs);
  const pct = (d: number[]) => ({ p50: round1(percentile(d, 50)), p95: round1(percentile(d, 95)), p99: round1(percentile(d, 99)), count: d.length });
  const f = pct(first);
  const c = pct(base);
  const ratio = (p: 'p50' | 'p95' | 'p99') => (c[p] > 0 ? Math.round((f[p] / c[p]) * 100) / 100 : null);
  return { window: { startMs: from - o.loadStartMs, endMs: to - o.loadStartMs }, first: f, calm: c, ratio: { p50: ratio('p50'), p95: ratio('p95'), p99: ratio('p99') }, readiness };
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Acknowledged-write figures, or why each could not be had. */
function ackFigures(o: RunObservation) {
  const a: AckObservation | NotMeasured = o.ack ?? checkAcknowledged({ ops: o.ops, presentIds: o.presentIds ?? [], duplicateCounts: o.duplicateCounts, oldPrimaryIdsAfterFence: o.oldPrimaryIdsAfterFence });
  if (isNotMeasured(a)) return { lost: a, unexpected: a, recovered: a, duplicates: a, splitBrain: a } as const;
  const splitBrain: Measured<number> = a.oldError ? notMeasured(`the old primary could not be read for the split-brain check: ${a.oldError}`) : a.splitBrain.length;
  return { lost: a.lost.length, unexpected: a.unexpected.length, recovered: a.recovered.length, duplicates: a.duplicates.length, splitBrain } as const;
}

/** Stall: the longest gap between acks, the edges of the load included. */
function stallOf(o: RunObservation, quietMs = DEFAULT_QUIET_MS): ReturnType<typeof stallWindow> & { open?: boolean } {
  const writes = o.ops.filter((x) => x.kind === 'write');
  const sw: ReturnType<typeof stallWindow> & { open?: boolean } = stallWindow(writes, { startMs: o.loadStartMs, endMs: o.loadEndMs });
  // The gaps at the edges count too: a load whose writes never succeed again after the switch
  // stalled from its last ack to the end of the load (the last request issued), not for 0 ms.
  const acks = writes.filter((x) => x.status === 'ok').map((x) => x.endMs);
  const lastIssued = writes.reduce((m, x) => Math.max(m, x.startMs), o.loadStartMs);
  const firstAck = acks.length ? Math.min(...acks) : undefined;
  const lastAck = acks.length ? Math.max(...acks) : undefined;
  if (writes.length > 0) {
    const tail = lastAck === undefined ? lastIssued - o.loadStartMs : lastIssued - lastAck;
    // … and that stall had not ended when the load did (writes were still being issued, none
    // succeeded for a quiet second or more): its length is a lower bound, not a measurement
    if (tail > sw.ms) Object.assign(sw, { ms: tail, startMs: lastAck ?? o.loadStartMs, endMs: lastIssued, open: tail >= quietMs });
    const firstIssued = writes.reduce((m, x) => Math.min(m, x.startMs), Infinity);
    const head = firstAck === undefined ? 0 : firstAck - firstIssued;
    if (head > sw.ms) Object.assign(sw, { ms: head, startMs: firstIssued, endMs: firstAck });
  }
  return sw;
}

function timelineOf(o: RunObservation) {
  const lagAt = (t: number) => {
    if (!o.lagSamples?.length) return undefined;
    let best: number | undefined;
    for (const s of o.lagSamples) if (s.tMs <= t + 1000) best = s.bytes;
    return best ?? null;
  };
  return timeline(o.ops, 1000, { startMs: o.loadStartMs, endMs: o.loadEndMs }).map((p) => ({
    tMs: p.tMs - o.loadStartMs,
    okPerSec: p.okPerSec,
    failPerSec: p.failPerSec,
    latencyP99Ms: p.okPerSec > 0 ? p.latencyP99Ms : null,
    ...(o.lagSamples ? { lagBytes: lagAt(p.tMs) ?? null } : {}),
  }));
}

/**
 * The write-blocked window part by part (reports/model.ts BlockedWindow): phase durations from the
 * switchover, the switch's change inside its phase, then the client side — when the app moved to
 * the new address, its first acknowledged write there, and how long failures went on after resume.
 * `errorWindowEndMs`: epoch end of the error window (undefined: no failure), or why it is unknown.
 */
export function blockedWindow(o: Pick<RunObservation, 'phases' | 'ops' | 'switchChangedAtMs' | 'switchSwapMs' | 'appAddressChangesMs'>, sw: Scenario['migration']['switch'], errorWindowEndMs: number | undefined | NotMeasured): BlockedWindow {
  const phase = (n: string) => o.phases.find((p) => p.name === n && p.outcome === 'ok');
  const dur = (n: string): Measured<number> => {
    const p = phase(n);
    return p ? Math.round(p.endMs - p.startMs) : notMeasured(`the switchover did not complete its ${n} phase`);
  };
  const swp = phase('switch');
  const changed = swp ? Math.min(swp.endMs, Math.max(swp.startMs, o.switchChangedAtMs ?? swp.endMs)) : undefined;
  const noSwitch = notMeasured('the switchover did not complete its switch phase');
  // the side the app writes to moved: dns when its resolver let go of the old answer, else with the switch
  let moved: number | undefined | NotMeasured = changed;
  let reResolveMs: Measured<number> = notMeasured(`no name to re-resolve: the ${sw} switch moves traffic behind the address the app keeps`);
  if (sw === 'dns' && changed !== undefined) {
    const at = o.appAddressChangesMs?.find((t) => t >= changed - 50);
    moved = o.appAddressChangesMs === undefined ? notMeasured('the app does not report when it moved to the new address (the sample app prints a db-address-changed event)') : at ?? notMeasured('the app never moved to the new address');
    reResolveMs = typeof moved === 'number' ? Math.round(Math.max(0, moved - changed)) : moved;
  }
  let reconnectMs: Measured<number> = isNotMeasured(moved) ? moved : noSwitch;
  if (typeof moved === 'number') {
    const from = moved;
    const first = o.ops.reduce((m, x) => (x.kind === 'write' && x.status === 'ok' && x.startMs >= from ? Math.min(m, x.endMs) : m), Infinity);
    reconnectMs = Number.isFinite(first) ? Math.round(first - from) : notMeasured('no write was acknowledged after the app moved to the new side');
  }
  const resume = phase('resume');
  const afterResumeMs: Measured<number> = !resume
    ? notMeasured('the switchover did not complete its resume phase')
    : isNotMeasured(errorWindowEndMs)
      ? errorWindowEndMs
      : Math.round(Math.max(0, (errorWindowEndMs ?? resume.endMs) - resume.endMs));
  return {
    fenceMs: dur('fence'),
    sentinelMs: dur('sentinel'),
    sequencesMs: dur('sequences'),
    switchMs: swp && changed !== undefined ? Math.round(changed - swp.startMs) : noSwitch,
    swapMs: !swp ? noSwitch : o.switchSwapMs !== undefined ? Math.round(o.switchSwapMs) : notMeasured('no reverse replication: the switch had no direction to swap'),
    switchWaitMs: swp && changed !== undefined ? Math.round(swp.endMs - changed) : noSwitch,
    resumeMs: dur('resume'),
    reResolveMs,
    reconnectMs,
    afterResumeMs,
  };
}

export function measureRun(o: RunObservation, scenario: Scenario): Run {
  const rel = (t: number) => t - o.loadStartMs;
  const cut = cutoverInterval(o.phases);
  const rate = o.requestedPerSec ?? scenario.load.rate;
  const quietMs = Math.max(DEFAULT_QUIET_MS, rate > 0 ? 5000 / rate : DEFAULT_QUIET_MS);
  // with a rollback leg the forward windows come from the client log before the split
  const split = o.rollback ? rollbackSplitMs(o.phases, o.rollback.phases) : undefined;
  const lifted = o.faultsLiftedAtMs;
  const watched = lifted === undefined ? o : { ...o, ops: o.ops.filter((x) => x.endMs <= lifted), loadEndMs: Math.min(o.loadEndMs, lifted) };
  const fwd = split === undefined ? watched : { ...watched, ops: watched.ops.filter((x) => x.startMs < split), loadEndMs: Math.min(watched.loadEndMs, split) };
  const ew = errorWindow(fwd.ops, { cutoverStart: cut?.startMs, cutoverEnd: cut?.endMs, quietMs });
  const sw = stallOf(fwd, quietMs);
  const ack = ackFigures(o);
  const lat = cut ? switchVsCalm(o.ops, cut) : undefined;
  const empty = { p50: 0, p99: 0, max: 0, count: 0 };
  const count = (st: OpOutcome['status']) => o.ops.filter((x) => x.status === st).length;
  // a cutover the load did not outlast was not watched by any client: its windows are unknown, not short
  const lastIssued = o.ops.reduce((m, x) => Math.max(m, x.startMs), -Infinity);
  const unwatched =
    cut && lastIssued < cut.endMs + MIN_TAIL_MS
      ? notMeasured(`the load stopped issuing requests ${Math.round(Math.max(0, cut.endMs - lastIssued) / 100) / 10} s before the cutover ended (needs ≥ ${MIN_TAIL_MS} ms of load after resume): lengthen load.duration, or start the switch earlier (load.switchAt)`)
      : undefined;
  // an outage still going on when the load ended (no write succeeded after it: a partition, a dead
  // server, a fault that outlasted the run) has no length yet: what was seen is a lower bound, and a
  // lower bound under the budget must not pass as if it were the figure
  const unended = (ms: number, what: string) =>
    notMeasured(`the ${what} had not ended when the load did: no write succeeded in the last ${Math.round(ms / 100) / 10} s of the load (at least ${Math.round(ms)} ms) — lengthen load.duration to see it end, or look at what the faults left behind`);
  const errMs = unwatched ?? (ew.openEnd && ew.ms > 0 ? unended(ew.ms, 'error window') : Math.round(ew.ms));
  const stallMs = unwatched ?? (sw.open ? unended(sw.ms, 'stall') : Math.round(sw.ms));
  const b = scenario.budgets;
  const budgets: BudgetResult[] = [
    budget('maxErrorWindowMs', b.maxErrorWindowMs, errMs, 'ms'),
    budget('maxStallMs', b.maxStallMs, stallMs, 'ms'),
    budget('maxLostWrites', b.maxLostWrites, ack.lost, 'writes'),
    budget('maxDuplicateWrites', b.maxDuplicateWrites, ack.duplicates, 'writes'),
    budget('splitBrainWrites', 0, ack.splitBrain, 'writes'),
  ];
  if (o.driftAfter) budgets.push(driftBudget(o.driftAfter, b.allowedDrift));
  const rb = o.rollback && split !== undefined ? rollbackLeg(watched, o.rollback, split, quietMs) : undefined;
  if (rb)
    budgets.push(
      budget('rollbackErrorWindowMs', b.maxErrorWindowMs, rb.errorWindowMs, 'ms'),
      budget('rollbackStallMs', b.maxStallMs, rb.stallWindowMs, 'ms'),
      budget('rollbackLostWrites', b.maxLostWrites, rb.lostWrites, 'writes'),
      budget('rollbackSplitBrainWrites', 0, rb.splitBrainWrites, 'writes'),
    );
  budgets.push(...clusterBudgets(o.clusterTimeline, b));
  if (o.shadow) budgets.push(budget('maxShadowMismatches', b.maxShadowMismatches, 'notMeasured' in o.shadow ? o.shadow : o.shadow.mismatches, 'mismatches'));
  const sat = measureSaturation(o, cut?.startMs, rate);
  const afterSwitch = unwatched ?? measureAfterSwitch(o, cut, sat, scenario.migration.readiness, split);
  const run: Run = {
    index: o.index,
    startedAt: o.startedAt,
    durationMs: Math.round(o.durationMs),
    pass: false,
    ...(o.error ? { error: o.error } : {}),
    downtimeMs: typeof errMs === 'number' && typeof stallMs === 'number' ? downtimeMs(errMs, stallMs) : typeof errMs === 'number' ? stallMs : errMs,
    errorWindowMs: errMs,
    stallWindowMs: stallMs,
    ...(!unwatched && ew.startMs !== undefined && ew.endMs !== undefined && ew.ms > 0 ? { errorWindow: { startMs: rel(ew.startMs), endMs: rel(ew.endMs) } } : {}),
    lostWrites: ack.lost,
    unexpectedWrites: ack.unexpected,
    recoveredWrites: ack.recovered,
    duplicateWrites: ack.duplicates,
    splitBrainWrites: ack.splitBrain,
    droppedIterations: attributeDrops(o.droppedAt, { cutoverStart: cut?.startMs, cutoverEnd: cut?.endMs, range: { startMs: o.loadStartMs, endMs: o.loadEndMs } }),
    requests: { total: o.ops.length, ok: count('ok'), failed: count('fail'), indeterminate: count('indeterminate') },
    latency: { switch: lat ? pick(lat.during) : empty, calm: lat ? pick(lat.calm) : empty },
    saturation: sat,
    afterSwitch,
    ...(o.replication ? { replication: o.replication } : {}),
    phases: o.phases.map((p) => ({ name: p.name, startMs: rel(p.startMs), endMs: rel(p.endMs), outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) })),
    ...(cut ? { blockedWindow: blockedWindow(fwd, scenario.migration.switch, unwatched ?? (ew.ms > 0 ? ew.endMs : undefined)) } : {}),
    timeline: timelineOf(o),
    faults: o.faults,
    budgets,
    ...(rb ? { rollback: rb } : {}),
    ...(o.clusterTimeline ? { clusterTimeline: o.clusterTimeline } : {}),
    ...(o.cleanup ? { cleanup: o.cleanup } : {}),
    ...(o.shadow ? { shadow: o.shadow } : {}),
    ...(o.switchover ? { switchover: o.switchover } : {}),
  };
  run.pass = !o.error && budgets.every((x) => x.pass) && unmeasured(run).length === 0 && !valueOf(run.saturation)?.saturated && !o.faults.some((f) => f.error) && !o.cleanup?.remaining.length && !rb?.error;
  return run;
}

/** The rollback leg's figures: windows from the client log after the split, losses from its own check. */
function rollbackLeg(o: RunObservation, leg: NonNullable<RunObservation['rollback']>, split: number, quietMs: number): NonNullable<Run['rollback']> {
  const rel = (t: number) => t - o.loadStartMs;
  const cut = cutoverInterval(leg.phases)!;
  const part = { ...o, ops: o.ops.filter((x) => x.startMs >= split), loadStartMs: split };
  const ew = errorWindow(part.ops, { cutoverStart: cut.startMs, cutoverEnd: cut.endMs, quietMs });
  const sw = stallOf(part);
  const lastIssued = o.ops.reduce((m, x) => Math.max(m, x.startMs), -Infinity);
  const unwatched =
    lastIssued < cut.endMs + MIN_TAIL_MS
      ? notMeasured(`the load stopped issuing requests ${Math.round(Math.max(0, cut.endMs - lastIssued) / 100) / 10} s before the rollback ended (needs ≥ ${MIN_TAIL_MS} ms of load after its resume): lengthen load.duration, or shorten migration.rollbackAfter`)
      : undefined;
  const errMs = unwatched ?? Math.round(ew.ms);
  const stallMs = unwatched ?? Math.round(sw.ms);
  const a = leg.ack ?? notMeasured('the rollback leg was not checked');
  const lost: Measured<number> = isNotMeasured(a) ? a : a.lost.length;
  const splitBrain: Measured<number> = isNotMeasured(a) ? a : a.oldError ? notMeasured(`the new primary could not be read for the rollback's split-brain check: ${a.oldError}`) : a.splitBrain.length;
  return {
    downtimeMs: typeof errMs === 'number' && typeof stallMs === 'number' ? downtimeMs(errMs, stallMs) : typeof errMs === 'number' ? stallMs : errMs,
    errorWindowMs: errMs,
    stallWindowMs: stallMs,
    ...(!unwatched && ew.startMs !== undefined && ew.endMs !== undefined && ew.ms > 0 ? { errorWindow: { startMs: rel(ew.startMs), endMs: rel(ew.endMs) } } : {}),
    lostWrites: lost,
    splitBrainWrites: splitBrain,
    phases: leg.phases.map((p) => ({ name: p.name, startMs: rel(p.startMs), endMs: rel(p.endMs), outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) })),
    ...(leg.error ? { error: leg.error } : {}),
  };
}

/**
 * A run that crashed (in `step`): nothing of it was measured, so every figure says so and none
 * enters the aggregate. The phases and faults seen up to the crash are kept.
 */
export function crashedRun(o: { index: number; startedAt: string; durationMs: number; step: string; error: string; phases: PhaseTiming[]; faults: InjectedFault[]; loadStartMs?: number; clusterTimeline?: ClusterTimelinePoint[] }): Run {
  const why = notMeasured(`the run crashed in step "${o.step}" before it was measured: ${o.error}`);
  const t0 = o.loadStartMs || o.phases[0]?.startMs || 0;
  return {
    index: o.index,
    startedAt: o.startedAt,
    durationMs: Math.round(o.durationMs),
    pass: false,
    error: `crashed in step "${o.step}": ${o.error}`,
    downtimeMs: why,
    errorWindowMs: why,
    stallWindowMs: why,
    lostWrites: why,
    unexpectedWrites: why,
    recoveredWrites: why,
    duplicateWrites: why,
    splitBrainWrites: why,
    droppedIterations: why,
    requests: why,
    latency: why,
    saturation: why,
    afterSwitch: why,
    phases: o.phases.map((p) => ({ name: p.name, startMs: p.startMs - t0, endMs: Math.max(p.startMs, p.endMs) - t0, outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) })),
    timeline: [],
    faults: o.faults,
    budgets: [],
    // the clusters' side of a crash is often the explanation: keep what was sampled
    ...(o.clusterTimeline?.length ? { clusterTimeline: o.clusterTimeline } : {}),
  };
}

function pick(s: { p50: number; p99: number; max: number; count: number }) {
  return { p50: Math.round(s.p50), p99: Math.round(s.p99), max: Math.round(s.max), count: s.count };
}

/** The aggregate over runs is the report model's own (one definition of median/p95 for every reader). */
export { aggregateRuns as aggregate } from '../../reports/model.ts';

/** "lab saturated: 850 of 1000 req/s, 14324 dropped, p99 711 ms — downtime figures not trustworthy" */
export { saturationText } from '../../reports/format.ts';

const unit = (b: BudgetResult, v: number) => (b.unit === 'bytes' ? bytesText(v) : `${v}${b.unit === 'ms' ? ' ms' : ''}`);

function bytesText(n: number): string {
  const u = [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['kB', 1024]] as const;
  for (const [name, size] of u) if (n >= size) return `${(n / size).toFixed(1)} ${name} (${n} bytes)`;
  return `${n} bytes`;
}

/** One sentence per reason for a no-go; empty when every run passed and drift is within budget. */
export function verdict(runs: Run[], driftBefore: DriftStage, allowed: Scenario['budgets']['allowedDrift']): { pass: boolean; reasons: string[] } {
  const reasons: string[] = [];
  for (const r of runs) {
    const from = reasons.length;
    runReasons(r, reasons, allowed);
    // a NO-GO under faults names them: which fault the night had is half of what the reason means
    const fired = r.faults.filter((f) => !f.error);
    const i = reasons.findIndex((x, k) => k >= from && !/^run \d+: fault /.test(x));
    if (fired.length && i >= 0) reasons[i] += ` — under fault${fired.length > 1 ? 's' : ''}: ${fired.map(describeInjected).join('; ')}`;
  }
  if (isNotMeasured(driftBefore)) reasons.push(`drift before the switch not measured, because ${driftBefore.notMeasured}`);
  else if (Array.isArray(driftBefore)) {
    const d = driftBudget(driftBefore, allowed);
    if (!d.pass) reasons.push(`${d.actual} drift finding(s) before the switch above the allowed severity "${allowed}"`);
  }
  return { pass: reasons.length === 0, reasons };
}

/** The reasons one run is a NO-GO (none when it passed). */
function runReasons(r: Run, reasons: string[], allowed: Scenario['budgets']['allowedDrift']): void {
  if (r.error) {
    reasons.push(`run ${r.index} ${r.error}`);
    // its figures all say the same thing; what it left behind and the faults it did not rehearse do not
    if (r.cleanup?.remaining.length) reasons.push(`run ${r.index}: ${leftBehind(r.cleanup.remaining)}`);
    for (const f of r.faults) if (f.error) reasons.push(`run ${r.index}: fault ${describeInjected(f)} could not be applied: ${f.error} — the run did not rehearse what the scenario asks`);
    return;
  }
  const sat = valueOf(r.saturation);
  if (sat?.saturated) reasons.push(`run ${r.index}: ${saturationText(sat)}`);
  if (r.rollback?.error) reasons.push(`run ${r.index}: the rollback ${r.rollback.error}`);
  if (r.cleanup?.remaining.length) reasons.push(`run ${r.index}: ${leftBehind(r.cleanup.remaining)}`);
  for (const f of r.faults) if (f.error) reasons.push(`run ${r.index}: fault ${describeInjected(f)} could not be applied: ${f.error} — the run did not rehearse what the scenario asks`);
  const figures = new Set<string>();
  for (const u of unmeasured(r)) {
    if (u.figure.startsWith('budget ') || figures.has(u.reason)) continue;
    figures.add(u.reason);
    reasons.push(`run ${r.index}: ${u.figure} not measured, because ${u.reason}`);
  }
  for (const b of r.budgets) {
    if (b.pass || b.name === 'driftAfterSwitch') continue;
    if (isNotMeasured(b.actual)) continue; // said above with its reason
    reasons.push(`run ${r.index}: ${b.name} ${unit(b, b.actual)} > ${unit(b, b.limit)}`);
  }
  const after = r.budgets.find((b) => b.name === 'driftAfterSwitch');
  if (after && !after.pass)
    reasons.push(isNotMeasured(after.actual) ? `run ${r.index}: drift after the switch not measured, because ${after.actual.notMeasured}` : `run ${r.index}: ${after.actual} drift finding(s) after the switch above the allowed severity "${allowed}"`);
}
