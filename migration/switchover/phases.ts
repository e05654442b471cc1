/**
 * The switchover's phases as values: each says what it plans (the dry run prints exactly these),
 * runs with an abort signal it honours (SQL through `ctx.db(…, signal)` is cancelled on abort;
 * strategies get the signal in their context), and undoes what it recorded. They read the state
 * and change it only through `io` (state.ts transitions underneath).
 */
import type pg from 'pg';
import { CutoverError } from '../errors.ts';
import { assertFenceCoverage, closeDatabase, closeRoles, discoverDatabaseAppRoles, fence as applyFence, openDatabase, terminateBypassingSessions, openRoles, terminateSessions, unfence, isFenceChange, type FenceResult } from '../fence.ts';
import { preflight as migrationPreflight } from '../preflight.ts';
import { qualified, quoteIdent, serverMajor } from '../pg.ts';
import { describeCoverage, missingFromPublication } from '../replication.ts';
import { applyCompat } from '../apply-compat.ts';
import { checkGrace, describeGrace } from '../grace.ts';
import { displayName, enablePrepared, lag as replicationLag, objectNames, publicationRowFilters, replicationObjects, replicationStatus, startReplication, stopReplication } from '../replication.ts';
import { disabledBecause, ensureSentinel, resumeAfterLostLink, sentinelRoundTrip } from '../sentinel.ts';
import { syncSequences, verifySequences } from '../sequences.ts';
import { prepareTarget, describeReadiness } from '../readiness.ts';
import { judgePostverifyCounts, tableDeleteCounters, type PostverifyCount } from '../verify.ts';
import type { Side, SwitchContext, SwitchStrategy } from '../switch/types.ts';
import type { Clock, Phase, UndoStep } from './executor.ts';
import type { FenceStrategyName, PhaseTimeouts } from './plan.ts';
import { phaseRecord, type Change, type SwitchoverState } from './state.ts';

/** Everything a phase needs, resolved once per run. */
export interface RunCtx {
  source: string;
  target: string;
  direction: 'forward' | 'rollback';
  toSide: Side;
  fromSide: Side;
  sw: SwitchStrategy;
  fence: FenceStrategyName;
  fenceScope?: 'roles' | 'database';
  /** terminate fence: in-flight transactions get this long to finish (ms; 0/undefined: at once). */
  fenceGrace?: number;
  appRoles?: string[];
  allowUnfenced?: string[];
  lag: { maxBytes: number; maxSeconds: number; timeoutMs: number };
  sequenceBuffer: number;
  reverse: boolean;
  /** Prepare the target before the fence (ANALYZE, warm-up); default on. */
  readiness: boolean;
  /** Warm-up queries (SQL text) when pg_prewarm is not installed on the target. */
  warmupSql?: string;
  name: string;
  reverseName: string;
  timeouts: PhaseTimeouts;
  clock: Clock;
  log: (line: string) => void;
  /** The run's admin session on a side, opened on demand; with a signal, its running query is cancelled when the signal aborts. */
  db(side: 'source' | 'target', signal?: AbortSignal): Promise<pg.Client>;
  switchCtx(phase: string, signal?: AbortSignal): SwitchContext;
}

type P = Phase<RunCtx>;
type Row = Record<string, unknown>;

const roles = (s: SwitchoverState) => (phaseRecord(s, 'preflight')?.detail?.appRoles as string[] | undefined) ?? [];
/** The tables the forward publication carried, as preflight recorded them (undefined: let replication choose). */
export const forwardTables = (s: SwitchoverState) => {
  const t = phaseRecord(s, 'preflight')?.detail?.tables as Array<{ schema: string; name: string }> | undefined;
  return t?.length ? t.map((x) => ({ schema: x.schema, name: x.name })) : undefined;
};
const names = (c: RunCtx) => ({ fwd: objectNames(c.name), rev: objectNames(c.reverseName) });
const sideWords = (c: { direction?: 'forward' | 'rollback' }) =>
  (c.direction ?? 'forward') === 'forward' ? { src: 'old primary (source)', tgt: 'new primary (target)' } : { src: 'new primary (now the source)', tgt: 'old primary (rollback target)' };

async function step(change: Change, fn: () => Promise<unknown>): Promise<UndoStep> {
  try {
    await fn();
    return { change, outcome: 'ok' };
  } catch (e: any) {
    return { change, outcome: 'failed', error: e?.message ?? String(e) };
  }
}

/** The publication's tables, each with its row filter when it has one (a shard: post-verify counts only its rows). */
async function publishedTables(source: pg.Client, publication: string): Promise<Array<{ schema: string; name: string; rowFilter?: string }>> {
  const r = await source.query<{ schemaname: string; tablename: string }>(`select schemaname, tablename from pg_publication_tables where pubname = $1 order by 1, 2`, [publication]);
  const filters = await publicationRowFilters(source, publication);
  return r.rows.map((x) => {
    const f = filters.find((y) => y.schema === x.schemaname && y.name === x.tablename);
    return { schema: x.schemaname, name: x.tablename, ...(f ? { rowFilter: f.where } : {}) };
  });
}

/** Wait until the subscription has the sentinel table in state `r` (ready). */
async function waitSentinelReady(c: RunCtx, target: pg.Client, subscription: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = c.clock.now() + timeoutMs;
  for (;;) {
    const r = await target.query<{ s: string }>(
      `select sr.srsubstate as s from pg_subscription_rel sr join pg_subscription s on s.oid = sr.srsubid where s.subname = $1 and sr.srrelid = to_regclass('public.cutover_sentinel')`,
      [subscription],
    );
    if (r.rows[0]?.s === 'r') return;
    if (c.clock.now() > deadline || signal.aborted)
      throw new CutoverError('TIMEOUT', `the sentinel table did not finish its initial sync within ${timeoutMs} ms (state ${r.rows[0]?.s ?? 'not subscribed'})`, { hint: 'see `cutover replicate status`; nothing was fenced' });
    await c.clock.sleep(25, signal);
  }
}

