/**
 * Apply a switchover plan: preflight → catchup → fence → sentinel → sequences → switch → resume →
 * postverify → reverse. Every phase start and end is written to the state file; every side effect
 * is recorded (with its previous value) before it is made. A failure before traffic moved (or while
 * checking the new side right after) takes the abort path: switch back, restore the fence, leave
 * the old primary serving with no orphan slot. A failure after traffic moved leaves the run
 * resumable. The function returns a result object; it does not throw once the run has begun.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CutoverError, redactSecrets } from '../errors.ts';
import { closeRoles, discoverAppRoles, fence as applyFence, openRoles, terminateSessions, unfence, isFenceChange, type FenceResult } from '../fence.ts';
import { preflight as migrationPreflight } from '../preflight.ts';
import { displayName } from '../replication.ts';
import { connect, qualified, redactUrl, serverMajor } from '../pg.ts';
import { lag as replicationLag, objectNames, replicationStatus, startReplication, stopReplication } from '../replication.ts';
import { ensureSentinel, sentinelRoundTrip } from '../sentinel.ts';
import { syncSequences, verifySequences, type SequenceMove } from '../sequences.ts';
import { endpointOf, type Side, type SwitchContext, type SwitchStrategy } from '../switch/types.ts';
import { DEFAULT_TIMEOUTS, planSwitchover, type FenceStrategyName, type Plan, type PhaseTimeouts } from './plan.ts';
import {
  PHASES,
  allChanges,
  beginAbort,
  complete,
  endPhase,
  finishAbort,
  isPhaseDone,
  markFailed,
  newState,
  phaseRecord,
  readState,
  recordChange,
  reopen,
  skipPhase,
  startPhase,
  writeState,
  type Change,
  type Outcome,
  type PhaseName,
  type SwitchoverState,
} from './state.ts';

export type PhaseEvent = 'start' | 'end' | 'skip' | 'fail';

export interface SwitchoverOptions {
  /** Where data flows from in this run (the old primary, or the new one for a rollback). */
  source: string;
  target: string;
  switch: SwitchStrategy;
  fence?: FenceStrategyName;
  /** read-only fence: per role (default) or for the whole database. */
  fenceScope?: 'roles' | 'database';
  appRoles?: string[];
  lag?: Partial<{ maxBytes: number; maxSeconds: number; timeoutMs: number }>;
  sequenceBuffer?: number;
  stateFile: string;
  dryRun?: boolean;
  resume?: boolean;
  /** Undo what the state file records (unfence, switch back) and end the run as rolled back. */
  abort?: boolean;
  reverse?: boolean;
  direction?: 'forward' | 'rollback';
  timeouts?: Partial<PhaseTimeouts>;
  /** Replication name (objects `cutover_<name>`, as `cutover replicate` names them). Default main. */
  name?: string;
  /** Name of the reverse replication (default `<name>_reverse`). */
  reverseName?: string;
  hooks?: { onPhase?: (name: PhaseName, event: PhaseEvent, info: { state: SwitchoverState; error?: string }) => void | Promise<void> };
  log?: (line: string) => void;
  now?: () => Date;
}

export type SwitchoverOutcome = 'completed' | 'rolled-back' | 'resumable' | 'failed' | 'planned';

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

function resolve(o: SwitchoverOptions) {
  const name = o.name ?? 'main';
  const reverseName = o.reverseName ?? `${name}_reverse`;
  const fwd = objectNames(name);
  const rev = objectNames(reverseName);
  return {
    direction: o.direction ?? 'forward',
    fence: o.fence ?? 'terminate',
    lag: { maxBytes: o.lag?.maxBytes ?? 256 * 1024, maxSeconds: o.lag?.maxSeconds ?? 5, timeoutMs: o.lag?.timeoutMs ?? 300_000 },
    sequenceBuffer: o.sequenceBuffer ?? 1000,
    reverse: !!o.reverse,
    timeouts: { ...DEFAULT_TIMEOUTS, ...o.timeouts },
    name,
    reverseName,
    fwd,
    rev,
  };
}

