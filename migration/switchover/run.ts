/**
 * Apply a switchover plan: preflight → catchup → fence → sentinel → sequences → switch → resume →
 * postverify → reverse, with the phases of phases.ts run by the executor (executor.ts): every
 * phase start and end is in the state file before it is announced, every side effect is recorded
 * (with its previous value) before it is made, and a phase that times out is stopped and settled
 * before anything is undone. Before the switch may have moved traffic a failure rolls back; after
 * it, the target is fenced and the reverse replication drained before the source is unfenced, or
 * the run stops (`stopped`) saying what to do. The function returns a result; it throws only for
 * refusals before anything ran (bad state file, contradicting options, the lock).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CutoverError, redactSecrets } from '../errors.ts';
import { assertDistinctServers, connect, redactUrl, signalBackends } from '../pg.ts';
import { lag as replicationLag, objectNames } from '../replication.ts';
import { syncSequences, type SequenceMove } from '../sequences.ts';
import { endpointOf, type Side, type SwitchStrategy } from '../switch/types.ts';
import type { PhaseEvent } from './events.ts';
import { execute, requestAbort, systemClock, type Clock, type Ending, type Host } from './executor.ts';
import { SWITCHOVER_PHASES, resolveAppRoles, retreat, type RunCtx } from './phases.ts';
import { DEFAULT_TIMEOUTS, planSwitchover, type FenceStrategyName, type Plan, type PhaseTimeouts } from './plan.ts';
import { PHASES, newState, noteError, phaseRecord, readState, reopen, resumeRefusal, writeState, type Outcome, type PhaseName, type SwitchoverState } from './state.ts';

export type PhaseHookEvent = 'start' | 'end' | 'skip' | 'fail';

export interface SwitchoverOptions {
  /** Where data flows from in this run (the old primary, or the new one for a rollback). */
  source: string;
  target: string;
  switch: SwitchStrategy;
  fence?: FenceStrategyName;
  /** read-only fence: per role (default) or for the whole database. */
  fenceScope?: 'roles' | 'database';
  /** terminate fence: in-flight transactions get up to this many ms to finish (migration/grace.ts). */
  fenceGrace?: number;
  appRoles?: string[];
  /**
   * Roles whose sessions on the source the fence does not reach (superusers, REPLICATION roles, the
   * connecting role, unlisted roles) and that may stay: without them preflight refuses (split brain).
   * With `appRoles: []`, a `'*'` here accepts an empty role list (nothing is fenced).
   */
  allowUnfenced?: string[];
  lag?: Partial<{ maxBytes: number; maxSeconds: number; timeoutMs: number }>;
  sequenceBuffer?: number;
  stateFile: string;
  dryRun?: boolean;
  resume?: boolean;
  /** Undo what the state file records and end the run as rolled back (going back over the reverse replication once traffic may have moved). */
  abort?: boolean;
  reverse?: boolean;
  /** Prepare the target before the fence: ANALYZE and warm-up (default true). */
  readiness?: boolean;
  /** Warm-up SQL replayed read-only on the target when pg_prewarm is not installed. */
  warmupSql?: string;
  direction?: 'forward' | 'rollback';
  timeouts?: Partial<PhaseTimeouts>;
  /** Replication name (objects `cutover_<name>`, as `cutover replicate` names them). Default main. */
  name?: string;
  /** Name of the reverse replication (default `<name>_reverse`). */
  reverseName?: string;
  hooks?: { onPhase?: (name: PhaseName, event: PhaseHookEvent, info: { state: SwitchoverState; error?: string }) => void | Promise<void> };
  /** Every phase-start / phase-end / undo / run event (migration/switchover/events.ts), after the state file records it. */
  onEvent?: (e: PhaseEvent) => void;
  log?: (line: string) => void;
  /** Deadlines and timestamps read this clock (tests inject a fake one). */
  clock?: Clock;
  /** How long a stopped phase gets to settle before it is forced, and again after (default 5000 ms). */
  settleMs?: number;
}