const preflight: P = {
  name: 'preflight',
  plan: (p) => ({
    action: `check both servers answer, subscription ${p.subscription} on the ${sideWords(p).tgt} is enabled and its slot active, take the switchover advisory lock on the ${sideWords(p).src}, refuse when a role the fence does not reach (superuser, replication, the admin role, unlisted) has sessions there unless --allow-unfenced names it, resolve the ${p.appRoles?.length ? `app roles ${p.appRoles.join(', ')}` : 'app roles (discovered: the login roles that use this database, except superusers, replication roles and the admin role)'}`,
    undo: 'nothing to undo (read-only checks; the lock is released when the run ends)',
  }),
  timeoutMs: (c) => c.timeouts.preflight,
  async run(c, signal, io) {
    const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
    const [sm, tm] = [await serverMajor(src), await serverMajor(tgt)];
    const st = await replicationStatus({ source: c.source, target: c.target, name: c.name });
    const problems: string[] = [];
    if (!st.subscriptionExists) problems.push(`subscription ${st.subscription} does not exist on the target`);
    else if (!st.enabled) problems.push(st.problems[0] ?? `subscription ${st.subscription} is disabled`);
    if (!st.slotHealth.exists) problems.push(`replication slot ${st.slot} is missing on the source`);
    // a lost slot (max_slot_wal_keep_size) can never serve the subscription again: refuse here, not at a sentinel timeout
    else if (st.slotHealth.walStatus === 'lost') problems.push(`replication slot ${st.slot} lost WAL the target had not applied (wal_status lost): the new side can never catch up — do not switch; stop replication (cutover replicate stop) and set it up again from scratch`);
    if (st.subscriptionExists && !st.allReady) problems.push(`not every table is synchronized yet: ${st.tables.filter((t) => t.state !== 'r').slice(0, 5).map((t) => `${t.table} (${t.stateName})`).join(', ')}`);
    if (c.fence === 'pause' && !c.sw.pausable) problems.push(`the pause fence needs a switch that can hold queries (pgbouncer), not ${c.sw.name}`);
    if (c.fenceGrace && c.fence !== 'terminate') problems.push(`--fence-grace applies to the terminate fence, not ${c.fence}`);
    if (c.fenceGrace) {
      try {
        checkGrace(c.fenceGrace, c.timeouts.fence - 1000);
      } catch (e: any) {
        problems.push(e.message);
      }
    }
    if (c.direction === 'forward' && st.subscriptionExists) {
      // No table left behind: a table or sequence created on the source after replication
      // started would be empty (or behind) on the new primary once traffic moves.
      problems.push(...describeCoverage(await missingFromPublication(src, st.publication)));
      // DDL is not replicated: a column the source has and the target lacks stops apply at the
      // next change to that table, possibly inside the write-blocked window.
      for (const f of await applyCompat({ source: c.source, target: c.target, publication: st.publication }).catch(() => [])) if (f.effect === 'breaks') problems.push(f.message);
    }
    let findings: Array<{ id: string; severity: string; message: string }> = [];
    if (c.direction === 'forward') {
      // The migration preflight's errors still matter at cutover (e.g. a published table without a
      // key); pg_dump is not needed now, and a table finding only counts for a table we publish.
      const published = st.subscriptionExists ? new Set((await publishedTables(src, st.publication)).map((t) => displayName(t))) : undefined;
      findings = (await migrationPreflight({ source: c.source, target: c.target })).findings.filter(
        (f) => f.id !== 'tool.pg_dump' && !(published && f.id.startsWith('table.') && f.object && !published.has(f.object)),
      );
      for (const f of findings.filter((x) => x.severity === 'error')) problems.push(f.message);
    }
    signal.throwIfAborted();
    if (problems.length) throw new CutoverError('PRECONDITION', `switchover preflight failed: ${problems.join('; ')}`, { hint: 'see `cutover replicate status`; nothing was changed', exitCode: 1 });
    // discovered roles are kept in the state: after the fence they are NOLOGIN and would not be found again
    const prev = phaseRecord(io.state(), 'preflight')?.detail?.appRoles as string[] | undefined;
    const { appRoles, warnings: coverageWarnings } = await resolveAppRoles(src, c, prev);
    signal.throwIfAborted();
    await io.detail({ appRoles });
    // The sentinel table joins the publication now, while writes still flow: adding it after the
    // fence would put a table sync (a new worker, a copy) inside the window clients cannot write.
    const { fwd } = names(c);
    await ensureSentinel(src, tgt, { publication: fwd.publication, subscription: fwd.subscription, record: io.record });
    await waitSentinelReady(c, tgt, fwd.subscription, Math.max(5_000, c.timeouts.preflight - 2_000), signal);
    const tables = await publishedTables(src, st.publication);
    await c.sw.prepare?.(c.switchCtx('preflight', signal));
    const current = await c.sw.current(c.switchCtx('preflight', signal)).catch(() => 'unknown' as const);
    const warnings = [...coverageWarnings, ...findings.filter((f) => f.severity === 'warning').map((f) => f.message)];
    for (const w of coverageWarnings) c.log(`preflight: warning: ${w}`);
    return { sourceMajor: sm, targetMajor: tm, appRoles, tables, switchCurrent: current, lagBytes: st.lagBytes, warnings };
  },
};

