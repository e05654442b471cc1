/**
 * Write fencing on the old primary. Incomplete fencing is the failure users report most, so the
 * app roles are every login role except superusers, replication roles and the admin role doing the
 * switchover (unless given), and every fence ends by checking that no app session is left.
 *
 * Each change is handed to `record` BEFORE it is made, with the previous value, so that a process
 * killed between the two still leaves enough in the state file to undo it (`unfence`).
 */
import type pg from 'pg';
import { CutoverError } from './errors.ts';
import { quoteIdent, quoteLiteral, sqlError } from './pg.ts';
import type { Change } from './switchover/state.ts';

export type FenceStrategy = 'terminate' | 'read-only' | 'pause';

/** Login roles an application may use: not superuser, not replication, not us, not pg_* built-ins. */
export async function discoverAppRoles(client: pg.Client): Promise<string[]> {
  const r = await client.query<{ rolname: string }>(
    `select rolname from pg_roles
      where rolcanlogin and not rolsuper and not rolreplication
        and rolname <> current_user and rolname !~ '^pg_'
      order by rolname`,
  );
  return r.rows.map((x) => x.rolname);
}

export interface FenceOptions {
  roles: string[];
  /** read-only: ALTER ROLE (default) or ALTER DATABASE (also fences roles you did not list). */
  scope?: 'roles' | 'database';
  timeoutMs?: number;
  record: (change: Change) => Promise<void>;
  signal?: AbortSignal;
}

export interface FenceResult {
  strategy: FenceStrategy;
  roles: string[];
  terminated: number;
  /** App sessions still present after the deadline (0 on success). */
  remaining: number;
  ms: number;
}

async function roleSetting(client: pg.Client, role: string, setting: string, database?: string): Promise<string | null> {
  const r =
    database === undefined
      ? await client.query<{ setconfig: string[] | null }>(
          `select s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = $1 and s.setdatabase = 0`,
          [role],
        )
      : await client.query<{ setconfig: string[] | null }>(
          `select s.setconfig from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = $1 and s.setrole = 0`,
          [database],
        );
  for (const kv of r.rows[0]?.setconfig ?? []) {
    const i = kv.indexOf('=');
    if (kv.slice(0, i) === setting) return kv.slice(i + 1);
  }
  return null;
}

