import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMEOUTS, describePlan, planSwitchover, type PlanOptions } from '../../migration/switchover/plan.ts';
import {
  AnotherPhaseRunningError,
  NotAbortingError,
  PHASES,
  PhaseAlreadyEndedError,
  PhaseNotRunningError,
  PhaseOrderError,
  StateFinishedError,
  allChanges,
  beginAbort,
  complete,
  endPhase,
  finishAbort,
  isPhaseDone,
  newState,
  readState,
  recordChange,
  reopen,
  stopAtNoReturn,
  resumeRefusal,
  skipPhase,
  startPhase,
  writeState,
  type SwitchoverState,
} from '../../migration/switchover/state.ts';
import { currentSide, rewriteDatabaseLine } from '../../migration/switch/pgbouncer.ts';
import { commandEnv } from '../../migration/switch/command.ts';
import { parseRecord, pickTarget } from '../../lab/dns.ts';

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const opts: PlanOptions = {
  switch: 'dns',
  fence: 'terminate',
  lag: { maxBytes: 1024, maxSeconds: 2, timeoutMs: 10_000 },
  sequenceBuffer: 1000,
  reverse: false,
  subscription: 'cutover_main',
  publication: 'cutover_main',
  reverseSubscription: 'cutover_main_reverse',
  reversePublication: 'cutover_main_reverse',
  timeouts: DEFAULT_TIMEOUTS,
};
const fresh = () => newState({ runId: 'r1', direction: 'forward', source: 's', target: 't', switch: 'dns', fence: 'terminate', reverse: false }, T(0));

/** Run phases ok up to (not including) `until`. */
function through(s: SwitchoverState, until: string): SwitchoverState {
  for (const p of PHASES) {
    if (p === until) break;
    s = endPhase(startPhase(s, p, T(1)), p, 'ok', T(2));
  }
  return s;
}

describe('planSwitchover', () => {
  it('lists every phase in order, reverse skipped unless asked, nothing done without a state', () => {
    const plan = planSwitchover(opts);
    expect(plan.steps.map((s) => s.phase)).toEqual([...PHASES]);
    expect(plan.steps.find((s) => s.phase === 'reverse')?.skip).toMatch(/not requested/);
    expect(plan.steps.every((s) => !s.done)).toBe(true);
    expect(plan.startAt).toBe('preflight');
    expect(planSwitchover({ ...opts, reverse: true }).steps.find((s) => s.phase === 'reverse')?.skip).toBeUndefined();
  });

  it('says what each fence strategy will do and names given roles', () => {
    expect(planSwitchover({ ...opts, appRoles: ['app', 'Weird "role"'] }).steps.find((x) => x.phase === 'fence')!.action).toMatch(/NOLOGIN for app roles app, Weird "role"/);
    expect(planSwitchover({ ...opts, fence: 'read-only' }).steps.find((x) => x.phase === 'fence')!.action).toMatch(/default_transaction_read_only/);
    expect(planSwitchover({ ...opts, fence: 'pause' }).steps.find((x) => x.phase === 'fence')!.action).toMatch(/held by the dns switch/);
    expect(planSwitchover(opts).steps.find((x) => x.phase === 'fence')!.action).toMatch(/discovered/);
  });

  it('marks done and interrupted phases from a state, and starts at the first not done', () => {
    let s = through(fresh(), 'sentinel');
    s = startPhase(s, 'sentinel', T(3));
    const plan = planSwitchover(opts, s);
    expect(plan.steps.filter((x) => x.done).map((x) => x.phase)).toEqual(['preflight', 'catchup', 'readiness', 'fence']);
    expect(plan.steps.find((x) => x.phase === 'sentinel')?.interrupted).toBe(true);
    expect(plan.startAt).toBe('sentinel');
    expect(describePlan(plan)).toMatch(/\[re-run\] sentinel/);
  });

  it('rollback direction talks about the old primary as the target', () => {
    const plan = planSwitchover({ ...opts, direction: 'rollback' });
    expect(plan.direction).toBe('rollback');
    expect(plan.steps.find((s) => s.phase === 'switch')?.action).toMatch(/to the old side/);
  });

  it('catchup timeout covers the lag timeout', () => {
    expect(planSwitchover({ ...opts, lag: { ...opts.lag, timeoutMs: 999_999 } }).steps[1].timeoutMs).toBe(999_999);
  });
});

