/**
 * Rehearsing on someone else's servers (`clusters.provider: external`, e.g. a staging clone of
 * production). The lab does not own these servers, so it keeps a ledger per side: what the
 * database held when the run started, and every object the lab itself created there — by
 * inventory around each step that creates objects (seed, app role and tables, schema copy,
 * replication) and by the names the switchover gives its own (`cutover_*` publications, slots and
 * subscriptions, the sentinel table, the app role). At the end of the run (also after a failure,
 * Ctrl-C or an abort) exactly those are removed, and nothing else: the user's tables, roles and
 * functions are never dropped. What could not be removed is named, and fails the run.
 *
 * More than one run needs the servers back where the first run started: the scenario's
 * `clusters.reset.command` runs before each run after the first.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Scenario } from '../../scenarios/schema.ts';
import { resolveClusterUrl } from '../../scenarios/rules.ts';
import { withClient, quoteIdent, redactUrl, sameServerReason, serverIdentity, type Client, type ServerIdentity } from '../../migration/pg.ts';
import { CutoverError, describeError, redactValues, redactSecrets } from '../../migration/errors.ts';
import { stopReplication, parseTableName, displayName } from '../../migration/replication.ts';
import { sideFacts as serverFacts, tablesWithoutKey } from '../../migration/preflight.ts';
import { SENTINEL_TABLE } from '../../migration/sentinel.ts';
import { runCommand } from '../../migration/switch/command.ts';
import { APP_WRITES_TABLE, APP_DOMAIN_TABLES } from '../../load/app/server.ts';

export type Side = 'old' | 'new';

/** The objects of one database (and the cluster's roles), as `kind name` strings. */
const INVENTORY_SQL = `
with ext as (select objid, classid from pg_depend where deptype = 'e'),
     db as (select current_database() as name)
select 'role ' || quote_ident(rolname) as o from pg_roles where rolname !~ '^pg_'
union all select 'publication ' || quote_ident(pubname) from pg_publication
union all select 'subscription ' || quote_ident(subname) from pg_subscription where subdbid = (select oid from pg_database where datname = (select name from db))
union all select 'slot ' || quote_ident(slot_name) from pg_replication_slots where database = (select name from db) and slot_name !~ '^pg_\\d+_sync_'
union all select 'extension ' || quote_ident(extname) from pg_extension
union all select 'schema ' || quote_ident(nspname) from pg_namespace n
  where nspname !~ '^pg_' and nspname <> 'information_schema' and not exists (select 1 from ext where ext.objid = n.oid and ext.classid = 'pg_namespace'::regclass)
union all select case c.relkind when 'v' then 'view ' when 'm' then 'materialized view ' when 'S' then 'sequence ' when 'f' then 'foreign table ' else 'table ' end
    || format('%I.%I', n.nspname, c.relname)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and not c.relispartition and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
    and not exists (select 1 from ext where ext.objid = c.oid and ext.classid = 'pg_class'::regclass)
union all select case p.prokind when 'a' then 'aggregate ' when 'p' then 'procedure ' else 'function ' end
    || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
    and not exists (select 1 from ext where ext.objid = p.oid and ext.classid = 'pg_proc'::regclass)
union all select case t.typtype when 'd' then 'domain ' else 'type ' end || format('%I.%I', n.nspname, t.typname)
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
  where t.typtype in ('d', 'e', 'r', 'c') and (t.typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c')
    and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
    and not exists (select 1 from ext where ext.objid = t.oid and ext.classid = 'pg_type'::regclass)`;

async function inventoryOf(c: Client): Promise<Set<string>> {
  return new Set((await c.query<{ o: string }>(INVENTORY_SQL)).rows.map((r) => r.o));
}

export async function inventory(url: string): Promise<Set<string>> {
  return withClient(url, inventoryOf, { applicationName: 'cutover-ledger', connectTimeoutMs: 5000 });
}