/**
 * The app roles to fence (given, recorded by an earlier attempt, or discovered on this database),
 * and the refusal of a fence that would leave a writer: client sessions on the source of roles the
 * fence does not reach (superusers, REPLICATION roles, the connecting role, unlisted roles), or an
 * empty list — unless the operator accepted them by name (`--allow-unfenced`). Read-only; the dry
 * run calls it too. Warnings: roles the (cluster-wide) fence also locks out of other databases,
 * and the sessions that were let through.
 */
export async function resolveAppRoles(src: pg.Client, c: { appRoles?: string[]; allowUnfenced?: string[] }, recorded?: string[]): Promise<{ appRoles: string[]; warnings: string[] }> {
  const warnings: string[] = [];
  let appRoles = c.appRoles ?? recorded;
  if (!appRoles) {
    // roles of THIS database only: discoverAppRoles fenced every login role of the cluster
    const d = await discoverDatabaseAppRoles(src);
    appRoles = d.roles;
  }
  const allowEmpty = c.appRoles?.length === 0 && !!c.allowUnfenced?.includes('*');
  const cov = await assertFenceCoverage(src, appRoles, { allowUnfenced: c.allowUnfenced, allowEmpty });
  warnings.push(...cov.warnings);
  for (const u of cov.unfenced)
    warnings.push(`role ${u.role} (${u.kind}) keeps ${u.sessions} session(s) on the old primary that the fence does not reach (${u.applications.join(', ')}): accepted with --allow-unfenced ${u.role}; it must not write after the switch`);
  if (!cov.roles.length) warnings.push('no application role is fenced (--app-roles empty, accepted with --allow-unfenced "*"): nothing stops writes on the old primary');
  return { appRoles, warnings };
}

const catchup: P = {
  name: 'catchup',
  plan: (p) => ({
    action: `wait until replication lag is ≤ ${p.lag.maxBytes} bytes and ≤ ${p.lag.maxSeconds} s (give up after ${p.lag.timeoutMs} ms)${p.reverse ? `; then prepare the reverse replication while writes still flow: publication and slot on the ${sideWords(p).tgt}, subscription ${p.reverseSubscription} on the ${sideWords(p).src} created DISABLED (copy_data = false) — the switch only enables it` : ''}`,
    undo: p.reverse ? `drop the prepared reverse replication ${p.reverseSubscription} (subscription, publication, slot)` : 'nothing to undo',
  }),
  timeoutMs: (c) => Math.max(c.timeouts.catchup, c.lag.timeoutMs + 5000),
  async undo(c, changes) {
    const out: UndoStep[] = [];
    for (const ch of changes)
      if (ch.kind === 'reverse-subscription')
        out.push(
          await step(ch, async () => {
            const s = await stopReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, log: c.log });
            if (!s.complete) throw new Error(s.remaining.join('; '));
          }),
        );
    return out;
  },
  async run(c, signal, io) {
    const started = c.clock.now();
    const subscription = names(c).fwd.subscription;
    const reenabled = new Map<string, number>();
    for (;;) {
      // Waiting for lag to drain is pointless once apply has stopped (disable_on_error after a
      // conflict or DDL, a dropped subscription): refuse at once, before anything is fenced — unless
      // what stopped it was a lost link, which ENABLE resumes losslessly.
      const tgt = await c.db('target', signal);
      const sub = await tgt.query<{ enabled: boolean }>(`select subenabled as enabled from pg_subscription where subname = $1`, [subscription]);
      if (sub.rows.length && !sub.rows[0].enabled) {
        const stopped = await disabledBecause(tgt, [subscription]);
        if (await resumeAfterLostLink(tgt, stopped, reenabled, c.log)) continue;
        throw new CutoverError('PRECONDITION', `${stopped.message.replace('on the new primary', 'on the target')}: its lag can never drain`, {
          hint: 'see `cutover replicate status` for the apply error and what to do; nothing was changed',
          exitCode: 1,
        });
      }
      if (!sub.rows.length)
        throw new CutoverError('PRECONDITION', `subscription ${subscription} is missing on the target: its lag can never drain`, {
          hint: 'see `cutover replicate status` for the apply error and what to do; nothing was changed',
          exitCode: 1,
        });
      const l = await replicationLag({ source: c.source, name: c.name });
      const last = { bytes: l.bytes, seconds: l.seconds };
      const n = reenabled.get(subscription);
      if (l.bytes !== null && l.bytes <= c.lag.maxBytes && (l.seconds ?? 0) <= c.lag.maxSeconds) return { lag: last, waitedMs: c.clock.now() - started, ...(n ? { linkReenables: n } : {}), ...(c.reverse ? await prepareReverse(c, signal, io) : {}) };
      if (c.clock.now() - started > c.lag.timeoutMs || signal.aborted)
        throw new CutoverError('TIMEOUT', `replication lag stayed above ${c.lag.maxBytes} bytes / ${c.lag.maxSeconds} s for ${c.lag.timeoutMs} ms (last: ${last.bytes} bytes, ${last.seconds} s)`, {
          hint: 'apply cannot keep up or the slot is inactive: see `cutover replicate status`; nothing was changed',
          exitCode: 1,
        });
      await c.clock.sleep(250, signal);
    }
  },
};

/**
 * Readiness runs before the fence, never inside the window in which clients cannot write:
 * statistics are not replicated, so the first queries on an un-analyzed target can get bad plans.
 */
