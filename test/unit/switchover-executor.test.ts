/**
 * The switchover executor with fake phases and a fake clock: what happens on a timeout (the phase
 * is stopped and settles before anything is undone), a failing undo, a switch whose outcome is
 * unknown, a failure past the point of no return, refusals, and a resume after a kill at each
 * write of the state file.
 */
import { describe, expect, it } from 'vitest';
import { abortRun, execute, requestAbort, type Clock, type Host, type Phase, type UndoStep, type Where } from '../../migration/switchover/executor.ts';
import { PassThrough } from 'node:stream';
import { PhaseEvent, formatEvent, onEvents } from '../../migration/switchover/events.ts';
import { PHASES, newState, phaseRecord, resumeRefusal, type PhaseName, type SwitchoverState } from '../../migration/switchover/state.ts';

class FakeClock implements Clock {
  t = Date.UTC(2026, 0, 1);
  timers: Array<{ at: number; res: () => void }> = [];
  now() {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal) {
    return new Promise<void>((res) => {
      const timer = { at: this.t + ms, res };
      this.timers.push(timer);
      signal?.addEventListener('abort', () => ((this.timers = this.timers.filter((x) => x !== timer)), res()), { once: true });
    });
  }
}

/** Let every promise settle, then jump to the next timer; until `p` settles. */
async function drive<T>(clock: FakeClock, p: Promise<T>): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 100_000 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (done || !clock.timers.length) continue;
    clock.timers.sort((a, b) => a.at - b.at);
    const next = clock.timers.shift()!;
    clock.t = Math.max(clock.t, next.at);
    next.res();
  }
  return p;
}

type Ctx = { clock: FakeClock; log: string[] };
type Behaviour = 'ok' | 'fail' | { hang: 'settles'; settleMs: number; late?: string } | { hang: 'ignores-abort' };

/** Nine fake phases with the real names; `fence` records a fence change, `switch` a switch change before "switching". */
function phases(ctx: Ctx, how: Partial<Record<PhaseName, Behaviour>> = {}, undo: Partial<Record<PhaseName, () => Promise<void>>> = {}): Phase<Ctx>[] {
  return PHASES.map((name) => ({
    name,
    plan: () => ({ action: `do ${name}`, undo: `undo ${name}` }),
    timeoutMs: () => 1000,
    async run(c, signal, io) {
      c.log.push(`run ${name}`);
      if (name === 'fence') await io.record({ kind: 'role-login', role: 'app', previous: true });
      if (name === 'switch') await io.record({ kind: 'switch', strategy: 'fake', from: 'old', to: 'new' });
      const b = how[name] ?? 'ok';
      if (b === 'fail') throw new Error(`${name} broke`);
      if (b !== 'ok' && b.hang === 'settles') {
        await new Promise<void>((res) => signal.addEventListener('abort', () => res(), { once: true }));
        await c.clock.sleep(b.settleMs);
        if (b.late) c.log.push(b.late);
        throw signal.reason;
      }
      if (b !== 'ok' && b.hang === 'ignores-abort') {
        await new Promise<void>((res) => (forced = res));
        c.log.push(`${name} forced`);
        throw new Error('terminated');
      }
      return { ran: name };
    },
    async undo(c) {
      c.log.push(`undo ${name}`);
      await undo[name]?.();
      return name === 'fence' || name === 'switch' ? [{ change: { kind: 'sentinel-row', token: name }, outcome: 'ok' } satisfies UndoStep] : [];
    },
  }));
}
let forced: (() => void) | undefined;

function host(ctx: Ctx, o: { state?: SwitchoverState; where?: Where; retreat?: boolean } = {}) {
  const saved: SwitchoverState[] = [];
  const events: PhaseEvent[] = [];
  let state = o.state ?? newState({ runId: 'r1', direction: 'forward', source: 's', target: 't', switch: 'fake', fence: 'terminate', reverse: !!o.retreat }, new Date(ctx.clock.t).toISOString());
  const h: Host<Ctx> = {
    ctx,
    clock: ctx.clock,
    settleMs: 5000,
    sides: { from: 'old', to: 'new' },
    get: () => state,
    set: (s) => {
      state = s;
      saved.push(structuredClone(s));
    },
    emit: (e) => {
      PhaseEvent.parse(e);
      // an event is announced only after the state file says so
      if (e.type === 'phase-start') expect(phaseRecord(state, e.phase)?.status).toBe('running');
      events.push(e);
    },
    where: async () => {
      ctx.log.push('probe');
      return o.where ?? 'unknown';
    },
    forceStop: async () => {
      ctx.log.push('force stop');
      forced?.();
    },
    retreat: () =>
      o.retreat
        ? {
            run: async () => {
              ctx.log.push('fence target', 'switch back', 'drain reverse');
              return [{ change: { kind: 'target-fenced', role: 'app', previous: true }, outcome: 'ok' } as UndoStep];
            },
          }
        : { why: 'no reverse replication' },
    log: () => {},
  };
  return { h, saved, events, state: () => state };
}

