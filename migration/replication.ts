/**
 * Logical replication from the source (old primary) to the target (new primary), with per-table
 * control: one publication on the source, one subscription on the target, one slot — all named
 * `cutover_<name>` so that `stop` finds them again from any process, also after a crash.
 *
 * Safety rules this module keeps:
 * - nothing is created before every precondition is checked (tables, keys, empty target, names free);
 * - a start that fails or is aborted half-way drops what it created (slot first: an orphan slot
 *   makes WAL pile up on the old primary until its disk fills);
 * - stop never relies on the subscriber reaching the publisher: it disables the subscription,
 *   detaches the slot, drops the subscription, then drops the slot itself over our own connection
 *   to the source (terminating the walsender if needed), plus any table-sync slots of that subscription.
 */
import { CutoverError, redactSecrets } from './errors.ts';
import { abortableSleep } from './concurrency.ts';
import { connect, describeTarget, qualified, quoteIdent, quoteIdentIfNeeded, quoteLiteral, serverMajor, sqlError, toConninfo, type Client } from './pg.ts';
import { Progress, defaultProgressMode, formatDuration } from './progress.ts';
import { describeApplyError, diagnoseSubscription, workerLabel, type ApplyError } from './apply-errors.ts';
import { copySchema, type SchemaCopyResult } from './schema-copy.ts';
import { SENTINEL_TABLE } from './sentinel.ts';
import { backfillFromSnapshot, createSlotWithSnapshot, type BackfillResult, type SnapshotSlot } from './backfill.ts';

// ---------------------------------------------------------------------------------------------
// Table names
// ---------------------------------------------------------------------------------------------

export interface TableName {
  schema: string;
  name: string;
}