const readiness: P = {
  name: 'readiness',
  plan: (p) => ({
    action: `prepare the ${sideWords(p).tgt} for traffic while writes still flow: ANALYZE the published tables (statistics are not replicated), then ${p.warmup ? 'the warm-up queries (read-only)' : 'pg_prewarm where it is installed'}`,
    undo: 'nothing to undo (statistics and cache only)',
  }),
  skip: (c) => (c.readiness ? undefined : 'readiness turned off (--no-readiness)'),
  timeoutMs: (c) => c.timeouts.readiness,
  async run(c, signal, io) {
    const r = await prepareTarget(c.target, c.source, { tables: forwardTables(io.state()), warmupSql: c.warmupSql, signal, log: c.log });
    signal.throwIfAborted();
    c.log(`readiness: ${describeReadiness(r)}`);
    return { totalMs: r.totalMs, steps: r.steps };
  },
};

/** Fence changes whose object is not already back at its recorded value: an unfence must not queue behind a lock for nothing. */
async function stillFenced(client: pg.Client, changes: Change[]): Promise<Change[]> {
  const out: Change[] = [];
  for (const ch of changes) {
    if (ch.kind === 'role-login') {
      const r = await client.query<{ l: boolean }>(`select rolcanlogin as l from pg_roles where rolname = $1`, [ch.role]);
      if (r.rows.length && r.rows[0].l === ch.previous) continue;
    }
    if (ch.kind === 'role-setting') {
      const r = await client.query<{ c: string[] | null }>(`select s.setconfig as c from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = $1 and s.setdatabase = 0`, [ch.role]);
      const now = (r.rows[0]?.c ?? []).find((kv) => kv.startsWith(`${ch.setting}=`))?.slice(ch.setting.length + 1) ?? null;
      if (now === ch.previous) continue;
    }
    out.push(ch);
  }
  return out;
}

const fencePhase: P = {
  name: 'fence',
  plan: (p) => {
    const w = sideWords(p);
    const who = p.appRoles?.length ? `app roles ${p.appRoles.join(', ')}` : 'app roles (discovered: the login roles that use this database, except superusers, replication roles and the admin role)';
    const action = {
      terminate: `on the ${w.src}: ALTER ROLE … NOLOGIN for ${who} (previous rolcanlogin recorded), pg_terminate_backend their sessions, check that none is left`,
      'read-only': `on the ${w.src}: ALTER ROLE … SET default_transaction_read_only = on for ${who} (previous setting recorded), terminate their sessions so the setting applies, check that none is left`,
      pause: `writes are held by the ${p.switch} switch (pooler PAUSE; a held query is released with an error after --max-hold); app sessions on the ${w.src} that bypass the pooler are terminated, none may be left — no role is changed`,
    }[p.fence];
    return { action, undo: p.fence === 'pause' ? 'the switch resumes the pooler' : 'restore LOGIN / the previous setting for each role, as recorded' };
  },
  timeoutMs: (c) => c.timeouts.fence,
  async run(c, signal, io) {
    const l = await replicationLag({ source: c.source, name: c.name }).catch(() => undefined);
    // the lag is recorded at once (a resumed fence keeps the first measurement)
    const lagAtFence = phaseRecord(io.state(), 'fence')?.detail?.lagAtFence ?? (l ? { bytes: l.bytes, seconds: l.seconds } : null);
    await io.detail({ lagAtFence });
    const appRoles = roles(io.state());
    if (c.fence === 'pause') {
      if (!c.sw.pausable) throw new CutoverError('USAGE', `the pause fence needs a pausable switch (pgbouncer), not ${c.sw.name}`);
      await c.sw.pause(c.switchCtx('fence', signal));
      if (!c.sw.serverPids) return { lagAtFence, roles: appRoles, paused: true };
      // PAUSE holds only what goes through the pooler: app sessions connected to the old primary
      // directly keep writing. End every app-role session that is not one of the pooler's own.
      const poolerPids = await c.sw.serverPids(c.switchCtx('fence', signal));
      const f = await applyFence(await c.db('source', signal), 'pause', { roles: appRoles, poolerPids, timeoutMs: c.timeouts.fence - 1000, record: io.record, signal });
      if (f.remaining > 0)
        throw new CutoverError('PRECONDITION', `${f.remaining} app session(s) connected to the old primary without the pooler are still there after the pause fence`, {
          hint: 'they bypass pgbouncer and are not held by PAUSE: point them at the pooler, or use --fence terminate',
          exitCode: 1,
        });
      return { lagAtFence, roles: appRoles, paused: true, terminated: f.terminated, remaining: f.remaining, poolerPids: poolerPids.length, fenceMs: f.ms };
    }
    const src = await c.db('source', signal);
    const f: FenceResult = await applyFence(src, c.fence, { roles: appRoles, scope: c.fenceScope, timeoutMs: c.timeouts.fence - 1000, record: io.record, signal, ...(c.fenceGrace ? { grace: c.fenceGrace } : {}) });
    if (f.grace) c.log(describeGrace(f.grace));
    if (f.remaining > 0)
      throw new CutoverError('PRECONDITION', `${f.remaining} app session(s) are still connected to the old primary after the fence`, { hint: 'a role the app uses is not in --app-roles, or a session ignores termination', exitCode: 1 });
    return { lagAtFence, roles: appRoles, terminated: f.terminated, remaining: f.remaining, fenceMs: f.ms, ...(f.grace ? { grace: f.grace } : {}) };
  },
  async undo(c, changes) {
    if (c.fence === 'pause') return c.sw.pausable ? [await step({ kind: 'sessions-terminated', pids: [] }, async () => void (c.sw.pausable && (await c.sw.resume(c.switchCtx('abort')))))] : [];
    const fenceChanges = changes.filter(isFenceChange);
    if (!fenceChanges.length) return [];
    const s = await c.db('source');
    // an undo that waits behind someone's lock forever would hang the abort: fail it, say so, retry with --abort
    await s.query(`set lock_timeout = '10s'`);
    const todo = await stillFenced(s, fenceChanges);
    const done = fenceChanges.filter((ch) => !todo.includes(ch)).map((change): UndoStep => ({ change, outcome: 'ok' }));
    return [...done, ...(await unfence(s, todo))];
  },
};

