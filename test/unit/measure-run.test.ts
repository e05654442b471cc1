/** The rehearsal's per-run figures, budgets, aggregate and verdict, on hand-made observations. */
import { describe, it, expect } from 'vitest';
import { measureRun, crashedRun, aggregate, verdict, cutoverInterval, driftBudget, type RunObservation } from '../../lab/rehearse/measure-run.ts';
import { checkAcknowledged } from '../../load/measure.ts';
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
    // the hand-made log has one write every 100 ms
    requestedPerSec: 10,
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
    expect(r.timeline.length).toBe(11); // 1 s buckets over 0 … 10 s, both ends included
  });

  it('failures during the cutover make the error window and the downtime; over budget fails the run', () => {
    const r = measureRun(observation({ ops: ops(4_000, 6_500) }), scenario);
    // last success before the first failure ended at 3905; first success after ends at 6505
    expect(r.errorWindowMs).toBe(6_505 - 3_905);
    expect(r.errorWindow).toEqual({ startMs: 3_905, endMs: 6_505 });
    expect(r.downtimeMs).toBe(Math.max(r.errorWindowMs as number, r.stallWindowMs as number));
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

  it('a load in which no write succeeded stalled for the whole load: a lower bound, not a figure', () => {
    const r = measureRun(observation({ ops: ops(0, 10_000), presentIds: [] }), scenario);
    expect(r.stallWindowMs).toEqual({ notMeasured: expect.stringMatching(/the stall had not ended when the load did: .*at least 9900 ms/) });
    expect(r.pass).toBe(false);
  });

  it('writes that never succeed again after the switch: the outage outlasted the load, so it is not measured — even under the budget', () => {
    const loose = parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\nbudgets: { maxErrorWindow: 60s, maxStall: 60s, maxLostWrites: 0 }`, 't.yaml');
    const r = measureRun(observation({ ops: ops(5_000, 10_000) }), loose);
    // last ack ends at 4905, last write issued at 9900: at least 4995 ms without a successful write
    expect(r.stallWindowMs).toEqual({ notMeasured: expect.stringMatching(/the stall had not ended when the load did: no write succeeded in the last 5 s of the load \(at least 4995 ms\)/) });
    expect(r.errorWindowMs).toEqual({ notMeasured: expect.stringMatching(/the error window had not ended when the load did: .*at least 5000 ms/) });
    expect(r.downtimeMs).toEqual(r.errorWindowMs);
    expect(r.budgets.find((b) => b.name === 'maxErrorWindowMs')).toMatchObject({ pass: false });
    expect(r.pass).toBe(false);
    expect(verdict([r], [], 'warning').reasons.join('\n')).toMatch(/downtime not measured, because the error window had not ended when the load did/);
    // an outage that ended before the load did is measured as before
    const ended = measureRun(observation({ ops: ops(5_000, 8_000) }), loose);
    expect(ended.errorWindowMs).toBe(8_005 - 4_905);
    expect(ended.pass).toBe(true);
  });

  it('an outage the lab ended by lifting its fault at the end of the load is not an outage that ended', () => {
    const loose = parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\nbudgets: { maxErrorWindow: 60s, maxStall: 60s, maxLostWrites: 0 }`, 't.yaml');
    // writes fail from 5 s; the partition outlasting the load is lifted at 9.5 s, and the requests
    // held in it then succeed (one long request issued at 9.4 s ends at 9.6 s)
    const log = ops(5_000, 9_500).concat({ id: 'held', kind: 'write', startMs: T0 + 9_400, endMs: T0 + 9_600, status: 'ok' }).filter((x) => !(x.startMs >= T0 + 9_400 && x.id !== 'held'));
    const seen = measureRun(observation({ ops: log }), loose);
    expect(seen.errorWindowMs).toBe(9_600 - 4_905); // without the lift recorded: a figure, and it passed
    expect(seen.pass).toBe(true);
    const r = measureRun(observation({ ops: log, faultsLiftedAtMs: T0 + 9_500 }), loose);
    expect(r.errorWindowMs).toEqual({ notMeasured: expect.stringMatching(/the error window had not ended when the load did/) });
    expect(r.stallWindowMs).toEqual({ notMeasured: expect.stringMatching(/the stall had not ended when the load did/) });
    expect(r.pass).toBe(false);
    // the acknowledged-write check still counts the request that succeeded after the lift
    expect(r.lostWrites).toBe(0);
    // a lift after the outage had ended changes nothing
    const ended = measureRun(observation({ ops: ops(5_000, 8_000), faultsLiftedAtMs: T0 + 9_950 }), loose);
    expect(ended.errorWindowMs).toBe(8_005 - 4_905);
    expect(ended.pass).toBe(true);
  });

  it('a run that errored never passes', () => {
    expect(measureRun(observation({ error: 'switchover failed' }), scenario).pass).toBe(false);
  });
});