/** Parse `name`, `schema.name`, with double-quoted parts (`""` inside quotes is a quote). */
export function parseTableName(input: string, defaultSchema = 'public'): TableName {
  const parts: string[] = [];
  let i = 0;
  const s = input.trim();
  while (i < s.length) {
    if (s[i] === '"') {
      let j = i + 1;
      let part = '';
      while (j < s.length) {
        if (s[j] === '"') {
          if (s[j + 1] === '"') {
            part += '"';
            j += 2;
            continue;
          }
          break;
        }
        part += s[j++];
      }
      if (j >= s.length) throw new CutoverError('USAGE', `unterminated quote in table name ${input}`, { hint: 'write names as schema."Table Name"' });
      parts.push(part);
      i = j + 1;
    } else {
      let j = i;
      while (j < s.length && s[j] !== '.') j++;
      // unquoted identifiers fold to lower case, as in SQL
      parts.push(s.slice(i, j).trim().toLowerCase());
      i = j;
    }
    if (i < s.length) {
      if (s[i] !== '.') throw new CutoverError('USAGE', `cannot parse table name ${input}`, { hint: 'write names as schema."Table Name"' });
      i++;
    }
  }
  if (parts.length === 1 && parts[0]) return { schema: defaultSchema, name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { schema: parts[0], name: parts[1] };
  throw new CutoverError('USAGE', `cannot parse table name ${JSON.stringify(input)}`, { hint: 'write names as table, schema.table or schema."Table Name"' });
}

/** Comma-separated list as given to --tables; commas inside quotes are kept. */
export function parseTableList(input: string): TableName[] {
  const items: string[] = [];
  let cur = '';
  let q = false;
  for (const ch of input) {
    if (ch === '"') q = !q;
    if (ch === ',' && !q) {
      if (cur.trim()) items.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) items.push(cur);
  return items.map((x) => parseTableName(x));
}

/** Human form: public.orders, public."Order Items". */
export function displayName(t: TableName): string {
  return `${quoteIdentIfNeeded(t.schema)}.${quoteIdentIfNeeded(t.name)}`;
}

export interface CatalogTable extends TableName {
  oid: number;
  relkind: string;
  partitioned: boolean;
  isPartition: boolean;
  hasPk: boolean;
  replicaIdentity: string;
  estimatedRows: number;
}

export const SYSTEM_SCHEMA_FILTER = `n.nspname not in ('pg_catalog','information_schema','pg_toast') and n.nspname not like 'pg_temp_%' and n.nspname not like 'pg_toast_temp_%'`;

/** Ordinary and partitioned tables of user schemas (no unlogged/temp/foreign; those are preflight findings). */
export async function listTables(c: Client): Promise<CatalogTable[]> {
  const r = await c.query(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name, c.relkind::text as relkind,
            c.relkind = 'p' as partitioned, c.relispartition as "isPartition",
            exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as "hasPk",
            c.relreplident::text as "replicaIdentity", greatest(c.reltuples, 0)::float8 as "estimatedRows"
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r','p') and c.relpersistence = 'p' and ${SYSTEM_SCHEMA_FILTER}
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by 2, 3`,
  );
  return r.rows as CatalogTable[];
}

// ---------------------------------------------------------------------------------------------
// Names and states
// ---------------------------------------------------------------------------------------------

export interface ObjectNames {
  name: string;
  publication: string;
  subscription: string;
  slot: string;
}

/** Deterministic object names: `cutover_<name>` (lower case, [a-z0-9_], within NAMEDATALEN). */
export function objectNames(name = 'main'): ObjectNames {
  const clean = name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'main';
  const base = `cutover_${clean}`.slice(0, 50);
  return { name: clean, publication: base, subscription: base, slot: base };
}

export type SubState = 'i' | 'd' | 'f' | 's' | 'r';

export const SUBSTATE_NAMES: Record<string, string> = {
  i: 'initialize',
  d: 'data copy',
  f: 'copy finished',
  s: 'synchronized',
  r: 'ready (streaming)',
};

export function subStateName(state: string | null | undefined): string {
  if (!state) return 'not subscribed';
  return SUBSTATE_NAMES[state] ?? `unknown (${state})`;
}

/**
 * The physical slot a clone-then-follow's copy streams its WAL through (lab/clone.ts): `stop`
 * drops it too, so a clone killed half-way leaves nothing retaining WAL on the source.
 */
export function clonePhysicalSlot(slot: string): string {
  return `${slot}_phys`.slice(0, 63);
}

/** Patterns of the table-sync slots a subscription with this oid creates on the publisher. */
export function syncSlotPatterns(subscription: string, subOid: number): string[] {
  // subscriber 14+: pg_<suboid>_sync_<relid>_<sysid>; ≤ 13: <subname>_<suboid>_sync_<relid> (temporary)
  const esc = (s: string) => s.replace(/[\\%_]/g, '\\$&');
  return [esc(`pg_${subOid}_sync_`) + '%', esc(`${subscription}_${subOid}_sync_`) + '%'];
}

export interface TableSpec {
  schema?: string;
  name: string;
  /** Copy existing rows (default true). Append-only big tables can skip and be back-filled. */
  copyData?: boolean;
  /** Row filter (publisher 15+): an SQL boolean expression over the table's columns. */
  rowFilter?: string;
}

export interface StartOptions {
  source: string;
  target: string;
  /** Default: every ordinary/partitioned table of the source's user schemas. */
  tables?: Array<string | TableSpec>;
  mode?: 'all' | 'incremental';
  /** Default for tables that don't say (true). */
  copyData?: boolean;
  /** Row filters (publisher and subscriber 15+) for tables of the plan, also without an explicit table list. */
  rowFilters?: RowFilter[];
  /**
   * Tables (with a primary key) subscribed without an initial copy and back-filled from the slot's
   * exported snapshot in key chunks (`--skip-copy`): migration/backfill.ts.
   */
  backfill?: TableName[];
  /** Rows per back-fill chunk (default 10 000). */
  backfillChunkRows?: number;
  /**
   * Publish FOR ALL TABLES (superuser on the source): a table created later is published at once,
   * but the target still needs it before its first row arrives (`replicate add-table` creates it
   * and refreshes the subscription; status lists such tables). Not with `tables` or incremental.
   */
  allTables?: boolean;
  name?: string;
  /** The URL the *target* uses to reach the source (e.g. through a proxy). Default: source. */
  sourceConninfoUrl?: string;
  /** disable_on_error on subscribers 15+ (default true): an apply error stops instead of looping. */
  disableOnError?: boolean;
  /** Stream large in-progress transactions (publisher and subscriber 14+). */
  streaming?: boolean;
  /** Allow copying into target tables that already have rows (duplicates stop apply!). */
  allowNonEmptyTarget?: boolean;
  /**
   * Allow target tables without a primary key / replica-identity index (only safe when no UPDATE or
   * DELETE reaches those tables before post-data built their keys).
   */
  allowMissingTargetKeys?: boolean;
  /** Allow a source newer than the target. */
  allowDowngrade?: boolean;
  /**
   * Only prepare (no table copied): the publication, the slot (made here, not by the subscription)
   * and a DISABLED subscription; `enablePrepared` later starts it from the source's WAL position at
   * that moment. The switchover prepares its reverse replication this way before the fence, so that
   * only an origin advance and an ENABLE are left inside the window in which clients cannot write.
   */
  prepareOnly?: boolean;
  /** Incremental mode: how long to wait for each table to reach `r`. */
  tableTimeoutMs?: number;
  signal?: AbortSignal;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface StartResult extends ObjectNames {
  sourceMajor: number;
  targetMajor: number;
  subscriptionOid: number;
  mode: 'all' | 'incremental';
  tables: Array<{ table: string; schema: string; name: string; copyData: boolean; rowFilter?: string; backfill?: boolean }>;
  options: { disableOnError: boolean; streaming: boolean; publishViaPartitionRoot: boolean };
  /** The back-fill of the `backfill` tables, with its count check per table. */
  backfill?: BackfillResult;
  elapsedMs: number;
  /** How the target got its rows: the logical initial copy, or a physical clone at `clone.lsn`. */
  initialSync: 'copy' | 'clone';
  clone?: { lsn: string; timings: Record<string, number> };
}

/**
 * Builds the target from a physical copy of the source for clone-then-follow (the lab's is
 * lab/clone.ts; in production it is a snapshot restore or pg_basebackup + pg_upgrade by hand).
 */
export interface CloneBuilder {
  /** Take the physical copy. Runs before the logical slot exists: recovery can stop only after the copy's own end. */
  backup(): Promise<void>;
  /** Recover the copy to exactly `lsn`, upgrade it to the target major and start it as the target. */
  finish(lsn: string): Promise<{ timings: Record<string, number> }>;
  /** Remove what backup() made (a physical slot, scratch files); runs after success and failure alike. */
  cleanup(): Promise<void>;
}

interface ResolvedTable {
  schema: string;
  name: string;
  copyData: boolean;
  rowFilter?: string;
  /** Not copied by the subscription: back-filled from the slot's snapshot. */
  backfill?: boolean;
}

/** A sleep an abort ends early, with replication's own abort error. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortableSleep(ms, signal).catch(() => Promise.reject(abortError(signal!)));
}

function abortError(signal: AbortSignal): CutoverError {
  const r = signal.reason;
  return r instanceof CutoverError ? r : new CutoverError('STATE', `aborted${r ? `: ${r instanceof Error ? r.message : String(r)}` : ''}`);
}

async function q<T = any>(c: Client, sql: string, params: unknown[] = [], context?: string): Promise<T[]> {
  try {
    return (await c.query(sql, params)).rows as T[];
  } catch (e) {
    throw sqlError(e, context ?? sql.split('\n')[0].slice(0, 100));
  }
}

async function subscriptionRow(tgt: Client, subscription: string, targetMajor: number) {
  const rows = await q<{ oid: number; enabled: boolean; slot: string | null; disableonerr: boolean | null; conninfo?: string }>(
    tgt,
    `select s.oid::int as oid, s.subenabled as enabled, s.subslotname as slot, ${targetMajor >= 15 ? 's.subdisableonerr' : 'null::bool'} as disableonerr
       from pg_subscription s where s.subname = $1 and s.subdbid = (select oid from pg_database where datname = current_database())`,
    [subscription],
  );
  return rows[0];
}

function resolveSpec(t: string | TableSpec): TableSpec {
  if (typeof t === 'string') return parseTableName(t);
  return t;
}

/** Decide which catalog tables to publish (pure; unit-tested). */
export function planTables(
  catalog: CatalogTable[],
  requested: TableSpec[] | undefined,
  opts: { sourceMajor: number; copyData: boolean; rowFilters?: RowFilter[]; backfill?: TableName[] },
): { tables: ResolvedTable[]; problems: string[] } {
  const problems: string[] = [];
  const viaRoot = opts.sourceMajor >= 13;
  const byKey = new Map(catalog.map((t) => [`${t.schema}\u0000${t.name}`, t]));
  let chosen: Array<{ t: CatalogTable; spec?: TableSpec }>;
  if (requested && requested.length) {
    chosen = [];
    for (const spec of requested) {
      const t = byKey.get(`${spec.schema ?? 'public'}\u0000${spec.name}`);
      if (!t) {
        problems.push(`table ${displayName({ schema: spec.schema ?? 'public', name: spec.name })} is not an ordinary logged table on the source`);
        continue;
      }
      if (t.partitioned && !viaRoot) {
        problems.push(`table ${displayName(t)} is partitioned: a PostgreSQL ${opts.sourceMajor} source can publish only its partitions; list them instead`);
        continue;
      }
      chosen.push({ t, spec });
    }
  } else {
    chosen = catalog.filter((t) => (viaRoot ? !t.isPartition : !t.partitioned)).map((t) => ({ t }));
  }
  for (const { t } of chosen) {
    if (!t.partitioned && t.replicaIdentity === 'n') {
      problems.push(`table ${displayName(t)} has REPLICA IDENTITY NOTHING: once published, UPDATE and DELETE on it fail on the source`);
    } else if (!t.partitioned && !t.hasPk && t.replicaIdentity === 'd') {
      problems.push(`table ${displayName(t)} has no primary key and no replica identity: once published, UPDATE and DELETE on it fail on the source`);
    }
  }
  const filterOf = (t: TableName) => opts.rowFilters?.find((f) => f.schema === t.schema && f.name === t.name)?.where;
  for (const f of opts.rowFilters ?? []) if (!chosen.some(({ t }) => t.schema === f.schema && t.name === f.name)) problems.push(`row filter for ${displayName(f)}: the table is not replicated (not on the source, or left out by the table list)`);
  const backfilled = (t: TableName) => opts.backfill?.some((b) => b.schema === t.schema && b.name === t.name) ?? false;
  for (const b of opts.backfill ?? []) {
    const c = chosen.find(({ t }) => t.schema === b.schema && t.name === b.name)?.t;
    if (!c) problems.push(`--skip-copy ${displayName(b)}: the table is not replicated (not on the source, or left out by the table list)`);
    else if (!c.hasPk) problems.push(`--skip-copy ${displayName(b)}: the table has no primary key, which the back-fill needs (INSERT … ON CONFLICT by key, in key chunks)`);
  }
  const tables = chosen.map(({ t, spec }) =>
    backfilled(t) ? { schema: t.schema, name: t.name, copyData: false, rowFilter: spec?.rowFilter ?? filterOf(t), backfill: true } : { schema: t.schema, name: t.name, copyData: spec?.copyData ?? opts.copyData, rowFilter: spec?.rowFilter ?? filterOf(t) },
  );
  return { tables, problems };
}

/**
 * Target tables (and, for partitioned ones, their partitions) that have neither a primary key nor a
 * replica-identity index — the apply worker cannot find a row in them for UPDATE/DELETE.
 */
export async function targetTablesWithoutKey(tgt: Client, tables: TableName[]): Promise<TableName[]> {
  if (!tables.length) return [];
  return await q<TableName>(
    tgt,
    `with recursive wanted as (
       select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
         join unnest($1::text[], $2::text[]) as w(s, t) on w.s = n.nspname and w.t = c.relname
       union
       select h.inhrelid from pg_inherits h join wanted on h.inhparent = wanted.oid)
     select n.nspname as schema, c.relname as name
       from wanted join pg_class c on c.oid = wanted.oid join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and c.relreplident <> 'f'
        and not exists (select 1 from pg_index i where i.indrelid = c.oid and (i.indisprimary or i.indisreplident) and i.indisvalid)
      order by 1, 2`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
    'looking for keys on the target tables',
  );
}

function pubTableSql(t: ResolvedTable): string {
  return `${qualified(t.schema, t.name)}${t.rowFilter ? ` WHERE (${t.rowFilter})` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Row filters (shards): CREATE PUBLICATION … FOR TABLE t WHERE (…), publisher and subscriber 15+
// ---------------------------------------------------------------------------------------------

export interface RowFilter extends TableName {
  /** An SQL boolean expression over the table's columns (without the WHERE). */
  where: string;
}

/** `table:where-clause` as given to --row-filter (the first colon outside quotes splits). */
export function parseRowFilter(input: string): RowFilter {
  let q = false;
  for (let i = 0; i < input.length; i++) {
    if (input[i] === '"') q = !q;
    if (input[i] === ':' && !q) {
      const where = input.slice(i + 1).trim();
      if (!where) break;
      return { ...parseTableName(input.slice(0, i)), where };
    }
  }
  throw new CutoverError('USAGE', `row filter ${JSON.stringify(input)}: expected table:where-clause`, { hint: `e.g. --row-filter "public.orders:region = 'eu'"` });
}

export function assertRowFilterMajors(sourceMajor: number, targetMajor: number): void {
  if (sourceMajor < 15)
    throw new CutoverError('PRECONDITION', `row filters need a PostgreSQL 15+ publisher; the source runs ${sourceMajor}`, { hint: 'replicate whole tables (leave out --row-filter / migration.rowFilters), or upgrade the source to 15+ first' });
  if (targetMajor < 15)
    throw new CutoverError('PRECONDITION', `row filters need a PostgreSQL 15+ subscriber (its initial copy applies the filter); the target runs ${targetMajor}`, { hint: 'leave out the row filters' });
}

/**
 * Let Postgres judge each filter before anything exists: inside a transaction that is rolled
 * back, a scratch publication with the filter (the same rules CREATE PUBLICATION applies: columns
 * of the table, immutable built-in functions only) and a DELETE … WHERE false on the table (an
 * UPDATE or DELETE on a table whose filter uses a column outside the replica identity fails on
 * the source — the check runs when the statement starts, so it finds that with no row touched).
 */
export async function checkRowFilters(src: Client, tables: Array<TableName & { rowFilter?: string }>): Promise<void> {
  const problems: string[] = [];
  for (const t of tables) {
    const scratch = quoteIdent(`cutover_filter_check_${process.pid}`);
    try {
      await src.query('BEGIN');
      try {
        // via the partition root, as the real publication does when it carries a partitioned table (a filter on one needs it)
        await src.query(`CREATE PUBLICATION ${scratch} FOR TABLE ${pubTableSql({ ...t, copyData: true })} WITH (publish_via_partition_root = true)`);
      } catch (e: any) {
        problems.push(`row filter of ${displayName(t)} (${t.rowFilter}): ${e?.message ?? e}`);
        continue;
      }
      try {
        // UPDATE and DELETE are refused alike when the filter reaches outside the replica identity
        await src.query(`DELETE FROM ${qualified(t.schema, t.name)} WHERE false`);
      } catch (e: any) {
        // without DELETE privilege the check cannot run: Postgres will then say it at the first UPDATE or DELETE
        if (e?.code !== '42501') problems.push(`row filter of ${displayName(t)} (${t.rowFilter}): ${e?.message ?? e}${e?.detail ? ` (${e.detail})` : ''}`);
      }
    } finally {
      await src.query('ROLLBACK').catch(() => {});
    }
  }
  if (problems.length)
    throw new CutoverError('USAGE', `row filter(s) refused by the source, nothing was created: ${problems.join('; ')}`, {
      hint: 'a filter may use only the table\'s columns and immutable built-in functions; for a table that gets UPDATE or DELETE its columns must be in the replica identity (the primary key, or REPLICA IDENTITY FULL)',
    });
}

function withFilter(filters: RowFilter[], t: TableName): { rowFilter?: string } {
  const f = filters.find((x) => x.schema === t.schema && x.name === t.name);
  return f ? { rowFilter: f.where } : {};
}

/**
 * The row filters a publication applies, by table (PostgreSQL 15+; empty before). A partitioned
 * table's filter is listed for its partitions too (verify compares partitions one by one).
 */
export async function publicationRowFilters(src: Client, publication: string): Promise<RowFilter[]> {
  if ((await serverMajor(src)) < 15) return [];
  return await q<RowFilter>(
    src,
    `with recursive t as (
       select format('%I.%I', schemaname, tablename)::regclass::oid as oid, rowfilter from pg_publication_tables where pubname = $1 and rowfilter is not null
       union
       select h.inhrelid, t.rowfilter from pg_inherits h join t on h.inhparent = t.oid)
     select n.nspname as schema, c.relname as name, t.rowfilter as "where"
       from t join pg_class c on c.oid = t.oid join pg_namespace n on n.oid = c.relnamespace
      order by 1, 2`,
    [publication],
  );
}

// ---------------------------------------------------------------------------------------------
// start
// ---------------------------------------------------------------------------------------------

/**
 * What every start checks on the source before anything exists: wal_level, the names are free
 * (never adopt or later drop another run's objects), and which tables to publish.
 */
async function planOnSource(src: Client, sourceMajor: number, targetMajor: number | undefined, names: ObjectNames, opts: StartOptions, alsoExisting: string[] = []) {
  const mode = opts.mode ?? 'all';
  const [{ wal_level }] = await q<{ wal_level: string }>(src, `select current_setting('wal_level') as wal_level`);
  if (wal_level !== 'logical') {
    const rds = await q<{ v: string | null }>(src, `select current_setting('rds.logical_replication', true) as v`);
    throw new CutoverError('PRECONDITION', `wal_level on the source is ${wal_level}; logical replication needs logical`, {
      hint: rds[0]?.v !== null && rds[0]?.v !== undefined ? 'set rds.logical_replication = 1 in the parameter group and reboot the instance' : 'set wal_level = logical in postgresql.conf and restart the source',
    });
  }

  // Names must be free: never adopt (or later drop) objects of another run.
  const existing: string[] = [...alsoExisting];
  if ((await q(src, `select 1 from pg_publication where pubname = $1`, [names.publication])).length) existing.push(`publication ${names.publication} on the source`);
  if ((await q(src, `select 1 from pg_replication_slots where slot_name = $1`, [names.slot])).length) existing.push(`replication slot ${names.slot} on the source`);
  if (existing.length)
    throw new CutoverError('STATE', `replication "${names.name}" already exists: ${existing.join(', ')}`, {
      hint: `see it with \`cutover replicate status --name ${names.name}\`, remove it with \`cutover replicate stop --name ${names.name}\`, or start another with --name`,
    });

  const specs = opts.tables?.map(resolveSpec);
  const catalog = await listTables(src);
  const plan = planTables(catalog, specs, { sourceMajor, copyData: opts.copyData ?? true, rowFilters: opts.rowFilters, backfill: opts.backfill });
  if (plan.problems.length)
    throw new CutoverError('PRECONDITION', `cannot publish: ${plan.problems.join('; ')}`, {
      hint: 'add a primary key (or ALTER TABLE … REPLICA IDENTITY FULL / USING INDEX), or leave the table out with --tables',
    });
  if (plan.tables.length === 0) throw new CutoverError('PRECONDITION', 'no tables to replicate on the source', { hint: 'check the source URL (database name) and --tables' });
  if (opts.allTables && (specs?.length || mode === 'incremental'))
    throw new CutoverError('USAGE', 'allTables (FOR ALL TABLES) publishes every table at once: it cannot be combined with a table list or incremental mode', { hint: 'drop --tables/--incremental, or drop --all-tables' });
  const backfill = plan.tables.filter((t) => t.backfill);
  if (backfill.length && opts.allTables) throw new CutoverError('USAGE', 'a back-fill (--skip-copy) needs a table list: a FOR ALL TABLES publication copies every table', { hint: 'drop --all-tables, or drop --skip-copy' });
  const filtered = plan.tables.filter((t) => t.rowFilter);
  if (filtered.length) {
    if (opts.allTables) throw new CutoverError('USAGE', 'row filters need a table list: a FOR ALL TABLES publication cannot filter rows', { hint: 'drop --all-tables, or drop --row-filter' });
    if (targetMajor !== undefined) assertRowFilterMajors(sourceMajor, targetMajor);
    await checkRowFilters(src, filtered);
    for (const w of await rowFilterFkWarnings(src, filtered, plan.tables)) opts.log?.(`warning: ${w}`);
  }
  return { specs, catalog, plan, backfill };
}

/**
 * A filtered table that other replicated tables reference by foreign key: the children's rows whose
 * parent is outside the filter arrive on the target without it (the apply worker does not check
 * foreign keys), and the post-data step's ADD CONSTRAINT … FOREIGN KEY then fails to validate —
 * unless another shard (subscription) brings the missing parents first. Said before anything is
 * created, once per constraint; a child filtered the same way is still named (the tool cannot prove
 * two filters agree).
 */
export async function rowFilterFkWarnings(src: Client, filtered: Array<TableName & { rowFilter?: string }>, published: TableName[]): Promise<string[]> {
  if (!filtered.length) return [];
  const key = (t: TableName) => `${t.schema}\u0000${t.name}`;
  const pub = new Set(published.map(key));
  const filterOf = new Map(filtered.map((t) => [key(t), t.rowFilter]));
  const rows = await q<{ ps: string; pn: string; cs: string; cn: string; con: string }>(
    src,
    `select pn.nspname as ps, p.relname as pn, cn.nspname as cs, c.relname as cn, k.conname as con
       from pg_constraint k
       join pg_class p on p.oid = k.confrelid join pg_namespace pn on pn.oid = p.relnamespace
       join pg_class c on c.oid = k.conrelid join pg_namespace cn on cn.oid = c.relnamespace
      where k.contype = 'f' and k.conparentid = 0 and (pn.nspname, p.relname) in (select * from unnest($1::text[], $2::text[]))
      order by 1, 2, 3, 4, 5`,
    [filtered.map((t) => t.schema), filtered.map((t) => t.name)],
  );
  const out: string[] = [];
  for (const r of rows) {
    const child = { schema: r.cs, name: r.cn };
    if (!pub.has(key(child))) continue;
    const parent = { schema: r.ps, name: r.pn };
    const childFilter = filterOf.get(key(child));
    out.push(
      `${displayName(parent)} is published with a row filter (${filterOf.get(key(parent))}) and ${displayName(child)} references it (${quoteIdent(r.con)}): ` +
        `rows of ${displayName(child)} whose parent is outside the filter reach the target without it, and the foreign key added after the copy fails to validate` +
        (childFilter ? ` unless ${displayName(child)}'s own filter (${childFilter}) keeps exactly those rows out` : '') +
        ` — filter ${displayName(child)} the same way, or replicate the parents' other rows in another shard first`,
    );
  }
  return out;
}

/** CREATE PUBLICATION with `tables` (or FOR ALL TABLES). */
async function createPublication(src: Client, names: ObjectNames, opts: StartOptions, first: ResolvedTable[], sourceMajor: number, publishViaPartitionRoot: boolean): Promise<void> {
  try {
    await q(
      src,
      `CREATE PUBLICATION ${quoteIdent(names.publication)}${opts.allTables ? ' FOR ALL TABLES' : first.length ? ' FOR TABLE ' + first.map(pubTableSql).join(', ') : ''}${sourceMajor >= 13 ? ` WITH (publish_via_partition_root = ${publishViaPartitionRoot})` : ''}`,
      [],
      'creating the publication on the source',
    );
  } catch (e) {
    if (opts.allTables && e instanceof CutoverError && /must be superuser/i.test(e.message))
      throw new CutoverError('PRIVILEGE', e.message, { hint: 'a FOR ALL TABLES publication needs a superuser on the source; leave out allTables (--all-tables) to publish the tables one by one', cause: e });
    throw e;
  }
}

/** CREATE SUBSCRIPTION; its CONNECTION carries the source password, which no error may repeat. */
async function createSubscription(tgt: Client, names: ObjectNames, opts: StartOptions, withOpts: string[]): Promise<void> {
  const conninfo = toConninfo(opts.sourceConninfoUrl ?? opts.source);
  try {
    await tgt.query(`CREATE SUBSCRIPTION ${quoteIdent(names.subscription)} CONNECTION ${quoteLiteral(conninfo)} PUBLICATION ${quoteIdent(names.publication)} WITH (${withOpts.join(', ')})`);
  } catch (e: any) {
    // The message can quote the conninfo: never let the password through.
    const err = sqlError({ ...e, message: redactSecrets(e?.message ?? String(e)) }, `creating the subscription on the target (it connects to the source at ${describeTarget(opts.sourceConninfoUrl ?? opts.source)})`);
    throw err;
  }
}

/** Source tables a replication leaves out (an explicit table list, or a clone's publication). */
function excludedTables(catalog: CatalogTable[], chosen: TableName[], sourceMajor: number): string[] {
  const keep = new Set(chosen.map((t) => `${t.schema}\u0000${t.name}`));
  return planTables(catalog, undefined, { sourceMajor, copyData: true }).tables.filter((t) => !keep.has(`${t.schema}\u0000${t.name}`)).map(displayName);
}

/**
 * What this replication carries besides the publication's tables, kept in the publication's
 * comment: the sequences the target has now (sequences are not replicated; one created later must
 * be brought over, see missingFromPublication) and the tables left out on purpose.
 */
async function recordMeta(src: Client, tgt: Client, names: ObjectNames, subOid: number, opts: StartOptions, excluded: string[]): Promise<void> {
  const meta: PublicationMeta = { tool: 'cutover-lab', subscriptionOid: subOid, target: describeTarget(opts.target), created: new Date().toISOString(), sequences: await sequencesOnBoth(src, tgt), excluded };
  await writeMeta(src, names.publication, meta);
}

/** A start failed after it created something: drop it all (stopReplication) and say so in the error. */
async function cleanedUp(e: unknown, opts: StartOptions, names: ObjectNames): Promise<CutoverError> {
  let cleanup: StopResult | undefined;
  let cleanupError: unknown;
  try {
    cleanup = await stopReplication({ source: opts.source, target: opts.target, name: names.name });
  } catch (ce) {
    cleanupError = ce;
  }
  const note = cleanup
    ? cleanup.complete
      ? `cleaned up: ${cleanup.dropped.join(', ') || 'nothing was left'}`
      : `CLEANUP INCOMPLETE, still present: ${cleanup.remaining.join(', ')}`
    : `cleanup failed: ${cleanupError instanceof Error ? redactSecrets(cleanupError.message) : String(cleanupError)}`;
  if (e instanceof CutoverError) {
    return new CutoverError(e.code, e.message, {
      hint: [e.hint, cleanup?.complete ? undefined : `run \`cutover replicate stop --name ${names.name}\` once both servers answer`].filter(Boolean).join('; ') || undefined,
      detail: [e.detail, note].filter(Boolean).join('; '),
      cause: e,
      exitCode: e.exitCode,
    });
  }
  return new CutoverError('INTERNAL', `replication start failed: ${redactSecrets(e instanceof Error ? e.message : String(e))}`, { detail: note, cause: e });
}

/**
 * Create publication, slot and subscription. In `incremental` mode tables are added one at a
 * time, each waited on until `r` before the next. Any failure (or abort via `signal`) after the
 * first object was created drops everything again before the error is thrown.
 */
export async function startReplication(opts: StartOptions): Promise<StartResult> {
  const t0 = Date.now();
  const names = objectNames(opts.name);
  const mode = opts.mode ?? 'all';
  const log = opts.log ?? (() => {});
  const src = await connect(opts.source, { role: 'source' });
  let tgt: Client | undefined;
  let created = false;
  let snapshotSlot: SnapshotSlot | undefined;
  try {
    // secretStatements: CREATE SUBSCRIPTION carries the source password; keep it out of the target's log
    tgt = await connect(opts.target, { role: 'target', secretStatements: true });
    const sourceMajor = await serverMajor(src);
    const targetMajor = await serverMajor(tgt);
    if (sourceMajor < 10) throw new CutoverError('PRECONDITION', `the source runs PostgreSQL ${sourceMajor}; logical replication needs 10 or newer`, { hint: 'upgrade the source in place first, or use dump/restore' });
    if (targetMajor < 10) throw new CutoverError('PRECONDITION', `the target runs PostgreSQL ${targetMajor}; logical replication needs 10 or newer`);
    if (sourceMajor > targetMajor && !opts.allowDowngrade)
      throw new CutoverError('PRECONDITION', `the source (PostgreSQL ${sourceMajor}) is newer than the target (PostgreSQL ${targetMajor})`, { hint: 'swap --source and --target, or pass allowDowngrade if you really mean to move to an older major' });

    const existingSub = (await subscriptionRow(tgt, names.subscription, targetMajor)) ? [`subscription ${names.subscription} on the target`] : [];
    const { specs, catalog, plan, backfill } = await planOnSource(src, sourceMajor, targetMajor, names, opts, existingSub);
    // The target must have every table (schema copy pre-data) and, where we copy, no rows yet.
    const targetTables = new Set((await listTables(tgt)).map((t) => `${t.schema}\u0000${t.name}`));
    const missing = plan.tables.filter((t) => !targetTables.has(`${t.schema}\u0000${t.name}`));
    if (missing.length)
      throw new CutoverError('PRECONDITION', `the target lacks ${missing.length} table(s): ${missing.slice(0, 10).map(displayName).join(', ')}`, {
        hint: 'copy the schema first (`cutover replicate start` does it unless --no-schema; or copySchema pre-data)',
      });
    // Keys before the copy: an UPDATE/DELETE arriving while a table syncs is applied through the
    // target's primary key or replica-identity index. Without one the worker stops (15+: the
    // subscription is disabled) or retries forever (< 15) — refuse now instead of failing mid-sync.
    if (!opts.allowMissingTargetKeys) {
      const needKey = plan.tables.filter((t) => catalog.find((c) => c.schema === t.schema && c.name === t.name)?.replicaIdentity !== 'f');
      const noKey = await targetTablesWithoutKey(tgt, needKey);
      if (noKey.length)
        throw new CutoverError('PRECONDITION', `${noKey.length} target table(s) have neither a primary key nor a replica-identity index: ${noKey.slice(0, 10).map(displayName).join(', ')}; an UPDATE or DELETE that arrives during the initial copy could not be applied and replication would stop`, {
          hint: 'create the keys before the copy: copySchema pre-data does it (and `cutover replicate start` unless --no-schema); by hand, run the PRIMARY KEY / unique index and REPLICA IDENTITY statements of the source on the target',
        });
    }
    if (!opts.allowNonEmptyTarget) {
      const nonEmpty: string[] = [];
      for (const t of plan.tables.filter((x) => x.copyData)) {
        if ((await q(tgt, `select 1 from ${qualified(t.schema, t.name)} limit 1`)).length) nonEmpty.push(displayName(t));
      }
      if (nonEmpty.length)
        throw new CutoverError('PRECONDITION', `target table(s) already hold rows: ${nonEmpty.slice(0, 10).join(', ')}; the initial copy would duplicate them and apply would stop on the first unique violation`, {
          hint: 'truncate them on the target, mark them copyData=false (--skip-copy), or pass allowNonEmptyTarget',
        });
    }

    const publishViaPartitionRoot = sourceMajor >= 13 && plan.tables.some((t) => catalog.find((c) => c.schema === t.schema && c.name === t.name)?.partitioned);
    const disableOnError = (opts.disableOnError ?? true) && targetMajor >= 15;
    const streaming = (opts.streaming ?? true) && sourceMajor >= 14 && targetMajor >= 14;

    // ---- from here on, objects exist: every failure path cleans up ----
    created = true;
    // With a back-fill, the back-filled tables alone are in the publication when the slot is made
    // (their rows after its snapshot must stream), and the others are added after it, copied.
    // No table copied (the reverse replication the switch phase starts inside the write-blocked
    // window, copy_data = false): every table goes into CREATE PUBLICATION / SUBSCRIPTION at once —
    // not one ALTER PUBLICATION + REFRESH PUBLICATION round trip pair per table.
    const noneCopied = !opts.allTables && !backfill.length && mode === 'all' && plan.tables.every((t) => !t.copyData);
    if (opts.prepareOnly && !noneCopied) throw new CutoverError('USAGE', 'a prepared replication copies no table: every table needs copyData = false, no back-fill, no FOR ALL TABLES, mode all');
    const first = opts.allTables ? plan.tables : backfill.length ? backfill : mode === 'all' ? (noneCopied ? plan.tables : plan.tables.filter((t) => t.copyData)) : [];
    const later = opts.allTables ? [] : backfill.length ? plan.tables.filter((t) => !t.backfill) : mode === 'all' ? (noneCopied ? [] : plan.tables.filter((t) => !t.copyData)) : plan.tables;
    await createPublication(src, names, opts, first, sourceMajor, publishViaPartitionRoot);
    log(`created publication ${names.publication} on the source (${first.length} table(s))`);
    if (backfill.length) {
      snapshotSlot = await createSlotWithSnapshot(opts.source, names.slot);
      log(`created slot ${names.slot} at ${snapshotSlot.consistentPoint} with its snapshot, for the back-fill of ${backfill.map(displayName).join(', ')}`);
    }
    if (opts.prepareOnly) {
      // the slot first, here: a disabled subscription cannot create it
      await q(src, `select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot], 'creating the logical replication slot on the source');
    }
    const withOpts = opts.prepareOnly
      ? [`slot_name = ${quoteLiteral(names.slot)}`, 'create_slot = false', 'copy_data = false', 'enabled = false']
      : [`slot_name = ${quoteLiteral(names.slot)}`, `create_slot = ${!snapshotSlot}`, `copy_data = ${first.length > 0 && !snapshotSlot && !noneCopied}`, 'enabled = true'];
    if (disableOnError) withOpts.push('disable_on_error = true');
    if (streaming) withOpts.push('streaming = on');
    await createSubscription(tgt, names, opts, withOpts);
    const sub = await subscriptionRow(tgt, names.subscription, targetMajor);
    await recordMeta(src, tgt, names, sub.oid, opts, specs?.length ? excludedTables(catalog, plan.tables, sourceMajor) : []);
    log(`created ${opts.prepareOnly ? 'disabled (prepared) ' : ''}subscription ${names.subscription} (oid ${sub.oid}) and slot ${names.slot}`);

    // all at once: the other tables' copies run while the back-fill does; one by one: back-fill first
    // (its snapshot holds back the source's xmin for as long as it is open)
    let backfilled: BackfillResult | undefined;
    const runBackfill = async () => {
      if (!snapshotSlot) return;
      try {
        backfilled = await backfillFromSnapshot(snapshotSlot, { target: opts.target, tables: backfill, chunkRows: opts.backfillChunkRows, progress: opts.progress, signal: opts.signal, log });
      } finally {
        await snapshotSlot.close();
      }
    };
    if (mode === 'incremental') await runBackfill();
    const total = later.length;
    let done = 0;
    // incremental: one table at a time, each waited on; otherwise the rest in one ALTER PUBLICATION
    // and one REFRESH per copy_data value, not a round trip pair per table
    const batches = mode === 'incremental' ? later.map((t) => [t]) : [true, false].map((copyData) => later.filter((t) => t.copyData === copyData)).filter((g) => g.length);
    for (const group of batches) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      const what = group.length === 1 ? displayName(group[0]) : `${group.length} table(s)`;
      await q(src, `ALTER PUBLICATION ${quoteIdent(names.publication)} ADD TABLE ${group.map(pubTableSql).join(', ')}`, [], `adding ${what} to the publication`);
      await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} REFRESH PUBLICATION WITH (copy_data = ${group[0].copyData})`, [], `refreshing the subscription for ${what}`);
      log(`added ${group.length === 1 ? what : `${what}: ${group.slice(0, 5).map(displayName).join(', ')}${group.length > 5 ? ', …' : ''}`} (copy_data=${group[0].copyData})`);
      if (mode === 'incremental') {
        const t = group[0];
        await waitForSync({ source: opts.source, target: opts.target, name: names.name, tables: [t], timeoutMs: opts.tableTimeoutMs, signal: opts.signal, progress: opts.progress, label: `sync ${displayName(t)} (${++done}/${total})` });
      }
    }
    if (mode === 'all') await runBackfill();
    return {
      ...names,
      sourceMajor,
      targetMajor,
      subscriptionOid: sub.oid,
      mode,
      tables: plan.tables.map((t) => ({ table: displayName(t), schema: t.schema, name: t.name, copyData: t.copyData, rowFilter: t.rowFilter, ...(t.backfill ? { backfill: true } : {}) })),
      options: { disableOnError, streaming, publishViaPartitionRoot },
      ...(backfilled ? { backfill: backfilled } : {}),
      elapsedMs: Date.now() - t0,
      initialSync: 'copy',
    };
  } catch (e) {
    await snapshotSlot?.close();
    if (created) {
      await src.end().catch(() => {});
      await tgt?.end().catch(() => {});
      throw await cleanedUp(e, opts, names);
    }
    throw e;
  } finally {
    await src.end().catch(() => {});
    await tgt?.end().catch(() => {});
  }
}

/**
 * Start a replication made with `prepareOnly`: everything the source commits from now on is
 * applied, nothing before. The source's current WAL position is read, the disabled subscription's
 * replication origin advanced to it, then the subscription enabled. The walsender decodes the slot
 * from where it was made but skips every transaction that committed before that position (the
 * mechanism clone-then-follow uses). The caller makes sure nothing it wants carried over commits
 * before this call, and nothing it must not carry (e.g. rows the forward replication applied)
 * commits after it.
 */
export async function enablePrepared(opts: {
  source: string;
  target: string;
  name?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Sessions to use instead of new connections (the target's must be able to write); left open. */
  clients?: { source: Client; target: Client };
}): Promise<{ lsn: string; subscriptionOid: number }> {
  const names = objectNames(opts.name);
  const own = !opts.clients;
  const src = opts.clients?.source ?? (await connect(opts.source, { role: 'source' }));
  let tgt: Client | undefined = opts.clients?.target;
  try {
    tgt ??= await connect(opts.target, { role: 'target' });
    const targetMajor = await serverMajor(tgt);
    const sub = await subscriptionRow(tgt, names.subscription, targetMajor);
    if (!sub) throw new CutoverError('STATE', `prepared replication "${names.name}": subscription ${names.subscription} does not exist on the target`);
    if (sub.enabled) throw new CutoverError('STATE', `prepared replication "${names.name}": subscription ${names.subscription} is already enabled`);
    const [slot] = await q<{ active: boolean }>(src, `select active from pg_replication_slots where slot_name = $1 and database = current_database()`, [names.slot], 'reading the prepared slot on the source');
    if (!slot) throw new CutoverError('STATE', `prepared replication "${names.name}": slot ${names.slot} is missing on the source`);
    opts.signal?.throwIfAborted();
    const [{ lsn }] = await q<{ lsn: string }>(src, `select pg_current_wal_lsn()::text as lsn`, [], "reading the source's WAL position");
    await q(tgt, `select pg_replication_origin_advance($1, $2::pg_lsn)`, [`pg_${sub.oid}`, lsn], "advancing the subscription's replication origin to the source's current position");
    await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} ENABLE`, [], 'enabling the subscription');
    opts.log?.(`enabled prepared subscription ${names.subscription}: origin pg_${sub.oid} advanced to ${lsn}`);
    return { lsn, subscriptionOid: sub.oid };
  } finally {
    if (own) {
      await src.end().catch(() => {});
      await tgt?.end().catch(() => {});
    }
  }
}

// ---------------------------------------------------------------------------------------------
// clone-then-follow
// ---------------------------------------------------------------------------------------------

export interface CloneSlot extends ObjectNames {
  /** The logical slot's consistent point: the copy must hold every transaction committed before it. */
  lsn: string;
  sourceMajor: number;
  tables: string[];
}

/**
 * Step 1 of clone-then-follow: the publication and the logical slot, whose consistent point is
 * returned. `beforeSlot` runs once the source checks passed, before anything exists on the source
 * except what it makes itself (the lab takes its physical copy there). Nothing is left behind on a
 * failure. In production this is `cutover replicate start --initial-sync clone --slot-only`.
 */
export async function createCloneSlot(opts: StartOptions & { beforeSlot?: () => Promise<void> }): Promise<CloneSlot> {
  const names = objectNames(opts.name);
  if (opts.mode === 'incremental') throw new CutoverError('USAGE', 'clone-then-follow brings every table at once (from the copy): it cannot be combined with incremental mode', { hint: 'drop --incremental, or use --initial-sync copy' });
  const src = await connect(opts.source, { role: 'source' });
  let created = false;
  try {
    const sourceMajor = await serverMajor(src);
    if (sourceMajor < 10) throw new CutoverError('PRECONDITION', `the source runs PostgreSQL ${sourceMajor}; logical replication needs 10 or newer`, { hint: 'upgrade the source in place first, or use dump/restore' });
    if (opts.rowFilters?.length || opts.backfill?.length)
      throw new CutoverError('USAGE', 'clone-then-follow copies every row of the source: row filters and skip-copy tables do not apply', { hint: 'drop them, or use --initial-sync copy' });
    // the target does not exist yet (it will be the upgraded copy)
    const { catalog, plan } = await planOnSource(src, sourceMajor, undefined, names, opts);
    if (plan.tables.some((t) => t.rowFilter || !t.copyData))
      throw new CutoverError('USAGE', 'clone-then-follow copies every row of the source: row filters and skip-copy tables do not apply', { hint: 'drop them, or use --initial-sync copy' });
    const publishViaPartitionRoot = sourceMajor >= 13 && plan.tables.some((t) => catalog.find((c) => c.schema === t.schema && c.name === t.name)?.partitioned);
    await opts.beforeSlot?.();
    created = true;
    await createPublication(src, names, opts, plan.tables, sourceMajor, publishViaPartitionRoot);
    const [{ lsn }] = await q<{ lsn: string }>(src, `select lsn::text from pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot], 'creating the logical replication slot on the source');
    opts.log?.(`created publication ${names.publication} (${plan.tables.length} table(s)) and slot ${names.slot} on the source; consistent point ${lsn}`);
    return { ...names, lsn, sourceMajor, tables: plan.tables.map(displayName) };
  } catch (e) {
    if (created) {
      await src.end().catch(() => {});
      throw await cleanedUp(e, opts, names);
    }
    throw e;
  } finally {
    await src.end().catch(() => {});
  }
}

/**
 * Step 2: the target is a copy of the source holding exactly the transactions committed before
 * `lsn` (≥ the slot's consistent point), upgraded to the target major. The subscription is created
 * on the existing slot with copy_data = false and disabled, its replication origin advanced to
 * `lsn`, then enabled: every transaction after `lsn` comes from the slot, none twice. The copy
 * brought the source's publication along; it is dropped on the target. A failure drops the
 * slot, publication and subscription. In production: `--initial-sync clone --from-lsn <lsn>`.
 */
export async function followClone(opts: StartOptions & { lsn: string; /** drop the slot and publication on any failure, a refusal too (they were made in the same call) */ ownsSlot?: boolean }): Promise<StartResult> {
  const t0 = Date.now();
  const names = objectNames(opts.name);
  const log = opts.log ?? (() => {});
  let created = opts.ownsSlot === true;
  let src: Client | undefined;
  let tgt: Client | undefined;
  try {
    src = await connect(opts.source, { role: 'source' });
    tgt = await connect(opts.target, { role: 'target', secretStatements: true });
    const sourceMajor = await serverMajor(src);
    const targetMajor = await serverMajor(tgt);
    if (sourceMajor > targetMajor) throw new CutoverError('PRECONDITION', `the clone target runs PostgreSQL ${targetMajor}, older than the source (${sourceMajor})`);
    const [slot] = await q<{ plugin: string | null; confirmed: string | null; behind: boolean }>(
      src,
      `select plugin, confirmed_flush_lsn::text as confirmed, confirmed_flush_lsn > $2::pg_lsn as behind from pg_replication_slots where slot_name = $1 and database = current_database()`,
      [names.slot, opts.lsn],
      'reading the clone slot on the source',
    );
    const pub = await q<{ viaRoot: boolean }>(src, `select ${sourceMajor >= 13 ? 'pubviaroot' : 'false'} as "viaRoot" from pg_publication where pubname = $1`, [names.publication]);
    if (!slot || slot.plugin !== 'pgoutput' || !pub.length)
      throw new CutoverError('STATE', `clone-then-follow "${names.name}": the source has no ${!pub.length ? `publication ${names.publication}` : `logical slot ${names.slot}`}`, {
        hint: `create them first, before the copy is taken: \`cutover replicate start --initial-sync clone --slot-only --name ${names.name}\``,
      });
    // A copy older than the slot misses what was committed in between: the slot cannot give it back.
    if (slot.behind)
      throw new CutoverError('PRECONDITION', `the copy's LSN ${opts.lsn} is before the slot's consistent point ${slot.confirmed}: transactions committed in between would be missing on the target`, {
        hint: 'recover the copy to the slot\'s LSN (recovery_target_lsn, recovery_target_inclusive = off: its log says "recovery stopping before WAL location"), or take it after the slot was created (an Aurora clone: aurora_volume_logical_start_lsn())',
      });
    if (await subscriptionRow(tgt, names.subscription, targetMajor))
      throw new CutoverError('STATE', `replication "${names.name}" already exists: subscription ${names.subscription} on the target`, { hint: `remove it with \`cutover replicate stop --name ${names.name}\`` });
    const published = await q<{ schema: string; name: string }>(src, `select schemaname as schema, tablename as name from pg_publication_tables where pubname = $1 order by 1, 2`, [names.publication]);
    const targetTables = new Set((await listTables(tgt)).map((t) => `${t.schema}\u0000${t.name}`));
    const missing = published.filter((t) => !targetTables.has(`${t.schema}\u0000${t.name}`));
    if (missing.length)
      throw new CutoverError('PRECONDITION', `the target lacks ${missing.length} published table(s): ${missing.slice(0, 10).map(displayName).join(', ')}; it is not a copy of the source`, { hint: 'check --target: it must be the upgraded copy of the source' });

    created = true;
    await q(tgt, `DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`, [], 'dropping the publication the copy brought along');
    const disableOnError = (opts.disableOnError ?? true) && targetMajor >= 15;
    const streaming = (opts.streaming ?? true) && sourceMajor >= 14 && targetMajor >= 14;
    const withOpts = [`slot_name = ${quoteLiteral(names.slot)}`, 'create_slot = false', 'copy_data = false', 'enabled = false'];
    if (disableOnError) withOpts.push('disable_on_error = true');
    if (streaming) withOpts.push('streaming = on');
    await createSubscription(tgt, names, opts, withOpts);
    const sub = await subscriptionRow(tgt, names.subscription, targetMajor);
    await q(tgt, `select pg_replication_origin_advance($1, $2::pg_lsn)`, [`pg_${sub.oid}`, opts.lsn], "advancing the subscription's replication origin to the copy's LSN");
    await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} ENABLE`, [], 'enabling the subscription');
    await recordMeta(src, tgt, names, sub.oid, opts, excludedTables(await listTables(src), published, sourceMajor));
    log(`created subscription ${names.subscription} (oid ${sub.oid}) on slot ${names.slot}, origin pg_${sub.oid} advanced to ${opts.lsn}, enabled`);
    return {
      ...names,
      sourceMajor,
      targetMajor,
      subscriptionOid: sub.oid,
      mode: 'all',
      tables: published.map((t) => ({ table: displayName(t), schema: t.schema, name: t.name, copyData: false })),
      options: { disableOnError, streaming, publishViaPartitionRoot: pub[0].viaRoot },
      elapsedMs: Date.now() - t0,
      initialSync: 'clone',
      clone: { lsn: opts.lsn, timings: {} },
    };
  } catch (e) {
    if (created) {
      await src?.end().catch(() => {});
      await tgt?.end().catch(() => {});
      throw await cleanedUp(e, opts, names);
    }
    throw e;
  } finally {
    await src?.end().catch(() => {});
    await tgt?.end().catch(() => {});
  }
}

/**
 * Clone-then-follow in one call, with a builder that makes the target (the lab's: lab/clone.ts):
 * the physical copy first (recovery can stop only after the copy's own end), then the slot, then
 * the copy recovered to exactly the slot's consistent point, upgraded and started as the target,
 * then followClone at that point. Any failure drops the slot, publication and subscription and
 * the builder's own leftovers (cleanup runs on success too).
 */
export async function startCloneReplication(opts: StartOptions & { clone: CloneBuilder }): Promise<StartResult> {
  const t0 = Date.now();
  const names = objectNames(opts.name);
  try {
    const slot = await createCloneSlot({ ...opts, beforeSlot: () => opts.clone.backup() });
    let built: { timings: Record<string, number> };
    try {
      built = await opts.clone.finish(slot.lsn);
    } catch (e) {
      throw await cleanedUp(e, opts, names);
    }
    const res = await followClone({ ...opts, lsn: slot.lsn, ownsSlot: true });
    return { ...res, elapsedMs: Date.now() - t0, clone: { lsn: slot.lsn, timings: built.timings } };
  } finally {
    await opts.clone.cleanup().catch((e) => opts.log?.(`clone cleanup: ${e instanceof Error ? e.message : e}`));
  }
}

// ---------------------------------------------------------------------------------------------
// coverage: no table (or sequence) left behind
// ---------------------------------------------------------------------------------------------

/** What we keep in the publication's COMMENT (found again from any process, also after a crash). */
export interface PublicationMeta {
  tool: 'cutover-lab';
  subscriptionOid: number;
  target: string;
  created: string;
  /** Sequences (display names) present on the target when replication started or tables were added. */
  sequences?: string[];
  /** Tables an explicit --tables list left out on purpose (not reported as missing). */
  excluded?: string[];
}

async function readMeta(src: Client, publication: string): Promise<PublicationMeta | undefined> {
  const r = await q<{ comment: string | null }>(src, `select obj_description(oid, 'pg_publication') as comment from pg_publication where pubname = $1`, [publication]);
  try {
    const m = JSON.parse(r[0]?.comment ?? 'null');
    return m && m.tool === 'cutover-lab' ? m : undefined;
  } catch {
    return undefined;
  }
}

async function writeMeta(src: Client, publication: string, meta: PublicationMeta): Promise<void> {
  await q(src, `COMMENT ON PUBLICATION ${quoteIdent(publication)} IS ${quoteLiteral(JSON.stringify(meta))}`, [], 'recording the replication on its publication');
}

async function sourceSequences(c: Client): Promise<TableName[]> {
  return await q<TableName>(
    c,
    `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'S' and ${SYSTEM_SCHEMA_FILTER}
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by 1, 2`,
  );
}

/** Source sequences that also exist on the target (display names). */
async function sequencesOnBoth(src: Client, tgt: Client): Promise<string[]> {
  const onTarget = new Set((await sourceSequences(tgt)).map(displayName));
  return (await sourceSequences(src)).map(displayName).filter((n) => onTarget.has(n));
}

export interface PublicationCoverage {
  publication: string;
  exists: boolean;
  allTables: boolean;
  /** Replicable source tables the publication does not carry: created after start, or never added. */
  tables: Array<TableName & { table: string; note?: string }>;
  /** Source sequences the replication did not bring to the target (created after start). */
  sequences: Array<TableName & { sequence: string }>;
  /** False when the publication predates sequence tracking: `sequences` is then empty, not checked. */
  sequencesChecked: boolean;
  /** Tables left out on purpose by an explicit --tables list at start. */
  excluded: string[];
  /** The command that brings the missing ones in (undefined when nothing is missing). */
  fix?: string;
}

/** Oids of the tables a (non-FOR ALL TABLES) publication carries: listed, in a listed schema (15+), or a partition of a listed table. */
async function coveredOids(source: Client, pubOid: number, major: number): Promise<Set<number>> {
  const rows = await q<{ oid: number }>(
    source,
    `with recursive covered as (
       select pr.prrelid as oid from pg_publication_rel pr where pr.prpubid = $1
       ${major >= 15 ? `union select c.oid from pg_class c join pg_publication_namespace pn on pn.pnnspid = c.relnamespace where pn.pnpubid = $1 and c.relkind in ('r', 'p')` : ''}
       union
       select h.inhrelid from pg_inherits h join covered on h.inhparent = covered.oid)
     select oid::int as oid from covered`,
    [pubOid],
  );
  return new Set(rows.map((r) => r.oid));
}

/**
 * The source's replicable tables and sequences that the replication behind `publication` does not
 * carry. A table is carried when the publication lists it, lists one of its partitioned ancestors,
 * its schema (FOR TABLES IN SCHEMA, 15+) or is FOR ALL TABLES. Sequences are never published: one
 * is carried when it was on the target when replication started or tables were added (recorded
 * on the publication). Anything returned here would be EMPTY on the new primary after a switch:
 * the switchover's preflight must refuse to fence while it is non-empty.
 */
export async function missingFromPublication(source: Client, publication: string): Promise<PublicationCoverage> {
  const name = publication.replace(/^cutover_/, '');
  const pub = await q<{ oid: number; all: boolean }>(source, `select oid::int as oid, puballtables as all from pg_publication where pubname = $1`, [publication]);
  const res: PublicationCoverage = { publication, exists: pub.length > 0, allTables: pub[0]?.all ?? false, tables: [], sequences: [], sequencesChecked: false, excluded: [] };
  if (!pub.length) return res;
  const major = await serverMajor(source);
  const meta = await readMeta(source, publication);
  res.excluded = meta?.excluded ?? [];
  const excluded = new Set(res.excluded);
  if (!res.allTables) {
    const covered = await coveredOids(source, pub[0].oid, major);
    const catalog = await listTables(source);
    const byOid = new Map(catalog.map((t) => [t.oid, t]));
    // top-level ancestor of each partition, to name a whole new partitioned table once
    const parents = new Map((await q<{ child: number; parent: number }>(source, `select inhrelid::int as child, inhparent::int as parent from pg_inherits h join pg_class c on c.oid = h.inhrelid where c.relispartition`)).map((r) => [r.child, r.parent]));
    const root = (oid: number): number => {
      let o = oid;
      while (parents.has(o)) o = parents.get(o)!;
      return o;
    };
    const leavesOf = new Map<number, CatalogTable[]>();
    for (const t of catalog) if (!t.partitioned) leavesOf.set(root(t.oid), [...(leavesOf.get(root(t.oid)) ?? []), t]);
    const report = new Map<number, CatalogTable>();
    for (const t of catalog) {
      if (t.partitioned || covered.has(t.oid) || t.name === SENTINEL_TABLE || excluded.has(displayName(t))) continue;
      const r = root(t.oid);
      const rootTable = byOid.get(r);
      // a 13+ source publishes a partitioned table through its root: name the root when none of it is carried
      if (r !== t.oid && rootTable && major >= 13 && !(leavesOf.get(r) ?? []).some((l) => covered.has(l.oid)) && !covered.has(r)) {
        if (!excluded.has(displayName(rootTable))) report.set(r, rootTable);
      } else report.set(t.oid, t);
    }
    // a 13+ partitioned table with no partitions yet
    for (const t of catalog) if (t.partitioned && !t.isPartition && major >= 13 && !covered.has(t.oid) && !(leavesOf.get(t.oid) ?? []).length && !excluded.has(displayName(t))) report.set(t.oid, t);
    res.tables = [...report.values()]
      .sort((a, b) => displayName(a).localeCompare(displayName(b)))
      .map((t) => ({
        schema: t.schema,
        name: t.name,
        table: displayName(t),
        note:
          t.replicaIdentity === 'n' ? 'REPLICA IDENTITY NOTHING: set a replica identity first' : !t.partitioned && !t.hasPk && t.replicaIdentity === 'd' ? 'no primary key: add one (or a replica identity) first' : undefined,
      }));
  }
  if (meta?.sequences) {
    res.sequencesChecked = true;
    const known = new Set(meta.sequences);
    res.sequences = (await sourceSequences(source)).filter((x) => !known.has(displayName(x))).map((x) => ({ ...x, sequence: displayName(x) }));
  }
  if (res.tables.length || res.sequences.length) {
    const parts = [`cutover replicate add-table --name ${name}`];
    if (res.tables.length) parts.push(`--tables ${shellWord(res.tables.map((t) => t.table).join(','))}`);
    if (res.sequences.length) parts.push(`--sequences ${shellWord(res.sequences.map((x) => x.sequence).join(','))}`);
    res.fix = parts.join(' ') + ' --source … --target …';
  }
  return res;
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_.,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One line per missing object, for status and preflights. */
export function describeCoverage(c: PublicationCoverage): string[] {
  const out: string[] = [];
  if (c.tables.length)
    out.push(
      `${c.tables.length} table(s) on the source are not replicated and would be EMPTY on the new primary: ${c.tables.map((t) => t.table + (t.note ? ` (${t.note})` : '')).join(', ')} — bring them in with \`${c.fix}\`${c.allTables ? '' : ' (or replicate with a FOR ALL TABLES publication)'}`,
    );
  if (c.sequences.length) out.push(`${c.sequences.length} sequence(s) created on the source after replication started are missing on the target: ${c.sequences.map((x) => x.sequence).join(', ')} — \`${c.fix}\``);
  return out;
}

export interface AddTablesOptions {
  source: string;
  target: string;
  name?: string;
  tables?: Array<string | TableSpec>;
  /** Standalone sequences to create on the target (sequences owned by an added table come with it). */
  sequences?: string[];
  /** Copy the schema (pre-data + keys before, post-data after). Default true. */
  schema?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface AddTablesResult extends ObjectNames {
  tables: string[];
  sequences: string[];
  /** Tables already carried by the publication (e.g. a partition of a published root, FOR ALL TABLES). */
  alreadyPublished: string[];
  preData?: SchemaCopyResult;
  postData?: SchemaCopyResult;
  elapsedMs: number;
}

/**
 * Bring tables created after start into a running replication: their pre-data and keys on the
 * target, ALTER PUBLICATION … ADD TABLE, ALTER SUBSCRIPTION … REFRESH PUBLICATION (copying their
 * rows), wait until each is `r`, then their post-data. Standalone sequences are created too.
 * Idempotent: a re-run after a failure finishes the job.
 */
export async function addTables(opts: AddTablesOptions): Promise<AddTablesResult> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  return withRunningReplication(opts, async ({ src, tgt, names, sourceMajor, targetMajor, pub, sub }) => {
    const catalog = await listTables(src);
    const specs = (opts.tables ?? []).map(resolveSpec);
    const plan = specs.length ? planTables(catalog, specs, { sourceMajor, copyData: true }) : { tables: [], problems: [] };
    if (plan.problems.length) throw new CutoverError('PRECONDITION', `cannot add: ${plan.problems.join('; ')}`, { hint: 'add a primary key (or a replica identity) first; check the names with \\dt on the source' });
    const seqs = (opts.sequences ?? []).map((x) => parseTableName(x));
    const srcSeqs = new Set((await sourceSequences(src)).map(displayName));
    const noSeq = seqs.filter((x) => !srcSeqs.has(displayName(x)));
    if (noSeq.length) throw new CutoverError('USAGE', `no such sequence on the source: ${noSeq.map(displayName).join(', ')}`, { hint: 'name sequences as schema.name' });
    if (!plan.tables.length && !seqs.length) throw new CutoverError('USAGE', 'nothing to add', { hint: 'give --tables and/or --sequences' });

    // partitions come with their partitioned table (pg_dump -t does not include them)
    const dumpList: TableName[] = [...seqs];
    for (const t of plan.tables) {
      const c = catalog.find((x) => x.schema === t.schema && x.name === t.name)!;
      dumpList.push(t);
      if (c.partitioned) {
        const parts = await q<TableName>(
          src,
          `with recursive d as (select $1::oid as oid union select h.inhrelid from pg_inherits h join d on h.inhparent = d.oid)
           select n.nspname as schema, c.relname as name from d join pg_class c on c.oid = d.oid join pg_namespace n on n.oid = c.relnamespace where d.oid <> $1::oid`,
          [c.oid],
        );
        dumpList.push(...parts);
      }
    }
    // the target's copies must not hold rows already (the copy would duplicate them)
    const onTarget = new Set((await listTables(tgt)).map((t) => `${t.schema}\u0000${t.name}`));
    for (const t of plan.tables) {
      if (onTarget.has(`${t.schema}\u0000${t.name}`) && (await q(tgt, `select 1 from ${qualified(t.schema, t.name)} limit 1`)).length)
        throw new CutoverError('PRECONDITION', `target table ${displayName(t)} already holds rows; its initial copy would duplicate them`, { hint: `truncate it on the target, then run add-table again` });
    }
    const res: AddTablesResult = { ...names, tables: plan.tables.map(displayName), sequences: seqs.map(displayName), alreadyPublished: [], elapsedMs: 0 };
    if (opts.schema !== false) {
      res.preData = await copySchema({ source: opts.source, target: opts.target, section: 'pre-data', tables: dumpList, progress: opts.progress });
      log(`pre-data and keys for ${dumpList.map(displayName).join(', ')} on the target (${res.preData.applied} + ${res.preData.keys?.applied ?? 0} statements)`);
    }
    // A FOR ALL TABLES publication sends a new table's rows before the target has the table: the
    // apply worker stopped on it (15+: disabled). Now that the table exists it can go on.
    if (!sub.enabled) {
      await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} ENABLE`, [], 'enabling the subscription');
      log(`enabled subscription ${names.subscription} (it was disabled, e.g. by a row for a table the target lacked)`);
    }
    if (plan.tables.length) {
      const pubOid = (await q<{ oid: number }>(src, `select oid::int as oid from pg_publication where pubname = $1`, [names.publication]))[0].oid;
      const covered = pub.all ? new Set<number>() : await coveredOids(src, pubOid, sourceMajor);
      for (const t of plan.tables) {
        const c = catalog.find((x) => x.schema === t.schema && x.name === t.name)!;
        if (pub.all || covered.has(c.oid)) {
          res.alreadyPublished.push(displayName(t));
          continue;
        }
        await q(src, `ALTER PUBLICATION ${quoteIdent(names.publication)} ADD TABLE ${pubTableSql(t)}`, [], `adding ${displayName(t)} to the publication`);
        log(`added ${displayName(t)} to publication ${names.publication}`);
      }
      await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} REFRESH PUBLICATION WITH (copy_data = true)`, [], 'refreshing the subscription');
      log(`refreshed subscription ${names.subscription}`);
      // wait for the tables the subscription now lists (a partition of a published root has no entry of its own)
      const subscribed = new Set(
        (await q<TableName>(tgt, `select n.nspname as schema, c.relname as name from pg_subscription_rel sr join pg_class c on c.oid = sr.srrelid join pg_namespace n on n.oid = c.relnamespace where sr.srsubid = $1`, [sub.oid])).map(
          (t) => `${t.schema}\u0000${t.name}`,
        ),
      );
      const waitFor = plan.tables.filter((t) => subscribed.has(`${t.schema}\u0000${t.name}`));
      if (waitFor.length) await waitForSync({ source: opts.source, target: opts.target, name: names.name, tables: waitFor, timeoutMs: opts.timeoutMs, signal: opts.signal, progress: opts.progress, label: `sync ${waitFor.map(displayName).join(', ')}` });
      if (opts.schema !== false) {
        res.postData = await copySchema({ source: opts.source, target: opts.target, section: 'post-data', tables: dumpList.filter((t) => !seqs.includes(t)), progress: opts.progress });
        log(`post-data for ${plan.tables.map(displayName).join(', ')} on the target (${res.postData.applied} statements)`);
      }
    }
    const meta = (await readMeta(src, names.publication)) ?? { tool: 'cutover-lab', subscriptionOid: sub.oid, target: describeTarget(opts.target), created: new Date().toISOString() };
    meta.sequences = [...new Set([...(meta.sequences ?? []), ...(await sequencesOnBoth(src, tgt))])].sort();
    if (meta.excluded) meta.excluded = meta.excluded.filter((x) => !res.tables.includes(x));
    await writeMeta(src, names.publication, meta);
    res.elapsedMs = Date.now() - t0;
    return res;
  });
}