const newCtx = (): Ctx => ({ clock: new FakeClock(), log: [] });

describe('switchover executor', () => {
  it('runs every phase once, in order, and announces each start after the state records it', async () => {
    const ctx = newCtx();
    const { h, events, state } = host(ctx);
    const end = await drive(ctx.clock, execute(phases(ctx), h));
    expect(end.outcome).toBe('completed');
    expect(ctx.log).toEqual(PHASES.map((p) => `run ${p}`));
    expect(state().kind).toBe('completed');
    expect(events.filter((e) => e.type === 'phase-start').map((e) => (e as any).phase)).toEqual([...PHASES]);
    expect(events.at(-1)).toMatchObject({ type: 'run', kind: 'completed' });
  });

  it('a timed-out phase is stopped and settles BEFORE anything is undone (a late effect cannot land after the unfence)', async () => {
    const ctx = newCtx();
    const { h, state } = host(ctx);
    const t0 = ctx.clock.t;
    const end = await drive(ctx.clock, execute(phases(ctx, { sentinel: { hang: 'settles', settleMs: 3000, late: 'late sentinel effect' } }), h));
    expect(end).toMatchObject({ outcome: 'rolled-back', phase: 'sentinel' });
    expect((end.error as Error).message).toMatch(/sentinel did not finish within 1000 ms/);
    const i = ctx.log.indexOf('late sentinel effect');
    expect(i).toBeGreaterThan(-1);
    expect(ctx.log.indexOf('undo fence')).toBeGreaterThan(i);
    expect(ctx.log).not.toContain('force stop');
    expect(ctx.clock.t - t0).toBeGreaterThanOrEqual(4000); // 1000 ms deadline + 3000 ms to settle, on the fake clock
    expect(state().kind).toBe('rolled-back');
    // undone phases are no longer done
    expect(state().phases.every((p) => p.outcome === 'aborted' || p.outcome === 'failed')).toBe(true);
  });

  it('a phase that ignores its abort is forced (sessions terminated) and only then undone', async () => {
    const ctx = newCtx();
    const { h } = host(ctx);
    const end = await drive(ctx.clock, execute(phases(ctx, { sequences: { hang: 'ignores-abort' } }), h));
    expect(end.outcome).toBe('rolled-back');
    expect(ctx.log.slice(ctx.log.indexOf('force stop'))).toEqual(['force stop', 'sequences forced', 'undo sequences', 'undo sentinel', 'undo fence', 'undo readiness', 'undo catchup', 'undo preflight']);
  });

  it('a failing undo step ends the run failed (ABORT INCOMPLETE); --resume is refused, --abort may retry', async () => {
    const ctx = newCtx();
    let broken = true;
    const list = phases(ctx, { sentinel: 'fail' }, { fence: async () => void (broken && (() => { throw new Error('lock timeout'); })()) });
    const { h, state } = host(ctx);
    const end = await drive(ctx.clock, execute(list, h));
    expect(end.outcome).toBe('failed');
    expect(state().next).toMatch(/ABORT INCOMPLETE.*lock timeout.*--abort/);
    expect(resumeRefusal(state())).toMatch(/--abort/);
    broken = false;
    const again = await drive(ctx.clock, requestAbort(list, h));
    expect(again.outcome).toBe('rolled-back');
    expect(state().undo?.filter((u) => u.outcome === 'failed').length).toBe(1); // the history keeps the failed attempt
  });

  it('switch timed out, the probe finds traffic on the new side: the switch counts as done and the run goes forward', async () => {
    const ctx = newCtx();
    const { h, state } = host(ctx, { where: 'to' });
    const end = await drive(ctx.clock, execute(phases(ctx, { switch: { hang: 'settles', settleMs: 100 } }), h));
    expect(end.outcome).toBe('completed');
    expect(phaseRecord(state(), 'switch')).toMatchObject({ outcome: 'ok', detail: { resolved: expect.stringMatching(/traffic found on the new side/) } });
    expect(ctx.log).not.toContain('undo fence');
  });

  it('switch timed out, stopped, and proven on the old side: rolled back', async () => {
    const ctx = newCtx();
    const { h } = host(ctx, { where: 'from' });
    const end = await drive(ctx.clock, execute(phases(ctx, { switch: { hang: 'settles', settleMs: 100 } }), h));
    expect(end.outcome).toBe('rolled-back');
    expect(ctx.log.indexOf('undo switch')).toBeLessThan(ctx.log.indexOf('undo fence'));
  });

  it('switch that did not stop: the probe saying "old" is not trusted; without reverse replication the run stops with the old side fenced', async () => {
    const ctx = newCtx();
    const { h, state } = host(ctx, { where: 'from' });
    forced = undefined;
    const list = phases(ctx, { switch: { hang: 'ignores-abort' } });
    // forceStop cannot stop a command that ignores everything: make it a no-op
    h.forceStop = async () => void ctx.log.push('force stop (no effect)');
    const end = await drive(ctx.clock, execute(list, h));
    expect(end.outcome).toBe('stopped');
    expect(ctx.log).not.toContain('undo fence');
    expect(state().kind).toBe('stopped');
    expect(state().next).toMatch(/stays fenced.*--resume/);
    // a later --abort (the earlier process is gone) asks again: unknown → refused, nothing changes
    const before = structuredClone(state());
    h.where = async () => 'unknown';
    await expect(drive(ctx.clock, requestAbort(list, h))).rejects.toMatchObject({ code: 'STATE', message: expect.stringMatching(/refusing --abort/) });
    expect(state()).toEqual(before);
    // … proven back on the old side → rolled back
    h.where = async () => 'from';
    expect((await drive(ctx.clock, requestAbort(list, h))).outcome).toBe('rolled-back');
  });

  it('unknown outcome with reverse replication: the target is fenced and the reverse drained before the source is unfenced', async () => {
    const ctx = newCtx();
    const { h } = host(ctx, { where: 'unknown', retreat: true });
    const end = await drive(ctx.clock, execute(phases(ctx, { switch: { hang: 'settles', settleMs: 100 } }), h));
    expect(end.outcome).toBe('rolled-back');
    const order = ['fence target', 'switch back', 'drain reverse', 'undo switch', 'undo fence'].map((x) => ctx.log.indexOf(x));
    expect(order.every((x, i) => x >= 0 && (i === 0 || x > order[i - 1]))).toBe(true);
  });

  it('a phase failing after the switch goes back through the retreat, never by unfencing first', async () => {
    const ctx = newCtx();
    const { h, state } = host(ctx, { where: 'to', retreat: true });
    const end = await drive(ctx.clock, execute(phases(ctx, { resume: 'fail' }), h));
    expect(end).toMatchObject({ outcome: 'rolled-back', phase: 'resume' });
    expect(ctx.log.indexOf('fence target')).toBeLessThan(ctx.log.indexOf('undo fence'));
    expect(ctx.log).not.toContain('probe'); // traffic did move: nothing to ask
    expect(state().next).toMatch(/fenced first and the reverse replication drained/);
  });

  it('a phase failing after the switch without reverse replication stops; --abort is refused', async () => {
    const ctx = newCtx();
    const list = phases(ctx, { postverify: 'fail' });
    const { h, state } = host(ctx);
    expect((await drive(ctx.clock, execute(list, h))).outcome).toBe('stopped');
    await expect(drive(ctx.clock, requestAbort(list, h))).rejects.toMatchObject({ code: 'STATE' });
    expect(state().kind).toBe('stopped');
    expect(ctx.log).not.toContain('undo fence');
  });

  it('abortRun is a no-op for phases that never started', async () => {
    const ctx = newCtx();
    const { h } = host(ctx);
    expect((await drive(ctx.clock, abortRun(phases(ctx), h, 'why'))).outcome).toBe('rolled-back');
    expect(ctx.log).toEqual([]);
  });

  it('resume after a kill at each write of the state file: completes, and no phase that ended ok runs again', async () => {
    const ctx = newCtx();
    const first = host(ctx);
    await drive(ctx.clock, execute(phases(ctx), first.h));
    expect(first.saved.length).toBeGreaterThan(PHASES.length * 2);
    for (const [k, snap] of first.saved.slice(0, -1).entries()) {
      const c2 = newCtx();
      const second = host(c2, { state: structuredClone(snap) });
      const end = await drive(c2.clock, execute(phases(c2), second.h));
      expect(end.outcome, `killed after write ${k}`).toBe('completed');
      const doneBefore = snap.phases.filter((p) => p.status === 'done').map((p) => `run ${p.name}`);
      for (const d of doneBefore) expect(c2.log, `killed after write ${k}`).not.toContain(d);
      expect(second.state().phases.map((p) => p.outcome)).toEqual(PHASES.map(() => 'ok'));
      const killedIn = snap.phases.find((p) => p.status === 'running');
      if (killedIn) expect(phaseRecord(second.state(), killedIn.name)!.attempts).toBe(2);
    }
  });

  it('events: JSON lines split anywhere across chunks arrive whole and in order; a broken line is reported', async () => {
    const stream = new PassThrough();
    const got: PhaseEvent[] = [];
    const bad: string[] = [];
    onEvents(stream, (e) => got.push(e), (e) => bad.push(e.message));
    const text = formatEvent({ type: 'phase-start', phase: 'fence', at: 'now', attempt: 1 }) + '{"type":"phase-start"}\n' + formatEvent({ type: 'run', kind: 'completed', at: 'later' });
    for (let i = 0; i < text.length; i += 7) stream.write(text.slice(i, i + 7));
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([{ type: 'phase-start', phase: 'fence', at: 'now', attempt: 1 }, { type: 'run', kind: 'completed', at: 'later' }]);
    expect(bad).toEqual([expect.stringMatching(/breaks the contract/)]);
  });
});