describe('nothing unknown is a pass', () => {
  const reasons = (runs: ReturnType<typeof measureRun>[], before: any = []) => verdict(runs, before, 'warning').reasons.join('\n');

  it('an old primary that could not be read leaves split-brain not measured, and the run NO-GO', () => {
    const log = ops();
    const ack = { ...checkAcknowledged({ ops: log, presentIds: log.map((x) => x.id) }), oldChecked: false, oldError: 'connect ECONNREFUSED 127.0.0.1:5433' };
    const r = measureRun(observation({ ack }), scenario);
    expect(r.splitBrainWrites).toEqual({ notMeasured: 'the old primary could not be read for the split-brain check: connect ECONNREFUSED 127.0.0.1:5433' });
    expect(r.budgets.find((b) => b.name === 'splitBrainWrites')).toMatchObject({ pass: false });
    expect(r.pass).toBe(false);
    expect(reasons([r])).toContain('run 1: split-brain writes not measured, because the old primary could not be read for the split-brain check: connect ECONNREFUSED');
  });

  it('a NO-GO under faults names them; an errored run still lists what it left behind and the faults it did not rehearse', () => {
    const pause = { kind: 'pause' as const, target: 'old', phase: 'catchup', atMs: 4_000, durationMs: 3_000 };
    const never = { kind: 'latency' as const, hop: 'app-new', phase: 'reverse', atMs: 9_000, error: 'never fired: the switchover never started phase reverse' };
    const r = measureRun(observation({ error: 'switchover rolled-back: phase catchup did not finish within 15000 ms', faults: [pause, never] as any, cleanup: { dropped: [], remaining: ['slot cutover_main on old'] } }), scenario);
    const v = verdict([r], [], 'warning').reasons;
    expect(v[0]).toBe('run 1 switchover rolled-back: phase catchup did not finish within 15000 ms — under fault: pause (SIGSTOP) of old at phase catchup');
    expect(v).toContain('run 1: replication objects left behind after the run: slot cutover_main on old');
    expect(v.join('\n')).toContain('run 1: fault latency on app-new at phase reverse could not be applied: never fired');
    // a run without faults reads as before
    expect(verdict([measureRun(observation({ error: 'switchover failed' }), scenario)], [], 'warning').reasons).toEqual(['run 1 switchover failed']);
  });

  it('a drift check that failed is not zero findings', () => {
    const r = measureRun(observation({ driftAfter: { notMeasured: 'the drift check failed: connection refused' } }), scenario);
    expect(r.pass).toBe(false);
    expect(reasons([r], { notMeasured: 'the drift check failed: timeout' })).toMatch(/drift after the switch not measured, because the drift check failed: connection refused[\s\S]*drift before the switch not measured, because the drift check failed: timeout/);
  });

  it('a fault that could not be applied fails the run with its error', () => {
    const r = measureRun(observation({ faults: [{ kind: 'kill', target: 'switchover', atMs: 1000, error: 'the switchover is not running at this moment' }] }), scenario);
    expect(r.pass).toBe(false);
    expect(reasons([r])).toContain('run 1: fault kill -9 switchover at 1.00 s could not be applied: the switchover is not running at this moment');
  });

  it('a crashed run is NO-GO with its reason and stays out of the medians', () => {
    const crashed = crashedRun({ index: 2, startedAt: new Date(T0).toISOString(), durationMs: 5000, step: 'replication', error: 'pg_dump failed', phases: [], faults: [] });
    expect(crashed.downtimeMs).toEqual({ notMeasured: 'the run crashed in step "replication" before it was measured: pg_dump failed' });
    const a = aggregate([measureRun(observation({}), scenario), crashed]);
    expect(a.downtimeMs).toMatchObject({ n: 1, median: 100 });
    expect(a.lostWrites).toMatchObject({ n: 1, max: 0 });
    expect(a.crashedRuns).toBe(1);
    expect(reasons([crashed])).toBe('run 2 crashed in step "replication": pg_dump failed');
  });

  it('a saturated lab says so and fails, with the figures', () => {
    // half the requested rate gets through in the calm interval
    const r = measureRun(observation({ requestedPerSec: 20, droppedAt: [T0 + 2_500, T0 + 2_600] }), scenario); // 2 drops alone would not be saturation
    expect(r.saturation).toMatchObject({ saturated: true, requestedPerSec: 20, achievedPerSec: 10, dropped: 2 });
    expect(r.pass).toBe(false);
    expect(reasons([r])).toContain('run 1: lab saturated: 10 of 20 req/s, 2 dropped, p99 5 ms — downtime figures not trustworthy');
    expect(aggregate([r]).downtimeMs).toEqual({ notMeasured: 'no run measured it (0 crashed, 1 saturated)' });
  });

  it('a calm interval too short to judge the lab is not measured', () => {
    const phases = [{ name: 'fence', startMs: T0 + 2_500, endMs: T0 + 2_600, outcome: 'ok' as const }];
    const r = measureRun(observation({ phases }), scenario);
    expect(r.saturation).toMatchObject({ notMeasured: expect.stringMatching(/calm for only 0 ms before the cutover/) });
    expect(r.pass).toBe(false);
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
    expect(a.downtimeMs).toMatchObject({ median: 100, max: 2_600, n: 3 });
    expect(a.phaseMs.fence.median).toBe(500);
    const v = verdict(runs, [], 'warning');
    expect(v.pass).toBe(false);
    expect(v.reasons.join('\n')).toContain('run 2: maxErrorWindowMs 2600 ms > 2000 ms');
  });
});