// ---------------------------------------------------------------------------------------------
// stop
// ---------------------------------------------------------------------------------------------

export interface StopOptions {
  source: string;
  target: string;
  name?: string;
  /** How long to wait for a walsender to let go of the slot before terminating it. */
  releaseTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface StopResult extends ObjectNames {
  /** What this call removed. */
  dropped: string[];
  /** What is still there (a server did not answer): run stop again. */
  remaining: string[];
  notes: string[];
  complete: boolean;
}

async function tryConnect(url: string, role: string): Promise<{ c?: Client; error?: unknown }> {
  try {
    return { c: await connect(url, { role, connectTimeoutMs: 8000 }) };
  } catch (error) {
    return { error };
  }
}

/**
 * Remove subscription, publication and slots. Idempotent; works when either side is down
 * (reports what remains), after a crash half-way, and when the subscriber cannot reach the
 * publisher any more (the slot is dropped over our own connection to the source).
 */
export async function stopReplication(opts: StopOptions): Promise<StopResult> {
  const names = objectNames(opts.name);
  const log = opts.log ?? (() => {});
  const res: StopResult = { ...names, dropped: [], remaining: [], notes: [], complete: false };
  let subOid: number | undefined;

  // 1. target: disable, detach the slot, drop the subscription (no connection to the source needed)
  const t = await tryConnect(opts.target, 'target');
  if (t.c) {
    try {
      const targetMajor = await serverMajor(t.c);
      const sub = await subscriptionRow(t.c, names.subscription, targetMajor);
      if (sub) {
        subOid = sub.oid;
        if (sub.enabled) await q(t.c, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} DISABLE`);
        // wait for the apply and sync workers to exit so the slot is released (polled fast at first:
        // the switchover stops the forward replication inside the write-blocked window)
        // An idle apply worker notices DISABLE only at its next wake-up (up to a second, measured
        // 740 ms with 100 tables); the subscription is being removed, so its workers are terminated
        // at once: a transaction in progress aborts and is not half-applied (the origin moves on
        // commit). A non-superuser may not signal a superuser's worker: then it is waited for.
        await t.c.query(`select pg_terminate_backend(pid) from pg_stat_subscription where subid = $1 and pid is not null`, [sub.oid]).catch(() => {});
        const deadline = Date.now() + 10_000;
        for (let i = 0; Date.now() < deadline; i++) {
          const w = await q(t.c, `select 1 from pg_stat_subscription where subid = $1 and pid is not null`, [sub.oid]);
          if (!w.length) break;
          await sleep(i < 50 ? 10 : 200);
        }
        if (sub.slot !== null) await q(t.c, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} SET (slot_name = NONE)`);
        await q(t.c, `DROP SUBSCRIPTION ${quoteIdent(names.subscription)}`);
        res.dropped.push(`subscription ${names.subscription} on the target`);
        log(`dropped subscription ${names.subscription} on the target`);
      }
    } catch (e) {
      res.remaining.push(`subscription ${names.subscription} on the target (${e instanceof Error ? redactSecrets(e.message) : String(e)})`);
    } finally {
      await t.c.end().catch(() => {});
    }
  } else {
    res.remaining.push(`subscription ${names.subscription} on the target, if it exists (target unreachable: ${(t.error as Error)?.message ?? t.error})`);
  }

