/**
 * Write fencing on the old primary. Incomplete fencing is the failure users report most, so the
 * app roles are every login role except superusers, replication roles and the admin role doing the
 * switchover (unless given), and every fence ends by checking that no app session is left.
 *
 * Each change is handed to `record` BEFORE it is made, with the previous value, so that a process
 * killed between the two still leaves enough in the state file to undo it (`unfence`).
 */
import type pg from 'pg';
import { CutoverError, redactSecrets } from './errors.ts';
import { quoteIdent, quoteLiteral, sqlError } from './pg.ts';
import type { Change } from './switchover/state.ts';
import { checkGrace, drainWithGrace, type GraceReport } from './grace.ts';

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
  /**
   * pause: the pooler's own server connections (pgbouncerServerPids). When given, app sessions
   * that bypass the pooler are ended (they are not held by PAUSE); without it pause changes nothing.
   */
  poolerPids?: number[];
  /**
   * terminate: ms an in-flight transaction gets to end after NOLOGIN before it is terminated
   * (idle sessions are ended at once). 0 or absent: every session is terminated at once.
   */
  grace?: number;
}

export interface FenceResult {
  strategy: FenceStrategy;
  roles: string[];
  terminated: number;
  /** App sessions still present after the deadline (0 on success). */
  remaining: number;
  ms: number;
  /** terminate with `grace`: what the in-flight transactions did (held time, finished vs terminated). */
  grace?: GraceReport;
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
  if (opts.grace) {
    if (strategy !== 'terminate') throw new CutoverError('USAGE', `a fence grace applies to the terminate fence only (got --fence ${strategy})`, { hint: 'use --fence terminate with --fence-grace, or drop --fence-grace' });
    checkGrace(opts.grace, opts.timeoutMs ?? 10_000);
  }
  if (strategy === 'pause') {
    if (!opts.poolerPids) return { strategy, roles: [...opts.roles], terminated: 0, remaining: 0, ms: 0 };
    try {
      const t = await terminateBypassingSessions(client, opts.roles, opts.poolerPids, { timeoutMs: opts.timeoutMs, record: opts.record, signal: opts.signal });
      return { strategy, roles: (await expandRoles(client, opts.roles)).roles, terminated: t.terminated, remaining: t.remaining, ms: Date.now() - t0 };
    } catch (e) {
      throw sqlError(e, 'ending sessions that bypass the pooler (pause fence)');
    }
  }
  let roles: string[];
  try {
    // A NOLOGIN group role fences none of its members (sessions carry the member's name): fence the members.
    roles = (await expandRoles(client, opts.roles)).roles;
  } catch (e) {
    throw sqlError(e, 'resolving the app roles to fence');
  }
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
      const g = opts.grace ? await drainWithGrace(client, roles, { graceMs: opts.grace, record: opts.record, signal: opts.signal }) : undefined;
      const t = await terminateSessions(client, roles, { timeoutMs: opts.timeoutMs, record: opts.record, signal: opts.signal });
      if (g) return { strategy, roles, ...t, terminated: t.terminated + g.terminated + g.idleTerminated, ms: Date.now() - t0, grace: g };
      return { strategy, roles, ...t, ms: Date.now() - t0 };
    }
    // read-only
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
    // Taken after every ALTER has committed: a session that logged in during the loop (as a role
    // not yet altered) started before this instant and is cut below; one that starts after it
    // gets the setting. Taken before the loop, such sessions kept read-write and were spared.
    const fencedAt = new Date((await client.query<{ now: Date }>(`select clock_timestamp() as now`)).rows[0].now);
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

// ---------------------------------------------------------------------------------------------
// Coverage: who the fence reaches, who it does not, and who else it hits
// ---------------------------------------------------------------------------------------------

/**
 * The login roles a fence must act on for `roles`: each given login role, plus every login member
 * (recursively) of each given group role. Superuser members are not fenced (NOLOGIN on an admin
 * role locks the operators out): they are reported in `skipped` and show up in fenceCoverage.
 */
