/**
 * What `replicate start` must know before it changes anything, the schema copy included: the two
 * servers are distinct and new enough, the source can decode (wal_level), every --tables name
 * exists (and is a table that can be published), and the target tables that will receive an
 * initial copy are empty. startReplication checks most of these again after the pre-data schema
 * exists; checking them here first means a typo leaves the target untouched.
 */
import { CutoverError } from './errors.ts';
import { assertDistinctServers, serverMajor, withClient, type Client } from './pg.ts';
import { assertRowFilterMajors, checkRowFilters, displayName, listTables, type RowFilter, type TableName } from './replication.ts';

const KIND: Record<string, string> = {
  v: 'a view',
  m: 'a materialized view',
  f: 'a foreign table',
  S: 'a sequence',
  i: 'an index',
  I: 'a partitioned index',
  c: 'a composite type',
  t: 'a TOAST table',
};

/** Each requested name resolved against the source catalog: missing, wrong kind, or fine. */
export async function checkRequestedTables(c: Client, requested: TableName[]): Promise<string[]> {
  const problems: string[] = [];
  const r = await c.query<{ schema: string; name: string; relkind: string; persistence: string }>(
    `select n.nspname as schema, c.relname as name, c.relkind::text as relkind, c.relpersistence::text as persistence
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where (n.nspname, c.relname) in (select * from unnest($1::text[], $2::text[]))`,
    [requested.map((t) => t.schema), requested.map((t) => t.name)],
  );
  const found = new Map(r.rows.map((x) => [`${x.schema}\u0000${x.name}`, x]));
  for (const t of requested) {
    const x = found.get(`${t.schema}\u0000${t.name}`);
    if (!x) {
      // the usual mistake: case (an unquoted name folds to lower case) or the schema
      const near = await c.query<{ schema: string; name: string }>(
        `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r','p') and lower(c.relname) = lower($1) order by 1, 2 limit 3`,
        [t.name],
      );
      problems.push(`no such table ${displayName(t)} on the source${near.rows.length ? ` (did you mean ${near.rows.map(displayName).join(' or ')}?)` : ''}`);
    } else if (x.relkind !== 'r' && x.relkind !== 'p') problems.push(`${displayName(t)} is ${KIND[x.relkind] ?? `a relation of kind ${x.relkind}`}, not a table: it cannot be replicated`);
    else if (x.persistence === 'u') problems.push(`table ${displayName(t)} is UNLOGGED: logical replication does not carry its rows (ALTER TABLE … SET LOGGED first)`);
    else if (x.persistence === 't') problems.push(`table ${displayName(t)} is temporary`);
  }
  return problems;
}

export interface StartChecks {
  source: string;
  target: string;
  tables?: TableName[];
  /** Tables whose rows are not copied (they may hold rows on the target). */
  skipCopy?: TableName[];
  allowNonEmptyTarget?: boolean;
  /** Row filters: both sides 15+, each table replicated, each clause accepted by the source. */
  rowFilters?: RowFilter[];
}

/** Row filters before anything exists: majors (throws), tables in the list, clauses Postgres accepts (throws USAGE). */
async function checkFilters(src: Client, o: StartChecks): Promise<void> {
  const targetMajor = await withClient(o.target, serverMajor, { role: 'target' });
  assertRowFilterMajors(await serverMajor(src), targetMajor);
  const listed = (f: TableName) => !o.tables || o.tables.some((t) => t.schema === f.schema && t.name === f.name);
  const stray = o.rowFilters!.filter((f) => !listed(f));
  if (stray.length) throw new CutoverError('USAGE', `--row-filter names table(s) not in --tables: ${stray.map(displayName).join(', ')}`, { hint: 'list every filtered table in --tables too (or leave out --tables to replicate all)' });
  await checkRowFilters(src, o.rowFilters!.map((f) => ({ ...f, rowFilter: f.where })));
}

/** Throws USAGE/PRECONDITION with what to fix; returns nothing when start may go ahead. */
export async function checkBeforeStart(o: StartChecks): Promise<void> {
  await assertDistinctServers(o.source, o.target);
  const problems: string[] = [];
  const hints = new Set<string>();
  let sourceTables = new Set<string>();
  await withClient(
    o.source,
    async (c) => {
      const { rows } = await c.query<{ wal: string; rds: string | null }>(`select current_setting('wal_level') as wal, current_setting('rds.logical_replication', true) as rds`);
      if (rows[0].wal !== 'logical') {
        problems.push(`wal_level on the source is ${rows[0].wal}; logical replication needs logical`);
        hints.add(rows[0].rds !== null ? 'set rds.logical_replication = 1 in the parameter group and reboot the instance' : 'ALTER SYSTEM SET wal_level = logical; then restart the source');
      }
      sourceTables = new Set((await listTables(c)).map((t) => `${t.schema}\u0000${t.name}`));
      if (o.tables?.length) {
        const p = await checkRequestedTables(c, o.tables);
        if (p.length) hints.add('fix --tables (names are schema.table; quote mixed case: public."Order Items")');
        problems.push(...p);
      }
      if (o.skipCopy?.length && !problems.length) {
        const catalog = await listTables(c);
        for (const t of o.skipCopy) {
          const x = catalog.find((y) => y.schema === t.schema && y.name === t.name);
          if (!x) problems.push(`--skip-copy ${displayName(t)}: no such table on the source`);
          else if (!x.hasPk) problems.push(`--skip-copy ${displayName(t)}: the table has no primary key, which the back-fill needs (INSERT … ON CONFLICT by key, in key chunks)`);
        }
        if (problems.length) hints.add('give --skip-copy only tables with a primary key (or copy the others normally)');
      }
      if (o.rowFilters?.length && !problems.length) await checkFilters(c, o);
    },
    { role: 'source' },
  );
  if (!o.allowNonEmptyTarget) {
    const skip = new Set((o.skipCopy ?? []).map((t) => `${t.schema}\u0000${t.name}`));
    await withClient(
      o.target,
      async (c) => {
        // Only tables that exist already can hold rows; the pre-data copy creates the others empty.
        const { rows } = await c.query<{ schema: string; name: string }>(
          `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind = 'r' and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg\\_%'
              and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')`,
        );
        const wanted = o.tables ? new Set(o.tables.map((t) => `${t.schema}\u0000${t.name}`)) : sourceTables;
        const nonEmpty: string[] = [];
        for (const t of rows) {
          const k = `${t.schema}\u0000${t.name}`;
          if (!wanted.has(k) || skip.has(k)) continue;
          const q = `select 1 from ${'"' + t.schema.replace(/"/g, '""') + '"."' + t.name.replace(/"/g, '""') + '"'} limit 1`;
          if ((await c.query(q).catch(() => ({ rows: [] }))).rows.length) nonEmpty.push(displayName(t));
        }
        if (nonEmpty.length) {
          problems.push(`target table(s) already hold rows: ${nonEmpty.slice(0, 10).join(', ')}${nonEmpty.length > 10 ? `, … (${nonEmpty.length})` : ''}; the initial copy would duplicate them`);
          hints.add('truncate them on the target, or list them in --skip-copy');
        }
      },
      { role: 'target' },
    );
  }
  if (problems.length)
    throw new CutoverError('PRECONDITION', `replicate start would fail, nothing was changed:\n  - ${problems.join('\n  - ')}`, { hint: [...hints].join('; '), exitCode: 2 });
}