  // 2. source: publication, then the slot(s) — terminating a walsender that still holds one
  const s = await tryConnect(opts.source, 'source');
  if (s.c) {
    try {
      const pub = await q<{ comment: string | null }>(s.c, `select obj_description(oid, 'pg_publication') as comment from pg_publication where pubname = $1`, [names.publication]);
      if (pub.length) {
        if (subOid === undefined) {
          try {
            subOid = JSON.parse(pub[0].comment ?? '{}').subscriptionOid;
          } catch {
            /* foreign comment: ignore */
          }
        }
        await q(s.c, `DROP PUBLICATION IF EXISTS ${quoteIdent(names.publication)}`);
        res.dropped.push(`publication ${names.publication} on the source`);
        log(`dropped publication ${names.publication}`);
      }
      const patterns = subOid !== undefined ? syncSlotPatterns(names.subscription, subOid) : [];
      const slots = await q<{ slot_name: string }>(
        s.c,
        `select slot_name from pg_replication_slots
          where (database = current_database() and (slot_name = $1 or slot_name like any($2::text[])))
             or (slot_type = 'physical' and slot_name = $3)`,
        [names.slot, patterns, clonePhysicalSlot(names.slot)],
      );
      for (const { slot_name } of slots) {
        try {
          await dropSlot(s.c, slot_name, opts.releaseTimeoutMs ?? 5000);
          res.dropped.push(`replication slot ${slot_name} on the source`);
          log(`dropped replication slot ${slot_name}`);
        } catch (e) {
          res.remaining.push(`replication slot ${slot_name} on the source (${e instanceof Error ? redactSecrets(e.message) : String(e)})`);
        }
      }
    } catch (e) {
      res.remaining.push(`publication/slot ${names.slot} on the source (${e instanceof Error ? redactSecrets(e.message) : String(e)})`);
    } finally {
      await s.c.end().catch(() => {});
    }
  } else {
    res.remaining.push(`publication ${names.publication} and slot ${names.slot} on the source, if they exist (source unreachable: ${(s.error as Error)?.message ?? s.error}) — an orphan slot retains WAL on the source`);
  }
  if (!res.dropped.length && !res.remaining.length) res.notes.push(`nothing named ${names.publication} was found on either side`);
  res.complete = res.remaining.length === 0;
  return res;
}