const sentinel: P = {
  name: 'sentinel',
  plan: (p) => ({
    action: `insert a marker row into cutover_sentinel on the ${sideWords(p).src} (table created on both sides and added to publication ${p.publication} if absent), wait until it is visible on the ${sideWords(p).tgt}; records the latency`,
    undo: 'the marker row stays (harmless)',
  }),
  timeoutMs: (c) => c.timeouts.sentinel,
  async run(c, signal, io) {
    const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
    const { fwd } = names(c);
    await ensureSentinel(src, tgt, { publication: fwd.publication, subscription: fwd.subscription, record: io.record });
    if (c.fence === 'pause' && c.sw.pausable && c.sw.serverPids) {
      // the same look for the pause fence: a direct session that logged in since the fence goes too
      const again = await terminateBypassingSessions(src, roles(io.state()), await c.sw.serverPids(c.switchCtx('sentinel', signal)), { timeoutMs: 5000, record: io.record, signal });
      if (again.remaining) throw new CutoverError('PRECONDITION', `${again.remaining} app session(s) bypassing the pooler reappeared on the source after the fence`, { exitCode: 1 });
      if (again.terminated) c.log(`sentinel: terminated ${again.terminated} app session(s) that bypass the pooler`);
    } else if (c.fence !== 'pause') {
      // a write after the marker would be lost: look once more that no app session survived the fence
      const fencedAt = phaseRecord(io.state(), 'fence')?.startedAt;
      const again = await terminateSessions(src, roles(io.state()), { timeoutMs: 5000, cleanLooks: 1, record: io.record, signal, startedBefore: c.fence === 'read-only' && fencedAt ? new Date(fencedAt) : undefined });
      if (again.remaining) throw new CutoverError('PRECONDITION', `${again.remaining} app session(s) reappeared on the source after the fence`, { exitCode: 1 });
      if (again.terminated) c.log(`sentinel: terminated ${again.terminated} app session(s) that survived the fence`);
    }
    const token = `${io.state().runId}:${c.direction}`;
    await io.record({ kind: 'sentinel-row', token });
    const rt = await sentinelRoundTrip(src, tgt, token, { timeoutMs: c.timeouts.sentinel - 500, signal, log: c.log });
    return { token, latencyMs: rt.latencyMs, ...(rt.linkReenables ? { linkReenables: rt.linkReenables } : {}) };
  },
};

const sequences: P = {
  name: 'sequences',
  plan: (p) => ({ action: `setval every sequence on the ${sideWords(p).tgt} to max(source last_value + ${p.sequenceBuffer}, max of the column it feeds + 1); verify target ≥ source`, undo: 'nothing to undo: sequences only move forward' }),
  timeoutMs: (c) => c.timeouts.sequences,
  async run(c, signal, io) {
    const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
    const moves = await syncSequences(src, tgt, { buffer: c.sequenceBuffer, record: io.record, signal });
    signal.throwIfAborted();
    const missing = moves.filter((m) => m.note === 'missing on the target');
    if (missing.length)
      throw new CutoverError('PRECONDITION', `${missing.length} sequence(s) are missing on the target: ${missing.slice(0, 5).map((m) => m.sequence).join(', ')}`, { hint: 'copy the schema again (sequences are pre-data)', exitCode: 1 });
    const v = await verifySequences(src, tgt);
    if (!v.ok) throw new CutoverError('PRECONDITION', `sequences behind on the target after the move: ${v.checks.filter((x) => !x.ok).map((x) => x.sequence).join(', ')}`, { exitCode: 1 });
    return { moves, moved: moves.filter((m) => m.changed).length };
  },
};

/**
 * The source URL for library calls that open their own sessions there (stopReplication,
 * startReplication): after a `--fence-scope database` fence every new session on it is read-only
 * (the database default applies to the admin too), and DROP/CREATE PUBLICATION failed with
 * "cannot execute … in a read-only transaction". The session option overrides the default.
 */