export async function expandRoles(client: pg.Client, roles: string[]): Promise<{ roles: string[]; expanded: Record<string, string[]>; missing: string[]; skipped: string[] }> {
  if (!roles.length) return { roles: [], expanded: {}, missing: [], skipped: [] };
  const r = await client.query<{ given: string; member: string | null; canlogin: boolean; su: boolean; exists: boolean }>(
    `with recursive given as (select unnest($1::text[]) as name),
          tree(given, oid) as (
            select g.name, r.oid from given g join pg_roles r on r.rolname = g.name
            union
            select t.given, m.member from tree t join pg_auth_members m on m.roleid = t.oid)
     select g.name as given, r.rolname as member, coalesce(r.rolcanlogin, false) as canlogin, coalesce(r.rolsuper, false) as su,
            exists (select 1 from pg_roles x where x.rolname = g.name) as exists
       from given g left join tree t on t.given = g.name left join pg_roles r on r.oid = t.oid
      order by 1, 2`,
    [roles],
  );
  const out = new Set<string>();
  const expanded: Record<string, string[]> = {};
  const missing: string[] = [];
  const skipped = new Set<string>();
  for (const x of r.rows) {
    if (!x.exists) {
      if (!missing.includes(x.given)) missing.push(x.given);
      continue;
    }
    if (!x.member) continue;
    if (x.member === x.given) {
      // a given role is kept as given (terminate reports a missing one; NOLOGIN on a group is harmless)
      if (x.canlogin || !r.rows.some((y) => y.given === x.given && y.member !== x.given)) out.add(x.member);
      continue;
    }
    if (!x.canlogin) continue;
    if (x.su) {
      skipped.add(x.member);
      continue;
    }
    out.add(x.member);
    (expanded[x.given] ??= []).push(x.member);
  }
  for (const m of missing) out.add(m); // fence() then says "does not exist"
  return { roles: [...out].sort(), expanded, missing, skipped: [...skipped].sort() };
}

export interface UnfencedSessions {
  role: string;
  /** why the fence does not reach it */
  kind: 'superuser' | 'replication role' | 'the connecting role' | 'not in the fenced roles';
  sessions: number;
  applications: string[];
}

export interface CoverageReport {
  /** The roles the fence will act on (groups expanded). */
  roles: string[];
  /** Client sessions on this database that the fence would leave writing. */
  unfenced: UnfencedSessions[];
  /** Fenced roles that also use other databases of the cluster (the fence is cluster-wide for them). */
  alsoElsewhere: Array<{ role: string; databases: string[] }>;
}

/**
 * Our own tools' sessions (this process, the CLI, and the lab's helpers such as the rehearsal's
 * fault injectors `cutover-fault-*`), which are not application writers: every application_name
 * we set starts with `cutover-`.
 */
const OUR_APPS = `coalesce(a.application_name, '') like 'cutover-%'`;

/** Everything a fence would miss or over-reach on this database. Read-only. */
export async function fenceCoverage(client: pg.Client, roles: string[]): Promise<CoverageReport> {
  const { roles: expanded } = await expandRoles(client, roles);
  const u = await client.query<{ role: string; su: boolean; repl: boolean; me: boolean; n: number; apps: string[] }>(
    `select a.usename as role, coalesce(r.rolsuper, false) as su, coalesce(r.rolreplication, false) as repl, a.usename = current_user as me,
            count(*)::int as n, array_agg(distinct coalesce(nullif(a.application_name, ''), '(no application_name)')) as apps
       from pg_stat_activity a left join pg_roles r on r.rolname = a.usename
      where a.datname = current_database() and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
        and not (a.usename = any($1::text[])) and not (${OUR_APPS})
      group by 1, 2, 3, 4 order by 1`,
    [expanded],
  );
  const unfenced: UnfencedSessions[] = u.rows.map((x) => ({
    role: x.role,
    kind: x.su ? 'superuser' : x.repl ? 'replication role' : x.me ? 'the connecting role' : 'not in the fenced roles',
    sessions: x.n,
    applications: x.apps,
  }));
  const e = await client.query<{ role: string; dbs: string[] }>(
    `select role, array_agg(distinct db::text order by db::text) as dbs from (
        select a.usename::text as role, a.datname::text as db from pg_stat_activity a
         where a.usename = any($1::text[]) and a.datname is not null and a.datname <> current_database()
        union
        select r.rolname::text, d.datname::text from pg_db_role_setting s join pg_roles r on r.oid = s.setrole join pg_database d on d.oid = s.setdatabase
         where r.rolname = any($1::text[]) and d.datname <> current_database()
     ) x group by role order by role`,
    [expanded],
  );
  return { roles: expanded, unfenced, alsoElsewhere: e.rows.map((x) => ({ role: x.role, databases: x.dbs })) };
}

