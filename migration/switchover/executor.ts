/**
 * The switchover executor: runs phases (values: name, plan, run, undo) one at a time, every
 * transition through state.ts and saved before it is announced. On a timeout or a failure it
 * first STOPS the phase — aborts its signal (strategies kill their command's process group, SQL is
 * cancelled, connections close), waits for it to settle, forces it (terminates its sessions) if it
 * does not — and only then decides, from the state file and the switch's `current()` probe:
 *
 * - nothing could have moved traffic yet → undo every phase, newest first: `rolled-back`;
 * - the switch itself failed but traffic is on the target → the switch counts as done, go on;
 * - the switch failed, the phase settled and traffic is proven on the source → undo: `rolled-back`;
 * - otherwise traffic is or may be on the target (past the point of no return) → go back only by
 *   fencing the target first and draining the reverse replication (`retreat`), else stop in
 *   `stopped`, saying what to do. The old side is never unfenced while traffic may be on the new.
 *
 * Deadlines read an injected clock, so all of this is tested with a fake one.
 */
import { CutoverError, redactSecrets } from '../errors.ts';
import type { PhaseEvent } from './events.ts';
import type { PlanOptions } from './plan.ts';
import {
  beginAbort,
  complete,
  endPhase,
  finishAbort,
  isPhaseDone,
  pastNoReturn,
  phaseRecord,
  recordChange,
  setPhaseDetail,
  skipPhase,
  startPhase,
  stopAtNoReturn,
  trafficMoved,
  type Change,
  type PhaseName,
  type SwitchoverState,
} from './state.ts';

export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (resolving, not rejecting) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((res) => {
      const t = setTimeout(res, ms);
      signal?.addEventListener('abort', () => (clearTimeout(t), res()), { once: true });
    }),
};

export type UndoStep = NonNullable<SwitchoverState['undo']>[number];
export type Where = 'from' | 'to' | 'unknown';

/** What a running phase may do to the state: through these, never by writing it. */
export interface PhaseIO {
  record(c: Change): Promise<void>;
  detail(d: Record<string, unknown>): Promise<void>;
  state(): SwitchoverState;
}

export interface Phase<C> {
  readonly name: PhaseName;
  /** What the phase will do and how it is undone, in words (the dry-run plan is made of these). */
  plan(p: PlanOptions): { action: string; undo: string };
  /** A reason when the phase is not part of this run. */
  skip?(ctx: C): string | undefined;
  timeoutMs(ctx: C): number;
  /** Must honour `signal`: stop and settle (reject) soon after it aborts. */
  run(ctx: C, signal: AbortSignal, io: PhaseIO): Promise<Record<string, unknown> | void>;
  /** Undo what the phase recorded (called for every phase that started, newest phase first). */
  undo?(ctx: C, changes: Change[], state: SwitchoverState): Promise<UndoStep[]>;
}

export interface Host<C> {
  ctx: C;
  clock: Clock;
  /** How long a stopped phase gets to settle, before and after it is forced. */
  settleMs: number;
  sides: { from: string; to: string };
  get(): SwitchoverState;
  /** Save (atomically) and keep the new state. */
  set(s: SwitchoverState): void;
  emit(e: PhaseEvent): void;
  onPhase?(name: PhaseName, event: 'start' | 'end' | 'skip' | 'fail', info: { state: SwitchoverState; error?: string }): void | Promise<void>;
  /** Where traffic points now (the switch's probe); 'unknown' on any doubt. */
  where(): Promise<Where>;
  /** A phase did not settle after its signal: terminate its sessions, close its connections. */
  forceStop(): Promise<void>;
  /** Wait until what the abort signal set off (query cancels) has landed, so it cannot hit the undo's statements. */
  quiesce?(): Promise<void>;
  /** Going back past the point of no return, or why it cannot. */
  retreat(failed: PhaseName): { run: () => Promise<UndoStep[]> } | { why: string };
  log(line: string): void;
  /** What to tell the operator when every phase is done. */
  completedNext?: string;
}

export interface Ending {
  outcome: 'completed' | 'rolled-back' | 'failed' | 'stopped';
  error?: unknown;
  phase?: PhaseName;
}

class PhaseTimeout extends CutoverError {
  constructor(phase: PhaseName, ms: number) {
    super('TIMEOUT', `phase ${phase} did not finish within ${ms} ms`, { hint: `raise it with --phase-timeout ${phase}=<ms> if the servers are just slow`, exitCode: 1 });
  }
}

type Attempt = { ok: true; detail?: Record<string, unknown> } | { ok: false; error: unknown; settled: boolean };

export const message = (e: unknown) => redactSecrets(e instanceof Error ? e.message : String(e));
const at = (h: Host<unknown>) => new Date(h.clock.now()).toISOString();

