/**
 * `cutover replicate plan`: class the source's tables by how they should be replicated, and propose
 * the order in which `replicate start --incremental` adds them (issue 19, item 4).
 *
 * Classes, from the source's own statistics (read-only; nothing is scanned):
 * - small: the table (heap + TOAST) is below `smallBytes`: its copy takes seconds;
 * - append-only: rows are inserted and (almost) never updated or deleted since the statistics were
 *   last reset (n_tup_upd + n_tup_del ≤ appendOnlyRatio × n_tup_ins): changes during its copy are only
 *   inserts, and its old rows may be back-filled from a snapshot instead (`--skip-copy`);
 * - large-and-updated: everything else, including a table whose statistics show no writes at all
 *   (it cannot be proven append-only).
 *
 * Order: small first (ascending size), then append-only (ascending), then large-and-updated
 * (ascending), with the reason in the plan. The split into a pure `planTables` (unit-tested) and
 * `readTableStats` (the catalog query) lets a dry-run print the plan without a database.
 */
import { connect, sqlError, type Client } from './pg.ts';
import { displayName, SYSTEM_SCHEMA_FILTER } from './replication.ts';
import { CutoverError } from './errors.ts';

export type TableClass = 'small' | 'append-only' | 'large-and-updated';

export interface TableStats {
  schema: string;
  name: string;
  /** pg_table_size: heap + TOAST + maps, bytes */
  bytes: number;
  /** pg_class.relpages (as of the last VACUUM/ANALYZE) */
  relpages: number;
  /** pg_class.reltuples; -1 = never analyzed (PostgreSQL 14+) */
  estimatedRows: number;
  inserts: number;
  updates: number;
  deletes: number;
  hasPk: boolean;
  /** pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing) */
  replicaIdentity: string;
}

export interface PlannedTable {
  table: string;
  schema: string;
  name: string;
  class: TableClass;
  order: number;
  bytes: number;
  estimatedRows: number | null;
  inserts: number;
  updates: number;
  deletes: number;
  /** why it is in its class */
  reason: string;
  /** things to fix or know before replicating it */
  notes: string[];
}

export interface PlanThresholds {
  /** below this many bytes a table is small (default 64 MiB) */
  smallBytes: number;
  /** (updates + deletes) / inserts at or below which a table is append-only (default 0.01) */
  appendOnlyRatio: number;
}

export const DEFAULT_THRESHOLDS: PlanThresholds = { smallBytes: 64 * 1024 * 1024, appendOnlyRatio: 0.01 };

export const CLASS_ORDER: readonly TableClass[] = ['small', 'append-only', 'large-and-updated'];

/** Why the classes come in this order; printed with every plan. */
export const ORDER_REASONS: Record<TableClass, string> = {
  small: 'first: each is ready in seconds, so most of the schema replicates early and a table that cannot be replicated (no key for UPDATE/DELETE, a type the target lacks) shows up before hours of copying',
  'append-only':
    'next: only inserts arrive during their copy, so the catch-up after it is cheap; their old rows can instead be back-filled from a snapshot (replicate start --skip-copy) while new rows stream',
  'large-and-updated':
    'last: the longest copies, with UPDATEs and DELETEs queueing in the slot for as long as each copy runs; started last, nothing else waits behind them and the WAL the slot retains is at its peak only once',
};

export interface TablePlan {
  thresholds: PlanThresholds;
  tables: PlannedTable[];
  /** Table names in the proposed order (the --tables value of replicate start --incremental). */
  order: string[];
  why: Record<TableClass, string>;
  counts: Record<TableClass, number>;
  /** when the source's statistics were last reset (null: never / unknown) */
  statsSince: string | null;
  warnings: string[];
}