export function readWriteUrl(url: string, scope: RunCtx['fenceScope']): string {
  if (scope !== 'database') return url;
  try {
    const u = new URL(url);
    const prev = u.searchParams.get('options');
    u.searchParams.set('options', `${prev ? `${prev} ` : ''}-c default_transaction_read_only=off`);
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * The reverse replication made before the fence, while writes still flow: its publication and
 * slot on the target, and its subscription on the source DISABLED. Creating a slot waits for the
 * transactions running on the target, and a subscription needs a round trip to it: inside the
 * write-blocked window that took 1.5 s on the production-shaped dataset. What is left for the
 * switch is an origin advance to the target's WAL position once the forward replication stopped,
 * and an ENABLE (enablePrepared). If it cannot be prepared, the switch phase creates it as before.
 */
async function prepareReverse(c: RunCtx, signal: AbortSignal, io: Parameters<P['run']>[2]): Promise<Row> {
  const { rev } = names(c);
  const rs = await replicationStatus({ source: c.target, target: c.source, name: c.reverseName, diagnose: false });
  if (rs.subscriptionExists || rs.publicationExists || rs.slotHealth.exists) {
    // made by an earlier attempt of this phase (killed, resumed): keep it when whole, else start over
    const ours = phaseRecord(io.state(), 'catchup')?.changes.some((x) => x.kind === 'reverse-subscription');
    // …or by someone else (an earlier run): the switch phase decides what to do with it
    if (!ours) return { reversePrepared: false, reversePreparedWhy: `objects of ${c.reverseName} exist already` };
    if (rs.subscriptionExists && rs.enabled === false && rs.publicationExists && rs.slotHealth.exists) return { reversePrepared: true };
    const s = await stopReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, log: c.log });
    if (!s.complete) return { reversePrepared: false, reversePreparedWhy: `an earlier attempt's ${c.reverseName} could not be removed: ${s.remaining.join('; ')}` };
  }
  await io.record({ kind: 'reverse-subscription', subscription: rev.subscription });
  const t0 = c.clock.now();
  try {
    await startReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, tables: forwardTables(io.state()), copyData: false, allowNonEmptyTarget: true, allowDowngrade: true, prepareOnly: true, log: c.log, signal });
  } catch (e: any) {
    if (signal.aborted) throw e;
    // startReplication cleaned up after itself; the switch phase will make it inside the window
    const why = e?.message ?? String(e);
    c.log(`catchup: could not prepare the reverse replication ahead (${why}); the switch phase creates it instead`);
    return { reversePrepared: false, reversePreparedWhy: why };
  }
  return { reversePrepared: true, reversePrepareMs: c.clock.now() - t0 };
}

/** Swap the replication direction before any traffic reaches the target (see the switch phase). */
async function swapReplication(c: RunCtx, signal: AbortSignal, io: Parameters<P['run']>[2]): Promise<Row> {
  const { fwd, rev } = names(c);
  // the forward subscription goes first (else reverse-applied rows would loop back), then reverse
  // replication starts from now on with copy_data = false
  // inside the write-blocked window: the run's own sessions and catalog lookups only, timed
  const t0 = c.clock.now();
  const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
  const forward = await replicationObjects(src, tgt, c.name);
  if (forward.subscription || forward.publication || forward.slot) {
    await io.record({ kind: 'forward-subscription-dropped', subscription: fwd.subscription, publication: fwd.publication, slot: fwd.slot });
    const stop = await stopReplication({ source: readWriteUrl(c.source, c.fenceScope), target: c.target, name: c.name, log: c.log });
    if (!stop.complete) throw new CutoverError('STATE', `could not remove the forward replication: ${stop.remaining.join('; ')}`, { exitCode: 1 });
  }
  const forwardStopMs = c.clock.now() - t0;
  signal.throwIfAborted();
  const ro = await replicationObjects(tgt, src, c.reverseName);
  const rs = { subscriptionExists: ro.subscription, enabled: ro.enabled, publicationExists: ro.publication, slotHealth: { exists: ro.slot } };
  // Prepared in catch-up by this run, and never enabled by an attempt of this phase (an enabled one
  // that stopped later must not be advanced past writes it did not apply): start it from now.
  const preparedHere = phaseRecord(io.state(), 'catchup')?.detail?.reversePrepared === true;
  const enabledBefore = phaseRecord(io.state(), 'switch')?.changes.some((x) => x.kind === 'reverse-subscription');
  if (preparedHere && !enabledBefore && rs.subscriptionExists && rs.enabled === false && rs.publicationExists && rs.slotHealth.exists) {
    await io.record({ kind: 'reverse-subscription', subscription: rev.subscription });
    try {
      // the run's admin sessions (read-write whatever the fence scope): no new connection in the window
      const e = await enablePrepared({ source: c.target, target: c.source, name: c.reverseName, log: c.log, signal, clients: { source: tgt, target: src } });
      return { reverse: rev, reversePrepared: true, reverseFrom: e.lsn, swapMs: { forwardStop: forwardStopMs, reverseStart: c.clock.now() - t0 - forwardStopMs } };
    } catch (e: any) {
      if (signal.aborted) throw e;
      c.log(`switch: the prepared reverse replication could not be enabled (${e?.message ?? e}); making it again`);
    }
  }
  if (!(rs.subscriptionExists && rs.enabled && rs.slotHealth.exists)) {
    if (rs.subscriptionExists || rs.publicationExists || rs.slotHealth.exists) await stopReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, log: c.log });
    await io.record({ kind: 'reverse-subscription', subscription: rev.subscription });
    // Exactly the forward set, not "every table of the new side": a partitioned root published
    // from 13+ cannot be applied by an old subscriber (≤ 12 applies to plain tables only), and
    // tables that were never replicated forward must not start flowing backward.
    await startReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, tables: forwardTables(io.state()), copyData: false, allowNonEmptyTarget: true, allowDowngrade: true, log: c.log, signal });
  }
  return { reverse: rev, swapMs: { forwardStop: forwardStopMs, reverseStart: c.clock.now() - t0 - forwardStopMs } };
}