/** Poll interval: 10, 20, 40 … ms, at most 200 ms. */
const backoff = (attempt: number) => Math.min(200, 10 * 2 ** attempt);

async function dropSlot(c: Client, slot: string, releaseTimeoutMs: number): Promise<void> {
  const deadline = Date.now() + releaseTimeoutMs;
  for (let i = 0; ; i++) {
    const r = await q<{ active: boolean; pid: number | null }>(c, `select active, active_pid as pid from pg_replication_slots where slot_name = $1`, [slot]);
    if (!r.length) return; // temporary slot went away on its own
    if (!r[0].active) {
      try {
        await c.query(`select pg_drop_replication_slot($1)`, [slot]);
        return;
      } catch (e: any) {
        // 55006: became active again between our check and the drop; 42704: already gone
        if (e?.code === '42704') return;
        if (e?.code !== '55006' || Date.now() > deadline + 10_000) throw sqlError(e, `dropping replication slot ${slot}`);
      }
    } else if (Date.now() > deadline && r[0].pid) {
      await c.query(`select pg_terminate_backend($1)`, [r[0].pid]).catch(() => {});
    }
    if (Date.now() > deadline + 15_000) throw new CutoverError('TIMEOUT', `replication slot ${slot} stays in use (walsender pid ${r[0].pid})`, { hint: 'disable the subscription on the target, then run stop again' });
    await sleep(backoff(i));
  }
}

