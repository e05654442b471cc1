/** The runner's side of the database faults and the cluster timeline, on hand-made inputs: specs, report entries, budgets, verdict. */
import { describe, it, expect } from 'vitest';
import { toFaultSpecs, toInjected, mergeReverse } from '../../lab/rehearse/steps.ts';
import { measureRun, crashedRun, clusterBudgets, verdict, rollbackSplitMs, type RunObservation } from '../../lab/rehearse/measure-run.ts';
import { parseScenario } from '../../scenarios/load.ts';
import type { ClusterTimelinePoint } from '../../reports/model.ts';
import { describeInjected, clusterSummaryText } from '../../reports/format.ts';
import type { OpOutcome } from '../../load/measure.ts';

const scenario = (budgets = '') =>
  parseScenario(
    `name: t
clusters: { old: { major: 13 }, new: { major: 17 } }
faults:
  - { kind: ddl, at: 4s, attributes: { sql: "alter table app_payments add column channel text" } }
  - { kind: conflict, at: 4s, attributes: { table: ledger_entries, mode: ahead, rows: 5 } }
  - { kind: latency, hop: app-old, at: 1s, duration: 1s, attributes: { latency: 300, stream: upstream } }
budgets: { maxErrorWindow: 2s, maxStall: 3s, maxLostWrites: 0${budgets} }`,
    't.yaml',
  );

const T0 = 1_700_000_000_000;
function ops(): OpOutcome[] {
  const out: OpOutcome[] = [];
  for (let t = 0; t < 10_000; t += 100) out.push({ id: `w${t}`, kind: 'write', startMs: T0 + t, endMs: T0 + t + 5, status: 'ok' });
  return out;
}
function point(tMs: number, wal: number | null, xmin: number | null): ClusterTimelinePoint {
  return {
    tMs, walRetainedBytes: wal, lagBytes: wal === null ? null : wal / 2, lagSeconds: 0.1, applyState: 'streaming', applyErrorCount: 0, xminAge: xmin,
    datfrozenxidAge: { old: 100, new: 50 }, connections: { old: 5, new: 0 }, oldestXactSeconds: { old: null, new: null }, cpu: { old: 0.2, new: null },
  };
}
function observation(o: Partial<RunObservation> = {}): RunObservation {
  const log = ops();
  return {
    index: 1, loadStartMs: T0, loadEndMs: T0 + 10_000, startedAt: new Date(T0).toISOString(), durationMs: 12_000, ops: log, droppedAt: [],
    presentIds: log.map((x) => x.id),
    phases: [
      { name: 'fence', startMs: T0 + 4_000, endMs: T0 + 4_500, outcome: 'ok' },
      { name: 'switch', startMs: T0 + 4_500, endMs: T0 + 5_500, outcome: 'ok' },
      { name: 'resume', startMs: T0 + 5_500, endMs: T0 + 5_600, outcome: 'ok' },
    ],
    faults: [], requestedPerSec: 10, ...o,
  };
}

describe('database faults through the runner', () => {
  it('toFaultSpecs passes text attributes (sql, table, mode) and keeps stream out of them', () => {
    const [ddl, conflict, latency] = toFaultSpecs(scenario());
    expect(ddl.attributes).toEqual({ sql: 'alter table app_payments add column channel text' });
    expect(conflict.attributes).toEqual({ table: 'ledger_entries', mode: 'ahead', rows: 5 });
    expect(latency.attributes).toEqual({ latency: 300 });
    expect(latency.stream).toBe('upstream');
  });

  it('toInjected carries effect, recovery, outcome and detection, not the lab log path', () => {
    const f = toInjected({
      kind: 'conflict', atMs: 4001.6, attributes: { table: 'ledger_entries', mode: 'now' }, effect: 'row made', recovery: 'delete it',
      outcome: { table: 'public.ledger_entries', pk: 'id', keys: [7], logFile: '/tmp/lab/new.log', logFromOffset: 123, missing: undefined },
      detection: { detected: true, via: ['subscriber log'], message: 'duplicate key', finishLsn: '0/1' },
    });
    expect(f).toEqual({
      kind: 'conflict', atMs: 4002, attributes: { table: 'ledger_entries', mode: 'now' }, effect: 'row made', recovery: 'delete it',
      outcome: { table: 'public.ledger_entries', pk: 'id', keys: [7] }, detection: { detected: true, via: ['subscriber log'], message: 'duplicate key', finishLsn: '0/1' },
    });
  });

  it('a database fault that could not be applied fails the run with its reason', () => {
    const s = scenario();
    const run = measureRun(observation({ faults: [{ kind: 'ddl', atMs: 4000, attributes: { sql: 'alter table nope add column x int' }, error: 'ddl fault could not be applied: the statement failed on the old primary: relation "nope" does not exist' }] }), s);
    expect(run.pass).toBe(false);
    const v = verdict([run], [], 'warning');
    expect(v.reasons.join('\n')).toMatch(/fault ddl "alter table nope add column x int" on old at 4\.00 s could not be applied: .*relation "nope" does not exist/);
  });

  it('names database faults by statement or table', () => {
    expect(describeInjected({ kind: 'burst', atMs: 8000, attributes: { table: 'orders', rows: 1000 } })).toBe('burst on orders at 8.00 s');
    expect(describeInjected({ kind: 'long-transaction', phase: 'catchup', atMs: 9000, attributes: { table: 'orders' } })).toBe('long-transaction on orders at phase catchup');
    expect(describeInjected({ kind: 'latency', hop: 'app-old', atMs: 1000 })).toBe('latency on app-old at 1.00 s');
  });

  it('replication objects left behind fail the run, named', () => {
    const run = measureRun(observation({ cleanup: { dropped: ['subscription cutover_main on the target'], remaining: ['slot cutover_main on old'] } }), scenario());
    expect(run.pass).toBe(false);
    expect(verdict([run], [], 'warning').reasons).toContain('run 1: replication objects left behind after the run: slot cutover_main on old');
  });
});

