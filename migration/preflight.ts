/**
 * Preflight: everything that would make logical replication from source to target fail or lose
 * data, checked before anything is created. Facts are gathered from both servers into a plain
 * object (`gatherFacts`), then a pure function turns them into findings (`evaluate`), which is
 * unit-tested without servers.
 */
import { connect, serverVersionNum, type Client } from './pg.ts';
import { dumpTool, urlRequiresSsl } from './schema-copy.ts';
import { displayName, SYSTEM_SCHEMA_FILTER } from './replication.ts';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  id: string;
  severity: Severity;
  object?: string;
  message: string;
  hint: string;
}

export interface PreflightResult {
  ok: boolean;
  source: { version: number; major: number };
  target: { version: number; major: number };
  findings: Finding[];
}

interface Rel {
  schema: string;
  name: string;
}

export interface SideFacts {
  versionNum: number;
  major: number;
  walLevel: string;
  rdsLogicalReplication: string | null;
  maxReplicationSlots: number;
  usedSlots: number;
  maxWalSenders: number;
  usedSenders: number;
  maxWorkerProcesses: number;
  maxLogicalWorkers: number;
  maxSyncWorkers: number;
  isSuperuser: boolean;
  canReplicate: boolean;
  canSubscribe: boolean;
  encoding: string;
  collate: string;
  ctype: string;
  extensions: Array<{ name: string; version: string }>;
  available: Array<{ name: string; version: string }>;
  /** cutover_* slots already there */
  cutoverSlots: Array<{ name: string; active: boolean; retained: number | null }>;
}

export interface SourceFacts extends SideFacts {
  noKey: Array<Rel & { identity: string }>;
  identityFull: Rel[];
  unlogged: Rel[];
  matviews: Rel[];
  foreign: Rel[];
  partitionedRoots: Rel[];
  generated: Array<Rel & { column: string }>;
  largeObjects: number;
  sequences: number;
  withOids: Rel[];
  removedTypes: Array<Rel & { column: string; type: string }>;
  notOwned: Rel[];
  longTransactions: Array<{ pid: number; seconds: number; state: string }>;
  preparedXacts: number;
  plpython2: boolean;
}

export interface TargetFacts extends SideFacts {
  nonEmptyTables: Rel[];
}

export interface Facts {
  source: SourceFacts;
  target: TargetFacts;
  dump: { ok: true; path: string; version: string } | { ok: false; message: string; hint: string };
}

async function rows<T = any>(c: Client, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await c.query(sql, params)).rows as T[];
}

async function one<T = any>(c: Client, sql: string, params: unknown[] = []): Promise<T> {
  return (await rows<T>(c, sql, params))[0];
}