export type SwitchoverOutcome = 'completed' | 'rolled-back' | 'stopped' | 'failed' | 'planned' | 'running';

export interface PhaseSummary {
  name: PhaseName;
  outcome: Outcome | 'pending' | 'running';
  startedAt?: string;
  endedAt?: string;
  ms?: number;
  attempts: number;
  changes: number;
  detail?: Record<string, unknown>;
  error?: string;
}

export interface SwitchoverResult {
  ok: boolean;
  outcome: SwitchoverOutcome;
  runId: string;
  direction: 'forward' | 'rollback';
  dryRun: boolean;
  stateFile: string;
  source: string;
  target: string;
  plan: Plan;
  phases: PhaseSummary[];
  startedAt: string;
  endedAt: string;
  durationMs: number;
  appRoles?: string[];
  /** Preflight warnings (fence coverage: accepted unfenced sessions, roles that also use other databases; migration findings). */
  warnings?: string[];
  fence: { strategy: FenceStrategyName; terminated?: number; remaining?: number };
  lagAtFence?: { bytes: number | null; seconds: number | null };
  sentinelLatencyMs?: number;
  sequences?: SequenceMove[];
  switch: { strategy: string; to: Side; from?: Side | 'unknown'; detail?: unknown };
  /** From the fence to the end of the switch: how long writes were refused or held. */
  writeUnavailableMs?: number;
  undo?: SwitchoverState['undo'];
  error?: { code: string; message: string; hint?: string; phase?: PhaseName };
  /** What the operator should do now. */
  next: string;
}

const LOCK_KEY = [0x43555430, 0x5357] as const; // 'CUT0','SW': one switchover per server at a time

type Resolved = ReturnType<typeof resolve>;

function resolve(o: SwitchoverOptions) {
  const name = o.name ?? 'main';
  const direction = o.direction ?? 'forward';
  const toSide: Side = direction === 'forward' ? 'new' : 'old';
  return {
    direction,
    toSide,
    fromSide: (toSide === 'new' ? 'old' : 'new') as Side,
    fence: o.fence ?? 'terminate',
    lag: { maxBytes: o.lag?.maxBytes ?? 256 * 1024, maxSeconds: o.lag?.maxSeconds ?? 5, timeoutMs: o.lag?.timeoutMs ?? 300_000 },
    sequenceBuffer: o.sequenceBuffer ?? 1000,
    reverse: !!o.reverse,
    readiness: o.readiness !== false,
    warmupSql: o.warmupSql,
    timeouts: { ...DEFAULT_TIMEOUTS, ...o.timeouts },
    name,
    reverseName: o.reverseName ?? `${name}_reverse`,
    clock: o.clock ?? systemClock,
  };
}

export function planFor(o: SwitchoverOptions, state?: SwitchoverState): Plan {
  const r = resolve(o);
  const [fwd, rev] = [objectNames(r.name), objectNames(r.reverseName)];
  const p = { direction: r.direction, switch: o.switch.name, fence: r.fence, appRoles: o.appRoles, lag: r.lag, sequenceBuffer: r.sequenceBuffer, reverse: r.reverse, readiness: r.readiness, warmup: !!r.warmupSql, timeouts: r.timeouts };
  return planSwitchover({ ...p, subscription: fwd.subscription, publication: fwd.publication, reverseSubscription: rev.subscription, reversePublication: rev.publication }, state);
}