/** Terminate the sessions of `roles` (except ours) until none is left or the deadline passes. */
export async function terminateSessions(
  client: pg.Client,
  roles: string[],
  opts: { timeoutMs?: number; startedBefore?: Date; record?: (c: Change) => Promise<void>; signal?: AbortSignal; cleanLooks?: number } = {},
): Promise<{ terminated: number; remaining: number }> {
  if (!roles.length) return { terminated: 0, remaining: 0 };
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  const where = `usename = any($1::text[]) and pid <> pg_backend_pid() and datname = current_database()${opts.startedBefore ? ' and backend_start < $2' : ''}`;
  const params: unknown[] = opts.startedBefore ? [roles, opts.startedBefore] : [roles];
  let terminated = 0;
  // A login that passed its rolcanlogin check just before NOLOGIN committed is still starting up and
  // not yet in pg_stat_activity: only several clean looks in a row, spread over time, prove none is left.
  const cleanLooks = opts.cleanLooks ?? 3;
  let clean = 0;
  for (;;) {
    const r = await client.query<{ pid: number; ok: boolean }>(`select pid, pg_terminate_backend(pid) as ok from pg_stat_activity where ${where}`, params);
    const pids = r.rows.filter((x) => x.ok).map((x) => x.pid);
    terminated += pids.length;
    if (pids.length && opts.record) await opts.record({ kind: 'sessions-terminated', pids });
    // 25 ms between looks: long enough for a login racing NOLOGIN to show up in pg_stat_activity
    // (it is post-authentication by then), short enough that the fence costs clients ~0.1 s, not 0.4 s.
    await new Promise((res) => setTimeout(res, 25));
    const left = await client.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where ${where}`, params);
    const remaining = left.rows[0].n;
    clean = remaining === 0 && pids.length === 0 ? clean + 1 : 0;
    if (clean >= cleanLooks || Date.now() > deadline || opts.signal?.aborted) return { terminated, remaining };
  }
}

export async function fence(client: pg.Client, strategy: FenceStrategy, opts: FenceOptions): Promise<FenceResult> {
  const t0 = Date.now();
  const roles = [...opts.roles];
  if (strategy === 'pause') return { strategy, roles, terminated: 0, remaining: 0, ms: 0 };
  try {
    if (strategy === 'terminate') {
      for (const role of roles) {
        // an aborted fence makes no further change (its running ALTER is cancelled by the caller)
        opts.signal?.throwIfAborted();
        const r = await client.query<{ rolcanlogin: boolean }>(`select rolcanlogin from pg_roles where rolname = $1`, [role]);
        if (!r.rows.length) throw new CutoverError('PRECONDITION', `app role ${role} does not exist on the old primary`, { hint: 'fix --app-roles' });
        await opts.record({ kind: 'role-login', role, previous: r.rows[0].rolcanlogin });
        if (r.rows[0].rolcanlogin) await client.query(`alter role ${quoteIdent(role)} nologin`);
      }
      const t = await terminateSessions(client, roles, { timeoutMs: opts.timeoutMs, record: opts.record, signal: opts.signal });
      return { strategy, roles, ...t, ms: Date.now() - t0 };
    }
    // read-only
    const fencedAt = new Date((await client.query<{ now: Date }>(`select clock_timestamp() as now`)).rows[0].now);
    if (opts.scope === 'database') {
      const db = (await client.query<{ db: string }>(`select current_database() as db`)).rows[0].db;
      const previous = await roleSetting(client, '', 'default_transaction_read_only', db);
      await opts.record({ kind: 'database-setting', database: db, setting: 'default_transaction_read_only', previous });
      await client.query(`alter database ${quoteIdent(db)} set default_transaction_read_only = on`);
    } else {
      for (const role of roles) {
        opts.signal?.throwIfAborted();
        const previous = await roleSetting(client, role, 'default_transaction_read_only');
        await opts.record({ kind: 'role-setting', role, setting: 'default_transaction_read_only', previous });
        await client.query(`alter role ${quoteIdent(role)} set default_transaction_read_only = on`);
      }
    }
    // The setting applies to new sessions only: every app session opened before it goes (those with
    // a write transaction first — backend_xid is set — but all of them, or they could write later).
    const writers = await client.query<{ pid: number }>(
      `select pid from pg_stat_activity where usename = any($1::text[]) and backend_xid is not null and pid <> pg_backend_pid() and pg_terminate_backend(pid)`,
      [roles],
    );
    if (writers.rows.length) await opts.record({ kind: 'sessions-terminated', pids: writers.rows.map((w) => w.pid) });
    const t = await terminateSessions(client, roles, { timeoutMs: opts.timeoutMs, startedBefore: fencedAt, record: opts.record, signal: opts.signal });
    return { strategy, roles, ...t, terminated: t.terminated + writers.rows.length, ms: Date.now() - t0 };
  } catch (e) {
    if (e instanceof CutoverError) throw e;
    if (opts.signal?.aborted) throw new CutoverError('TIMEOUT', `fencing writes (${strategy}) on the old primary was stopped: ${opts.signal.reason?.message ?? 'aborted'}`, { cause: e, exitCode: 1 });
    throw sqlError(e, `fencing writes (${strategy}) on the old primary`);
  }
}

/** Undo the fence changes (in reverse order of recording). Other change kinds are ignored. */
export async function unfence(client: pg.Client, changes: Change[]): Promise<Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }>> {
  const out: Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }> = [];
  for (const c of [...changes].reverse()) {
    try {
      if (c.kind === 'role-login') {
        if (c.previous) await client.query(`alter role ${quoteIdent(c.role)} login`);
      } else if (c.kind === 'role-setting') {
        await client.query(
          c.previous === null
            ? `alter role ${quoteIdent(c.role)} reset ${quoteIdent(c.setting)}`
            : `alter role ${quoteIdent(c.role)} set ${quoteIdent(c.setting)} = ${quoteLiteral(c.previous)}`,
        );
      } else if (c.kind === 'database-setting') {
        await client.query(
          c.previous === null
            ? `alter database ${quoteIdent(c.database)} reset ${quoteIdent(c.setting)}`
            : `alter database ${quoteIdent(c.database)} set ${quoteIdent(c.setting)} = ${quoteLiteral(c.previous)}`,
        );
      } else continue;
      out.push({ change: c, outcome: 'ok' });
    } catch (e: any) {
      out.push({ change: c, outcome: 'failed', error: e?.message ?? String(e) });
    }
  }
  return out;
}

export function isFenceChange(c: Change): boolean {
  return c.kind === 'role-login' || c.kind === 'role-setting' || c.kind === 'database-setting';
}

/**
 * Rollback: the target is the old primary, still fenced by the forward run. Give the app roles
 * their login back (and drop a read-only setting) before traffic moves to it; each change is
 * recorded first so that an abort can fence it again (`closeRoles`).
 */
export async function openRoles(client: pg.Client, roles: string[], record: (c: Change) => Promise<void>): Promise<string[]> {
  const opened: string[] = [];
  for (const role of roles) {
    const r = await client.query<{ rolcanlogin: boolean }>(`select rolcanlogin from pg_roles where rolname = $1`, [role]);
    if (!r.rows.length) continue;
    const previousReadOnly = await roleSetting(client, role, 'default_transaction_read_only');
    const previousLogin = r.rows[0].rolcanlogin;
    if (previousLogin && previousReadOnly !== 'on') continue;
    await record({ kind: 'target-opened', role, previousLogin, previousReadOnly });
    if (!previousLogin) await client.query(`alter role ${quoteIdent(role)} login`);
    if (previousReadOnly === 'on') await client.query(`alter role ${quoteIdent(role)} reset default_transaction_read_only`);
    opened.push(role);
  }
  return opened;
}

export async function closeRoles(client: pg.Client, changes: Change[]): Promise<Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }>> {
  const out: Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }> = [];
  for (const c of [...changes].reverse()) {
    if (c.kind !== 'target-opened') continue;
    try {
      if (!c.previousLogin) await client.query(`alter role ${quoteIdent(c.role)} nologin`);
      if (c.previousReadOnly !== null) await client.query(`alter role ${quoteIdent(c.role)} set default_transaction_read_only = ${quoteLiteral(c.previousReadOnly)}`);
      out.push({ change: c, outcome: 'ok' });
    } catch (e: any) {
      out.push({ change: c, outcome: 'failed', error: e?.message ?? String(e) });
    }
  }
  return out;
}