describe('a cutover the load did not outlast', () => {
  it('has no windows: nobody watched it', () => {
    const phases = [
      { name: 'fence', startMs: T0 + 9_000, endMs: T0 + 9_500, outcome: 'ok' as const },
      { name: 'resume', startMs: T0 + 9_500, endMs: T0 + 12_000, outcome: 'ok' as const },
    ];
    const r = measureRun(observation({ phases }), scenario);
    expect(r.downtimeMs).toMatchObject({ notMeasured: expect.stringMatching(/stopped issuing requests 2\.1 s before the cutover ended/) });
    expect(r.errorWindowMs).toEqual(r.downtimeMs);
    expect(r.pass).toBe(false);
    expect(verdict([r], [], 'warning').reasons.join('\n')).toMatch(/downtime not measured, because the load stopped/);
  });
});

describe('the calm interval keeps away from the scenario\'s own faults', () => {
  it('a fault before the cutover is not saturation: the calm interval is the longest fault-free stretch', () => {
    // the app is killed 2.5 s → 3 s and everything fails meanwhile; calm is 4 s → fence − 1 s
    const phases = [
      { name: 'fence', startMs: T0 + 8_000, endMs: T0 + 8_500, outcome: 'ok' as const },
      { name: 'resume', startMs: T0 + 8_500, endMs: T0 + 8_600, outcome: 'ok' as const },
    ];
    const r = measureRun(observation({ ops: ops(2_500, 3_000), phases, faults: [{ kind: 'kill', target: 'app', atMs: 2_500, durationMs: 500 }] }), scenario);
    expect(r.saturation).toMatchObject({ calm: { startMs: 4_000, endMs: 7_000 }, saturated: false });
  });

  it('a fault that never ends leaves no calm interval: not measured, saying why', () => {
    const r = measureRun(observation({ faults: [{ kind: 'latency', hop: 'app-old', atMs: 0, attributes: { latency: 100 } }] }), scenario);
    expect(r.saturation).toMatchObject({ notMeasured: expect.stringMatching(/away from the faults.*or the faults earlier/) });
  });
});

describe('first 10 s after the switch', () => {
  /** Writes every 100 ms; those that start in [slowFrom, slowTo) take `slowMs`, the others 5 ms. */
  function timed(slowFrom: number, slowTo: number, slowMs: number, untilMs = 20_000): OpOutcome[] {
    const out: OpOutcome[] = [];
    for (let t = 0; t < untilMs; t += 100) out.push({ id: `w${t}`, kind: 'write', startMs: T0 + t, endMs: T0 + t + (t >= slowFrom && t < slowTo ? slowMs : 5), status: 'ok' });
    return out;
  }

  it('compares the successful requests of the 10 s after resume with the calm interval, per percentile', () => {
    // slow for the first 2 s after resume (5.6 s): 20 of the 100 requests of the window
    const r = measureRun(observation({ ops: timed(5_600, 7_600, 50), loadEndMs: T0 + 20_000 }), scenario);
    expect(r.afterSwitch).toEqual({
      window: { startMs: 5_600, endMs: 15_600 },
      first: { p50: 5, p95: 50, p99: 50, count: 101 },
      calm: { p50: 5, p95: 5, p99: 5, count: 11 },
      ratio: { p50: 1, p95: 10, p99: 10 },
      readiness: true,
    });
    expect(r.pass).toBe(true);
  });

  it('measures a shorter window when the load ends sooner, and says so when no request succeeded after resume', () => {
    const short = measureRun(observation({}), scenario);
    expect(short.afterSwitch).toMatchObject({ window: { startMs: 5_600, endMs: 9_900 }, ratio: { p50: 1 } });
    const failing = measureRun(observation({ ops: ops(5_000, 10_000) }), scenario);
    expect(failing.afterSwitch).toEqual({ notMeasured: 'no request succeeded in the 4.3 s after resume' });
    // without a calm interval there is nothing to compare with
    const noCalm = measureRun(observation({ calmFromMs: T0 + 4_000 }), scenario);
    expect(noCalm.afterSwitch).toMatchObject({ notMeasured: expect.stringMatching(/^there is no calm interval to compare with/) });
  });

  it('enters the aggregate as ratios over the runs', () => {
    const runs = [measureRun(observation({ ops: timed(5_600, 7_600, 50), loadEndMs: T0 + 20_000 }), scenario), measureRun(observation({ index: 2, ops: timed(0, 0, 0), loadEndMs: T0 + 20_000 }), scenario)];
    const a = aggregate(runs);
    expect(a.afterSwitchRatioP99).toMatchObject({ median: 5.5, max: 10, min: 1, n: 2 });
    expect(a.afterSwitchRatioP50).toMatchObject({ median: 1, n: 2 });
  });
});