const switchPhase: P = {
  name: 'switch',
  plan: (p) => {
    const w = sideWords(p);
    const to = (p.direction ?? 'forward') === 'forward' ? 'new' : 'old';
    return {
      action: `${p.reverse ? `swap the replication direction before any traffic reaches the ${w.tgt}: drop subscription ${p.subscription} (and its slot), then enable ${p.reverseSubscription} (${w.tgt} → ${w.src}), prepared in the catch-up, from the ${w.tgt}'s WAL position at that moment (origin advance; made here with copy_data = false if it could not be prepared); then ` : ''}give the app roles LOGIN on the ${w.tgt} where an earlier run fenced them (recorded); move traffic to the ${to} side with the ${p.switch} switch. If it times out it is stopped, and its probe decides: traffic on the ${to} side → go on; proven not moved → undo; else past the point of no return`,
      undo: `before traffic may have moved: switch back${p.reverse ? `, drop ${p.reverseSubscription} and start ${p.subscription} again with copy_data = false` : ''}, fence again the app roles opened on the target. After: fence the ${w.tgt} first and drain the reverse replication (needs --reverse), else stop`,
    };
  },
  timeoutMs: (c) => c.timeouts.switch,
  async run(c, signal, io) {
    const detail: Row = c.reverse ? await swapReplication(c, signal, io) : {};
    // the target may still be fenced by an earlier run (a rollback's target is the old primary the
    // forward run fenced): open it for the app roles before traffic arrives
    const tgtDb = await c.db('target', signal);
    detail.opened = await openRoles(tgtDb, roles(io.state()), io.record);
    // …and its database, when a `--fence-scope database` run left it read-only for every new session
    const dbOpened = await openDatabase(tgtDb, (d) => io.record({ kind: 'target-database-opened', ...d }));
    if (dbOpened) {
      detail.databaseOpened = dbOpened.database;
      c.log(`switch: database ${dbOpened.database} on the ${sideWords(c).tgt} was read-only (an earlier --fence-scope database fence): opened`);
    }
    signal.throwIfAborted();
    const recorded = phaseRecord(io.state(), 'switch')?.changes.find((x) => x.kind === 'switch');
    const from = recorded?.kind === 'switch' ? recorded.from : await c.sw.current(c.switchCtx('switch', signal)).catch(() => 'unknown' as const);
    // recorded BEFORE the call: from here on the run is past the point of no return
    await io.record({ kind: 'switch', strategy: c.sw.name, from: from === 'unknown' ? c.fromSide : from, to: c.toSide });
    const switched = await c.sw.switchTo(c.toSide, c.switchCtx('switch', signal));
    // from here the new side takes writes, DELETEs included: postverify excuses rows it lost to them
    const deleteBaseline = await tableDeleteCounters(tgtDb, forwardTables(io.state()) ?? []).then(
      (m) => Object.fromEntries(m),
      () => undefined,
    );
    return { ...detail, from, to: c.toSide, switched, deleteBaseline };
  },
  async undo(c, changes, state) {
    const out: UndoStep[] = [];
    for (const ch of [...changes].reverse()) {
      if (ch.kind === 'switch') out.push(await step(ch, () => c.sw.switchTo(ch.from === 'unknown' ? c.fromSide : ch.from, c.switchCtx('abort'))));
      else if (ch.kind === 'reverse-subscription')
        out.push(
          await step(ch, async () => {
            const s = await stopReplication({ source: c.target, target: readWriteUrl(c.source, c.fenceScope), name: c.reverseName, log: c.log });
            if (!s.complete) throw new Error(s.remaining.join('; '));
          }),
        );
      else if (ch.kind === 'forward-subscription-dropped')
        out.push(
          await step(ch, async () => {
            // nothing was written on the fenced source since the sentinel: following from now on loses nothing
            const st = await replicationStatus({ source: c.source, target: c.target, name: c.name });
            if (!st.subscriptionExists) await startReplication({ source: readWriteUrl(c.source, c.fenceScope), target: c.target, name: c.name, tables: forwardTables(state), copyData: false, allowNonEmptyTarget: true, log: c.log });
          }),
        );
    }
    if (changes.some((ch) => ch.kind === 'target-opened')) out.push(...(await closeRoles(await c.db('target'), changes)));
    for (const ch of changes) if (ch.kind === 'target-database-opened') out.push(await step(ch, async () => closeDatabase(await c.db('target'), ch)));
    return out;
  },
};

const resume: P = {
  name: 'resume',
  plan: (p) => ({
    action: p.fence === 'pause' ? `resume the pooler so held queries run on the ${sideWords(p).tgt}` : `check the ${sideWords(p).tgt} answers, is not in recovery and takes a write`,
    undo: `past the point of no return: fence the ${sideWords(p).tgt}, switch back and drain the reverse replication (needs --reverse), else stop`,
  }),
  timeoutMs: (c) => c.timeouts.resume,
  async run(c, signal, io) {
    if (c.fence === 'pause' && c.sw.pausable) await c.sw.resume(c.switchCtx('resume', signal));
    // the target must answer and take writes, else we go back while the old primary is intact
    const tgt = await c.db('target', signal);
    const ro = await tgt.query<{ r: boolean }>(`select pg_is_in_recovery() as r`);
    if (ro.rows[0].r) throw new CutoverError('PRECONDITION', 'the target is a standby in recovery: it cannot take writes', { exitCode: 1 });
    await tgt.query(`insert into public.cutover_sentinel (token) values ($1) on conflict (token) do nothing`, [`${io.state().runId}:${c.direction}:resume`]);
    return { targetWritable: true };
  },
};

