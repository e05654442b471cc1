/**
 * Turns what one rehearsal run observed (the client's outcome log, what the new and old primaries
 * hold, the switchover's phases, the faults that fired) into the report model's Run, and many runs
 * into the aggregate and the verdict. Pure: no clock, no I/O; tested on hand-made inputs.
 */
import { errorWindow, stallWindow, downtimeMs, switchVsCalm, checkAcknowledged, timeline, type OpOutcome, type AckCheck } from '../../load/measure.ts';
import type { Run, BudgetResult, DriftFinding, Phase, InjectedFault } from '../../reports/model.ts';
import type { Scenario } from '../../scenarios/schema.ts';

export interface PhaseTiming {
  name: string;
  startMs: number; // epoch
  endMs: number; // epoch
  outcome: Phase['outcome'];
  detail?: string;
}

export interface RunObservation {
  index: number;
  /** Epoch ms when the load started: every offset in the Run is relative to it. */
  loadStartMs: number;
  loadEndMs: number;
  startedAt: string;
  durationMs: number;
  ops: OpOutcome[];
  droppedAt: number[];
  /** The acknowledged-write check (load/check.ts checkRun), or what to compute it from. */
  ack?: AckCheck;
  presentIds?: Iterable<string>;
  duplicateCounts?: Record<string, number>;
  oldPrimaryIdsAfterFence?: Iterable<string>;
  phases: PhaseTiming[];
  faults: InjectedFault[];
  lagSamples?: Array<{ tMs: number; bytes: number }>;
  switchover?: Run['switchover'];
  error?: string;
  /** Worst drift severity found after the switch (for the drift budget). */
  driftAfter?: DriftFinding[];
}

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

export function driftBudget(findings: DriftFinding[], allowed: Scenario['budgets']['allowedDrift']): BudgetResult {
  const over = findings.filter((f) => SEVERITY_RANK[f.severity] > SEVERITY_RANK[allowed]).length;
  return { name: 'driftAfterSwitch', limit: 0, actual: over, pass: over === 0, unit: 'findings' };
}