/** What the preflight knows of one server: version, settings, the connecting role's privileges, encoding, extensions. */
export async function sideFacts(c: Client): Promise<SideFacts> {
  const versionNum = await serverVersionNum(c);
  const major = Math.floor(versionNum / 10000);
  const s = await one<any>(
    c,
    `select current_setting('wal_level') as wal, current_setting('rds.logical_replication', true) as rds,
            current_setting('max_replication_slots')::int as slots, (select count(*)::int from pg_replication_slots) as used_slots,
            current_setting('max_wal_senders')::int as senders, (select count(*)::int from pg_stat_replication) as used_senders,
            current_setting('max_worker_processes')::int as workers, current_setting('max_logical_replication_workers')::int as lworkers,
            current_setting('max_sync_workers_per_subscription')::int as sworkers,
            r.rolsuper as su, r.rolreplication as repl,
            exists (select 1 from pg_roles x where x.rolname = 'rds_replication' and pg_has_role(current_user, x.oid, 'member')) as rds_repl,
            exists (select 1 from pg_roles x where x.rolname in ('rds_superuser','cloudsqlsuperuser','azure_pg_admin') and pg_has_role(current_user, x.oid, 'member')) as managed_su,
            ${major >= 16 ? `exists (select 1 from pg_roles x where x.rolname = 'pg_create_subscription' and pg_has_role(current_user, x.oid, 'member'))` : 'false'} as create_sub,
            pg_encoding_to_char(d.encoding) as enc, d.datcollate as coll, d.datctype as ctype
       from pg_roles r, pg_database d where r.rolname = current_user and d.datname = current_database()`,
  );
  return {
    versionNum,
    major,
    walLevel: s.wal,
    rdsLogicalReplication: s.rds,
    maxReplicationSlots: s.slots,
    usedSlots: s.used_slots,
    maxWalSenders: s.senders,
    usedSenders: s.used_senders,
    maxWorkerProcesses: s.workers,
    maxLogicalWorkers: s.lworkers,
    maxSyncWorkers: s.sworkers,
    isSuperuser: s.su,
    canReplicate: s.su || s.repl || s.rds_repl,
    canSubscribe: s.su || s.create_sub || s.managed_su,
    encoding: s.enc,
    collate: s.coll,
    ctype: s.ctype,
    extensions: await rows(c, `select extname as name, extversion as version from pg_extension order by 1`),
    available: await rows(c, `select name, default_version as version from pg_available_extensions order by 1`),
    cutoverSlots: await rows(c, `select slot_name as name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 as retained from pg_replication_slots where slot_name like 'cutover\\_%'`).catch(() => []),
  };
}

const REL_COLS = `n.nspname as schema, c.relname as name`;
const USER_REL = `from pg_class c join pg_namespace n on n.oid = c.relnamespace where ${SYSTEM_SCHEMA_FILTER}
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')`;

/**
 * User tables (not extension members, not unlogged) that have neither a primary key nor a usable
 * replica identity: once published, an UPDATE or DELETE on them fails on the source.
 */
export async function tablesWithoutKey(c: Client): Promise<Array<Rel & { identity: string }>> {
  return rows(
    c,
    `select ${REL_COLS}, c.relreplident::text as identity ${USER_REL} and c.relkind = 'r' and c.relpersistence = 'p'
       and (c.relreplident = 'n'
            or (not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p')
                and (c.relreplident = 'd' or (c.relreplident = 'i' and not exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisreplident)))))
     order by 1, 2`,
  );
}