describe('cluster timeline budgets', () => {
  it('maxWalRetained and maxXminAge parse from the scenario (sizes as text or bytes)', () => {
    const s = scenario(', maxWalRetained: 64MB, maxXminAge: 1000000');
    expect(s.budgets).toMatchObject({ maxWalRetainedBytes: 64 * 1024 ** 2, maxXminAge: 1_000_000 });
    expect(scenario(', maxWalRetained: 1048576').budgets.maxWalRetainedBytes).toBe(1048576);
    expect(scenario().budgets).not.toHaveProperty('maxWalRetainedBytes');
    expect(() => scenario(', maxWalRetained: "64 parsecs"')).toThrow(/maxWalRetained.*must be a size such as "512MB"/s);
  });

  it('unset budgets are not checked; set ones pass, fail with the worst second, or are not measured', () => {
    const tl = [point(0, 1000, 10), point(1000, 3_000_000, 20), point(2000, null, null)];
    expect(clusterBudgets(tl, {})).toEqual([]);
    expect(clusterBudgets(tl, { maxWalRetainedBytes: 2 * 1024 ** 2, maxXminAge: 100 })).toEqual([
      { name: 'maxWalRetainedBytes', limit: 2 * 1024 ** 2, actual: 3_000_000, pass: false, unit: 'bytes' },
      { name: 'maxXminAge', limit: 100, actual: 20, pass: true, unit: 'transactions' },
    ]);
    const none = clusterBudgets(undefined, { maxWalRetainedBytes: 1 });
    expect(none[0]).toMatchObject({ pass: false, actual: { notMeasured: expect.stringMatching(/not sampled/) } });
    const nulls = clusterBudgets([point(0, null, null)], { maxXminAge: 1 });
    expect(nulls[0]).toMatchObject({ pass: false, actual: { notMeasured: expect.stringMatching(/no sample .* had the slot's xmin age/) } });
  });

  it('a run over the WAL budget fails with the reason, and its report validates', () => {
    const s = scenario(', maxWalRetained: 2MB');
    const tl = [point(0, 1000, 10), point(1000, 3_145_728, 20)];
    const run = measureRun(observation({ clusterTimeline: tl }), s);
    expect(run.clusterTimeline).toEqual(tl);
    expect(run.pass).toBe(false);
    expect(verdict([run], [], 'warning').reasons).toContain('run 1: maxWalRetainedBytes 3.0 MB (3145728 bytes) > 2.0 MB (2097152 bytes)');
    expect(clusterSummaryText(tl)).toMatch(/^WAL retained max 3\.0 MB · lag max 1\.5 MB \/ 0\.1 s · slot xmin age max 20 · apply stopped 0 of 2 s · CPU max old 0\.20 \/ new — cores$/);
  });
});

describe('the reverse replication in the timeline', () => {
  it('takes over the slot, lag and apply figures from its first sample; the sides stay the forward sampler\'s', () => {
    const fwd = [point(0, 1000, 10), point(1000, null, null), point(2000, null, null)].map((p, i) => (i ? { ...p, applyState: 'missing' as const } : p));
    const rev = [{ ...point(1010, 777, 5), connections: { old: 99, new: 99 } }, point(2020, 888, 6)];
    const m = mergeReverse(fwd, rev);
    expect(m[0]).toEqual(fwd[0]);
    expect(m[1]).toMatchObject({ tMs: 1000, walRetainedBytes: 777, xminAge: 5, applyState: 'streaming', replication: 'reverse', connections: { old: 5, new: 0 } });
    expect(m[2]).toMatchObject({ tMs: 2000, walRetainedBytes: 888, replication: 'reverse' });
    expect(mergeReverse(fwd, [])).toEqual(fwd);
  });
});

describe('crashed runs', () => {
  it('keep the cluster timeline sampled before the crash', () => {
    const tl = [point(0, 1000, 10)];
    const run = crashedRun({ index: 1, startedAt: new Date(T0).toISOString(), durationMs: 5000, step: 'switchover', error: 'boom', phases: [], faults: [], clusterTimeline: tl });
    expect(run.clusterTimeline).toEqual(tl);
    expect(crashedRun({ index: 1, startedAt: new Date(T0).toISOString(), durationMs: 5000, step: 'lab', error: 'boom', phases: [], faults: [] })).not.toHaveProperty('clusterTimeline');
  });
});

describe('the rollback leg (migration.rollbackAfter)', () => {
  // 20 s of writes every 100 ms; the forward cutover at 4–5.6 s, the rollback at 12–13.6 s;
  // writes fail in [4.5, 5.0) (forward) and [12.5, 13.7) (rollback)
  const log: OpOutcome[] = [];
  for (let t = 0; t < 20_000; t += 100) {
    const failing = (t >= 4_500 && t < 5_000) || (t >= 12_500 && t < 13_700);
    log.push({ id: `w${t}`, kind: 'write', startMs: T0 + t, endMs: T0 + t + 5, status: failing ? 'fail' : 'ok' });
  }
  const rbPhases = [
    { name: 'fence', startMs: T0 + 12_000, endMs: T0 + 12_500, outcome: 'ok' as const },
    { name: 'switch', startMs: T0 + 12_500, endMs: T0 + 13_500, outcome: 'ok' as const },
    { name: 'resume', startMs: T0 + 13_500, endMs: T0 + 13_600, outcome: 'ok' as const },
  ];
  const ackOf = (lost: string[], splitBrain: string[]) => ({ attempted: 0, acknowledged: 0, lost, unexpected: [], recovered: [], duplicates: [], splitBrain, indeterminateMissing: [], failedButPresent: [] });
  const obs = (rb: NonNullable<RunObservation['rollback']>) =>
    observation({ ops: log, loadEndMs: T0 + 20_000, presentIds: log.filter((x) => x.status === 'ok').map((x) => x.id), rollback: rb });

  it('the scenario: a duration, refused without the reverse replication or when the load ends first', () => {
    const base = (mig: string, load = '{ duration: 60s, switchAt: 8s }') => parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\nload: ${load}\nmigration: ${mig}`, 't.yaml');
    expect(base('{ reverseReplication: true, rollbackAfter: 5s }').migration.rollbackAfterMs).toBe(5000);
    expect(base('{}').migration.rollbackAfterMs).toBeNull();
    expect(() => base('{ rollbackAfter: 5s }')).toThrow(/migration\.rollbackAfter.*reverse replication/s);
    expect(() => base('{ reverseReplication: true, rollbackAfter: 60s }')).toThrow(/would start after the load ends/);
  });

  it('splits the client log between the two cutovers', () => {
    expect(rollbackSplitMs(observation().phases, rbPhases)).toBe(T0 + (5_600 + 12_000) / 2);
  });

  it('each leg gets its own windows, losses and budgets', () => {
    const run = measureRun(obs({ phases: rbPhases, ack: ackOf([], []) }), scenario());
    expect(run.errorWindowMs).toBeLessThan(1_000);
    expect(run.rollback).toMatchObject({ lostWrites: 0, splitBrainWrites: 0, phases: [{ name: 'fence', startMs: 12_000, endMs: 12_500 }, expect.anything(), expect.anything()] });
    expect(run.rollback!.errorWindowMs).toBeGreaterThanOrEqual(1_100);
    expect(run.rollback!.downtimeMs).toBe(Math.max(run.rollback!.errorWindowMs as number, run.rollback!.stallWindowMs as number));
    expect(run.budgets.map((b) => b.name)).toEqual(expect.arrayContaining(['rollbackErrorWindowMs', 'rollbackStallMs', 'rollbackLostWrites', 'rollbackSplitBrainWrites']));
    expect(run.pass).toBe(true);
  });

  it('a write lost on the way back, a split-brain write on the new side, or a failed rollback fail the run', () => {
    const lost = measureRun(obs({ phases: rbPhases, ack: ackOf(['w13000'], ['w12100']) }), scenario());
    expect(lost.rollback).toMatchObject({ lostWrites: 1, splitBrainWrites: 1 });
    expect(lost.pass).toBe(false);
    expect(verdict([lost], [], 'warning').reasons).toEqual(expect.arrayContaining(['run 1: rollbackLostWrites 1 > 0', 'run 1: rollbackSplitBrainWrites 1 > 0']));
    const broken = measureRun(obs({ phases: rbPhases, ack: ackOf([], []), error: 'rolled-back: catch-up timed out' }), scenario());
    expect(broken.pass).toBe(false);
    expect(verdict([broken], [], 'warning').reasons).toContain('run 1: the rollback rolled-back: catch-up timed out');
  });

  it('a rollback the load did not outlast is not measured, and fails', () => {
    const short = measureRun(observation({ ops: log.filter((x) => x.startMs < T0 + 13_800), loadEndMs: T0 + 13_800, presentIds: [], rollback: { phases: rbPhases, ack: ackOf([], []) } }), scenario());
    expect(short.rollback!.errorWindowMs).toEqual({ notMeasured: expect.stringMatching(/before the rollback ended/) });
    expect(short.pass).toBe(false);
  });
});