const postverify: P = {
  name: 'postverify',
  plan: (p) => ({ action: `compare row counts of the published tables (the ${sideWords(p).tgt} may have fewer only by the DELETEs it counted since the switch) and check sequences on the ${sideWords(p).tgt} ≥ the ${sideWords(p).src}`, undo: 'nothing to undo (read-only)' }),
  timeoutMs: (c) => c.timeouts.postverify,
  async run(c, signal, io) {
    const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
    const tables = (phaseRecord(io.state(), 'preflight')?.detail?.tables as Array<{ schema: string; name: string; rowFilter?: string }>) ?? [];
    const baseline = phaseRecord(io.state(), 'switch')?.detail?.deleteBaseline as Record<string, number> | undefined;
    const rowCounts: Array<{ table: string; source: number; target: number }> = [];
    for (const t of tables) {
      signal.throwIfAborted();
      const q = `select count(*)::int8 as n from ${qualified(t.schema, t.name)}`;
      // a row-filtered table (a shard) holds on the target only the source rows inside its filter
      const onSource = t.rowFilter ? `${q} where coalesce((${t.rowFilter}), false)` : q;
      const [a, b] = [(await src.query(onSource)).rows[0].n, (await tgt.query(q)).rows[0].n];
      rowCounts.push({ table: qualified(t.schema, t.name), source: Number(a), target: Number(b) });
    }
    // The source is fenced: the target can only have more rows (new writes), or fewer by the
    // app's DELETEs on it since the switch (n_tup_del delta; without a baseline: not excused).
    const judge = async () => {
      const now = baseline && tables.length ? await tableDeleteCounters(tgt, tables) : undefined;
      const counts: PostverifyCount[] = rowCounts.map((x) => ({ ...x, targetDeletes: now && baseline ? (now.get(x.table) ?? 0) - (baseline[x.table] ?? 0) : undefined }));
      return { counts, ...judgePostverifyCounts(counts) };
    };
    let j = await judge();
    // cumulative statistics reach pg_stat_user_tables up to ~1 s late: look again before failing
    for (const until = c.clock.now() + 2000; !j.ok && baseline && c.clock.now() < until; j = await judge()) await c.clock.sleep(200, signal);
    const seq = await verifySequences(src, tgt);
    if (!j.ok || !seq.ok)
      throw new CutoverError('PRECONDITION', `post-verify found differences: ${[...j.failures, ...seq.checks.filter((x) => !x.ok).map((x) => `sequence ${x.sequence} behind`)].slice(0, 5).join('; ')}`, { exitCode: 1 });
    for (const w of j.warnings) c.log(`postverify: ${w}`);
    return { tables: j.counts.length, counts: j.counts, sequencesOk: seq.ok, warnings: j.warnings };
  },
};

const reverse: P = {
  name: 'reverse',
  plan: (p) => ({
    action: `prove the reverse replication ${p.reverseSubscription} (started in the switch phase) carries writes: a marker row written on the ${sideWords(p).tgt} must appear on the ${sideWords(p).src}, so \`cutover rollback\` loses nothing`,
    undo: 'nothing to undo (traffic already moved; stop it with `cutover replicate stop`)',
  }),
  skip: (c) => (c.reverse ? undefined : 'reverse replication not requested'),
  timeoutMs: (c) => c.timeouts.reverse,
  async run(c, signal, io) {
    const [src, tgt] = [await c.db('source', signal), await c.db('target', signal)];
    const token = `${io.state().runId}:${c.direction}:reverse`;
    const rt = await sentinelRoundTrip(tgt, src, token, { timeoutMs: c.timeouts.reverse - 500, signal, log: c.log });
    const st = await replicationStatus({ source: c.target, target: c.source, name: c.reverseName });
    return { subscription: st.subscription, slot: st.slot, latencyMs: rt.latencyMs, lagBytes: st.lagBytes };
  },
};

/** The phases, in order. */
export const SWITCHOVER_PHASES: readonly P[] = [preflight, catchup, readiness, fencePhase, sentinel, sequences, switchPhase, resume, postverify, reverse];

/**
 * Going back past the point of no return, in this order: fence the target (traffic may be on it:
 * NOLOGIN for the app roles, sessions terminated), point traffic back, wait until the reverse
 * replication has carried everything written on the target to the source (a marker row round
 * trip), and move the source's sequences past the target's. Only then may the phases' own undo
 * unfence the source. The first failing step stops the retreat (the source stays fenced).
 */
export async function retreat(c: RunCtx, state: SwitchoverState): Promise<UndoStep[]> {
  const out: UndoStep[] = [];
  const run = async (change: Change, fn: () => Promise<unknown>) => {
    if (out.some((s) => s.outcome === 'failed')) return;
    out.push(await step(change, fn));
  };
  const tgt = await c.db('target');
  for (const role of roles(state)) {
    const r = await tgt.query<{ l: boolean }>(`select rolcanlogin as l from pg_roles where rolname = $1`, [role]);
    if (!r.rows.length) continue;
    await run({ kind: 'target-fenced', role, previous: r.rows[0].l }, () => tgt.query(`alter role ${quoteIdent(role)} nologin`));
  }
  await run({ kind: 'sessions-terminated', pids: [] }, async () => {
    const t = await terminateSessions(tgt, roles(state), { timeoutMs: Math.max(5000, c.timeouts.fence - 1000) });
    if (t.remaining) throw new Error(`${t.remaining} app session(s) still connected to the target`);
  });
  await run({ kind: 'switched-back', strategy: c.sw.name, to: c.fromSide }, () => c.sw.switchTo(c.fromSide, c.switchCtx('retreat')));
  const token = `${state.runId}:${c.direction}:retreat`;
  await run({ kind: 'reverse-drained', token }, async () => {
    const src = await c.db('source');
    await sentinelRoundTrip(tgt, src, token, { timeoutMs: c.timeouts.reverse });
    await syncSequences(tgt, src, { buffer: c.sequenceBuffer });
  });
  return out;
}