export async function switchover(o: SwitchoverOptions): Promise<SwitchoverResult> {
  const r = resolve(o);
  const t0 = r.clock.now();
  let state = readState(o.stateFile);
  refuseContradictions(o, r, state);
  const early = !o.dryRun && state && endedAlready(o, r, state, t0);
  if (early) return early;
  // Before a state file is written or anything changed: the same server twice would fence its own
  // target (ALTER ROLE is cluster-wide) and hang creating a slot on itself (USAGE, exit 2).
  // (a dry run reports a server it cannot reach in its result, as before; it refuses the same server twice)
  await assertDistinctServers(o.source, o.target).catch((e) => {
    if (!o.dryRun || !(e instanceof CutoverError) || e.code === 'USAGE' || e.code === 'PRECONDITION') throw e;
  });
  if (o.dryRun) return dryRun(o, r, state, t0);
  const locks = await takeLocks(o);
  const sessions = new Sessions({ source: o.source, target: o.target });
  const log = o.log ?? (() => {});
  const ctx = runCtx(o, r, sessions, log, () => state?.runId ?? '-');
  const iso = () => new Date(r.clock.now()).toISOString();
  try {
    if (!state) {
      state = newState({ runId: randomUUID(), direction: r.direction, source: redactUrl(o.source), target: redactUrl(o.target), switch: o.switch.name, fence: r.fence, reverse: r.reverse, name: r.name }, iso());
      writeState(o.stateFile, state);
    } else if (state.kind === 'stopped' && o.resume) {
      state = reopen(state, iso());
      writeState(o.stateFile, state);
    }
    const host: Host<RunCtx> = {
      ctx,
      clock: r.clock,
      settleMs: o.settleMs ?? 5000,
      sides: { from: r.fromSide, to: r.toSide },
      get: () => state!,
      set: (s) => {
        state = s;
        writeState(o.stateFile, s);
      },
      emit: (e) => o.onEvent?.(e),
      onPhase: o.hooks?.onPhase,
      where: async () => {
        const side = await o.switch.current(ctx.switchCtx('probe')).catch(() => 'unknown' as const);
        return side === r.toSide ? 'to' : side === r.fromSide ? 'from' : 'unknown';
      },
      forceStop: () => sessions.terminate(),
      quiesce: () => sessions.quiesce(),
      retreat: (failed) =>
        !r.reverse
          ? { why: 'this run has no reverse replication (--reverse), so the writes the target acknowledged could not be carried back' }
          : failed === 'reverse'
            ? { why: 'the reverse replication did not prove that it carries writes' }
            : { run: () => retreat(ctx, state!) },
      log,
      completedNext: completedNext(r),
    };
    let ending: Ending;
    try {
      ending = o.abort ? await requestAbort(SWITCHOVER_PHASES, host) : await execute(SWITCHOVER_PHASES, host);
    } catch (e) {
      if (e instanceof CutoverError && e.code === 'STATE' && o.abort) throw e; // a refused --abort changed nothing
      // only reached for errors outside a phase (state file unwritable, illegal transition, …)
      const info = errInfo(e);
      try {
        host.set(noteError(state, iso(), info.message, `the run stopped outside a phase: ${info.message}. Run again with --resume once fixed, or --abort to undo`));
      } catch {
        /* the state file itself may be the problem */
      }
      ending = { outcome: 'failed', error: e };
    }
    return result(o, r, state, t0, { outcome: ending.outcome, error: ending.error === undefined ? undefined : errInfo(ending.error, ending.phase), next: state.next ?? '' });
  } finally {
    await sessions.close();
    for (const c of locks) await c.end().catch(() => {});
  }
}

function completedNext(r: Resolved): string {
  if (r.direction === 'rollback') return `traffic is back on the old primary; the new one is fenced`;
  const [fwd, rev] = [objectNames(r.name), objectNames(r.reverseName)];
  return r.reverse
    ? `traffic is on the new primary; reverse replication ${rev.subscription} keeps the old one current: \`cutover rollback\` moves back with nothing lost. When satisfied, stop it with \`cutover replicate stop --name ${r.reverseName}\` (source = new, target = old)`
    : `traffic is on the new primary; the old one is fenced. Remove the forward replication ${fwd.subscription} when satisfied: \`cutover replicate stop --name ${r.name}\``;
}