/** A lab name already taken on a side: its problem and hint (the up-front check and each ledger's open). */
function takenLabNames(inv: Set<string>, side: Side, s: Scenario, appRole: string): { problem: string; hint: string } | undefined {
  const taken = [...inv].filter((o) => labNamed(o, s, appRole));
  if (!taken.length) return undefined;
  return {
    problem: `the ${side} server already has object(s) with the names the lab gives its own: ${taken.join(', ')}`,
    hint: 'the lab would use and then remove them; if an interrupted rehearsal left them (kill -9), drop them (cutover replicate stop removes cutover_* replication objects), or reset the server with clusters.reset',
  };
}

/** The names the lab (and the switchover it runs) give their own objects. */
function labNamed(o: string, s: Scenario, appRole: string): boolean {
  if (o === `role ${quoteIdent(appRole)}`) return true;
  if (/^(publication|subscription|slot) "?cutover_/.test(o)) return true;
  if (o === `table public.${SENTINEL_TABLE}`) return true;
  return s.app === 'sample' && [APP_WRITES_TABLE, ...APP_DOMAIN_TABLES].some((t) => o === `table public.${t}`);
}

/** Order of removal: what depends on something goes before it (a view before its table, a table before its type). */
const REMOVAL_ORDER = ['subscription', 'publication', 'slot', 'view', 'materialized view', 'table', 'foreign table', 'sequence', 'aggregate', 'procedure', 'function', 'domain', 'type', 'extension', 'schema', 'role'] as const;

function kindOf(o: string): { kind: (typeof REMOVAL_ORDER)[number]; name: string } {
  const kind = REMOVAL_ORDER.find((k) => o.startsWith(`${k} `))!;
  return { kind, name: o.slice(kind.length + 1) };
}

function dropStatements(kind: (typeof REMOVAL_ORDER)[number] | string, names: string[]): string[] {
  switch (kind) {
    case 'subscription':
      // detach the slot first: its publisher may be gone, and the slot is in the ledger of that side
      return names.flatMap((n) => [`alter subscription ${n} disable`, `alter subscription ${n} set (slot_name = none)`, `drop subscription ${n}`]);
    case 'slot':
      return names.map((n) => `select pg_drop_replication_slot(slot_name) from pg_replication_slots where quote_ident(slot_name) = '${n.replace(/'/g, "''")}'`);
    case 'role':
      // the privileges it was granted on the user's tables go with it (DROP OWNED revokes them)
      return names.flatMap((n) => [`drop owned by ${n}`, `drop role ${n}`]);
    default:
      return [`drop ${kind} ${names.join(', ')}`];
  }
}

/**
 * The plan for removing objects (pure): one step per kind, in REMOVAL_ORDER, each with the
 * statements that drop all of its objects at once — never CASCADE, so nothing else can go with them.
 */
export function removalPlan(objects: readonly string[]): Array<{ kind: string; names: string[]; statements: string[] }> {
  return REMOVAL_ORDER.flatMap((kind) => {
    const names = objects.filter((o) => kindOf(o).kind === kind).map((o) => kindOf(o).name);
    return names.length ? [{ kind, names, statements: dropStatements(kind, names) }] : [];
  });
}

export interface LedgerResult {
  dropped: string[];
  remaining: string[];
}

/** What one side held at the start of the run, and what the lab created on it since. */
export class SideLedger {
  readonly created = new Set<string>();
  constructor(
    readonly side: Side,
    readonly url: string,
    readonly atStart: ReadonlySet<string>,
  ) {}

  /** Run `step`; whatever appeared on this side meanwhile is the lab's (recorded even when the step fails). */
  async around<T>(step: () => Promise<T>): Promise<T> {
    const before = await inventory(this.url);
    try {
      return await step();
    } finally {
      const after = await inventory(this.url).catch(() => new Set<string>());
      for (const o of after) if (!before.has(o) && !this.atStart.has(o)) this.created.add(o);
    }
  }
}

export class ExternalLedger {
  private constructor(
    readonly s: Scenario,
    readonly appRole: string,
    readonly sides: Record<Side, SideLedger>,
  ) {}

  /**
   * Take stock of both servers before the lab touches them. Refused when a name the lab gives its
   * own objects is already taken there: it would be used (and then removed) as if it were the lab's.
   */
  static async open(s: Scenario, urls: Record<Side, string>, appRole: string): Promise<ExternalLedger> {
    const sides = {} as Record<Side, SideLedger>;
    for (const side of ['old', 'new'] as const) {
      const inv = await inventory(urls[side]);
      const taken = takenLabNames(inv, side, s, appRole);
      if (taken) throw new CutoverError('CONFIG', taken.problem, { hint: taken.hint });
      sides[side] = new SideLedger(side, urls[side], inv);
    }
    return new ExternalLedger(s, appRole, sides);
  }

  /** The objects the lab created on a side that are there now. */
  private async present(side: Side): Promise<string[]> {
    const l = this.sides[side];
    const now = await inventory(l.url);
    return [...now].filter((o) => !l.atStart.has(o) && (l.created.has(o) || labNamed(o, this.s, this.appRole)));
  }

  /**
   * Remove what the lab created, on both sides: the replication first (as `cutover replicate stop`,
   * both legs), then every recorded object, in dependency order, never with CASCADE (so nothing the
   * lab did not create can go with it). Idempotent: a second sweep finds nothing to do.
   */
  async sweep(log: (l: string) => void = () => {}): Promise<LedgerResult> {
    const dropped: string[] = [];
    const remaining: string[] = [];
    // what the switchover child made (known by name) goes into the ledger too, before it goes
    for (const side of ['old', 'new'] as const) for (const o of await this.present(side).catch(() => [])) this.sides[side].created.add(o);
    for (const [name, source, target] of [['main', 'old', 'new'], ['main_reverse', 'new', 'old']] as const) {
      const res = await stopReplication({ source: this.sides[source].url, target: this.sides[target].url, name }).catch(() => undefined);
      if (res) dropped.push(...res.dropped);
    }
    for (const side of ['old', 'new'] as const) {
      const l = this.sides[side];
      let left: string[];
      try {
        left = await this.present(side);
      } catch (e) {
        remaining.push(`the ${side} server could not be checked: ${describeError(e).split('\n')[0]}`);
        continue;
      }
      const errors = new Map<string, string>();
      // a few passes: an object another pass could not drop yet (a function a table default uses) goes next time
      for (let pass = 0; pass < 3 && left.length; pass++) {
        for (const { kind, names, statements } of removalPlan(left)) {
          await withClient(l.url, async (c) => {
            try {
              for (const sql of statements) await c.query(sql);
            } catch {
              // one at a time, so one object that cannot go does not keep the others
              for (const n of names)
                for (const sql of dropStatements(kind, [n]))
                  await c.query(sql).catch((e: any) => {
                    errors.set(`${kind} ${n}`, e?.message ?? String(e));
                  });
            }
          }, { applicationName: 'cutover-ledger' }).catch((e) => errors.set(`${kind} (all)`, describeError(e).split('\n')[0]));
        }
        const now = await this.present(side).catch(() => left);
        dropped.push(...left.filter((o) => !now.includes(o)).map((o) => `${o} on ${side}`));
        left = now;
      }
      for (const o of left) remaining.push(`${o} on ${side}${errors.has(o) ? ` (${errors.get(o)})` : ''}`);
    }
    if (dropped.length) log(`external servers: removed what the lab created: ${dropped.join(', ')}`);
    if (remaining.length) log(`external servers: could not remove: ${remaining.join(', ')}`);
    return { dropped, remaining };
  }

  /** The ledger as it may be kept in the run folder (object names only, no connection details). */
  write(file: string, result?: LedgerResult): void {
    const side = (s: Side) => ({ atStart: [...this.sides[s].atStart].sort(), createdByTheLab: [...this.sides[s].created].sort() });
    writeFileSync(file, JSON.stringify({ old: side('old'), new: side('new'), ...(result ? { removed: result.dropped, remaining: result.remaining } : {}) }, null, 2) + '\n');
  }
}

/** The scenario's cluster URLs, `${NAME}` read from the environment. */
export function externalUrls(s: Scenario): Record<Side, string> {
  try {
    return { old: resolveClusterUrl(s.clusters.old.url ?? ''), new: resolveClusterUrl(s.clusters.new.url ?? '') };
  } catch (e: any) {
    throw new CutoverError('CONFIG', `scenario ${s.name}: ${e.message}`, { hint: 'export it before the rehearsal (cutover scenario check names it too)' });
  }
}

/**
 * Back to the starting point before a run after the first: the scenario's reset command, with
 * CUTOVER_OLD_URL and CUTOVER_NEW_URL in its environment. Its output (passwords masked) is kept in
 * the run folder; a command that fails stops the rehearsal before anything else touches the servers.
 */
/** The passwords in the servers' URLs, to mask in whatever the lab keeps (logs, command output). */
export function urlPasswords(urls: Record<string, string>): string[] {
  return Object.values(urls)
    .map((u) => {
      try {
        return decodeURIComponent(new URL(u).password);
      } catch {
        return '';
      }
    })
    .filter(Boolean);
}

export async function resetServers(s: Scenario, runDir: string, log: (l: string) => void, signal?: AbortSignal): Promise<void> {
  const reset = s.clusters.reset;
  if (!reset) throw new CutoverError('CONFIG', `scenario ${s.name}: more than one run on external servers needs clusters.reset`, { hint: 'add clusters.reset: { command: … } that brings both servers back to where the first run started, or run once' });
  const urls = externalUrls(s);
  const passwords = urlPasswords(urls);
  const run = await runCommand(reset.command, { CUTOVER_OLD_URL: urls.old, CUTOVER_NEW_URL: urls.new }, reset.timeoutMs, { signal, cwd: s.file ? dirname(s.file) : undefined });
  const mask = (t: string) => redactValues(t, passwords);
  const output = mask(run.stdout + run.stderr).trimEnd();
  writeFileSync(join(runDir, 'reset.log'), [`$ ${mask(run.command)}`, ...(output ? [output] : []), `# exit ${run.exitCode ?? run.signal} after ${run.ms} ms${run.stopped ? ` (${run.stopped})` : ''}`].join('\n') + '\n');
  log(`reset: exit ${run.exitCode ?? run.signal} after ${run.ms} ms (output in ${join(runDir, 'reset.log')})`);
  if (run.exitCode !== 0)
    throw new CutoverError('CONFIG', `clusters.reset.command ${run.stopped ? `was stopped: ${run.stopped}` : `exited with ${run.exitCode ?? run.signal}`}: ${mask(run.command)}`, {
      detail: mask((run.stderr || run.stdout).trim().split('\n').slice(-5).join('\n')),
      hint: `its output is in ${join(runDir, 'reset.log')}; the run was not started`,
    });
}

/**
 * The lab seeds an external server only when the scenario asks for a dataset, and only into a
 * database that holds no tables of its own: the user's data is never written over.
 */
export async function assertEmptyForSeed(s: Scenario, url: string): Promise<void> {
  const tables = [...(await inventory(url))].filter((o) => o.startsWith('table ')).sort();
  if (tables.length)
    throw new CutoverError('CONFIG', `scenario ${s.name} asks to seed dataset ${s.dataset.preset} into the old server, whose database already holds ${tables.length} table(s) (${tables.slice(0, 5).map((t) => t.slice(6)).join(', ')}${tables.length > 5 ? ', …' : ''})`, {
      hint: 'the lab never seeds into a database with data: remove the dataset block (the server\'s own data is the dataset), or point clusters.old.url at an empty database',
    });
}

/** What the user wrote for a side's URL, for messages: the field, the variable it came from, the URL with its password masked. */
function describeSide(s: Scenario, side: Side, url: string): string {
  const raw = s.clusters[side].url ?? '';
  const env = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw);
  return `clusters.${side}.url (${env ? `\${${env[1]}} = ` : ''}${redactUrl(url)})`;
}