export async function gatherFacts(source: Client, target: Client, opts: { sourceUrl?: string } = {}): Promise<Facts> {
  const base = await sideFacts(source);
  const major = base.major;
  const src: SourceFacts = {
    ...base,
    noKey: await tablesWithoutKey(source),
    identityFull: await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind = 'r' and c.relreplident = 'f' and not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') order by 1, 2`),
    unlogged: await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind in ('r','p') and c.relpersistence = 'u' order by 1, 2`),
    matviews: await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind = 'm' order by 1, 2`),
    foreign: await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind = 'f' order by 1, 2`),
    partitionedRoots: await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind = 'p' and not c.relispartition order by 1, 2`),
    generated:
      major >= 12
        ? await rows(source, `select ${REL_COLS}, a.attname as column ${USER_REL.replace('where', 'join pg_attribute a on a.attrelid = c.oid where')} and c.relkind in ('r','p') and a.attgenerated = 's' and not a.attisdropped order by 1, 2`)
        : [],
    largeObjects: (await one<{ n: number }>(source, `select count(*)::int as n from pg_largeobject_metadata`)).n,
    sequences: (await one<{ n: number }>(source, `select count(*)::int as n ${USER_REL} and c.relkind = 'S'`)).n,
    withOids: major < 12 ? await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind = 'r' and c.relhasoids order by 1, 2`) : [],
    removedTypes: await rows(
      source,
      `select ${REL_COLS}, a.attname as column, t.typname::text as type ${USER_REL.replace('where', 'join pg_attribute a on a.attrelid = c.oid join pg_type t on t.oid = a.atttypid where')}
         and c.relkind in ('r','p','m') and not a.attisdropped and t.typname in ('abstime','reltime','tinterval')`,
    ),
    notOwned: base.isSuperuser ? [] : await rows(source, `select ${REL_COLS} ${USER_REL} and c.relkind in ('r','p') and not pg_has_role(current_user, c.relowner, 'usage') order by 1, 2`),
    longTransactions: await rows(
      source,
      `select pid, extract(epoch from now() - xact_start)::int as seconds, coalesce(state, '') as state from pg_stat_activity
        where xact_start < now() - interval '5 minutes' and pid <> pg_backend_pid() and backend_type = 'client backend' order by 2 desc limit 10`,
    ).catch(() => []),
    preparedXacts: (await one<{ n: number }>(source, `select count(*)::int as n from pg_prepared_xacts`)).n,
    plpython2: (await rows(source, `select 1 from pg_language where lanname in ('plpythonu','plpython2u')`)).length > 0,
  };
  const tbase = await sideFacts(target);
  const nonEmptyTables: Rel[] = [];
  const ttables = await rows<Rel>(target, `select ${REL_COLS} ${USER_REL} and c.relkind = 'r' order by 1, 2 limit 500`);
  for (const t of ttables) {
    const r = await rows(target, `select 1 from ${'"' + t.schema.replace(/"/g, '""') + '"."' + t.name.replace(/"/g, '""') + '"'} limit 1`).catch(() => []);
    if (r.length) nonEmptyTables.push(t);
  }
  let dump: Facts['dump'];
  try {
    const d = await dumpTool(major, process.env, { sslRequired: urlRequiresSsl(opts.sourceUrl) });
    dump = { ok: true, path: d.path, version: d.version };
  } catch (e: any) {
    dump = { ok: false, message: e.message, hint: e.hint ?? '' };
  }
  return { source: src, target: { ...tbase, nonEmptyTables }, dump };
}

const list = (rels: Rel[], n = 10) => rels.slice(0, n).map(displayName).join(', ') + (rels.length > n ? `, … (${rels.length} in all)` : '');

/** Turn facts into findings. Pure: every rule is here, in the order a person would read them. */
export function evaluate(f: Facts): Finding[] {
  const out: Finding[] = [];
  const add = (id: string, severity: Severity, message: string, hint: string, object?: string) => out.push({ id, severity, object, message, hint });
  const S = f.source;
  const T = f.target;

  // versions
  if (S.major < 10) add('version.source_too_old', 'error', `the source runs PostgreSQL ${S.major}; logical replication needs 10+`, 'upgrade the source in place first, or migrate with dump/restore');
  if (S.major > T.major) add('version.downgrade', 'error', `the source (PostgreSQL ${S.major}) is newer than the target (PostgreSQL ${T.major})`, 'check the direction: --source is the old primary, --target the new one');
  else if (S.major === T.major) add('version.same_major', 'info', `source and target both run PostgreSQL ${S.major}`, 'fine for a host move; a major upgrade would use a newer target');

  // WAL and slots on the source
  if (S.rdsLogicalReplication !== null && S.rdsLogicalReplication !== undefined) {
    if (!['on', '1', 'true'].includes(String(S.rdsLogicalReplication).toLowerCase()))
      add('source.rds_logical_replication', 'error', `rds.logical_replication is ${S.rdsLogicalReplication} on the source`, 'set rds.logical_replication = 1 in the DB parameter group and reboot the instance');
  } else if (S.walLevel !== 'logical') add('source.wal_level', 'error', `wal_level is ${S.walLevel} on the source; logical replication needs logical`, 'ALTER SYSTEM SET wal_level = logical; then restart the source');
  const needSlots = 1 + S.maxSyncWorkers;
  if (S.maxReplicationSlots - S.usedSlots < needSlots)
    add('source.replication_slots', S.maxReplicationSlots - S.usedSlots < 1 ? 'error' : 'warning', `the source has ${S.maxReplicationSlots - S.usedSlots} free replication slot(s) of ${S.maxReplicationSlots}; one is needed for the subscription and up to ${S.maxSyncWorkers} more during the initial copy`, `raise max_replication_slots (restart) or drop unused slots`);
  if (S.maxWalSenders - S.usedSenders < needSlots)
    add('source.wal_senders', S.maxWalSenders - S.usedSenders < 1 ? 'error' : 'warning', `the source has ${S.maxWalSenders - S.usedSenders} free WAL sender(s) of ${S.maxWalSenders}`, 'raise max_wal_senders (restart)');
  for (const s of S.cutoverSlots)
    add('source.existing_cutover_slot', 'warning', `replication slot ${s.name} already exists on the source (${s.active ? 'active' : 'INACTIVE'}, ${s.retained ?? '?'} bytes of WAL retained)`, `if it is a leftover, remove it with \`cutover replicate stop --name ${s.name.replace(/^cutover_/, '')}\``, s.name);
  if (!S.canReplicate) add('source.privilege_replication', 'error', 'the source role has neither REPLICATION nor superuser (nor rds_replication)', 'ALTER ROLE <user> WITH REPLICATION; on RDS: GRANT rds_replication TO <user>');
  if (S.notOwned.length) add('source.privilege_owner', 'error', `the source role does not own ${S.notOwned.length} table(s) it must publish: ${list(S.notOwned)}`, 'CREATE PUBLICATION … FOR TABLE needs table ownership: connect as the owner or a superuser');

  // target workers and privilege
  if (T.maxLogicalWorkers < 2) add('target.logical_workers', 'error', `max_logical_replication_workers is ${T.maxLogicalWorkers} on the target`, 'raise it to at least 2 + max_sync_workers_per_subscription (restart)');
  else if (T.maxLogicalWorkers < 1 + T.maxSyncWorkers) add('target.logical_workers', 'warning', `max_logical_replication_workers (${T.maxLogicalWorkers}) is below 1 + max_sync_workers_per_subscription (${T.maxSyncWorkers}): the initial copy runs with fewer parallel tables`, 'raise max_logical_replication_workers (restart)');
  if (T.maxWorkerProcesses < T.maxLogicalWorkers + 1) add('target.worker_processes', 'warning', `max_worker_processes (${T.maxWorkerProcesses}) leaves little room for ${T.maxLogicalWorkers} logical replication workers`, 'raise max_worker_processes (restart)');
  if (T.maxReplicationSlots < 1) add('target.replication_origins', 'error', 'max_replication_slots is 0 on the target; a subscriber needs replication origins (counted against it)', 'set max_replication_slots ≥ 4 on the target (restart)');
  if (!T.canSubscribe) add('target.privilege_subscription', 'error', `the target role may not create subscriptions (needs superuser${T.major >= 16 ? ' or pg_create_subscription' : ''})`, T.major >= 16 ? 'GRANT pg_create_subscription TO <user>; and CREATE on the database' : 'connect to the target as a superuser (rds_superuser on RDS)');
  if (T.walLevel !== 'logical') add('target.wal_level', 'info', `wal_level is ${T.walLevel} on the target: reverse replication (for rollback) would need logical`, 'set wal_level = logical on the target before the cutover if you want a rollback path');

  // tables
  for (const t of S.noKey)
    if (t.identity === 'n')
      add('table.replica_identity_nothing', 'error', `table ${displayName(t)} has REPLICA IDENTITY NOTHING: once published, UPDATE and DELETE on it fail on the source`, `ALTER TABLE ${displayName(t)} REPLICA IDENTITY DEFAULT (with a primary key), USING INDEX <unique index> or FULL`, displayName(t));
    else add('table.no_primary_key', 'error', `table ${displayName(t)} has no primary key and no replica identity: once published, UPDATE and DELETE on it fail on the source`, `add a primary key, or ALTER TABLE ${displayName(t)} REPLICA IDENTITY USING INDEX <unique index> (or FULL)`, displayName(t));
  for (const t of S.identityFull) add('table.replica_identity_full', 'warning', `table ${displayName(t)} replicates with REPLICA IDENTITY FULL: every UPDATE/DELETE scans it on the target`, 'add a primary key if the table is large', displayName(t));
  for (const t of S.unlogged) add('table.unlogged', 'warning', `table ${displayName(t)} is unlogged: logical replication does not carry its rows`, `copy it at cutover, or ALTER TABLE ${displayName(t)} SET LOGGED before starting`, displayName(t));
  for (const t of S.matviews) add('table.materialized_view', 'warning', `materialized view ${displayName(t)} is not replicated`, `REFRESH MATERIALIZED VIEW ${displayName(t)} on the target after the cutover`, displayName(t));
  for (const t of S.foreign) add('table.foreign', 'warning', `foreign table ${displayName(t)} is not replicated`, 'recreate its server and user mapping on the target', displayName(t));
  if (S.largeObjects > 0) add('data.large_objects', 'warning', `the source holds ${S.largeObjects} large object(s); logical replication does not carry them`, 'copy them separately at cutover (pg_dump --large-objects / lo_export) or move them to bytea columns');
  for (const g of S.generated)
    add('table.generated_column', 'info', `${displayName(g)}.${g.column} is a generated column: it is not published${S.major >= 18 ? ' (unless publish_generated_columns)' : ''}; the target recomputes it`, 'the target must have the same generation expression (schema copy does this)', `${displayName(g)}.${g.column}`);
  for (const p of S.partitionedRoots)
    add(
      'table.partitioned',
      S.major >= 13 ? 'info' : 'warning',
      S.major >= 13 ? `partitioned table ${displayName(p)} is published through its root (publish_via_partition_root)` : `partitioned table ${displayName(p)}: a PostgreSQL ${S.major} source publishes only its partitions`,
      S.major >= 13 ? 'the target may partition it differently' : 'the target must have the same partitions with the same names',
      displayName(p),
    );
  if (S.sequences > 0) add('data.sequences', 'info', `${S.sequences} sequence(s) on the source are not replicated`, 'they are set on the target during the cutover (sequences phase)');
  for (const t of T.nonEmptyTables) add('target.not_empty', 'warning', `table ${displayName(t)} on the target already has rows`, 'the initial copy would duplicate them: truncate it, or replicate it with copy_data off', displayName(t));

  // extensions
  const avail = new Map(T.available.map((e) => [e.name, e.version]));
  const installedT = new Map(T.extensions.map((e) => [e.name, e.version]));
  for (const e of S.extensions) {
    if (e.name === 'plpgsql') continue;
    if (!avail.has(e.name)) add('extension.missing', 'error', `extension ${e.name} ${e.version} is installed on the source but not available on the target`, `install the ${e.name} package on the target server`, e.name);
    else {
      const tv = installedT.get(e.name) ?? avail.get(e.name)!;
      if (compareVersions(tv, e.version) < 0) add('extension.older', 'warning', `extension ${e.name} is ${e.version} on the source but ${tv} on the target`, `install a ${e.name} ≥ ${e.version} on the target, or check the schema it creates is compatible`, e.name);
    }
  }

  // encoding and locale
  if (S.encoding !== T.encoding)
    add('database.encoding', T.encoding === 'SQL_ASCII' || S.encoding === 'SQL_ASCII' ? 'error' : 'warning', `database encoding differs: source ${S.encoding}, target ${T.encoding}`, 'characters the target encoding cannot represent make apply fail and retry forever; create the target database with the same encoding');
  if (S.collate !== T.collate || S.ctype !== T.ctype)
    add('database.locale', 'warning', `database locale differs: source ${S.collate}/${S.ctype}, target ${T.collate}/${T.ctype}`, 'text ordering, indexes and CHECK constraints can behave differently; run the drift check');

  // activity on the source
  for (const x of S.longTransactions)
    add('source.long_transaction', 'warning', `a transaction on the source has been open for ${x.seconds}s (pid ${x.pid}, ${x.state})`, 'creating the replication slot waits for it to end; finish or cancel it first', `pid ${x.pid}`);
  if (S.preparedXacts > 0) add('source.prepared_transactions', 'warning', `${S.preparedXacts} prepared transaction(s) on the source`, 'slot creation waits for them: COMMIT PREPARED or ROLLBACK PREPARED first');

  // version incompatibilities
  for (const t of S.withOids) add('compat.with_oids', 'error', `table ${displayName(t)} is WITH OIDS, which PostgreSQL 12+ no longer supports`, `ALTER TABLE ${displayName(t)} SET WITHOUT OIDS on the source`, displayName(t));
  for (const t of S.removedTypes) add('compat.removed_type', 'error', `${displayName(t)}.${t.column} has type ${t.type}, removed in PostgreSQL 12`, 'convert the column to timestamptz/interval on the source', `${displayName(t)}.${t.column}`);
  if (S.plpython2 && T.major >= 15) add('compat.plpython2', 'error', 'PL/Python 2 is installed on the source; PostgreSQL 15+ removed it', 'port functions to plpython3u');
  if (S.major < 12 && T.major >= 12) add('compat.float_output', 'info', 'float output is shortest-exact from PostgreSQL 12 on (extra_float_digits)', 'compare float columns by value, not by text (verify does this)');
  if (S.major < 15 && T.major >= 15) add('compat.public_schema_create', 'info', 'PostgreSQL 15+ revokes CREATE on schema public from PUBLIC', 'GRANT CREATE ON SCHEMA public to the roles that need it on the target');
  if (S.extensions.some((e) => e.name === 'adminpack') && T.major >= 17) add('compat.adminpack', 'warning', 'extension adminpack was removed in PostgreSQL 17', 'drop it on the source or leave it out');

  // what logical replication does not do (always true; informational)
  add('replication.ddl', 'info', 'DDL is not replicated: schema changes during replication break it', 'freeze schema changes until the cutover');
  if (T.major >= 15) add('replication.disable_on_error', 'info', `the target (PostgreSQL ${T.major}) supports disable_on_error: an apply error stops the subscription instead of looping`, 'replicate status shows the error count');
  else add('replication.apply_errors_loop', 'warning', `the target (PostgreSQL ${T.major}) retries a failing apply forever (no disable_on_error before 15)`, 'watch the target log during replication');
  if (S.major >= 14 && T.major >= 14) add('replication.streaming', 'info', 'large in-progress transactions are streamed (publisher and subscriber 14+)', '');
  if (S.major >= 15) add('replication.row_filters', 'info', 'the source supports row filters: one big table can be split across several subscriptions', 'startReplication tables: [{ name, rowFilter }]');

  // tools
  if (f.dump.ok) add('tool.pg_dump', 'info', `schema copy uses pg_dump ${f.dump.version} (${f.dump.path})`, '');
  else add('tool.pg_dump', 'error', f.dump.message, f.dump.hint);
  return out;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Run every check. Connection problems throw (CONNECT/AUTH, exit 2); findings never do. */
export async function preflight(opts: { source: string; target: string }): Promise<PreflightResult> {
  const source = await connect(opts.source, { role: 'source' });
  let target: Client | undefined;
  try {
    target = await connect(opts.target, { role: 'target' });
    const facts = await gatherFacts(source, target, { sourceUrl: opts.source });
    const findings = evaluate(facts).sort((a, b) => ORDER[a.severity] - ORDER[b.severity]);
    return {
      ok: !findings.some((x) => x.severity === 'error'),
      source: { version: facts.source.versionNum, major: facts.source.major },
      target: { version: facts.target.versionNum, major: facts.target.major },
      findings,
    };
  } finally {
    await source.end().catch(() => {});
    await target?.end().catch(() => {});
  }
}