/** A run that already ended is reported (or refused), not run again. */
function endedAlready(o: SwitchoverOptions, r: Resolved, state: SwitchoverState, t0: number): SwitchoverResult | undefined {
  if (state.kind === 'completed') {
    if (o.abort) throw new CutoverError('STATE', `refusing --abort: run ${state.runId} completed; traffic is on the ${r.toSide} primary`, { hint: r.direction === 'forward' ? 'move back with `cutover rollback` (needs the reverse replication of --reverse)' : 'run a new switchover', exitCode: 2 });
    return result(o, r, state, t0, { outcome: 'completed', next: state.next ?? 'nothing to do: this switchover completed' });
  }
  // a second --abort of a rolled-back run is a no-op: the state file is kept as it is
  if (state.kind === 'rolled-back' && o.abort) return result(o, r, state, t0, { outcome: 'rolled-back', next: state.next ?? 'this run was rolled back; start a new one with a new --state file' });
  const refusal = o.resume ? resumeRefusal(state) : undefined;
  if (refusal) throw new CutoverError('STATE', `refusing --resume: ${refusal}`, { hint: 'nothing was changed', exitCode: 2 });
  return undefined;
}

/** Resume and abort must run the same switchover the state file recorded. */
function refuseContradictions(o: SwitchoverOptions, r: Resolved, state: SwitchoverState | undefined): void {
  if (!state || o.dryRun) return;
  if (!o.resume && !o.abort)
    throw new CutoverError('STATE', `the state file ${o.stateFile} already exists (run ${state.runId}, ${state.kind})`, { hint: 'continue it with --resume, undo it with --abort, or pass a new --state file', exitCode: 2 });
  const diffs = [
    state.direction !== r.direction && `it belongs to a ${state.direction} run, not a ${r.direction} one`,
    state.switch !== o.switch.name && `it used --switch ${state.switch}, not ${o.switch.name}`,
    state.fence !== r.fence && `it used --fence ${state.fence}, not ${r.fence}`,
    state.name !== undefined && state.name !== r.name && `it used the replication name ${state.name}, not ${r.name}`,
    state.reverse !== r.reverse && `it was ${state.reverse ? '' : 'not '}started with --reverse`,
  ].filter(Boolean);
  if (diffs.length) throw new CutoverError('STATE', `the state file ${o.stateFile} does not match these options: ${diffs.join('; ')}`, { hint: 'pass the same options as the run that wrote it; nothing was changed', exitCode: 2 });
}

function runCtx(o: SwitchoverOptions, r: Resolved, sessions: Sessions, log: (l: string) => void, runId: () => string): RunCtx {
  const src = endpointOf(o.source);
  const tgt = endpointOf(o.target);
  const [oldEp, newEp] = r.direction === 'forward' ? [src, tgt] : [tgt, src];
  return {
    ...r,
    source: o.source,
    target: o.target,
    sw: o.switch,
    fenceScope: o.fenceScope,
    fenceGrace: o.fenceGrace,
    appRoles: o.appRoles,
    allowUnfenced: o.allowUnfenced,
    log,
    db: (side, signal) => sessions.get(side, signal),
    switchCtx: (phase, signal) => ({ runId: runId(), phase, direction: r.direction, old: oldEp, new: newEp, signal, log }),
  };
}

/**
 * The run's admin sessions. A query running when the phase's signal aborts is cancelled
 * (pg_cancel_backend from a second session); `terminate` ends them server-side and waits until
 * their backends are gone, so no statement of theirs can still commit after it returns.
 */
class Sessions {
  private open = new Map<'source' | 'target', pg.Client>();
  private pending = new Set<Promise<void>>();
  private armed = new WeakMap<AbortSignal, Set<'source' | 'target'>>();
  private broken = new WeakSet<pg.Client>();
  constructor(private readonly url: Record<'source' | 'target', string>) {}