/** The kinds the schema copy creates on new, by name: one there already is a collision. */
const COPIED_KINDS = /^(table|view|materialized view|sequence|foreign table|function|procedure|aggregate|type|domain|schema) /;

interface SideFacts {
  id: ServerIdentity;
  user: string;
  superuser: boolean;
  replication: boolean;
  createSubscription: boolean;
  walLevel: string;
  rds: string | null;
  inventory: Set<string>;
  noKey: Array<{ t: string; s: string; r: string }>;
}

async function sideFacts(url: string, role: string): Promise<SideFacts> {
  return withClient(url, async (c) => {
    const id = await serverIdentity(c);
    // the migration preflight's own reading of the role and settings, and of tables without a key
    const f = await serverFacts(c);
    const [{ u }] = (await c.query<{ u: string }>(`select current_user as u`)).rows;
    const noKey = (await tablesWithoutKey(c)).map((t) => ({ t: displayName(t), s: t.schema, r: t.name }));
    return { id, user: u, superuser: f.isSuperuser, replication: f.canReplicate, createSubscription: f.canSubscribe, walLevel: f.walLevel, rds: f.rdsLogicalReplication, inventory: await inventoryOf(c), noKey };
  }, { role, applicationName: 'cutover-preflight', connectTimeoutMs: 5000 });
}