const MiB = 1024 * 1024;
function size(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${Math.round(bytes / 1024)} kiB`;
}

/** Which class a table is in, and why. Pure. */
export function classifyTable(t: TableStats, th: PlanThresholds = DEFAULT_THRESHOLDS): { class: TableClass; reason: string } {
  if (t.bytes < th.smallBytes) return { class: 'small', reason: `${size(t.bytes)} < ${size(th.smallBytes)}` };
  const changes = t.updates + t.deletes;
  if (t.inserts === 0 && changes === 0) return { class: 'large-and-updated', reason: `${size(t.bytes)}, and no writes in the statistics since their last reset: not proven append-only` };
  if (t.inserts > 0 && changes <= th.appendOnlyRatio * t.inserts)
    return { class: 'append-only', reason: `${size(t.bytes)}; ${t.inserts} inserts vs ${t.updates} updates + ${t.deletes} deletes (≤ ${th.appendOnlyRatio * 100}% of inserts)` };
  return { class: 'large-and-updated', reason: `${size(t.bytes)}; ${t.updates} updates + ${t.deletes} deletes vs ${t.inserts} inserts (> ${th.appendOnlyRatio * 100}% of inserts)` };
}

/** Class every table and order them. Pure. */
export function planTables(stats: TableStats[], th: PlanThresholds = DEFAULT_THRESHOLDS, statsSince: string | null = null): TablePlan {
  if (!(th.smallBytes >= 0) || !(th.appendOnlyRatio >= 0)) throw new CutoverError('USAGE', `replicate plan: thresholds must be ≥ 0 (got small ${th.smallBytes} bytes, append-only ratio ${th.appendOnlyRatio})`);
  const rank = (c: TableClass) => CLASS_ORDER.indexOf(c);
  const classed = stats.map((t) => ({ t, ...classifyTable(t, th) }));
  classed.sort((a, b) => rank(a.class) - rank(b.class) || a.t.bytes - b.t.bytes || displayName(a.t).localeCompare(displayName(b.t)));
  const tables: PlannedTable[] = classed.map((x, i) => {
    const notes: string[] = [];
    if (!x.t.hasPk && x.t.replicaIdentity !== 'f' && x.t.replicaIdentity !== 'i')
      notes.push('no primary key or replica identity: UPDATE and DELETE fail on the source once it is published (ALTER TABLE … REPLICA IDENTITY FULL, or add a key)');
    if (x.class === 'append-only' && !x.t.hasPk) notes.push('no primary key: a --skip-copy back-fill needs one (INSERT … ON CONFLICT by key)');
    if (x.class === 'append-only') notes.push('candidate for --skip-copy with a back-fill from a snapshot');
    return {
      table: displayName(x.t),
      schema: x.t.schema,
      name: x.t.name,
      class: x.class,
      order: i + 1,
      bytes: x.t.bytes,
      estimatedRows: x.t.estimatedRows < 0 ? null : x.t.estimatedRows,
      inserts: x.t.inserts,
      updates: x.t.updates,
      deletes: x.t.deletes,
      reason: x.reason,
      notes,
    };
  });
  const counts = { small: 0, 'append-only': 0, 'large-and-updated': 0 } as Record<TableClass, number>;
  for (const t of tables) counts[t.class]++;
  const warnings: string[] = [];
  if (statsSince) warnings.push(`write counts are since ${statsSince} (the last statistics reset); a table written rarely may look append-only`);
  if (tables.some((t) => t.class !== 'small' && t.inserts + t.updates + t.deletes === 0))
    warnings.push('some large tables show no writes at all: statistics were reset recently or the server was restored (counts start at zero); they are planned as large-and-updated');
  return { thresholds: th, tables, order: tables.map((t) => t.table), why: { ...ORDER_REASONS }, counts, statsSince, warnings };
}

/** The source's per-table statistics (one catalog query; no table is read). */
export async function readTableStats(c: Client): Promise<{ stats: TableStats[]; statsSince: string | null }> {
  try {
    // A partitioned table is replicated (and listed in --tables) as itself: its partitions' sizes
    // and counters are summed into it (pg_inherits, so PostgreSQL 10 and 11 sources work too).
    const r = await c.query(
      `with recursive roots as (
         select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r','p') and not c.relispartition and c.relpersistence = 'p' and ${SYSTEM_SCHEMA_FILTER}
            and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')),
       tree(root, oid) as (
         select oid, oid from roots
         union all
         select t.root, i.inhrelid from tree t join pg_inherits i on i.inhparent = t.oid join pg_class p on p.oid = i.inhrelid and p.relispartition)
       select n.nspname as schema, c.relname as name,
              sum(pg_table_size(x.oid))::float8 as bytes, sum(x.relpages)::float8 as relpages,
              (case when c.relkind = 'p' then sum(greatest(x.reltuples, 0)) else min(x.reltuples) end)::float8 as "estimatedRows",
              coalesce(sum(s.n_tup_ins), 0)::float8 as inserts, coalesce(sum(s.n_tup_upd), 0)::float8 as updates, coalesce(sum(s.n_tup_del), 0)::float8 as deletes,
              exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as "hasPk", c.relreplident::text as "replicaIdentity"
         from tree t join pg_class c on c.oid = t.root join pg_namespace n on n.oid = c.relnamespace
         join pg_class x on x.oid = t.oid left join pg_stat_user_tables s on s.relid = x.oid
        group by n.nspname, c.relname, c.oid, c.relkind, c.relreplident
        order by 1, 2`,
    );
    const since = await c.query<{ t: string | null }>(`select stats_reset::text as t from pg_stat_database where datname = current_database()`);
    return { stats: r.rows as TableStats[], statsSince: since.rows[0]?.t ?? null };
  } catch (e) {
    throw sqlError(e, 'reading table sizes and write statistics on the source');
  }
}

/** Read the source's statistics and plan. Read-only. */
export async function planReplication(opts: { source: string; thresholds?: Partial<PlanThresholds> }): Promise<TablePlan> {
  const c = await connect(opts.source, { role: 'source', applicationName: 'cutover-lab' });
  try {
    const { stats, statsSince } = await readTableStats(c);
    return planTables(stats, { ...DEFAULT_THRESHOLDS, ...opts.thresholds }, statsSince);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The plan as text, with the command that follows it. */
export function formatTablePlan(p: TablePlan): string {
  const lines: string[] = [];
  lines.push(`replicate plan: ${p.tables.length} table(s): ${p.counts.small} small, ${p.counts['append-only']} append-only, ${p.counts['large-and-updated']} large-and-updated (small < ${size(p.thresholds.smallBytes)}, append-only ≤ ${p.thresholds.appendOnlyRatio * 100}% updates+deletes)`);
  for (const c of CLASS_ORDER) {
    const ts = p.tables.filter((t) => t.class === c);
    if (!ts.length) continue;
    lines.push('', `${c} — ${p.why[c]}`);
    for (const t of ts) {
      lines.push(`  ${String(t.order).padStart(3)}. ${t.table}: ${t.reason}`);
      for (const n of t.notes) lines.push(`       ${n}`);
    }
  }
  for (const w of p.warnings) lines.push('', `note: ${w}`);
  if (p.tables.length) {
    const skip = p.tables.filter((t) => t.class === 'append-only').map((t) => t.table);
    lines.push('', `to follow it: cutover replicate start --incremental --tables ${p.order.map(shellWord).join(',')}`);
    if (skip.length) lines.push(`  (append-only tables may be added with --skip-copy ${skip.map(shellWord).join(',')} and back-filled)`);
  }
  return lines.join('\n');
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_.]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