export function measureRun(o: RunObservation, scenario: Scenario): Run {
  const rel = (t: number) => t - o.loadStartMs;
  const cut = cutoverInterval(o.phases);
  const ew = errorWindow(o.ops, { cutoverStart: cut?.startMs, cutoverEnd: cut?.endMs, dropped: o.droppedAt });
  const writes = o.ops.filter((x) => x.kind === 'write');
  const sw = stallWindow(writes, { startMs: o.loadStartMs, endMs: o.loadEndMs });
  // The gaps at the edges count too: a load whose writes never succeed again after the switch
  // stalled from its last ack to the end of the load (the last request issued), not for 0 ms.
  const acks = writes.filter((x) => x.status === 'ok').map((x) => x.endMs);
  const lastIssued = writes.reduce((m, x) => Math.max(m, x.startMs), o.loadStartMs);
  const firstAck = acks.length ? Math.min(...acks) : undefined;
  const lastAck = acks.length ? Math.max(...acks) : undefined;
  if (writes.length > 0) {
    const tail = lastAck === undefined ? lastIssued - o.loadStartMs : lastIssued - lastAck;
    if (tail > sw.ms) Object.assign(sw, { ms: tail, startMs: lastAck ?? o.loadStartMs, endMs: lastIssued });
    const firstIssued = writes.reduce((m, x) => Math.min(m, x.startMs), Infinity);
    const head = firstAck === undefined ? 0 : firstAck - firstIssued;
    if (head > sw.ms) Object.assign(sw, { ms: head, startMs: firstIssued, endMs: firstAck });
  }
  const ack = o.ack ?? checkAcknowledged({ ops: o.ops, presentIds: o.presentIds ?? [], duplicateCounts: o.duplicateCounts, oldPrimaryIdsAfterFence: o.oldPrimaryIdsAfterFence });
  const lat = cut ? switchVsCalm(o.ops, cut) : undefined;
  const empty = { p50: 0, p99: 0, max: 0, count: 0 };
  const ok = o.ops.filter((x) => x.status === 'ok').length;
  const failed = o.ops.filter((x) => x.status === 'fail').length;
  const indeterminate = o.ops.filter((x) => x.status === 'indeterminate').length;
  const errMs = Math.round(ew.ms);
  const stallMs = Math.round(sw.ms);
  const b = scenario.budgets;
  const budgets: BudgetResult[] = [
    { name: 'maxErrorWindowMs', limit: b.maxErrorWindowMs, actual: errMs, pass: errMs <= b.maxErrorWindowMs, unit: 'ms' },
    { name: 'maxStallMs', limit: b.maxStallMs, actual: stallMs, pass: stallMs <= b.maxStallMs, unit: 'ms' },
    { name: 'maxLostWrites', limit: b.maxLostWrites, actual: ack.lost.length, pass: ack.lost.length <= b.maxLostWrites, unit: 'writes' },
    { name: 'maxDuplicateWrites', limit: b.maxDuplicateWrites, actual: ack.duplicates.length, pass: ack.duplicates.length <= b.maxDuplicateWrites, unit: 'writes' },
    { name: 'splitBrainWrites', limit: 0, actual: ack.splitBrain.length, pass: ack.splitBrain.length === 0, unit: 'writes' },
  ];
  if (o.driftAfter) budgets.push(driftBudget(o.driftAfter, b.allowedDrift));
  const lagAt = (t: number) => {
    if (!o.lagSamples?.length) return undefined;
    let best: number | undefined;
    for (const s of o.lagSamples) if (s.tMs <= t + 1000) best = s.bytes;
    return best ?? null;
  };
  const tl = timeline(o.ops, 1000, { startMs: o.loadStartMs, endMs: o.loadEndMs }).map((p) => ({
    tMs: rel(p.tMs),
    okPerSec: p.okPerSec,
    failPerSec: p.failPerSec,
    latencyP99Ms: p.okPerSec > 0 ? p.latencyP99Ms : null,
    ...(o.lagSamples ? { lagBytes: lagAt(p.tMs) ?? null } : {}),
  }));
  const run: Run = {
    index: o.index,
    startedAt: o.startedAt,
    durationMs: Math.round(o.durationMs),
    pass: !o.error && budgets.every((x) => x.pass),
    ...(o.error ? { error: o.error } : {}),
    downtimeMs: downtimeMs(errMs, stallMs),
    errorWindowMs: errMs,
    stallWindowMs: stallMs,
    ...(ew.startMs !== undefined && ew.endMs !== undefined && ew.ms > 0 ? { errorWindow: { startMs: rel(ew.startMs), endMs: rel(ew.endMs) } } : {}),
    lostWrites: ack.lost.length,
    unexpectedWrites: ack.unexpected.length,
    recoveredWrites: ack.recovered.length,
    duplicateWrites: ack.duplicates.length,
    splitBrainWrites: ack.splitBrain.length,
    droppedIterations: o.droppedAt.length,
    requests: { total: o.ops.length, ok, failed, indeterminate },
    latency: { switch: lat ? pick(lat.during) : empty, calm: lat ? pick(lat.calm) : empty },
    phases: o.phases.map((p) => ({ name: p.name, startMs: rel(p.startMs), endMs: rel(p.endMs), outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) })),
    timeline: tl,
    faults: o.faults,
    budgets,
    ...(o.switchover ? { switchover: o.switchover } : {}),
  };
  return run;
}

function pick(s: { p50: number; p99: number; max: number; count: number }) {
  return { p50: Math.round(s.p50), p99: Math.round(s.p99), max: Math.round(s.max), count: s.count };
}

/** The aggregate over runs is the report model's own (one definition of median/p95 for every reader). */
export { aggregateRuns as aggregate } from '../../reports/model.ts';

export function verdict(runs: Run[], driftBefore: DriftFinding[], allowed: Scenario['budgets']['allowedDrift']): { pass: boolean; reasons: string[] } {
  const reasons: string[] = [];
  for (const r of runs) {
    if (r.error) reasons.push(`run ${r.index} failed: ${r.error}`);
    for (const b of r.budgets) if (!b.pass && b.name !== 'driftAfterSwitch') reasons.push(`run ${r.index}: ${b.name} ${b.actual}${b.unit === 'ms' ? ' ms' : ''} > ${b.limit}${b.unit === 'ms' ? ' ms' : ''}`);
  }
  const d = driftBudget(driftBefore, allowed);
  if (!d.pass) reasons.push(`${d.actual} drift finding(s) before the switch above the allowed severity "${allowed}"`);
  for (const r of runs) {
    const after = r.budgets.find((b) => b.name === 'driftAfterSwitch');
    if (after && !after.pass) reasons.push(`run ${r.index}: ${after.actual} drift finding(s) after the switch above the allowed severity "${allowed}"`);
  }
  return { pass: reasons.length === 0, reasons };
}