/**
 * provider external, before anything touches the servers: both answer (host, port, login,
 * database), they are two servers, of the majors the scenario names, old can decode (wal_level),
 * the roles may do what the rehearsal does, every table to replicate has a key, no lab name is
 * taken and the schema copy collides with nothing on new. Every problem found is listed in one
 * error (exit 2), each with where (the field and URL, password masked, or the table) and the fix.
 * Nothing is created, so nothing needs undoing.
 */
export async function checkExternalServers(s: Scenario, appRole: string): Promise<void> {
  const urls = externalUrls(s);
  const problems: string[] = [];
  const hints = new Set<string>();
  const facts: Partial<Record<Side, SideFacts>> = {};
  for (const side of ['old', 'new'] as const) {
    try {
      facts[side] = await sideFacts(urls[side], `${side} server`);
    } catch (e) {
      const ce = e instanceof CutoverError ? e : undefined;
      problems.push(`${describeSide(s, side, urls[side])}: ${(ce?.message ?? describeError(e)).replace(/^error(\[\w+\])?: /, '')}`);
      hints.add(ce?.code === 'AUTH' ? `check the user and password in ${describeSide(s, side, urls[side]).split(' ')[0]} (and pg_hba.conf on that server)` : ce?.hint ?? 'check the URL');
    }
  }
  const { old: o, new: n } = facts;
  // the decision every command makes (migration/pg.ts), worded for the scenario's fields
  const same = !!(o && n && sameServerReason(o.id, n.id));
  if (same) {
    problems.push(
      o!.id.instance !== n!.id.instance
        ? `clusters.old.url and clusters.new.url share system_identifier ${o!.id.systemIdentifier} and one of them is in recovery: a physical standby of the other cannot be the new server: ${redactUrl(urls.old)} and ${redactUrl(urls.new)}`
        : `clusters.old.url and clusters.new.url reach the same server (${o!.id.systemIdentifier ? `system_identifier ${o!.id.systemIdentifier}, ` : ''}started ${o!.id.instance}), database "${o!.id.database}"${o!.id.database === n!.id.database ? ' on both' : ` and "${n!.id.database}"`}: ${redactUrl(urls.old)} and ${redactUrl(urls.new)}`,
    );
    hints.add('point clusters.new.url at the new server (another host or port; a DNS name, a proxy or a pooler can hide that two URLs reach one server)');
  }
  for (const side of ['old', 'new'] as const) {
    const f = facts[side];
    if (!f || same) continue;
    const major = Math.floor(f.id.versionNum / 10000);
    if (major !== s.clusters[side].major) {
      problems.push(`${describeSide(s, side, urls[side])} runs PostgreSQL ${f.id.version}, the scenario says clusters.${side}.major: ${s.clusters[side].major}`);
      hints.add(`fix clusters.${side}.major or the URL`);
    }
    const taken = takenLabNames(f.inventory, side, s, appRole);
    if (taken) {
      problems.push(taken.problem);
      hints.add(taken.hint);
    }
    if (!f.superuser) {
      const needs =
        side === 'old'
          ? `creates its app role ${appRole} and keeps its password out of the server log, publishes your tables and fences the app role (superuser), and the subscription connects as this role (REPLICATION${f.replication ? ', which it has' : ', which it lacks'})`
          : `creates the subscription (superuser${major >= 16 ? `, or on PostgreSQL 16+ pg_create_subscription${f.createSubscription ? ', which it has,' : ', which it lacks,'} with CREATE on the database` : ''}), the app role and the schema copy with your owners and grants (superuser)`;
      problems.push(`${describeSide(s, side, urls[side])} connects as role "${f.user}", which is not a superuser: on the ${side} server the rehearsal ${needs}`);
      hints.add(`connect as a superuser of the staging server, or ALTER ROLE ${quoteIdent(f.user)} SUPERUSER there${side === 'old' ? ' (a real cutover needs at least REPLICATION on old)' : major >= 16 ? ` (a real cutover needs at least GRANT pg_create_subscription TO ${quoteIdent(f.user)} on new)` : ''}`);
    }
  }
  if (o && !same) {
    if (o.rds !== null && o.rds !== undefined ? !['on', '1', 'true'].includes(String(o.rds).toLowerCase()) : o.walLevel !== 'logical') {
      problems.push(`${describeSide(s, 'old', urls.old)}: wal_level is ${o.walLevel}${o.rds !== null ? ` (rds.logical_replication ${o.rds})` : ''}; logical replication needs logical`);
      hints.add(o.rds !== null ? 'set rds.logical_replication = 1 in the parameter group and reboot the instance' : 'ALTER SYSTEM SET wal_level = logical on the old server, then restart it');
    }
    if (s.migration.reverseReplication && n && n.walLevel !== 'logical') {
      problems.push(`${describeSide(s, 'new', urls.new)}: wal_level is ${n.walLevel}; migration.reverseReplication publishes from new, which needs logical`);
      hints.add('ALTER SYSTEM SET wal_level = logical on the new server and restart it, or turn reverseReplication off');
    }
    const listed = s.migration.tables ? new Set(s.migration.tables.map((x) => { const p = parseTableName(x); return `${p.schema}\u0000${p.name}`; })) : undefined;
    const noKey = o.noKey.filter((x) => !listed || listed.has(`${x.s}\u0000${x.r}`)).map((x) => x.t);
    if (noKey.length) {
      problems.push(`${noKey.length} table(s) on the old server have neither a primary key nor a replica identity: ${noKey.slice(0, 20).join(', ')}${noKey.length > 20 ? ', …' : ''} — once published, an UPDATE or DELETE on them fails on old, and the new server could not apply one`);
      hints.add(`add a primary key, or ALTER TABLE ${noKey[0]} REPLICA IDENTITY FULL (or USING INDEX <unique index>)${s.migration.tables ? '' : ', or leave them out with migration.tables'}`);
    }
    if (n) {
      const collide = [...o.inventory].filter((x) => COPIED_KINDS.test(x) && x !== 'schema public' && n.inventory.has(x) && !labNamed(x, s, appRole)).sort();
      if (collide.length) {
        problems.push(`the new server's database already holds ${collide.length} object(s) the schema copy would create: ${collide.slice(0, 20).join(', ')}${collide.length > 20 ? ', …' : ''}`);
        hints.add('point clusters.new.url at an empty database (or drop them there, or have clusters.reset re-create it empty)');
      }
    }
  }
  if (problems.length)
    throw new CutoverError('CONFIG', `scenario ${s.name}: the external servers are not ready for a rehearsal; nothing was changed on either:\n  - ${problems.map((p) => redactSecrets(p)).join('\n  - ')}`, { hint: [...hints].join('; '), exitCode: 2 });
}