// ---------------------------------------------------------------------------------------------
// status, lag, wait
// ---------------------------------------------------------------------------------------------

export interface TableStatus {
  table: string;
  schema: string;
  name: string;
  state: SubState;
  stateName: string;
  /** Rows copied so far: live COPY progress during `d`, else the target's row estimate. */
  rowsCopied: number | null;
  /** The source's row estimate (pg_class.reltuples), for progress and ETA. */
  sourceRowsEstimate: number | null;
  /** The publication's row filter for this table (a shard), when it has one. */
  rowFilter?: string;
}

export interface SlotStatus {
  exists: boolean;
  active: boolean;
  activePid: number | null;
  /** WAL the slot keeps on the source (current LSN − restart_lsn), bytes. */
  walRetainedBytes: number | null;
  /** current LSN − confirmed_flush_lsn, bytes. */
  lagBytes: number | null;
  walStatus: string | null;
  confirmedFlushLsn: string | null;
}

export interface ReplicationStatus extends ObjectNames {
  publicationExists: boolean;
  subscriptionExists: boolean;
  enabled: boolean | null;
  disableOnError: boolean | null;
  tables: TableStatus[];
  allReady: boolean;
  counts: Record<string, number>;
  slotHealth: SlotStatus;
  lagBytes: number | null;
  lagSeconds: number | null;
  worker: { pid: number | null; receivedLsn: string | null; lastMessageAt: string | null } | null;
  errors: { applyErrorCount: number; syncErrorCount: number } | null;
  /** Table-sync workers running now: table → pid. */
  syncWorkers: Array<{ table: string; pid: number }>;
  /**
   * When something is wrong (disabled, errors counted, no worker): the current error(s) of the
   * subscription's workers, from the target's log, classified with what to do.
   */
  applyErrors: ApplyError[];
  /** Where applyErrors came from, or why the target's log could not be read. */
  log: { path?: string; unavailable?: string } | null;
  /** Source tables/sequences this replication does not carry (null without a publication). */
  coverage: PublicationCoverage | null;
  /** Published tables missing from the subscription (added to the publication, never refreshed). */
  notSubscribed: string[];
  /** Human lines for anything wrong (disabled after error, slot inactive, …). */
  problems: string[];
}