/** Run every phase not done yet, in order, and end the run one way or another. Never throws for a phase failure. */
export async function execute<C>(phases: readonly Phase<C>[], h: Host<C>): Promise<Ending> {
  for (const phase of phases) {
    if (isPhaseDone(h.get(), phase.name)) {
      await h.onPhase?.(phase.name, 'skip', { state: h.get() });
      continue;
    }
    const skip = phase.skip?.(h.ctx);
    if (skip) {
      h.set(skipPhase(h.get(), phase.name, at(h), skip, phases.map((p) => p.name)));
      h.emit({ type: 'phase-end', phase: phase.name, at: at(h), outcome: 'skipped' });
      continue;
    }
    h.set(startPhase(h.get(), phase.name, at(h), phases.map((p) => p.name)));
    // announced only once the state file says so: a watcher acting on it sees the same truth on disk
    h.emit({ type: 'phase-start', phase: phase.name, at: at(h), attempt: phaseRecord(h.get(), phase.name)!.attempts });
    h.log(`phase ${phase.name}: start`);
    const r = await attempt(phase, h);
    if (r.ok) {
      end(h, phase.name, 'ok', { detail: r.detail });
      await h.onPhase?.(phase.name, 'end', { state: h.get() });
      continue;
    }
    const next = await recover(phases, phase, r, h);
    if (next !== 'forward') return next;
  }
  const s = h.get();
  h.set(complete(s, at(h), h.completedNext ?? `traffic is on the ${h.sides.to} primary; the ${h.sides.from} one is fenced`));
  h.emit({ type: 'run', kind: 'completed', at: at(h) });
  return { outcome: 'completed' };
}

function end(h: Host<unknown>, name: PhaseName, outcome: 'ok' | 'failed', extra: { detail?: Record<string, unknown>; error?: string }) {
  if (phaseRecord(h.get(), name)?.status === 'running') h.set(endPhase(h.get(), name, outcome, at(h), extra));
  h.emit({ type: 'phase-end', phase: name, at: at(h), outcome, ...(extra.error ? { error: extra.error } : {}) });
  h.log(`phase ${name}: ${outcome}${extra.error ? `: ${extra.error}` : ''}`);
}

function phaseIO(h: Host<unknown>, name: PhaseName): PhaseIO {
  return {
    record: async (c) => h.set(recordChange(h.get(), name, c, at(h))),
    detail: async (d) => h.set(setPhaseDetail(h.get(), name, d, at(h))),
    state: () => h.get(),
  };
}

/** Run one phase against its deadline; on a timeout, stop it and wait until it settles (or was forced). */
async function attempt<C>(phase: Phase<C>, h: Host<C>): Promise<Attempt> {
  const ac = new AbortController();
  const work: Promise<Attempt> = (async () => {
    await h.onPhase?.(phase.name, 'start', { state: h.get() });
    return phase.run(h.ctx, ac.signal, phaseIO(h, phase.name));
  })().then(
    (detail) => ({ ok: true as const, detail: detail ?? undefined }),
    (error) => ({ ok: false as const, error, settled: true }),
  );
  const ms = phase.timeoutMs(h.ctx);
  const timer = new AbortController();
  const first = await Promise.race([work, h.clock.sleep(ms, timer.signal).then(() => undefined)]);
  timer.abort();
  if (first?.ok) return first;
  const error = first ? first.error : new PhaseTimeout(phase.name, ms);
  // a failed phase may still have work in flight (a child, a listener): stop that as well
  ac.abort(error);
  if (first) {
    await h.quiesce?.();
    return first;
  }
  h.log(`phase ${phase.name}: no answer within ${ms} ms; stopping it`);
  let settled = await settles(work, h);
  if (!settled) {
    h.log(`phase ${phase.name}: did not stop within ${h.settleMs} ms of its abort; terminating its sessions`);
    await h.forceStop();
    settled = await settles(work, h);
  }
  await h.quiesce?.();
  return { ok: false, error, settled };
}

async function settles(work: Promise<unknown>, h: Host<unknown>): Promise<boolean> {
  const t = new AbortController();
  const r = await Promise.race([work.then(() => true), h.clock.sleep(h.settleMs, t.signal).then(() => false)]);
  t.abort();
  return r;
}

/** After a failed phase: undo, go on (the switch did land), go back over the reverse replication, or stop. */
async function recover<C>(phases: readonly Phase<C>[], phase: Phase<C>, r: Extract<Attempt, { ok: false }>, h: Host<C>): Promise<'forward' | Ending> {
  const why = message(r.error);
  const failed = { error: r.error, phase: phase.name };
  if (!pastNoReturn(h.get())) {
    end(h, phase.name, 'failed', { error: why });
    await h.onPhase?.(phase.name, 'fail', { state: h.get(), error: why });
    return { ...(await abortRun(phases, h, why)), ...failed };
  }
  if (!trafficMoved(h.get())) {
    // the switch itself failed: it may or may not have landed. Ask where traffic is.
    const side = await h.where();
    h.log(`phase ${phase.name}: failed (${why}); the switch says traffic is on ${side === 'unknown' ? 'an unknown side' : `the ${h.sides[side]} side`}${r.settled ? '' : ' and the phase did not stop'}`);
    if (side === 'to') {
      end(h, phase.name, 'ok', { detail: { resolved: `traffic found on the ${h.sides.to} side after: ${why}` } });
      return 'forward';
    }
    if (side === 'from' && r.settled) {
      end(h, phase.name, 'failed', { error: why });
      await h.onPhase?.(phase.name, 'fail', { state: h.get(), error: why });
      return { ...(await abortRun(phases, h, why)), ...failed };
    }
  }
  end(h, phase.name, 'failed', { error: why });
  await h.onPhase?.(phase.name, 'fail', { state: h.get(), error: why });
  return { ...(await goBack(phases, h, phase.name, why)), ...failed };
}