/** Where a server's log stood when the run started (provider external), or why it cannot be read. */
export type LogMark = { file: string; size: number } | { reason: string };

const LOG_LIMIT = 20 * 2 ** 20;

/**
 * The server's current log file and its size, when the URL's role may read it through SQL
 * (pg_current_logfile() + pg_stat_file/pg_read_binary_file: superuser, or pg_read_server_files
 * with EXECUTE on those functions); otherwise the reason and the grant that would allow it.
 */
export async function markServerLog(url: string): Promise<LogMark> {
  return withClient(url, async (c) => {
    const r = (await c.query(`select current_user as u, current_setting('logging_collector') as lc, (select rolsuper from pg_roles where rolname = current_user) as su,
        exists (select 1 from pg_roles x where x.rolname = 'pg_read_server_files' and pg_has_role(current_user, x.oid, 'member')) as rf`)).rows[0];
    const grant = `GRANT pg_read_server_files TO ${quoteIdent(r.u)}; GRANT EXECUTE ON FUNCTION pg_current_logfile(), pg_stat_file(text), pg_read_binary_file(text, bigint, bigint) TO ${quoteIdent(r.u)}`;
    if (!r.su && !r.rf) return { reason: `role "${r.u}" is neither a superuser nor a member of pg_read_server_files (${grant} would allow it)` };
    if (r.lc !== 'on') return { reason: `logging_collector is off: the server writes its log to stderr or syslog, which SQL cannot read (set logging_collector = on, or take the log from the host for the run's window)` };
    try {
      const f = (await c.query<{ f: string | null }>(`select pg_current_logfile() as f`)).rows[0].f;
      if (!f) return { reason: 'pg_current_logfile() names no file (log_destination has no stderr/csvlog/jsonlog under the collector)' };
      const size = Number((await c.query(`select (pg_stat_file($1)).size as s`, [f])).rows[0].s);
      return { file: f, size };
    } catch (e: any) {
      return { reason: `the log could not be read: ${e?.message ?? e} (${grant} would allow it)` };
    }
  }, { applicationName: 'cutover-ledger', connectTimeoutMs: 5000 }).catch((e) => ({ reason: `the server did not answer: ${describeError(e).split('\n')[0].replace(/^error(\[\w+\])?: /, '')}` }));
}