async function sourceLag(src: Client, names: ObjectNames): Promise<{ slot: SlotStatus; lagSeconds: number | null }> {
  const major = await serverMajor(src);
  const rows = await q<any>(
    src,
    `select active, active_pid as pid, confirmed_flush_lsn::text as cf,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 as lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 as retained,
            ${major >= 13 ? 'wal_status' : 'null::text'} as wal_status
       from pg_replication_slots where slot_name = $1`,
    [names.slot],
  );
  const r = rows[0];
  const slot: SlotStatus = r
    ? { exists: true, active: r.active, activePid: r.pid, walRetainedBytes: r.retained, lagBytes: r.lag, walStatus: r.wal_status, confirmedFlushLsn: r.cf }
    : { exists: false, active: false, activePid: null, walRetainedBytes: null, lagBytes: null, walStatus: null, confirmedFlushLsn: null };
  let lagSeconds: number | null = null;
  if (r) {
    const rep = await q<{ s: number | null }>(src, `select extract(epoch from coalesce(replay_lag, flush_lag, write_lag))::float8 as s from pg_stat_replication where application_name = $1 order by backend_start desc limit 1`, [names.subscription]);
    lagSeconds = rep[0]?.s ?? (r.lag !== null && r.lag <= 0 ? 0 : null);
    // replay_lag is NULL once idle: a slot that is active with a small byte lag is caught up
    if (lagSeconds === null && r.active && r.lag !== null && r.lag < 1024 * 1024) lagSeconds = 0;
  }
  return { slot, lagSeconds };
}

/** Current lag of replication `name`: bytes behind the source's WAL and seconds (null when unknown). */
export async function lag(opts: { source: string; name?: string }): Promise<{ bytes: number | null; seconds: number | null; slot: SlotStatus }> {
  const names = objectNames(opts.name);
  const src = await connect(opts.source, { role: 'source' });
  try {
    const { slot, lagSeconds } = await sourceLag(src, names);
    return { bytes: slot.lagBytes, seconds: lagSeconds, slot };
  } finally {
    await src.end().catch(() => {});
  }
}

/**
 * Which of a replication's objects exist, over the caller's own sessions (three catalog lookups):
 * what the switch phase needs inside the write-blocked window, where replicationStatus (new
 * connections, per-table states, coverage) is too slow.
 */
export async function replicationObjects(src: Client, tgt: Client, name?: string): Promise<{ publication: boolean; subscription: boolean; enabled: boolean | null; slot: boolean }> {
  const names = objectNames(name);
  const sub = await subscriptionRow(tgt, names.subscription, await serverMajor(tgt));
  const [r] = await q<{ pub: boolean; slot: boolean }>(
    src,
    `select exists (select 1 from pg_publication where pubname = $1) as pub, exists (select 1 from pg_replication_slots where slot_name = $2 and database = current_database()) as slot`,
    [names.publication, names.slot],
  );
  return { publication: r.pub, subscription: !!sub, enabled: sub ? sub.enabled : null, slot: r.slot };
}

export async function replicationStatus(opts: { source: string; target: string; name?: string; /** read the target's log when something is wrong (default true; 'always': also when nothing looks wrong) */ diagnose?: boolean | 'always' }): Promise<ReplicationStatus> {
  const names = objectNames(opts.name);
  const src = await connect(opts.source, { role: 'source' });
  let tgt: Client | undefined;
  try {
    tgt = await connect(opts.target, { role: 'target' });
    const targetMajor = await serverMajor(tgt);
    const publicationExists = (await q(src, `select 1 from pg_publication where pubname = $1`, [names.publication])).length > 0;
    const sub = await subscriptionRow(tgt, names.subscription, targetMajor);
    const problems: string[] = [];
    let tables: TableStatus[] = [];
    let worker: ReplicationStatus['worker'] = null;
    let errors: ReplicationStatus['errors'] = null;
    let syncWorkers: ReplicationStatus['syncWorkers'] = [];
    let applyErrors: ApplyError[] = [];
    let log: ReplicationStatus['log'] = null;
    if (sub) {
      const rel = await q<any>(
        tgt,
        `select n.nspname as schema, c.relname as name, c.oid::int as relid, sr.srsubstate::text as state,
                ${targetMajor >= 14 ? '(select p.tuples_processed::float8 from pg_stat_progress_copy p where p.relid = c.oid limit 1)' : 'null::float8'} as copying,
                greatest(c.reltuples, 0)::float8 as est, st.n_live_tup::float8 as live
           from pg_subscription_rel sr join pg_class c on c.oid = sr.srrelid join pg_namespace n on n.oid = c.relnamespace
           left join pg_stat_user_tables st on st.relid = c.oid
          where sr.srsubid = $1 order by 1, 2`,
        [sub.oid],
      );
      const est = new Map<string, number>();
      for (const r of await q<any>(src, `select n.nspname as schema, c.relname as name, greatest(c.reltuples,0)::float8 as est from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','p') and ${SYSTEM_SCHEMA_FILTER}`))
        est.set(`${r.schema}\u0000${r.name}`, r.est);
      const filters = publicationExists ? await publicationRowFilters(src, names.publication) : [];
      tables = rel.map((r: any) => ({
        table: displayName(r),
        schema: r.schema,
        name: r.name,
        state: r.state,
        stateName: subStateName(r.state),
        rowsCopied: r.state === 'd' || r.state === 'i' ? (r.copying ?? 0) : Math.max(r.live ?? 0, r.est ?? 0),
        sourceRowsEstimate: est.get(`${r.schema}\u0000${r.name}`) ?? null,
        ...withFilter(filters, r),
      }));
      const w = await q<any>(tgt, `select pid, received_lsn::text as lsn, last_msg_receipt_time::text as at from pg_stat_subscription where subid = $1 and relid is null`, [sub.oid]);
      worker = w[0] ? { pid: w[0].pid, receivedLsn: w[0].lsn, lastMessageAt: w[0].at } : { pid: null, receivedLsn: null, lastMessageAt: null };
      syncWorkers = (
        await q<any>(tgt, `select n.nspname as schema, c.relname as name, s.pid from pg_stat_subscription s join pg_class c on c.oid = s.relid join pg_namespace n on n.oid = c.relnamespace where s.subid = $1 and s.pid is not null`, [sub.oid])
      ).map((r: any) => ({ table: displayName(r), pid: r.pid }));
      if (targetMajor >= 15) {
        const st = await q<any>(tgt, `select apply_error_count::int as a, sync_error_count::int as s from pg_stat_subscription_stats where subid = $1`, [sub.oid]);
        if (st[0]) errors = { applyErrorCount: st[0].a, syncErrorCount: st[0].s };
      }
      const failing = !sub.enabled || (errors !== null && errors.applyErrorCount + errors.syncErrorCount > 0) || worker.pid === null;
      if ((failing && opts.diagnose !== false) || opts.diagnose === 'always') {
        const d = await diagnoseSubscription(tgt, names.subscription, sub.oid, targetMajor, worker.pid);
        applyErrors = d.errors;
        log = d.log;
        if (!applyErrors.length && failing) applyErrors = await inferApplyErrors(tgt, src, sub.oid, names.subscription);
      }
      // a worker that fails again and again while the apply worker looks fine (a table-sync worker
      // before 15 lives for milliseconds between retries: only the log sees it)
      const looping = applyErrors.filter((e) => (e.failures ?? 0) >= 2);
      const said = applyErrors.length ? `:\n${applyErrors.map(describeApplyError).join('\n')}` : '';
      const logNote = log?.unavailable ? ` (the target's server log has the full message; it could not be read here: ${log.unavailable})` : applyErrors.length && log?.path ? ` (from ${log.path})` : '';
      if (!sub.enabled)
        problems.push(
          errors && errors.applyErrorCount + errors.syncErrorCount > 0
            ? `subscription ${names.subscription} was disabled after an error (apply errors ${errors.applyErrorCount}, sync errors ${errors.syncErrorCount})${logNote}${said || `; fix the cause (often a missing key, a unique violation or a missing table) then ALTER SUBSCRIPTION ${names.subscription} ENABLE`}`
            : `subscription ${names.subscription} is disabled${logNote}${said}`,
        );
      else if (errors && errors.applyErrorCount + errors.syncErrorCount > 0 && (applyErrors.length || worker.pid === null))
        problems.push(`apply has failed ${errors.applyErrorCount} time(s), table sync ${errors.syncErrorCount} time(s)${logNote}${said}`);
      else if (worker.pid === null) problems.push(`no apply worker is running on the target (it restarts every few seconds after an error)${logNote}${said}`);
      else if (looping.length) problems.push(`the ${looping.map((e) => workerLabel(e.worker)).join(', ')} keep(s) failing and restarting${logNote}:\n${looping.map(describeApplyError).join('\n')}`);
    }
    // No table left behind: what the source has that this replication does not carry.
    let coverage: PublicationCoverage | null = null;
    let notSubscribed: string[] = [];
    if (publicationExists) {
      coverage = await missingFromPublication(src, names.publication);
      problems.push(...describeCoverage(coverage));
      if (sub) {
        const subscribed = new Set(tables.map((t) => `${t.schema}\u0000${t.name}`));
        notSubscribed = (await q<TableName>(src, `select schemaname as schema, tablename as name from pg_publication_tables where pubname = $1 order by 1, 2`, [names.publication]))
          .filter((t) => !subscribed.has(`${t.schema}\u0000${t.name}`) && t.name !== SENTINEL_TABLE)
          .map(displayName);
        if (notSubscribed.length)
          problems.push(`${notSubscribed.length} published table(s) are not in the subscription yet (never refreshed): ${notSubscribed.slice(0, 10).join(', ')} — \`cutover replicate add-table --name ${names.name} --tables ${notSubscribed.join(',')}\` creates them on the target and refreshes`);
      }
    }
    const { slot, lagSeconds } = await sourceLag(src, names);
    if (sub && !slot.exists) problems.push(`replication slot ${names.slot} is missing on the source: the subscription cannot continue`);
    if (slot.exists && !slot.active) problems.push(`replication slot ${names.slot} is not in use: WAL accumulates on the source (${slot.walRetainedBytes ?? '?'} bytes retained)`);
    if (slot.walStatus === 'lost') problems.push(`replication slot ${names.slot} lost required WAL: replication must be restarted from scratch`);
    if (!sub && (publicationExists || slot.exists)) problems.push(`leftover objects without a subscription: run \`cutover replicate stop --name ${names.name}\``);
    const counts: Record<string, number> = {};
    for (const t of tables) counts[t.state] = (counts[t.state] ?? 0) + 1;
    return {
      ...names,
      publicationExists,
      subscriptionExists: !!sub,
      enabled: sub ? sub.enabled : null,
      disableOnError: sub ? sub.disableonerr : null,
      tables,
      allReady: !!sub && tables.length > 0 && tables.every((t) => t.state === 'r'),
      counts,
      slotHealth: slot,
      lagBytes: slot.lagBytes,
      lagSeconds,
      worker,
      errors,
      syncWorkers,
      applyErrors,
      log,
      coverage,
      notSubscribed,
      problems,
    };
  } finally {
    await src.end().catch(() => {});
    await tgt?.end().catch(() => {});
  }
}

/**
 * Without the target's log: the likeliest causes we can see from the catalogs — subscribed tables
 * the target cannot apply UPDATE/DELETE to (no key, while the source's identity is not FULL).
 */
async function inferApplyErrors(tgt: Client, src: Client, subOid: number, subscription: string): Promise<ApplyError[]> {
  const subscribed = await q<TableName>(tgt, `select n.nspname as schema, c.relname as name from pg_subscription_rel sr join pg_class c on c.oid = sr.srrelid join pg_namespace n on n.oid = c.relnamespace where sr.srsubid = $1`, [subOid]);
  const full = new Set((await listTables(src)).filter((t) => t.replicaIdentity === 'f').map((t) => `${t.schema}\u0000${t.name}`));
  const noKey = await targetTablesWithoutKey(tgt, subscribed.filter((t) => !full.has(`${t.schema}\u0000${t.name}`)));
  return noKey.map((t) => ({
    kind: 'missing-key' as const,
    level: 'ERROR',
    message: `(inferred from the catalogs, not read from the log) target table ${displayName(t)} has neither a primary key nor a replica-identity index: an UPDATE or DELETE on it cannot be applied`,
    relation: displayName(t),
    advice: [`create the source's primary key (or unique index and REPLICA IDENTITY) of ${displayName(t)} on the target, then ALTER SUBSCRIPTION ${subscription} ENABLE if it was disabled`],
  }));
}