/**
 * Refuse a fence that would leave a writer: an empty role list (fences nothing), or client
 * sessions on this database of roles the fence does not reach (superusers, REPLICATION roles, the
 * connecting role, unlisted roles) unless each is named in `allowUnfenced`. Returns the report,
 * with `warnings` for roles the fence also locks out of other databases.
 */
export async function assertFenceCoverage(client: pg.Client, roles: string[], opts: { allowUnfenced?: string[]; allowEmpty?: boolean } = {}): Promise<CoverageReport & { warnings: string[] }> {
  const report = await fenceCoverage(client, roles);
  if (!report.roles.length && !opts.allowEmpty)
    throw new CutoverError('PRECONDITION', 'the fence has no application role to act on: it would fence nothing and the phase would pass', {
      hint: 'name the roles your applications log in as with --app-roles (group roles are expanded to their members)',
    });
  const allowed = new Set(opts.allowUnfenced ?? []);
  const left = report.unfenced.filter((x) => !allowed.has(x.role));
  if (left.length)
    throw new CutoverError(
      'PRECONDITION',
      `the fence would not reach ${left.length} role(s) with sessions on this database: ${left.map((x) => `${x.role} (${x.kind}; ${x.sessions} session(s): ${x.applications.join(', ')})`).join('; ')} — they could keep writing on the old primary after the switch (split brain)`,
      {
        hint: `move those applications to a fenced role, add the role to --app-roles, or accept it explicitly: ${left.map((x) => `--allow-unfenced ${x.role}`).join(' ')}`,
      },
    );
  const warnings = report.alsoElsewhere.map(
    (x) => `role ${x.role} also uses database(s) ${x.databases.join(', ')} of this cluster: the fence (ALTER ROLE) applies there too, for as long as it lasts and after a completed run`,
  );
  return { ...report, warnings };
}

/**
 * App roles for this database only: login roles (not superuser, replication, us or pg_*) that have
 * sessions on it, own something in it, or may write to one of its tables. Roles of other
 * databases of the cluster are left alone (discoverAppRoles fences every login role of the cluster).
 */
export async function discoverDatabaseAppRoles(client: pg.Client): Promise<{ roles: string[]; alsoElsewhere: CoverageReport['alsoElsewhere'] }> {
  const r = await client.query<{ rolname: string }>(
    `select r.rolname from pg_roles r
      where r.rolcanlogin and not r.rolsuper and not r.rolreplication and r.rolname <> current_user and r.rolname !~ '^pg_'
        and (exists (select 1 from pg_stat_activity a where a.usename = r.rolname and a.datname = current_database())
          or exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                      where n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_toast'
                        and c.relkind in ('r','p')
                        and (c.relowner = r.oid or has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))))
      order by 1`,
  );
  const roles = r.rows.map((x) => x.rolname);
  const cov = await fenceCoverage(client, roles);
  return { roles, alsoElsewhere: cov.alsoElsewhere };
}

export interface DatabaseOpened {
  database: string;
  setting: 'default_transaction_read_only';
  previous: string;
}