/**
 * The run's window of the server's log (from the mark to now; a rotation reads the new file from
 * its start), passwords masked, written to `dest`. Returns the line for the report.
 */
export async function collectServerLog(side: Side, url: string, mark: LogMark, dest: string, secrets: string[]): Promise<string> {
  if ('reason' in mark) return `${side}: server log not collected: ${mark.reason}`;
  try {
    const parts = await withClient(url, async (c) => {
      const now = (await c.query<{ f: string | null }>(`select pg_current_logfile() as f`)).rows[0].f ?? mark.file;
      const read = async (f: string, from: number) => {
        const size = Number((await c.query(`select (pg_stat_file($1)).size as s`, [f])).rows[0].s);
        const start = Math.max(from, size - LOG_LIMIT);
        return size > start ? ((await c.query(`select pg_read_binary_file($1, $2, $3) as b`, [f, start, size - start])).rows[0].b as Buffer).toString('utf8') : '';
      };
      return now === mark.file ? [{ f: now, text: await read(now, mark.size) }] : [{ f: mark.file, text: await read(mark.file, mark.size) }, { f: now, text: await read(now, 0) }];
    }, { applicationName: 'cutover-ledger', connectTimeoutMs: 5000 });
    const text = redactValues(parts.map((p) => p.text).join(''), secrets);
    writeFileSync(dest, text);
    return `${side}: server log collected: ${dest.split('/').pop()} (${Buffer.byteLength(text)} bytes of ${parts.map((p) => p.f).join(' and ')}, the run's window, passwords masked)`;
  } catch (e) {
    return `${side}: server log not collected: ${describeError(e).split('\n')[0].replace(/^error(\[\w+\])?: /, '')}`;
  }
}