  async get(side: 'source' | 'target', signal?: AbortSignal): Promise<pg.Client> {
    signal?.throwIfAborted();
    let c = this.open.get(side);
    // a session whose server went away (killed and restarted, a reset link) is never queryable
    // again: the next phase opens a new one — and, if the server is still gone, fails naming the side
    if (c && this.broken.has(c)) {
      this.open.delete(side);
      await c.end().catch(() => {});
      c = undefined;
    }
    if (!c) {
      const fresh = await connect(this.url[side], { role: side, applicationName: 'cutover-switchover' });
      fresh.on('error', () => this.broken.add(fresh));
      fresh.on('end', () => this.broken.add(fresh));
      // an admin session whose writes are never blocked by a database-level read-only fence
      await fresh.query(`set default_transaction_read_only = off`);
      this.open.set(side, fresh);
      c = fresh;
    }
    // one cancel per side and signal, however often a phase asks for the session; it cancels the
    // session open at abort time (a broken one may have been replaced since the listener was armed)
    const armed = signal && (this.armed.get(signal) ?? new Set<'source' | 'target'>());
    if (signal && armed && !armed.has(side)) {
      armed.add(side);
      this.armed.set(signal, armed);
      signal.addEventListener(
        'abort',
        () => {
          const client = this.open.get(side);
          if (!client || this.broken.has(client)) return;
          const p = this.signalBackend(side, client, 'pg_cancel_backend').finally(() => this.pending.delete(p));
          this.pending.add(p);
        },
        { once: true },
      );
    }
    return c;
  }