/** Past the point of no return: fence the target and drain the reverse replication first, then undo; or stop. */
export async function goBack<C>(phases: readonly Phase<C>[], h: Host<C>, failed: PhaseName, why: string): Promise<Ending> {
  const rt = h.retreat(failed);
  if ('why' in rt) {
    const next = `traffic is or may be on the ${h.sides.to} primary (${failed}: ${why}); the ${h.sides.from} one stays fenced so no write can go to both. It cannot go back: ${rt.why}. Make sure traffic points at the ${h.sides.to} primary and run the same command with --resume to finish forward`;
    h.set(stopAtNoReturn(h.get(), at(h), why, next));
    h.emit({ type: 'run', kind: 'stopped', at: at(h), next, error: why });
    return { outcome: 'stopped' };
  }
  if (h.get().kind !== 'aborting') h.set(beginAbort(h.get(), at(h), why));
  h.emit({ type: 'run', kind: 'aborting', at: at(h), error: why });
  const steps = await rt.run();
  for (const s of steps) emitUndo(h, s);
  if (steps.some((s) => s.outcome === 'failed')) return finish(h, steps, why);
  return abortRun(phases, h, why, steps);
}

/** Undo every phase that started, newest first, and end `rolled-back` (or `failed` if a step failed). */
export async function abortRun<C>(phases: readonly Phase<C>[], h: Host<C>, why: string, before: UndoStep[] = []): Promise<Ending> {
  if (h.get().kind !== 'aborting') {
    h.set(beginAbort(h.get(), at(h), why));
    h.emit({ type: 'run', kind: 'aborting', at: at(h), error: why });
  }
  const steps = [...before];
  for (const phase of [...phases].reverse()) {
    const rec = phaseRecord(h.get(), phase.name);
    if (!rec || !phase.undo) continue;
    try {
      const done = await phase.undo(h.ctx, rec.changes, h.get());
      for (const s of done) emitUndo(h, s);
      steps.push(...done);
    } catch (e) {
      const s: UndoStep = { change: rec.changes[0] ?? { kind: 'sessions-terminated', pids: [] }, outcome: 'failed', error: `undo of ${phase.name}: ${message(e)}` };
      emitUndo(h, s);
      steps.push(s);
    }
  }
  return finish(h, steps, why);
}

function finish(h: Host<unknown>, steps: UndoStep[], why: string): Ending {
  const bad = steps.filter((u) => u.outcome === 'failed');
  const next = bad.length
    ? `ABORT INCOMPLETE: ${bad.map((f) => `${f.change.kind} ${JSON.stringify(f.change)}: ${f.error}`).join('; ')}. Fix the cause and run again with --abort`
    : steps.some((u) => u.change.kind === 'target-fenced')
      ? `went back (${why}): the ${h.sides.to} primary was fenced first and the reverse replication drained, so every write it acknowledged is on the ${h.sides.from} primary, which is serving again. The ${h.sides.to} one stays fenced. Start a new run with a new --state file`
      : `aborted (${why}); the ${h.sides.from} primary is serving again and nothing was left behind. Fix the cause and start a new run with a new --state file`;
  h.set(finishAbort(h.get(), at(h), steps, next));
  const kind = h.get().kind as 'rolled-back' | 'failed';
  h.emit({ type: 'run', kind, at: at(h), next, error: why });
  return { outcome: kind };
}

function emitUndo(h: Host<unknown>, s: UndoStep) {
  h.emit({ type: 'undo', change: s.change.kind, at: at(h), outcome: s.outcome, ...(s.error ? { error: s.error } : {}) });
}

/** `--abort` of a run that is not running in any process: undo, go back over the reverse replication, or refuse. */
export async function requestAbort<C>(phases: readonly Phase<C>[], h: Host<C>): Promise<Ending> {
  const why = 'abort requested (--abort)';
  const st = h.get();
  if (!pastNoReturn(st)) return abortRun(phases, h, why);
  // the previous process is gone (we hold its advisory lock), so the probe is not racing it
  const side = trafficMoved(st) ? 'to' : await h.where();
  if (side === 'from' && !trafficMoved(st)) return abortRun(phases, h, why);
  const rt = h.retreat('switch');
  if ('why' in rt)
    throw new CutoverError('STATE', `refusing --abort: traffic is or may be on the ${h.sides.to} primary, and going back would lose the writes it acknowledged (${rt.why})`, {
      hint: `finish forward with --resume, or set up reverse replication first; nothing was changed`,
      exitCode: 2,
    });
  return goBack(phases, h, 'switch', why);
}
