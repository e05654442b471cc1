/** The rehearsal's per-run figures, budgets, aggregate and verdict, on hand-made observations. */
import { describe, it, expect } from 'vitest';
import { measureRun, aggregate, verdict, cutoverInterval, driftBudget, type RunObservation } from '../../lab/rehearse/measure-run.ts';
import { parseScenario } from '../../scenarios/load.ts';
import type { OpOutcome } from '../../load/measure.ts';

const scenario = parseScenario(
  `name: t
clusters: { old: { major: 13 }, new: { major: 17 } }
budgets: { maxErrorWindow: 2s, maxStall: 3s, maxLostWrites: 0 }`,
  't.yaml',
);

const T0 = 1_700_000_000_000;
/** One write every 100 ms for 10 s; ops in [fromMs, toMs) fail. */
function ops(failFrom = Infinity, failTo = -Infinity): OpOutcome[] {
  const out: OpOutcome[] = [];
  for (let t = 0; t < 10_000; t += 100) {
    const failing = t >= failFrom && t < failTo;
    out.push({ id: `w${t}`, kind: 'write', startMs: T0 + t, endMs: T0 + t + 5, status: failing ? 'fail' : 'ok' });
  }
  return out;
}

function observation(o: Partial<RunObservation>): RunObservation {
  const log = o.ops ?? ops();
  return {
    index: 1,
    loadStartMs: T0,
    loadEndMs: T0 + 10_000,
    startedAt: new Date(T0).toISOString(),
    durationMs: 12_000,
    ops: log,
    droppedAt: [],
    presentIds: log.filter((x) => x.status === 'ok').map((x) => x.id),
    phases: [
      { name: 'fence', startMs: T0 + 4_000, endMs: T0 + 4_500, outcome: 'ok' },
      { name: 'switch', startMs: T0 + 4_500, endMs: T0 + 5_500, outcome: 'ok' },
      { name: 'resume', startMs: T0 + 5_500, endMs: T0 + 5_600, outcome: 'ok' },
    ],
    faults: [],
    ...o,
  };
}

describe('measureRun', () => {
  it('a clean run has no error window, only the normal gap between writes, and passes', () => {
    const r = measureRun(observation({}), scenario);
    expect(r.errorWindowMs).toBe(0);
    expect(r.stallWindowMs).toBe(100);
    expect(r.downtimeMs).toBe(100);
    expect(r.pass).toBe(true);
    expect(r.requests).toEqual({ total: 100, ok: 100, failed: 0, indeterminate: 0 });
    expect(r.phases[0]).toMatchObject({ name: 'fence', startMs: 4000, endMs: 4500 });
    expect(r.timeline.length).toBeGreaterThanOrEqual(10);
  });

  it('failures during the cutover make the error window and the downtime; over budget fails the run', () => {
    const r = measureRun(observation({ ops: ops(4_000, 6_500) }), scenario);
    // last success before the first failure ended at 3905; first success after ends at 6505
    expect(r.errorWindowMs).toBe(6_505 - 3_905);
    expect(r.errorWindow).toEqual({ startMs: 3_905, endMs: 6_505 });
    expect(r.downtimeMs).toBe(Math.max(r.errorWindowMs, r.stallWindowMs));
    expect(r.pass).toBe(false);
    expect(r.budgets.find((b) => b.name === 'maxErrorWindowMs')).toMatchObject({ pass: false, limit: 2000 });
  });

  it('an acknowledged write missing on the new primary is a lost write and fails the run', () => {
    const log = ops();
    const r = measureRun(observation({ ops: log, presentIds: log.slice(1).map((x) => x.id) }), scenario);
    expect(r.lostWrites).toBe(1);
    expect(r.pass).toBe(false);
  });

  it('writes on the old primary after the fence are split-brain writes', () => {
    const r = measureRun(observation({ oldPrimaryIdsAfterFence: ['w4600'] }), scenario);
    expect(r.splitBrainWrites).toBe(1);
    expect(r.budgets.find((b) => b.name === 'splitBrainWrites')?.pass).toBe(false);
  });

  it('a load in which no write succeeded stalled for the whole load', () => {
    const r = measureRun(observation({ ops: ops(0, 10_000), presentIds: [] }), scenario);
    expect(r.stallWindowMs).toBe(9_900);
    expect(r.pass).toBe(false);
  });

  it('writes that never succeed again after the switch stall until the last request was issued', () => {
    const r = measureRun(observation({ ops: ops(5_000, 10_000) }), scenario);
    // last ack ends at 4905, last write issued at 9900
    expect(r.stallWindowMs).toBe(9_900 - 4_905);
    expect(r.downtimeMs).toBeGreaterThanOrEqual(r.stallWindowMs);
  });

  it('a run that errored never passes', () => {
    expect(measureRun(observation({ error: 'switchover failed' }), scenario).pass).toBe(false);
  });
});

describe('cutoverInterval, drift budget, aggregate and verdict', () => {
  it('the cutover runs from the fence to the end of resume', () => {
    expect(cutoverInterval(observation({}).phases)).toEqual({ startMs: T0 + 4000, endMs: T0 + 5600 });
    expect(cutoverInterval([])).toBeUndefined();
  });

  it('drift above the allowed severity fails', () => {
    const f = [{ category: 'timezone', severity: 'error' as const, object: 'TimeZone', message: 'x' }];
    expect(driftBudget(f, 'warning')).toMatchObject({ pass: false, actual: 1 });
    expect(driftBudget(f, 'error')).toMatchObject({ pass: true, actual: 0 });
  });

  it('aggregates medians over runs and gives reasons for a failing verdict', () => {
    const runs = [measureRun(observation({}), scenario), measureRun({ ...observation({ ops: ops(4_000, 6_500) }), index: 2 }, scenario), measureRun({ ...observation({}), index: 3 }, scenario)];
    const a = aggregate(runs);
    expect(a.runs).toBe(3);
    expect(a.passedRuns).toBe(2);
    expect(a.downtimeMs.median).toBe(100);
    expect(a.downtimeMs.max).toBe(2_600);
    expect(a.phaseMs.fence.median).toBe(500);
    const v = verdict(runs, [], 'warning');
    expect(v.pass).toBe(false);
    expect(v.reasons.join('\n')).toContain('run 2: maxErrorWindowMs 2600 ms > 2000 ms');
  });
});