  /** Every cancel sent so far has been delivered (a cancel that arrives while a session is idle is ignored by the server). */
  async quiesce(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private async signalBackend(side: 'source' | 'target', c: pg.Client, fn: 'pg_cancel_backend' | 'pg_terminate_backend'): Promise<void> {
    await signalBackends(this.url[side], [c], fn, { role: side, applicationName: 'cutover-switchover-stop' });
  }

  async terminate(): Promise<void> {
    for (const [side, c] of [...this.open]) {
      this.open.delete(side);
      await this.signalBackend(side, c, 'pg_terminate_backend');
      await c.end().catch(() => {});
    }
  }

  async close(): Promise<void> {
    for (const c of this.open.values()) await c.end().catch(() => {});
    this.open.clear();
  }
}

async function takeLocks(o: SwitchoverOptions): Promise<pg.Client[]> {
  const locks: pg.Client[] = [];
  try {
    for (const [url, role] of [[o.source, 'source'], [o.target, 'target']] as const) {
      const c = await connect(url, { role, applicationName: 'cutover-switchover-lock' });
      locks.push(c);
      const got = await c.query<{ ok: boolean }>(`select pg_try_advisory_lock($1, $2) as ok`, [LOCK_KEY[0], LOCK_KEY[1]]);
      if (got.rows[0].ok) continue;
      const who = await c.query<{ pid: number; since: string }>(
        `select pid, backend_start::text as since from pg_locks l join pg_stat_activity a using (pid) where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2`,
        [LOCK_KEY[0], LOCK_KEY[1]],
      );
      throw new CutoverError('LOCKED', `another switchover is running against the ${role} (${who.rows.map((w) => `pid ${w.pid} since ${w.since}`).join(', ') || 'lock held'})`, {
        hint: 'wait for it to end; if its process is gone the lock goes with its session',
        exitCode: 1,
      });
    }
    return locks;
  } catch (e) {
    for (const c of locks) await c.end().catch(() => {});
    throw e;
  }
}

/** The plan, plus read-only facts; nothing is written anywhere. */
async function dryRun(o: SwitchoverOptions, r: Resolved, state: SwitchoverState | undefined, t0: number): Promise<SwitchoverResult> {
  const facts: { appRoles?: string[]; lag?: any; sequences?: SequenceMove[]; from?: Side | 'unknown'; warnings?: string[] } = {};
  let error: SwitchoverResult['error'];
  try {
    const src = await connect(o.source, { role: 'source' });
    try {
      const tgt = await connect(o.target, { role: 'target' });
      try {
        // what the preflight phase will decide, shown now: a fence that leaves a writer is refused here too
        const roles = await resolveAppRoles(src, o);
        facts.appRoles = roles.appRoles;
        facts.warnings = roles.warnings;
        facts.lag = await replicationLag({ source: o.source, name: r.name }).then((l) => ({ bytes: l.bytes, seconds: l.seconds })).catch((e) => ({ error: String(e.message) }));
        facts.sequences = await syncSequences(src, tgt, { buffer: r.sequenceBuffer, dryRun: true });
        const ep = [endpointOf(o.source), endpointOf(o.target)];
        const [oldEp, newEp] = r.direction === 'forward' ? ep : [ep[1], ep[0]];
        facts.from = await o.switch.current({ runId: state?.runId ?? 'dry-run', phase: 'dry-run', direction: r.direction, old: oldEp, new: newEp }).catch(() => 'unknown' as const);
      } finally {
        await tgt.end().catch(() => {});
      }
    } finally {
      await src.end().catch(() => {});
    }
  } catch (e) {
    error = errInfo(e);
  }
  return result(o, r, state, t0, {
    outcome: 'planned',
    appRoles: facts.appRoles,
    warnings: facts.warnings,
    sequences: facts.sequences,
    lagAtFence: facts.lag,
    switch: { strategy: o.switch.name, to: r.toSide, from: facts.from },
    error,
    next: error ? `fix: ${error.message}` : 'run the same command without --dry-run',
  });
}

function errInfo(e: unknown, phase?: PhaseName): NonNullable<SwitchoverResult['error']> {
  // stored in the state file and printed: a server's error text may quote a conninfo or a password
  if (e instanceof CutoverError) return { code: e.code, message: redactSecrets(e.message), hint: e.hint === undefined ? undefined : redactSecrets(e.hint), phase };
  return { code: 'INTERNAL', message: redactSecrets(e instanceof Error ? e.message : String(e)), phase };
}

function summarize(state: SwitchoverState | undefined): PhaseSummary[] {
  return PHASES.map((name) => {
    const p = state && phaseRecord(state, name);
    if (!p) return { name, outcome: 'pending', attempts: 0, changes: 0 };
    return {
      name,
      outcome: p.status === 'running' ? 'running' : p.outcome!,
      startedAt: p.startedAt,
      endedAt: p.endedAt,
      ms: p.endedAt ? Date.parse(p.endedAt) - Date.parse(p.startedAt) : undefined,
      attempts: p.attempts,
      changes: p.changes.length,
      detail: p.detail,
      error: p.error,
    };
  });
}

function result(o: SwitchoverOptions, r: Resolved, state: SwitchoverState | undefined, t0: number, extra: Partial<SwitchoverResult> & { outcome: SwitchoverOutcome; next: string }): SwitchoverResult {
  const rec = (n: PhaseName) => (state ? phaseRecord(state, n) : undefined);
  const [pf, fenceRec, sw, seq, sen] = [rec('preflight'), rec('fence'), rec('switch'), rec('sequences'), rec('sentinel')];
  return {
    ok: extra.outcome === 'completed' || extra.outcome === 'planned',
    runId: state?.runId ?? '-',
    direction: r.direction,
    dryRun: !!o.dryRun,
    stateFile: o.stateFile,
    source: redactUrl(o.source),
    target: redactUrl(o.target),
    plan: planFor(o, state),
    phases: summarize(state),
    startedAt: new Date(t0).toISOString(),
    endedAt: new Date(r.clock.now()).toISOString(),
    durationMs: r.clock.now() - t0,
    appRoles: (pf?.detail?.appRoles as string[] | undefined) ?? o.appRoles,
    warnings: pf?.detail?.warnings as string[] | undefined,
    fence: { strategy: r.fence, terminated: fenceRec?.detail?.terminated as number | undefined, remaining: fenceRec?.detail?.remaining as number | undefined },
    lagAtFence: fenceRec?.detail?.lagAtFence as SwitchoverResult['lagAtFence'],
    sentinelLatencyMs: sen?.detail?.latencyMs as number | undefined,
    sequences: seq?.detail?.moves as SequenceMove[] | undefined,
    switch: { strategy: o.switch.name, to: r.toSide, from: sw?.detail?.from as Side | undefined, detail: sw?.detail?.switched },
    writeUnavailableMs: fenceRec && sw?.endedAt && sw.outcome === 'ok' ? Date.parse(sw.endedAt) - Date.parse(fenceRec.startedAt) : undefined,
    undo: state?.undo,
    ...extra,
  };
}