/**
 * Rollback after a `--fence-scope database` run: the old database itself is read-only
 * (ALTER DATABASE … SET default_transaction_read_only), which openRoles does not touch. Lift it,
 * handing `record` what was there first so that an abort of the rollback can put it back with
 * closeDatabase — on this same server. (Not as a `database-setting` change: the abort path
 * unfences those on the run's *source*, which in a rollback is the other server.)
 */
export async function openDatabase(client: pg.Client, record: (c: DatabaseOpened) => Promise<void>): Promise<DatabaseOpened | null> {
  await readWriteSession(client);
  const db = (await client.query<{ db: string }>(`select current_database() as db`)).rows[0].db;
  const previous = await roleSetting(client, '', 'default_transaction_read_only', db);
  if (previous !== 'on') return null;
  const opened: DatabaseOpened = { database: db, setting: 'default_transaction_read_only', previous };
  await record(opened);
  await client.query(`alter database ${quoteIdent(db)} reset default_transaction_read_only`);
  return opened;
}

/** Undo openDatabase (abort of a rollback): the database is read-only again for new sessions. */
export async function closeDatabase(client: pg.Client, opened: DatabaseOpened): Promise<void> {
  await readWriteSession(client);
  await client.query(`alter database ${quoteIdent(opened.database)} set ${quoteIdent(opened.setting)} = ${quoteLiteral(opened.previous)}`);
}

/**
 * The pause fence holds queries in the pooler; a client connected to Postgres directly (not
 * through the pooler) keeps writing. End the app-role sessions on this database that are not one
 * of the pooler's own server connections (`poolerPids`: SHOW SERVERS' remote_pid, see
 * pgbouncerServerPids in migration/pgbouncer-safety.ts), then look again until none is left, like
 * the other fences. Returns what was ended and what remains.
 */
export async function terminateBypassingSessions(
  client: pg.Client,
  roles: string[],
  poolerPids: number[],
  opts: { timeoutMs?: number; record?: (c: Change) => Promise<void>; signal?: AbortSignal } = {},
): Promise<{ terminated: number; remaining: number; pids: number[] }> {
  const { roles: expanded } = await expandRoles(client, roles);
  if (!expanded.length) return { terminated: 0, remaining: 0, pids: [] };
  const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
  const where = `usename = any($1::text[]) and pid <> pg_backend_pid() and datname = current_database() and backend_type = 'client backend' and not (pid = any($2::int[]))`;
  const all: number[] = [];
  let clean = 0;
  for (;;) {
    const r = await client.query<{ pid: number; ok: boolean }>(`select pid, pg_terminate_backend(pid) as ok from pg_stat_activity where ${where}`, [expanded, poolerPids]);
    const pids = r.rows.filter((x) => x.ok).map((x) => x.pid);
    all.push(...pids);
    if (pids.length && opts.record) await opts.record({ kind: 'sessions-terminated', pids });
    await new Promise((res) => setTimeout(res, 25));
    const left = (await client.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where ${where}`, [expanded, poolerPids])).rows[0].n;
    clean = left === 0 && pids.length === 0 ? clean + 1 : 0;
    if (clean >= 2 || Date.now() > deadline || opts.signal?.aborted) return { terminated: all.length, remaining: left, pids: all };
  }
}

/**
 * A session opened after a `--fence-scope database` fence is itself read-only (the database
 * default applies to the admin role too), and ALTER DATABASE/ALTER ROLE then fail with "cannot
 * execute … in a read-only transaction": undo and rollback could not lift the fence.
 */
async function readWriteSession(client: pg.Client): Promise<void> {
  await client.query(`set default_transaction_read_only = off`).catch(() => {});
}

/** Undo the fence changes (in reverse order of recording). Other change kinds are ignored. */
export async function unfence(client: pg.Client, changes: Change[]): Promise<Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }>> {
  const out: Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }> = [];
  await readWriteSession(client);
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
      out.push({ change: c, outcome: 'failed', error: redactSecrets(e?.message ?? String(e)) });
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
  await readWriteSession(client);
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
      out.push({ change: c, outcome: 'failed', error: redactSecrets(e?.message ?? String(e)) });
    }
  }
  return out;
}