/** The error to stop on, with the log's own line and what to do (or why the log was not readable). */
function applyFailure(st: ReplicationStatus, lead: string): CutoverError {
  const e = st.applyErrors[0];
  if (!e)
    return new CutoverError('STATE', `${lead}${st.log?.unavailable ? `; the target's server log has the message (it could not be read here: ${st.log.unavailable})` : ''}`, {
      detail: st.problems.join('\n') || undefined,
      hint: `fix the cause, then ALTER SUBSCRIPTION ${st.subscription} ENABLE (if disabled); \`cutover replicate status\` shows the state, \`cutover replicate stop --name ${st.name}\` removes it`,
    });
  const more = st.applyErrors.length > 1 ? `; and ${st.applyErrors.length - 1} more: ${st.applyErrors.slice(1).map((x) => `${workerLabel(x.worker)}: ${x.message}`).join(' | ')}` : '';
  return new CutoverError('STATE', `${lead}: ${e.level}: ${e.message}`, {
    detail: [e.detail && `DETAIL: ${e.detail}`, e.context && `CONTEXT: ${e.context}`, st.log?.path ? `from ${st.log.path}` : st.log?.unavailable ? `the target's server log has more (not readable here: ${st.log.unavailable})` : undefined].filter(Boolean).join('; ') + more || undefined,
    hint: `${e.advice.join('; ')}; or remove the replication with \`cutover replicate stop --name ${st.name}\` (the slot keeps WAL on the source meanwhile)`,
  });
}

/**
 * Counts worker restarts across status snapshots: the apply worker's pid changing or vanishing, a
 * table-sync worker vanishing or changing while its table is still being copied or catching up, and (15+) the
 * error counters rising. Pure; unit-tested.
 */
export class RestartTracker {
  restarts = 0;
  private apply: number | null | undefined;
  private sync = new Map<string, number>();
  private errors = -1;
  observe(st: Pick<ReplicationStatus, 'worker' | 'syncWorkers' | 'errors' | 'tables'>): void {
    const pid = st.worker?.pid ?? null;
    if (this.apply !== undefined && this.apply !== null && pid !== this.apply) this.restarts++;
    this.apply = pid;
    const now = new Map(st.syncWorkers.map((w) => [w.table, w.pid]));
    // a sync worker also applies changes after its copy ('f', catching up): it can fail there too
    const copying = new Set(st.tables.filter((t) => t.state === 'i' || t.state === 'd' || t.state === 'f').map((t) => t.table));
    for (const [table, prev] of this.sync) if (copying.has(table) && now.get(table) !== prev) this.restarts++;
    this.sync = now;
    if (st.errors) {
      const total = st.errors.applyErrorCount + st.errors.syncErrorCount;
      if (this.errors >= 0 && total > this.errors) this.restarts += total - this.errors;
      this.errors = total;
    }
  }
}

export interface WaitOptions {
  source: string;
  target: string;
  name?: string;
  /** Only these tables must reach `r` (default: all subscribed). */
  tables?: Array<string | TableSpec>;
  /** Also wait until lag is at most this many bytes. */
  maxLagBytes?: number;
  timeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
  progress?: boolean;
  label?: string;
  onStatus?: (s: ReplicationStatus) => void;
}

/** Poll until the tables are `r` (and lag ≤ maxLagBytes), with progress and ETA over copied rows. */
export async function waitForSync(opts: WaitOptions): Promise<ReplicationStatus> {
  const deadline = Date.now() + (opts.timeoutMs ?? 6 * 3600_000);
  const want = opts.tables?.map(resolveSpec).map((t) => `${t.schema ?? 'public'}\u0000${t.name}`);
  let progress: Progress | undefined;
  const tracker = new RestartTracker();
  let lastLogLook = Date.now();
  let copiedAtSecondRestart: number | undefined;
  const ticker = new IdlePublisherTicker(opts.source);
  try {
    return await waitLoop();
  } finally {
    await ticker.close();
  }
  async function waitLoop(): Promise<ReplicationStatus> {
  for (;;) {
    let st = await replicationStatus(opts);
    opts.onStatus?.(st);
    if (!st.subscriptionExists) throw new CutoverError('STATE', `subscription ${st.subscription} does not exist on the target`, { hint: 'start replication first' });
    if (st.enabled === false) throw applyFailure(st, `subscription ${st.subscription} was disabled after an error`);
    // Before 15 (or without disable_on_error) a failing worker exits and is restarted every
    // wal_retrieve_retry_interval, forever. Two restarts with an error in the log, or six without
    // progress, end the wait with that error instead of waiting out the timeout.
    tracker.observe(st);
    // a worker failing between two polls is invisible to pg_stat_subscription: look at the log
    // every few seconds while not ready
    let looked = st;
    if (st.applyErrors.length === 0 && Date.now() - lastLogLook > 4000) {
      lastLogLook = Date.now();
      looked = await replicationStatus({ ...opts, diagnose: 'always' });
    }
    const loop = looked.log?.path !== undefined ? looked.applyErrors.find((e) => (e.failures ?? 0) >= 2) : undefined;
    if (loop) throw applyFailure({ ...looked, applyErrors: [loop, ...looked.applyErrors.filter((x) => x !== loop)] }, `the ${workerLabel(loop.worker)} of ${st.subscription} keeps failing (failed ${loop.failures} times)`);
    if (tracker.restarts >= 2) {
      if (!st.applyErrors.length) st = await replicationStatus({ ...opts, diagnose: 'always' });
      const fromLog = st.log?.path !== undefined && st.applyErrors.length > 0;
      const copiedNow = st.tables.reduce((a, t) => a + (t.rowsCopied ?? 0), 0);
      copiedAtSecondRestart ??= copiedNow;
      if (fromLog) throw applyFailure(st, `the ${workerLabel(st.applyErrors[0].worker)} of ${st.subscription} keeps failing (restarted ${tracker.restarts} times)`);
      if (tracker.restarts >= 6 && copiedNow <= copiedAtSecondRestart) throw applyFailure(st, `the workers of ${st.subscription} keep restarting (${tracker.restarts} times) without progress`);
    }
    if (!st.slotHealth.exists) throw new CutoverError('STATE', `replication slot ${st.slot} is missing on the source`, { hint: 'stop and start replication again' });
    const relevant = want ? st.tables.filter((t) => want.includes(`${t.schema}\u0000${t.name}`)) : st.tables;
    const total = relevant.reduce((a, t) => a + (t.sourceRowsEstimate ?? 0), 0);
    const copied = relevant.reduce((a, t) => a + Math.min(t.rowsCopied ?? 0, t.sourceRowsEstimate ?? Infinity), 0);
    if (opts.progress) {
      progress ??= new Progress(opts.label ?? `initial sync ${st.subscription}`, total || undefined, { mode: defaultProgressMode() });
      const notReady = relevant.filter((t) => t.state !== 'r');
      progress.set(copied, `${relevant.length - notReady.length}/${relevant.length} tables ready${notReady.length ? `; ${notReady.slice(0, 3).map((t) => `${t.table}:${t.state}`).join(' ')}` : ''}`);
    }
    const ready = (want ? relevant.length === want.length : relevant.length > 0) && relevant.every((t) => t.state === 'r');
    const lagOk = opts.maxLagBytes === undefined || (st.lagBytes !== null && st.lagBytes <= opts.maxLagBytes);
    if (ready && lagOk) {
      progress?.finish('all ready');
      return st;
    }
    if (Date.now() > deadline) {
      progress?.finish('timed out');
      const pending = relevant.filter((t) => t.state !== 'r').map((t) => `${t.table} (${t.stateName})`);
      throw new CutoverError('TIMEOUT', `replication ${st.name} not in sync after ${formatDuration(opts.timeoutMs ?? 0)}: ${pending.length ? `${pending.length} table(s) not ready: ${pending.slice(0, 5).join(', ')}` : `lag ${st.lagBytes} bytes`}`, {
        hint: st.problems[0] ?? 'see `cutover replicate status`; a large table may just need more time',
      });
    }
    await ticker.tick();
    await sleep(ticker.active ? Math.min(200, opts.pollMs ?? 500) : (opts.pollMs ?? 500), opts.signal);
  }
  }
}

/**
 * An 11 or 12 publisher with no other WAL traffic leaves its table-sync workers in catch-up for
 * ~10 s before they report ready (measured: 10.8–13.3 s for 20,000 rows, against 0.8–1.0 s with
 * a tick every 200 ms; 13+ publishers do not show it). While a sync is waited on, a non-
 * transactional logical message on such a source gives the walsenders something to send. Best
 * effort: without the privilege (superuser or REPLICATION on these majors) it stays quiet.
 */
class IdlePublisherTicker {
  private client?: Client;
  private state: 'unknown' | 'on' | 'off' = 'unknown';
  constructor(private readonly url: string) {}
  get active(): boolean {
    return this.state === 'on';
  }
  async tick(): Promise<void> {
    if (this.state === 'off') return;
    try {
      if (!this.client) {
        this.client = await connect(this.url, { role: 'source', applicationName: 'cutover-sync-tick', connectTimeoutMs: 5000 });
        this.state = (await serverMajor(this.client)) < 13 ? 'on' : 'off';
        if (this.state === 'off') return this.close();
      }
      await this.client.query(`select pg_logical_emit_message(false, 'cutover', 'tick')`);
    } catch {
      this.state = 'off';
      await this.close();
    }
  }
  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}

export interface DropTablesOptions {
  source: string;
  target: string;
  name?: string;
  tables: Array<string | TableSpec>;
  log?: (line: string) => void;
}

/**
 * Take tables out of a running replication (the other half of add-table): ALTER PUBLICATION …
 * DROP TABLE on the source, REFRESH PUBLICATION on the target (which also ends their table-sync
 * state). The target keeps each table and the rows it has — they simply stop being updated, so
 * the switchover's preflight will name them as not replicated until they are added again or
 * dropped on purpose. Idempotent: a table already out of the publication is reported, not an error.
 */
export async function dropTables(opts: DropTablesOptions): Promise<{ name: string; dropped: string[]; notPublished: string[] }> {
  const log = opts.log ?? (() => {});
  return withRunningReplication(opts, async ({ src, tgt, names, pub }) => {
    if (pub.all) throw new CutoverError('USAGE', `publication ${names.publication} is FOR ALL TABLES: single tables cannot be taken out of it`, { hint: 'start the replication with an explicit table list (without --all-tables) to control tables one by one' });
    const published = new Set((await q<{ schemaname: string; tablename: string }>(src, `select schemaname, tablename from pg_publication_tables where pubname = $1`, [names.publication])).map((r) => `${r.schemaname}\u0000${r.tablename}`));
    const dropped: string[] = [];
    const notPublished: string[] = [];
    for (const spec of opts.tables.map(resolveSpec)) {
      const t = { schema: spec.schema ?? 'public', name: spec.name };
      const label = displayName(t);
      if (!published.has(`${t.schema}\u0000${t.name}`)) {
        notPublished.push(label);
        continue;
      }
      await q(src, `ALTER PUBLICATION ${quoteIdent(names.publication)} DROP TABLE ${qualified(t.schema, t.name)}`, [], `dropping ${label} from the publication`);
      dropped.push(label);
      log(`dropped ${label} from publication ${names.publication}`);
    }
    if (dropped.length) {
      await q(tgt, `ALTER SUBSCRIPTION ${quoteIdent(names.subscription)} REFRESH PUBLICATION WITH (copy_data = false)`, [], 'refreshing the subscription');
      log(`refreshed subscription ${names.subscription}: ${dropped.join(', ')} no longer replicated (the target keeps the tables and their rows)`);
    }
    return { name: names.name, dropped, notPublished };
  });
}

/**
 * Both sides of a running replication: its publication on the source and subscription on the
 * target must exist (else STATE: it is not running); the sessions are closed afterwards.
 */
async function withRunningReplication<T>(
  opts: { source: string; target: string; name?: string },
  fn: (r: { src: Client; tgt: Client; names: ReturnType<typeof objectNames>; sourceMajor: number; targetMajor: number; pub: { all: boolean }; sub: NonNullable<Awaited<ReturnType<typeof subscriptionRow>>> }) => Promise<T>,
): Promise<T> {
  const names = objectNames(opts.name);
  const src = await connect(opts.source, { role: 'source' });
  let tgt: Client | undefined;
  try {
    tgt = await connect(opts.target, { role: 'target' });
    const [sourceMajor, targetMajor] = [await serverMajor(src), await serverMajor(tgt)];
    const pub = await q<{ all: boolean }>(src, `select puballtables as all from pg_publication where pubname = $1`, [names.publication]);
    const sub = await subscriptionRow(tgt, names.subscription, targetMajor);
    if (!pub.length || !sub)
      throw new CutoverError('STATE', `replication "${names.name}" is not running (${!pub.length ? `no publication ${names.publication} on the source` : `no subscription ${names.subscription} on the target`})`, { hint: 'start it with `cutover replicate start`' });
    return await fn({ src, tgt, names, sourceMajor, targetMajor, pub: pub[0], sub });
  } finally {
    await src.end().catch(() => {});
    await tgt?.end().catch(() => {});
  }
}