describe('state transitions', () => {
  it('phases run in order; each illegal move has its own error', () => {
    const s = fresh();
    expect(() => startPhase(s, 'fence', T(1))).toThrow(PhaseOrderError);
    const a = startPhase(s, 'preflight', T(1));
    expect(() => startPhase(a, 'catchup', T(1))).toThrow(AnotherPhaseRunningError);
    expect(() => endPhase(s, 'preflight', 'ok', T(1))).toThrow(PhaseNotRunningError);
    expect(() => recordChange(s, 'preflight', { kind: 'sentinel-row', token: 'x' }, T(1))).toThrow(PhaseNotRunningError);
    const b = endPhase(a, 'preflight', 'ok', T(2));
    expect(() => endPhase(b, 'preflight', 'ok', T(2))).toThrow(PhaseAlreadyEndedError);
    expect(() => startPhase(b, 'preflight', T(2))).toThrow(PhaseAlreadyEndedError);
    expect(isPhaseDone(b, 'preflight')).toBe(true);
    const done = complete(through(fresh(), 'reverse'), T(9), 'ok');
    expect(() => startPhase(done, 'reverse', T(9))).toThrow(StateFinishedError);
    expect(() => finishAbort(done, T(9), [], 'x')).toThrow(NotAbortingError);
    expect(() => reopen(done, T(9))).toThrow(StateFinishedError);
  });

  it('records changes once, keeping the first previous value (a re-run after a crash sees NOLOGIN already)', () => {
    let s = startPhase(through(fresh(), 'fence'), 'fence', T(3));
    s = recordChange(s, 'fence', { kind: 'role-login', role: 'app', previous: true }, T(3));
    s = recordChange(s, 'fence', { kind: 'role-login', role: 'app', previous: false }, T(4));
    expect(allChanges(s)).toEqual([{ kind: 'role-login', role: 'app', previous: true }]);
    // killed here: the phase is restarted with its changes kept
    const again = startPhase(s, 'fence', T(5));
    expect(again.phases.find((p) => p.name === 'fence')).toMatchObject({ status: 'running', attempts: 2, changes: [{ role: 'app', previous: true }] });
  });

  it('a switch recorded twice keeps the original from-side and the latest to-side', () => {
    let s = startPhase(through(fresh(), 'switch'), 'switch', T(3));
    s = recordChange(s, 'switch', { kind: 'switch', strategy: 'dns', from: 'old', to: 'new' }, T(3));
    s = recordChange(s, 'switch', { kind: 'switch', strategy: 'dns', from: 'new', to: 'new' }, T(4));
    expect(allChanges(s)).toEqual([{ kind: 'switch', strategy: 'dns', from: 'old', to: 'new' }]);
  });

  it('resume point: first phase not ok/skipped; failed phases run again', () => {
    let s = through(fresh(), 'sequences');
    expect(planSwitchover(opts, s).startAt).toBe('sequences');
    s = endPhase(startPhase(s, 'sequences', T(3)), 'sequences', 'failed', T(4), { error: 'boom' });
    expect(planSwitchover(opts, s).startAt).toBe('sequences');
    expect(startPhase(s, 'sequences', T(5)).phases.find((p) => p.name === 'sequences')?.attempts).toBe(2);
    const all = skipPhase(through(fresh(), 'reverse'), 'reverse', T(6), 'not requested');
    expect(planSwitchover(opts, all).startAt).toBeUndefined();
    expect(all.phases.at(-1)).toMatchObject({ name: 'reverse', outcome: 'skipped' });
  });

  it('abort ends rolled-back when every undo step worked, failed otherwise; undone phases are no longer done; nothing reopens', () => {
    const s = beginAbort(startPhase(through(fresh(), 'fence'), 'fence', T(3)), T(4), 'boom');
    const change = { kind: 'role-login' as const, role: 'app', previous: true };
    const back = finishAbort(s, T(5), [{ change, outcome: 'ok' }], 'n');
    expect(back.kind).toBe('rolled-back');
    expect(back.phases.map((p) => p.outcome)).toEqual(['aborted', 'aborted', 'aborted', 'aborted']);
    expect(isPhaseDone(back, 'preflight')).toBe(false);
    const half = finishAbort(s, T(5), [{ change, outcome: 'failed', error: 'x' }], 'n');
    expect(half.kind).toBe('failed');
    expect(() => startPhase(s, 'fence', T(6))).toThrow(StateFinishedError);
    for (const x of [s, back, half]) expect(() => reopen(x, T(6))).toThrow(StateFinishedError);
    expect(resumeRefusal(back)).toMatch(/rolled back.*never reopens/);
    expect(resumeRefusal(half)).toMatch(/--abort/);
    expect(resumeRefusal(s)).toMatch(/--abort/);
    // a failed abort may be retried; a rolled-back one may not be aborted again
    expect(beginAbort(half, T(7), 'again').kind).toBe('aborting');
    expect(() => beginAbort(back, T(7), 'again')).toThrow(StateFinishedError);
    // stopped past the point of no return: only forward again
    const stopped = stopAtNoReturn(through(fresh(), 'resume'), T(8), 'x', 'resume it');
    expect(resumeRefusal(stopped)).toBeUndefined();
    expect(reopen(stopped, T(9)).kind).toBe('running');
  });

  it('writes atomically and reads back; rejects foreign files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-'));
    try {
      const f = join(dir, 'sub', 's.json');
      const s = through(fresh(), 'sentinel');
      writeState(f, s);
      expect(readState(f)).toEqual(s);
      expect(readState(join(dir, 'none.json'))).toBeUndefined();
      writeState(f, { hello: 1 } as any);
      expect(() => readState(f)).toThrow(/not a cutover switchover state/);
      expect(JSON.parse(readFileSync(f, 'utf8'))).toEqual({ hello: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('switch helpers (pure)', () => {
  const ini = `[databases]\napp = host=127.0.0.2 port=5432 dbname=app pool_size=5\nother = host=x\n\n[pgbouncer]\nlisten_port = 6432\napp = not-a-db\n`;
  it('pgbouncer: rewrites only the alias in [databases], keeping other keys', () => {
    const out = rewriteDatabaseLine(ini, 'app', { host: '127.0.0.3', port: 5433, database: 'app' });
    expect(out).toContain('app = host=127.0.0.3 port=5433 dbname=app pool_size=5');
    expect(out).toContain('other = host=x');
    expect(out).toContain('app = not-a-db');
    expect(currentSide(out, 'app', { host: '127.0.0.2', port: 5432, database: 'app' }, { host: '127.0.0.3', port: 5433, database: 'app' })).toBe('new');
    expect(() => rewriteDatabaseLine(ini, 'missing', { host: 'h', port: 1, database: 'd' })).toThrow(/not in the \[databases\]/);
  });

  it('command: phase context in env, no password', () => {
    const env = commandEnv('new', { runId: 'r', phase: 'switch', direction: 'forward', old: { host: '127.0.0.2', port: 5432, database: 'app' }, new: { host: '127.0.0.3', port: 5432, database: 'app' } });
    expect(env).toMatchObject({ CUTOVER_PHASE: 'switch', CUTOVER_SIDE: 'new', CUTOVER_SOURCE_HOST: '127.0.0.2', CUTOVER_TARGET_HOST: '127.0.0.3', CUTOVER_TO_HOST: '127.0.0.3' });
    expect(JSON.stringify(env)).not.toMatch(/password/i);
  });

  it('dns: weighted choice and record validation', () => {
    const t = [{ address: '10.0.0.1', weight: 100 }, { address: '10.0.0.2', weight: 0 }];
    expect(pickTarget(t, () => 0.999)).toBe('10.0.0.1');
    expect(pickTarget([{ address: '10.0.0.1', weight: 1 }, { address: '10.0.0.2', weight: 3 }], () => 0.3)).toBe('10.0.0.2');
    expect(pickTarget([{ address: '10.0.0.1', weight: 0 }])).toBeUndefined();
    expect(parseRecord({ targets: [{ address: '1.2.3.4', weight: 5 }] })).toEqual({ targets: [{ address: '1.2.3.4', weight: 5 }], ttl: 1 });
    expect(() => parseRecord({ targets: [{ address: 'db.lab' }] })).toThrow(/IPv4/);
    expect(() => parseRecord({ targets: [], extra: 1 })).toThrow(/unknown key/);
  });
});

describe('readiness phase', () => {
  it('runs after catch-up and before the fence (never inside the write-blocked window), and can be turned off', () => {
    const order = planSwitchover(opts).steps.map((s) => s.phase);
    expect(order.indexOf('readiness')).toBe(order.indexOf('catchup') + 1);
    expect(order.indexOf('readiness')).toBeLessThan(order.indexOf('fence'));
    expect(planSwitchover(opts).steps.find((s) => s.phase === 'readiness')!.action).toMatch(/ANALYZE/);
    expect(planSwitchover({ ...opts, readiness: false }).steps.find((s) => s.phase === 'readiness')!.skip).toMatch(/--no-readiness/);
  });
});