export function planFor(o: SwitchoverOptions, state?: SwitchoverState): Plan {
  const r = resolve(o);
  return planSwitchover(
    {
      direction: r.direction,
      switch: o.switch.name,
      fence: r.fence,
      appRoles: o.appRoles,
      lag: r.lag,
      sequenceBuffer: r.sequenceBuffer,
      reverse: r.reverse,
      subscription: r.fwd.subscription,
      publication: r.fwd.publication,
      reverseSubscription: r.rev.subscription,
      reversePublication: r.rev.publication,
      timeouts: r.timeouts,
    },
    state,
  );
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

function errInfo(e: unknown, phase?: PhaseName): NonNullable<SwitchoverResult['error']> {
  if (e instanceof CutoverError) return { code: e.code, message: e.message, hint: e.hint, phase };
  return { code: 'INTERNAL', message: redactSecrets(e instanceof Error ? e.message : String(e)), phase };
}

class PhaseTimeout extends CutoverError {
  constructor(phase: PhaseName, ms: number) {
    super('TIMEOUT', `phase ${phase} did not finish within ${ms} ms`, { hint: `raise the ${phase} timeout if the servers are just slow; the old primary is left serving`, exitCode: 1 });
  }
}

async function withTimeout<T>(phase: PhaseName, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new PhaseTimeout(phase, ms);
      ac.abort(e);
      reject(e);
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An admin session whose writes are never blocked by a database-level read-only fence. */
async function admin(url: string, role: string): Promise<pg.Client> {
  const c = await connect(url, { role, applicationName: 'cutover-switchover' });
  await c.query(`set default_transaction_read_only = off`);
  return c;
}

/** Tables the forward replication carries (so postverify can count them after the swap). */
/** Wait until the subscription has the sentinel table in state `r` (ready). */
async function waitSentinelReady(target: pg.Client, subscription: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await target.query<{ s: string }>(
      `select sr.srsubstate as s from pg_subscription_rel sr join pg_subscription s on s.oid = sr.srsubid where s.subname = $1 and sr.srrelid = to_regclass('public.cutover_sentinel')`,
      [subscription],
    );
    if (r.rows[0]?.s === 'r') return;
    if (Date.now() > deadline || signal?.aborted)
      throw new CutoverError('TIMEOUT', `the sentinel table did not finish its initial sync within ${timeoutMs} ms (state ${r.rows[0]?.s ?? 'not subscribed'})`, { hint: 'see `cutover replicate status`; nothing was fenced' });
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** The tables the forward publication carried, as preflight recorded them (undefined: let replication choose). */
function forwardTables(state: SwitchoverState | undefined): Array<{ schema: string; name: string }> | undefined {
  const t = state && (phaseRecord(state, 'preflight')?.detail?.tables as Array<{ schema: string; name: string }> | undefined);
  return t?.length ? t.map((x) => ({ schema: x.schema, name: x.name })) : undefined;
}

async function publishedTables(source: pg.Client, publication: string): Promise<Array<{ schema: string; name: string }>> {
  const r = await source.query<{ schemaname: string; tablename: string }>(`select schemaname, tablename from pg_publication_tables where pubname = $1 order by 1, 2`, [publication]);
  return r.rows.map((x) => ({ schema: x.schemaname, name: x.tablename }));
}

export async function switchover(o: SwitchoverOptions): Promise<SwitchoverResult> {
  const r = resolve(o);
  const now = () => (o.now ? o.now() : new Date()).toISOString();
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const startedAt = now();
  const toSide: Side = r.direction === 'forward' ? 'new' : 'old';
  const fromSide: Side = toSide === 'new' ? 'old' : 'new';
  const srcEp = endpointOf(o.source);
  const tgtEp = endpointOf(o.target);
  const ctxBase = { direction: r.direction, old: r.direction === 'forward' ? srcEp : tgtEp, new: r.direction === 'forward' ? tgtEp : srcEp, log };

  // ---- the state file: new run, resume, or refuse ----
  let state = readState(o.stateFile);
  if (state && !o.resume && !o.dryRun && !o.abort)
    throw new CutoverError('STATE', `the state file ${o.stateFile} already exists (run ${state.runId}, ${state.kind})`, {
      hint: 'continue it with --resume, undo it with --abort, or pass a new --state file',
      exitCode: 2,
    });
  if (state && state.direction !== r.direction)
    throw new CutoverError('STATE', `the state file ${o.stateFile} belongs to a ${state.direction} run, not a ${r.direction} one`, { hint: 'pass the state file of this direction', exitCode: 2 });

  const result = (extra: Partial<SwitchoverResult> & { outcome: SwitchoverOutcome; next: string }): SwitchoverResult => {
    const pf = state && phaseRecord(state, 'preflight');
    const fenceRec = state && phaseRecord(state, 'fence');
    const sw = state && phaseRecord(state, 'switch');
    const seq = state && phaseRecord(state, 'sequences');
    const sen = state && phaseRecord(state, 'sentinel');
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
      startedAt,
      endedAt: now(),
      durationMs: Date.now() - t0,
      appRoles: (pf?.detail?.appRoles as string[] | undefined) ?? o.appRoles,
      fence: { strategy: r.fence, terminated: fenceRec?.detail?.terminated as number | undefined, remaining: fenceRec?.detail?.remaining as number | undefined },
      lagAtFence: fenceRec?.detail?.lagAtFence as SwitchoverResult['lagAtFence'],
      sentinelLatencyMs: sen?.detail?.latencyMs as number | undefined,
      sequences: seq?.detail?.moves as SequenceMove[] | undefined,
      switch: { strategy: o.switch.name, to: toSide, from: sw?.detail?.from as Side | undefined, detail: sw?.detail?.switched },
      writeUnavailableMs: fenceRec && sw?.endedAt ? Date.parse(sw.endedAt) - Date.parse(fenceRec.startedAt) : undefined,
      undo: state?.undo,
      ...extra,
    };
  };

  // ---- dry run: the plan, plus read-only facts; nothing is written anywhere ----
  if (o.dryRun) {
    const facts: Record<string, unknown> = {};
    let error: SwitchoverResult['error'];
    try {
      const src = await connect(o.source, { role: 'source' });
      const tgt = await connect(o.target, { role: 'target' }).catch(async (e) => {
        await src.end();
        throw e;
      });
      try {
        facts.appRoles = o.appRoles ?? (await discoverAppRoles(src));
        facts.lag = await replicationLag({ source: o.source, name: r.name }).then((l) => ({ bytes: l.bytes, seconds: l.seconds })).catch((e) => ({ error: String(e.message) }));
        facts.sequences = await syncSequences(src, tgt, { buffer: r.sequenceBuffer, dryRun: true });
        facts.switchCurrent = o.switch.current ? await o.switch.current({ ...ctxBase, runId: state?.runId ?? 'dry-run', phase: 'dry-run' }).catch(() => 'unknown') : undefined;
      } finally {
        await src.end().catch(() => {});
        await tgt.end().catch(() => {});
      }
    } catch (e) {
      error = errInfo(e);
    }
    return result({
      outcome: 'planned',
      appRoles: facts.appRoles as string[] | undefined,
      sequences: facts.sequences as SequenceMove[] | undefined,
      lagAtFence: facts.lag as any,
      switch: { strategy: o.switch.name, to: toSide, from: facts.switchCurrent as any },
      error,
      next: error ? `fix: ${error.message}` : 'run the same command without --dry-run',
    });
  }

  if (state?.kind === 'completed') return result({ outcome: 'completed', next: state.next ?? 'nothing to do: this switchover completed' });
  if (state?.kind === 'rolled-back' && !o.abort) return result({ outcome: 'rolled-back', next: state.next ?? 'this run was rolled back; start a new one with a new --state file' });

  const save = () => writeState(o.stateFile, state!);

  // ---- one switchover at a time: advisory lock held by dedicated sessions on both servers ----
  const locks: pg.Client[] = [];
  try {
    for (const [url, role] of [[o.source, 'source'], [o.target, 'target']] as const) {
      const c = await connect(url, { role, applicationName: 'cutover-switchover-lock' });
      locks.push(c);
      const got = await c.query<{ ok: boolean }>(`select pg_try_advisory_lock($1, $2) as ok`, [LOCK_KEY[0], LOCK_KEY[1]]);
      if (!got.rows[0].ok) {
        const who = await c.query<{ pid: number; app: string; since: string }>(
          `select pid, application_name as app, backend_start::text as since from pg_locks l join pg_stat_activity a using (pid) where l.locktype = 'advisory' and l.classid = $1 and l.objid = $2`,
          [LOCK_KEY[0], LOCK_KEY[1]],
        );
        throw new CutoverError('LOCKED', `another switchover is running against the ${role} (${who.rows.map((w) => `pid ${w.pid} since ${w.since}`).join(', ') || 'lock held'})`, {
          hint: 'wait for it to end; if its process is gone the lock goes with its session',
          exitCode: 1,
        });
      }
    }
  } catch (e) {
    for (const c of locks) await c.end().catch(() => {});
    throw e;
  }

  let src: pg.Client | undefined;
  let tgt: pg.Client | undefined;
  const reconnect = async () => {
    for (const c of [src, tgt]) await c?.end().catch(() => {});
    src = await admin(o.source, 'source');
    tgt = await admin(o.target, 'target');
  };

  try {
    if (!state) {
      state = newState(
        { runId: randomUUID(), direction: r.direction, source: redactUrl(o.source), target: redactUrl(o.target), switch: o.switch.name, fence: r.fence, reverse: r.reverse },
        now(),
      );
      save();
    } else if (state.kind !== 'running') {
      state = reopen(state, now());
      save();
    }

    if (o.abort) {
      state = beginAbort(state, now(), 'abort requested (--abort)');
      save();
      const undo = await undoAll();
      state = finishAbort(state, now(), undo, nextAfterAbort(undo));
      save();
      return result({ outcome: state.kind === 'rolled-back' ? 'rolled-back' : 'failed', next: state.next! });
    }

    const ctx = (phase: string): SwitchContext => ({ ...ctxBase, runId: state!.runId, phase });

    // ---- the phases ----
    const phases: Record<PhaseName, (signal: AbortSignal, record: (c: Change) => Promise<void>) => Promise<Record<string, unknown> | void>> = {
      preflight: async (signal, record) => {
        await reconnect();
        const [sm, tm] = [await serverMajor(src!), await serverMajor(tgt!)];
        const st = await replicationStatus({ source: o.source, target: o.target, name: r.name });
        const problems: string[] = [];
        if (!st.subscriptionExists) problems.push(`subscription ${st.subscription} does not exist on the target`);
        else if (!st.enabled) problems.push(st.problems[0] ?? `subscription ${st.subscription} is disabled`);
        if (!st.slotHealth.exists) problems.push(`replication slot ${st.slot} is missing on the source`);
        if (st.subscriptionExists && !st.allReady) problems.push(`not every table is synchronized yet: ${st.tables.filter((t) => t.state !== 'r').slice(0, 5).map((t) => `${t.table} (${t.stateName})`).join(', ')}`);
        if (r.fence === 'pause' && !o.switch.canPause) problems.push(`the pause fence needs a switch that can hold queries (pgbouncer), not ${o.switch.name}`);
        let findings: Array<{ id: string; severity: string; message: string }> = [];
        if (r.direction === 'forward') {
          // The migration preflight's errors still matter at cutover (e.g. a published table without a
          // key); pg_dump is not needed now, and a table finding only counts for a table we publish.
          const published = st.subscriptionExists ? new Set((await publishedTables(src!, st.publication)).map((t) => displayName(t))) : undefined;
          findings = (await migrationPreflight({ source: o.source, target: o.target })).findings.filter(
            (f) => f.id !== 'tool.pg_dump' && !(published && f.id.startsWith('table.') && f.object && !published.has(f.object)),
          );
          for (const f of findings.filter((x) => x.severity === 'error')) problems.push(f.message);
        }
        if (problems.length)
          throw new CutoverError('PRECONDITION', `switchover preflight failed: ${problems.join('; ')}`, { hint: 'see `cutover replicate status`; nothing was changed', exitCode: 1 });
        // discovered roles are kept in the state: after the fence they are NOLOGIN and would not be found again
        const prev = phaseRecord(state!, 'preflight')?.detail?.appRoles as string[] | undefined;
        const appRoles = o.appRoles ?? prev ?? (await discoverAppRoles(src!));
        // The sentinel table joins the publication now, while writes still flow: adding it after the
        // fence would put a table sync (a new worker, a copy) inside the window clients cannot write.
        await ensureSentinel(src!, tgt!, { publication: r.fwd.publication, subscription: r.fwd.subscription, record });
        await waitSentinelReady(tgt!, r.fwd.subscription, Math.max(5_000, r.timeouts.preflight - 2_000), signal);
        const tables = await publishedTables(src!, st.publication);
        await o.switch.prepare?.(ctx('preflight'));
        const current = o.switch.current ? await o.switch.current(ctx('preflight')) : undefined;
        return { sourceMajor: sm, targetMajor: tm, appRoles, tables, switchCurrent: current, lagBytes: st.lagBytes, warnings: findings.filter((f) => f.severity === 'warning').map((f) => f.message) };
      },
      catchup: async (signal) => {
        const deadline = Date.now() + r.lag.timeoutMs;
        let last: { bytes: number | null; seconds: number | null } = { bytes: null, seconds: null };
        for (;;) {
          const l = await replicationLag({ source: o.source, name: r.name });
          last = { bytes: l.bytes, seconds: l.seconds };
          if (l.bytes !== null && l.bytes <= r.lag.maxBytes && (l.seconds ?? 0) <= r.lag.maxSeconds) return { lag: last, waitedMs: Date.now() - (deadline - r.lag.timeoutMs) };
          if (Date.now() > deadline || signal.aborted)
            throw new CutoverError('TIMEOUT', `replication lag stayed above ${r.lag.maxBytes} bytes / ${r.lag.maxSeconds} s for ${r.lag.timeoutMs} ms (last: ${last.bytes} bytes, ${last.seconds} s)`, {
              hint: 'apply cannot keep up or the slot is inactive: see `cutover replicate status`; nothing was changed',
              exitCode: 1,
            });
          await sleep(250);
        }
      },
      fence: async (signal, record) => {
        const l = await replicationLag({ source: o.source, name: r.name }).catch(() => undefined);
        const lagAtFence = phaseRecord(state!, 'fence')?.detail?.lagAtFence ?? (l ? { bytes: l.bytes, seconds: l.seconds } : null);
        // the lag is recorded at once (a resumed fence keeps the first measurement)
        state = { ...state!, phases: state!.phases.map((p) => (p.name === 'fence' ? { ...p, detail: { ...p.detail, lagAtFence } } : p)) };
        save();
        const roles = phaseRecord(state!, 'preflight')!.detail!.appRoles as string[];
        if (r.fence === 'pause') {
          await o.switch.pause!(ctx('fence'));
          return { lagAtFence, roles, paused: true };
        }
        const f: FenceResult = await applyFence(src!, r.fence, { roles, scope: o.fenceScope, timeoutMs: r.timeouts.fence - 1000, record, signal });
        if (f.remaining > 0)
          throw new CutoverError('PRECONDITION', `${f.remaining} app session(s) are still connected to the old primary after the fence`, { hint: 'a role the app uses is not in --app-roles, or a session ignores termination', exitCode: 1 });
        return { lagAtFence, roles, terminated: f.terminated, remaining: f.remaining, fenceMs: f.ms };
      },
      sentinel: async (signal, record) => {
        await ensureSentinel(src!, tgt!, { publication: r.fwd.publication, subscription: r.fwd.subscription, record });
        if (r.fence !== 'pause') {
          // a write after the marker would be lost: look once more that no app session survived the fence
          const roles = phaseRecord(state!, 'preflight')!.detail!.appRoles as string[];
          const fencedAt = phaseRecord(state!, 'fence')?.startedAt;
          const again = await terminateSessions(src!, roles, { timeoutMs: 5000, cleanLooks: 1, record, signal, startedBefore: r.fence === 'read-only' && fencedAt ? new Date(fencedAt) : undefined });
          if (again.remaining) throw new CutoverError('PRECONDITION', `${again.remaining} app session(s) reappeared on the source after the fence`, { exitCode: 1 });
          if (again.terminated) log(`sentinel: terminated ${again.terminated} app session(s) that survived the fence`);
        }
        const token = `${state!.runId}:${r.direction}`;
        await record({ kind: 'sentinel-row', token });
        const rt = await sentinelRoundTrip(src!, tgt!, token, { timeoutMs: r.timeouts.sentinel - 500, signal });
        return { token, latencyMs: rt.latencyMs };
      },
      sequences: async (signal, record) => {
        const moves = await syncSequences(src!, tgt!, { buffer: r.sequenceBuffer, record, signal });
        const missing = moves.filter((m) => m.note === 'missing on the target');
        if (missing.length)
          throw new CutoverError('PRECONDITION', `${missing.length} sequence(s) are missing on the target: ${missing.slice(0, 5).map((m) => m.sequence).join(', ')}`, { hint: 'copy the schema again (sequences are pre-data)', exitCode: 1 });
        const v = await verifySequences(src!, tgt!);
        if (!v.ok) throw new CutoverError('PRECONDITION', `sequences behind on the target after the move: ${v.checks.filter((c) => !c.ok).map((c) => c.sequence).join(', ')}`, { exitCode: 1 });
        return { moves, moved: moves.filter((m) => m.changed).length };
      },
      switch: async (signal, record) => {
        const detail: Record<string, unknown> = {};
        if (r.reverse) {
          // Swap the replication direction before any traffic reaches the target: the forward
          // subscription goes first (else reverse-applied rows would loop back), then reverse
          // replication starts from now on with copy_data = false.
          const forward = await replicationStatus({ source: o.source, target: o.target, name: r.name });
          if (forward.subscriptionExists || forward.publicationExists || forward.slotHealth.exists) {
            await record({ kind: 'forward-subscription-dropped', subscription: r.fwd.subscription, publication: r.fwd.publication, slot: r.fwd.slot });
            const stop = await stopReplication({ source: o.source, target: o.target, name: r.name, log });
            if (!stop.complete) throw new CutoverError('STATE', `could not remove the forward replication: ${stop.remaining.join('; ')}`, { exitCode: 1 });
          }
          const rev = await replicationStatus({ source: o.target, target: o.source, name: r.reverseName });
          if (!(rev.subscriptionExists && rev.enabled && rev.slotHealth.exists)) {
            if (rev.subscriptionExists || rev.publicationExists || rev.slotHealth.exists) await stopReplication({ source: o.target, target: o.source, name: r.reverseName, log });
            await record({ kind: 'reverse-subscription', subscription: r.rev.subscription });
            // Exactly the forward set, not "every table of the new side": a partitioned root published
            // from 13+ cannot be applied by an old subscriber (≤ 12 applies to plain tables only), and
            // tables that were never replicated forward must not start flowing backward.
            await startReplication({ source: o.target, target: o.source, name: r.reverseName, tables: forwardTables(state), copyData: false, allowNonEmptyTarget: true, allowDowngrade: true, log, signal });
          }
          detail.reverse = objectNames(r.reverseName);
        }
        // the target may still be fenced by an earlier run (a rollback's target is the old primary the
        // forward run fenced): open it for the app roles before traffic arrives
        detail.opened = await openRoles(tgt!, phaseRecord(state!, 'preflight')!.detail!.appRoles as string[], record);
        const from = (phaseRecord(state!, 'switch')?.changes.find((c) => c.kind === 'switch') as Extract<Change, { kind: 'switch' }> | undefined)?.from ?? (o.switch.current ? await o.switch.current(ctx('switch')).catch(() => 'unknown' as const) : fromSide);
        await record({ kind: 'switch', strategy: o.switch.name, from: from === 'unknown' ? fromSide : from, to: toSide });
        const switched = await o.switch.switchTo(toSide, ctx('switch'));
        return { ...detail, from, to: toSide, switched };
      },
      resume: async () => {
        if (r.fence === 'pause') await o.switch.resume?.(ctx('resume'));
        // the target must answer and take writes, else we go back while the old primary is intact
        const c = await admin(o.target, 'target (after the switch)');
        try {
          const ro = await c.query<{ r: boolean }>(`select pg_is_in_recovery() as r`);
          if (ro.rows[0].r) throw new CutoverError('PRECONDITION', 'the target is a standby in recovery: it cannot take writes', { exitCode: 1 });
          await c.query(`insert into public.cutover_sentinel (token) values ($1) on conflict (token) do nothing`, [`${state!.runId}:${r.direction}:resume`]);
        } finally {
          await c.end().catch(() => {});
        }
        return { targetWritable: true };
      },
      postverify: async () => {
        await reconnect();
        const tables = (phaseRecord(state!, 'preflight')?.detail?.tables as Array<{ schema: string; name: string }>) ?? [];
        const counts: Array<{ table: string; source: number; target: number; ok: boolean }> = [];
        for (const t of tables) {
          const q = `select count(*)::int8 as n from ${qualified(t.schema, t.name)}`;
          const [a, b] = [(await src!.query(q)).rows[0].n, (await tgt!.query(q)).rows[0].n];
          // the source is fenced: the target can only have more (new writes), never fewer
          counts.push({ table: qualified(t.schema, t.name), source: a, target: b, ok: b >= a });
        }
        const seq = await verifySequences(src!, tgt!);
        const bad = counts.filter((c) => !c.ok);
        if (bad.length || !seq.ok)
          throw new CutoverError('PRECONDITION', `post-verify found differences: ${[...bad.map((b) => `${b.table} ${b.source} on the source vs ${b.target} on the target`), ...seq.checks.filter((c) => !c.ok).map((c) => `sequence ${c.sequence} behind`)].slice(0, 5).join('; ')}`, { exitCode: 1 });
        return { tables: counts.length, counts, sequencesOk: seq.ok };
      },
      reverse: async (signal) => {
        // the reverse replication was started in the switch phase; here we prove it carries writes
        const token = `${state!.runId}:${r.direction}:reverse`;
        const rt = await sentinelRoundTrip(tgt!, src!, token, { timeoutMs: r.timeouts.reverse - 500, signal });
        const st = await replicationStatus({ source: o.target, target: o.source, name: r.reverseName });
        return { subscription: st.subscription, slot: st.slot, latencyMs: rt.latencyMs, lagBytes: st.lagBytes };
      },
    };

    const order = PHASES;
    for (const phase of order) {
      if (isPhaseDone(state, phase)) {
        await o.hooks?.onPhase?.(phase, 'skip', { state });
        continue;
      }
      if (phase === 'reverse' && !r.reverse) {
        state = skipPhase(state, phase, now(), 'reverse replication not requested');
        save();
        await o.hooks?.onPhase?.(phase, 'skip', { state });
        continue;
      }
      state = startPhase(state, phase, now());
      state = { ...state, next: `interrupted in phase ${phase}: run the same command with --resume (phases are idempotent), or with --abort to undo and leave the ${fromSide === 'old' ? 'old' : 'new'} primary serving` };
      save();
      log(`phase ${phase}: start`);
      const record = async (c: Change) => {
        state = recordChange(state!, phase, c, now());
        save();
      };
      try {
        if (!src || !tgt) await reconnect();
        await o.hooks?.onPhase?.(phase, 'start', { state });
        const detail = await withTimeout(phase, phase === 'catchup' ? Math.max(r.timeouts.catchup, r.lag.timeoutMs + 5000) : r.timeouts[phase], (signal) => phases[phase](signal, record));
        state = endPhase(state, phase, 'ok', now(), { detail: detail ?? undefined });
        save();
        log(`phase ${phase}: ok`);
        await o.hooks?.onPhase?.(phase, 'end', { state });
      } catch (e) {
        const info = errInfo(e, phase);
        log(`phase ${phase}: failed: ${info.message}`);
        if (phaseRecord(state, phase)?.status === 'running') state = endPhase(state, phase, 'failed', now(), { error: info.message });
        save();
        await Promise.resolve(o.hooks?.onPhase?.(phase, 'fail', { state, error: info.message })).catch(() => {});
        const beforeTraffic = ['preflight', 'catchup', 'fence', 'sentinel', 'sequences', 'switch', 'resume'].includes(phase);
        if (!beforeTraffic) {
          const next =
            phase === 'reverse'
              ? `traffic is on the ${toSide} primary; reverse replication is not proven (${info.message}). Fix it and run again with --resume`
              : `traffic is on the ${toSide} primary and the ${fromSide} one is fenced; ${phase} failed: ${info.message}. Inspect, then run again with --resume, or \`cutover rollback\` (needs --reverse) / --abort to move back`;
          state = markFailed(state, now(), info.message, next);
          state = { ...state, kind: 'running' }; // still resumable
          save();
          return result({ outcome: 'resumable', error: info, next });
        }
        if (phase === 'preflight' || phase === 'catchup') {
          const undo = await undoAll();
          state = beginAbort(state, now(), info.message);
          state = finishAbort(state, now(), undo, `nothing was changed; the ${fromSide} primary is serving. ${info.hint ?? ''} Fix the cause and run again with --resume`.trim());
          // a run that never changed anything may be resumed later
          state = { ...state, kind: 'failed' };
          save();
          return result({ outcome: 'failed', error: info, next: state.next! });
        }
        state = beginAbort(state, now(), info.message);
        save();
        const undo = await undoAll();
        state = finishAbort(state, now(), undo, nextAfterAbort(undo, info.message));
        save();
        return result({ outcome: state.kind === 'rolled-back' ? 'rolled-back' : 'failed', error: info, next: state.next! });
      }
    }
    const next =
      r.direction === 'forward'
        ? r.reverse
          ? `traffic is on the new primary; reverse replication ${r.rev.subscription} keeps the old one current: \`cutover rollback\` moves back with nothing lost. When satisfied, stop it with \`cutover replicate stop --name ${r.reverseName}\` (source = new, target = old)`
          : `traffic is on the new primary; the old one is fenced. Remove the forward replication when satisfied: \`cutover replicate stop --name ${r.name}\``
        : `traffic is back on the old primary; the new one is fenced`;
    state = complete(state, now(), next);
    save();
    return result({ outcome: 'completed', next });
  } catch (e) {
    // only reached for errors outside a phase (state file unwritable, illegal transition, …)
    const info = errInfo(e);
    if (state) {
      try {
        state = markFailed(state, now(), info.message, `the run stopped outside a phase: ${info.message}. Run again with --resume once fixed, or --abort to undo`);
        save();
      } catch {
        /* the state file itself may be the problem */
      }
    }
    return result({ outcome: 'failed', error: info, next: state?.next ?? `fix: ${info.message}` });
  } finally {
    for (const c of [src, tgt, ...locks]) await c?.end().catch(() => {});
  }

  function nextAfterAbort(undo: NonNullable<SwitchoverState['undo']>, why?: string): string {
    const failed = undo.filter((u) => u.outcome === 'failed');
    if (!failed.length) return `${why ? `aborted (${why}); ` : ''}the ${fromSide} primary is serving again and nothing was left behind. Fix the cause and start a new run with a new --state file`;
    return `ABORT INCOMPLETE: ${failed.map((f) => `${f.change.kind} ${JSON.stringify(f.change)}: ${f.error}`).join('; ')}. Fix the cause and run again with --abort`;
  }

  /** Undo every recorded change, newest first: switch back, swap replication back, unfence. */
  async function undoAll(): Promise<NonNullable<SwitchoverState['undo']>> {
    const changes = allChanges(state!);
    const out: NonNullable<SwitchoverState['undo']> = [];
    const c = { ...ctxBase, runId: state!.runId, phase: 'abort' };
    const step = async (change: Change, fn: () => Promise<void>) => {
      try {
        await fn();
        out.push({ change, outcome: 'ok' });
      } catch (e) {
        out.push({ change, outcome: 'failed', error: errInfo(e).message });
      }
    };
    for (const ch of [...changes].reverse()) {
      if (ch.kind === 'switch') await step(ch, async () => void (await o.switch.switchTo(ch.from === 'unknown' ? fromSide : ch.from, c)));
      else if (ch.kind === 'reverse-subscription')
        await step(ch, async () => {
          const s = await stopReplication({ source: o.target, target: o.source, name: r.reverseName, log });
          if (!s.complete) throw new Error(s.remaining.join('; '));
        });
      else if (ch.kind === 'forward-subscription-dropped')
        await step(ch, async () => {
          // nothing was written on the fenced source since the sentinel: following from now on loses nothing
          const st = await replicationStatus({ source: o.source, target: o.target, name: r.name });
          if (!st.subscriptionExists) await startReplication({ source: o.source, target: o.target, name: r.name, tables: forwardTables(state), copyData: false, allowNonEmptyTarget: true, log });
        });
    }
    if (changes.some((ch) => ch.kind === 'target-opened')) {
      try {
        const t = await admin(o.target, 'target (fence again)');
        try {
          out.push(...(await closeRoles(t, changes)));
        } finally {
          await t.end().catch(() => {});
        }
      } catch (e) {
        for (const ch of changes.filter((x) => x.kind === 'target-opened')) out.push({ change: ch, outcome: 'failed', error: errInfo(e).message });
      }
    }
    if (r.fence === 'pause' && o.switch.resume) await step({ kind: 'sessions-terminated', pids: [] }, () => o.switch.resume!(c));
    const fenceChanges = changes.filter(isFenceChange);
    if (fenceChanges.length) {
      try {
        const s = await admin(o.source, 'source (unfence)');
        try {
          out.push(...(await unfence(s, fenceChanges)));
        } finally {
          await s.end().catch(() => {});
        }
      } catch (e) {
        for (const ch of fenceChanges) out.push({ change: ch, outcome: 'failed', error: errInfo(e).message });
      }
    }
    return out;
  }
}
