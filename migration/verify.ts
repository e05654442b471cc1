/**
 * Data verification between source and target: exact counts and NULL-safe checksums computed on
 * both sides at once, the first differing chunk narrowed to its differing rows, a sampled row
 * comparison, and sequences.
 *
 * Both servers 11+: one order-independent checksum of the whole table per side first (a plain
 * scan, no sort, no row leaves the server: about the cost of one full-row hash scan). Only a table
 * whose count or checksum differs is read again in primary-key chunks (integer ranges, key ranges
 * or hash buckets) to locate the difference; key-range boundaries are planned only then. Before 11
 * the checksum is an md5 over rows in key order, taken per chunk from the start.
 *
 * Row text must render identically on two different majors, so each session pins the settings
 * that change text output (TimeZone, DateStyle, IntervalStyle, bytea_output, extra_float_digits,
 * lc_monetary) and float columns are compared by their binary form (float8send): PG 11 prints
 * 17 significant digits with extra_float_digits=3 where 12+ prints the shortest exact form.
 * Rows are rendered as ROW(...)::text, where NULL is an empty field and '' is "" — NULL-safe.
 *
 * Edge cases (each in test/integration/verify-zoo.test.ts):
 * - different database encodings (LATIN1 → UTF8): digests are taken over the UTF-8 bytes of the
 *   row text (convert_to), so the same characters give the same digest;
 * - floats nested in composites, geometric types or ranges have no binary form to compare: when one
 *   side is older than 12 and the other 12+ (different float output algorithms), both sessions use
 *   extra_float_digits = 0 (both majors then print %.15g); top-level floats stay exact (float8send);
 * - float arrays keep NULL apart from '{}', element NULLs, order and dimensions;
 * - a text-keyed table (hash buckets) is read once per side, bucketed server-side by GROUP BY;
 * - narrowing streams both sides through cursors in key order and merges them, so a chunk is
 *   never held in memory; a table without a key is narrowed the same way over its row texts
 *   (as a multiset) and sampled by row text.
 */
import { CutoverError } from './errors.ts';
import { connect, qualified, quoteIdent, quoteLiteral, sameServerReason, serverIdentity, serverMajor, signalBackends, sqlError, type Client } from './pg.ts';
import { Progress, defaultProgressMode } from './progress.ts';
import { poolEach } from './concurrency.ts';
import { displayName, listTables, objectNames, parseTableName, publicationRowFilters, type RowFilter, type TableName } from './replication.ts';

export interface VerifyOptions {
  source: string;
  target: string;
  tables?: Array<string | TableName>;
  /** Live tables: only rows whose `column` is older than `seconds` (cutoff taken once from the source clock). */
  olderThan?: { column: string; seconds: number };
  /** Rows per checksum chunk, for a table whose whole-table checksum differs (default 50 000). */
  chunkRows?: number;
  /** Connections per side (default 2). */
  parallel?: number;
  /** Rows sampled per table for a full-row comparison (default 20; 0 = off). */
  sampleRows?: number;
  /** How many differing chunks to narrow down to rows (default 1: the first). */
  narrowChunks?: number;
  /** Count a sequence not ahead of the source's max key as a mismatch (after cutover). */
  checkSequences?: boolean;
  /**
   * Row-filtered tables (shards): only the source rows that match are compared, and a target row
   * outside the filter is a mismatch. Default: the filters of the replication's publication.
   */
  rowFilters?: RowFilter[];
  /** The replication whose publication's row filters apply (default main). */
  name?: string;
  progress?: boolean;
  signal?: AbortSignal;
}

export interface ChunkMismatch {
  chunk: number;
  /** Key range (text form of the bounds; null = open). */
  lower: string[] | null;
  upper: string[] | null;
  sourceRows: number;
  targetRows: number;
}

export interface DifferingRow {
  key: Record<string, unknown>;
  kind: 'missing_on_target' | 'extra_on_target' | 'different';
  source?: string;
  target?: string;
}

export interface TableVerification {
  table: string;
  schema: string;
  name: string;
  strategy: 'integer-range' | 'key-range' | 'hash-bucket' | 'whole-table';
  /** What was compared: one checksum of the whole table (it matched), or checksums per chunk (it differed, or a server is older than 11). */
  checksum: 'table' | 'chunks';
  sourceRows: number;
  targetRows: number;
  /** Chunks the table is split into to locate a difference (key-range boundaries: 1 until a mismatch needed them). */
  chunks: number;
  mismatches: ChunkMismatch[];
  differingRows: DifferingRow[];
  sample: { rows: number; differing: number };
  problems: string[];
  /** The row filter the comparison applied (a shard), with the target rows outside it. */
  rowFilter?: { where: string; targetRowsOutside: number };
  ok: boolean;
  elapsedMs: number;
}

export interface SequenceVerification {
  sequence: string;
  sourceValue: number | null;
  targetValue: number | null;
  ownedBy: string | null;
  sourceMaxKey: number | null;
  /** The target's sequence is at or past the source's highest key (safe to insert on the target). */
  targetAheadOfMaxKey: boolean | null;
}

export interface VerifyResult {
  ok: boolean;
  tables: TableVerification[];
  sequences: SequenceVerification[];
  olderThanCutoff?: string;
  elapsedMs: number;
}

/** Settings that change how values render as text; identical on both sessions. */
export const SESSION_SETTINGS = [`set extra_float_digits = 3`, `set timezone = 'UTC'`, `set datestyle = 'ISO, MDY'`, `set intervalstyle = 'postgres'`, `set bytea_output = 'hex'`, `set lc_monetary = 'C'`, `set statement_timeout = 0`];

/**
 * The session settings for a pair of majors: SESSION_SETTINGS, with extra_float_digits = 0 when
 * the two sides print floats with different algorithms (< 12 vs 12+), for floats nested in other
 * types (top-level float columns are compared by their bits whatever this says).
 */
export function sessionSettings(sourceMajor: number, targetMajor: number): string[] {
  const straddle = sourceMajor < 12 !== targetMajor < 12;
  return SESSION_SETTINGS.map((x) => (straddle && x.startsWith('set extra_float_digits') ? 'set extra_float_digits = 0' : x));
}

export interface Column {
  name: string;
  type: string;
  /** pg_type.typname of the base type */
  base: string;
  collatable: boolean;
}

/** Expression rendering a column the same way on every major. */
export function columnExpr(c: Column): string {
  const q = quoteIdent(c.name);
  if (c.base === 'float8') return `float8send(${q})`;
  if (c.base === 'float4') return `float4send(${q})`;
  // NULL stays NULL, '{}' is its own value, and dimensions, order and NULL elements all count
  // (array_agg over unnest made NULL and '{}' equal and dropped the shape).
  if (c.base === '_float8' || c.base === '_float4') {
    const send = c.base === '_float8' ? 'float8send' : 'float4send';
    return `(case when ${q} is null then null else coalesce(array_dims(${q}), '[]') || ':' || (select coalesce(string_agg(coalesce(encode(${send}(e), 'hex'), 'NULL'), ',' order by o), '') from unnest(${q}) with ordinality u(e, o)) end)`;
  }
  return q;
}

export function rowExpr(cols: Column[]): string {
  return `ROW(${cols.map(columnExpr).join(', ')})::text`;
}

export interface KeyChunk {
  lower: string[] | null;
  upper: string[] | null;
}

/** Split [min, max] of an integer key into chunks of about chunkRows rows; ends are open. Pure. */
export function planIntegerChunks(min: bigint, max: bigint, rows: number, chunkRows: number): KeyChunk[] {
  if (rows <= chunkRows || max <= min) return [{ lower: null, upper: null }];
  const n = Math.ceil(rows / chunkRows);
  const span = max - min + 1n;
  let step = span / BigInt(n);
  if (step < 1n) step = 1n;
  const chunks: KeyChunk[] = [];
  let lo: bigint | null = null;
  for (let b = min + step; b <= max; b += step) {
    chunks.push({ lower: lo === null ? null : [lo.toString()], upper: [b.toString()] });
    lo = b;
  }
  chunks.push({ lower: lo === null ? null : [lo.toString()], upper: null });
  return chunks;
}

/** Chunks from sorted boundary keys (each the first key of a chunk). Pure. */
export function chunksFromBoundaries(bounds: string[][]): KeyChunk[] {
  const chunks: KeyChunk[] = [];
  let lo: string[] | null = null;
  for (const b of bounds) {
    chunks.push({ lower: lo, upper: b });
    lo = b;
  }
  chunks.push({ lower: lo, upper: null });
  return chunks;
}

interface TablePlan {
  t: TableName;
  cols: Column[];
  pk: Column[];
  strategy: TableVerification['strategy'];
  chunks: KeyChunk[];
  /** Estimated rows (pg_class.reltuples on the source). */
  est: number;
  buckets: number;
  filter: string;
  problems: string[];
  /** Both servers 11+: 64-bit hash sums instead of md5 over ordered text. */
  hash64: boolean;
  /** The databases' encodings differ: digest the UTF-8 bytes of the row text, not the server's. */
  utf8: boolean;
  rowFilter?: string;
}

export async function q<T = any>(c: Client, sql: string, params: unknown[] = [], context?: string): Promise<T[]> {
  try {
    return (await c.query(sql, params)).rows as T[];
  } catch (e) {
    throw sqlError(e, context ?? sql.slice(0, 120));
  }
}

export async function columnsOf(c: Client, t: TableName): Promise<{ cols: Column[]; pk: Column[] } | undefined> {
  const rel = await q<{ oid: number }>(c, `select c.oid::int as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`, [t.schema, t.name]);
  if (!rel.length) return undefined;
  const cols = await q<Column & { attnum: number }>(
    c,
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, coalesce(bt.typname, ty.typname)::text as base, a.attcollation <> 0 as collatable, a.attnum
       from pg_attribute a join pg_type ty on ty.oid = a.atttypid left join pg_type bt on ty.typtype = 'd' and bt.oid = ty.typbasetype
      where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped order by a.attnum`,
    [rel[0].oid],
  );
  const pkNames = await q<{ name: string }>(
    c,
    `select a.attname as name from pg_constraint k cross join lateral unnest(k.conkey) with ordinality u(attnum, ord)
       join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
      where k.conrelid = $1 and k.contype = 'p' order by u.ord`,
    [rel[0].oid],
  );
  const pk = pkNames.map((p) => cols.find((c) => c.name === p.name)!).filter(Boolean);
  return { cols, pk };
}

export function keyList(pk: Column[], collateC = false): string {
  return pk.map((c) => quoteIdent(c.name) + (collateC && c.collatable ? ' COLLATE "C"' : '')).join(', ');
}

function rangePredicate(pk: Column[], ch: KeyChunk, params: unknown[]): string {
  const parts: string[] = [];
  const tuple = (vals: string[]) =>
    '(' +
    vals
      .map((v, i) => {
        params.push(v);
        return `$${params.length}::${pk[i].type}`;
      })
      .join(', ') +
    ')';
  const keys = `(${keyList(pk)})`;
  if (ch.lower) parts.push(`${keys} >= ${pk.length === 1 ? tuple(ch.lower).slice(1, -1) : 'ROW' + tuple(ch.lower)}`);
  if (ch.upper) parts.push(`${keys} < ${pk.length === 1 ? tuple(ch.upper).slice(1, -1) : 'ROW' + tuple(ch.upper)}`);
  return parts.length ? parts.join(' and ') : 'true';
}

/** md5 of the leading 28 bits of the key's md5: a stable bucket on every major (hashtext is not promised to be). */
function bucketExpr(pk: Column[], buckets: number, utf8 = false): string {
  // over the key's UTF-8 bytes when the encodings differ: the same key must land in the same bucket
  const key = `ROW(${keyList(pk)})::text`;
  return `(('x' || substr(md5(${utf8 ? `convert_to(${key}, 'UTF8')` : key}), 1, 7))::bit(28)::int % ${buckets})`;
}

/**
 * Aggregate of one chunk: count plus a checksum. With both sides on 11+ the checksum is the exact
 * (numeric) sum of hashtextextended(row text) — a 64-bit order-independent digest, about 3× cheaper
 * than md5 over the ordered concatenation, and stable across majors because hash partitioning
 * depends on that hash surviving pg_upgrade. Older servers use md5(string_agg(… order by key)).
 * The hash is referenced once: the planner inlines the subquery's column into every reference, so
 * the former sum(h >> 32), sum(h & 4294967295) rendered and hashed every row twice.
 */
function hashAggregate(row: string, utf8: boolean): string {
  return `count(*)::int8 as n, sum(h)::text as h from (select ${rowHash(row, utf8)} as h`;
}

/** 64-bit hash of a row's text; over its UTF-8 bytes when the encodings differ (hashtextextended hashes server bytes). */
function rowHash(row: string, utf8: boolean): string {
  return utf8 ? `('x' || substr(md5(convert_to(${row}, 'UTF8')), 1, 16))::bit(64)::int8` : `hashtextextended(${row}, 0)`;
}

/** md5 over the ordered rows (servers < 11), over UTF-8 bytes when the encodings differ. */
function md5Aggregate(row: string, order: string, utf8: boolean): string {
  return utf8 ? `md5(string_agg(convert_to(${row}, 'UTF8'), '|'::bytea order by ${order}))` : `md5(string_agg(${row}, '|' order by ${order}))`;
}

type Sums = { sn: number; tn: number; sh: string | null; th: string | null };
type Job = { plan: number; scope: Scope };

/** What one checksum job covers: the whole table, every bucket of a bucketed table at once, or one key chunk. */
type Scope = 'table' | 'buckets' | number;

function chunkQuery(p: TablePlan, scope: Scope, params: unknown[]): string {
  const tbl = qualified(p.t.schema, p.t.name);
  const row = rowExpr(p.cols);
  if (scope === 'table' || p.strategy === 'whole-table') {
    if (p.hash64) return `select ${hashAggregate(row, p.utf8)} from ${tbl} where ${p.filter}) s`;
    return `select count(*)::int8 as n, ${md5Aggregate('r', 'r collate "C"', p.utf8)} as h from (select ${row} as r from ${tbl} where ${p.filter}) s`;
  }
  if (scope === 'buckets') return bucketsQuery(p);
  const where = rangePredicate(p.pk, p.chunks[scope], params);
  if (p.hash64) return `select ${hashAggregate(row, p.utf8)} from ${tbl} where ${where} and ${p.filter}) s`;
  return `select count(*)::int8 as n, ${md5Aggregate(row, keyList(p.pk), p.utf8)} as h from ${tbl} where ${where} and ${p.filter}`;
}

/**
 * Every bucket of a hash-bucketed table in one scan: the bucket is computed per row and the
 * digests grouped by it server-side (one query per bucket read the whole table once per bucket).
 */
function bucketsQuery(p: TablePlan): string {
  const tbl = qualified(p.t.schema, p.t.name);
  const row = rowExpr(p.cols);
  const b = bucketExpr(p.pk, p.buckets, p.utf8);
  // Order-independent sums per bucket (no string_agg: grouped, that would hold the whole table in
  // the server's memory). Before 11 there is no hashtextextended: 64 bits of the row's md5 instead.
  const h = p.hash64 ? rowHash(row, p.utf8) : `('x' || substr(md5(${p.utf8 ? `convert_to(${row}, 'UTF8')` : row}), 1, 16))::bit(64)::int8`;
  return `select b, count(*)::int8 as n, sum(h)::text as h from (select ${b} as b, ${h} as h from ${tbl} where ${p.filter}) s group by b`;
}

function chunkWhere(p: TablePlan, chunkIndex: number, params: unknown[]): string {
  if (p.strategy === 'hash-bucket') return `${bucketExpr(p.pk, p.buckets, p.utf8)} = ${chunkIndex}`;
  return rangePredicate(p.pk, p.chunks[chunkIndex], params);
}

async function planTable(src: Client, tgt: Client, t: TableName, opts: VerifyOptions, cutoff: string | undefined, hash64: boolean, utf8 = false): Promise<TablePlan> {
  const s = await columnsOf(src, t);
  const g = await columnsOf(tgt, t);
  const problems: string[] = [];
  if (!s) throw new CutoverError('USAGE', `table ${displayName(t)} does not exist on the source`, { hint: 'check --tables' });
  const tbl = qualified(t.schema, t.name);
  const [{ est }] = await q<{ est: number }>(src, `select greatest(reltuples, 0)::float8 as est from pg_class where oid = ${quoteLiteral(tbl)}::regclass`);
  const base: TablePlan = { t, cols: s.cols, pk: s.pk, strategy: 'whole-table', chunks: [{ lower: null, upper: null }], est, buckets: 1, filter: 'true', problems, hash64, utf8 };
  if (!g) {
    problems.push(`table ${displayName(t)} is missing on the target`);
    return base;
  }
  const targetCols = new Set(g.cols.map((c) => c.name));
  const missing = s.cols.filter((c) => !targetCols.has(c.name));
  if (missing.length) problems.push(`column(s) missing on the target: ${missing.map((c) => c.name).join(', ')}`);
  base.cols = s.cols.filter((c) => targetCols.has(c.name));
  if (opts.olderThan && cutoff) {
    if (!s.cols.some((c) => c.name === opts.olderThan!.column)) problems.push(`column ${opts.olderThan.column} (olderThan) not in ${displayName(t)}: all rows compared`);
    else base.filter = `${quoteIdent(opts.olderThan.column)} < ${quoteLiteral(cutoff)}::timestamptz`;
  }
  const rowFilter = opts.rowFilters?.find((f) => f.schema === t.schema && f.name === t.name)?.where;
  if (rowFilter) {
    base.rowFilter = rowFilter;
    base.filter = `${base.filter} and coalesce((${rowFilter}), false)`;
  }
  if (!s.pk.length) return base; // whole-table: sorted by the row text itself
  if (s.pk.length === 1 && ['int2', 'int4', 'int8'].includes(s.pk[0].base)) base.strategy = 'integer-range';
  // text keys sort differently under different collations: bucket by a hash of the key instead
  else if (s.pk.some((c) => c.collatable)) base.strategy = 'hash-bucket';
  else base.strategy = 'key-range';
  // Integer ranges (two index probes) and buckets (the estimate) cost no scan: planned now. Key-range
  // boundaries take a scan of the key: on 11+ only when the table's checksum differed.
  if (!(base.strategy === 'key-range' && hash64)) await planChunks(src, base, opts.chunkRows ?? 50_000);
  return base;
}

/** The key chunks of a keyed table, about chunkRows rows each (sets p.chunks, p.buckets). */
async function planChunks(src: Client, p: TablePlan, chunkRows: number): Promise<void> {
  const tbl = qualified(p.t.schema, p.t.name);
  if (p.strategy === 'integer-range') {
    const k = quoteIdent(p.pk[0].name);
    const [r] = await q<{ lo: string | null; hi: string | null }>(src, `select min(${k})::text as lo, max(${k})::text as hi from ${tbl}`);
    let rows = p.est;
    if (!rows && r.lo !== null) rows = Number(r.hi) - Number(r.lo) + 1;
    p.chunks = r.lo === null ? [{ lower: null, upper: null }] : planIntegerChunks(BigInt(r.lo), BigInt(r.hi!), rows, chunkRows);
  } else if (p.strategy === 'hash-bucket') {
    p.buckets = Math.max(1, Math.ceil((p.est || 1) / chunkRows));
    p.chunks = Array.from({ length: p.buckets }, () => ({ lower: null, upper: null }));
  } else if (p.strategy === 'key-range' && (p.est || 0) > chunkRows) {
    const kl = keyList(p.pk);
    const bounds = await q<{ k: string[] }>(
      src,
      `select array[${p.pk.map((c) => `${quoteIdent(c.name)}::text`).join(', ')}] as k from (select ${kl}, row_number() over (order by ${kl}) as rn from ${tbl}) s where rn % ${chunkRows} = 1 and rn > 1 order by rn`,
    );
    p.chunks = chunksFromBoundaries(bounds.map((b) => b.k));
  }
}

/** Code-point order: what ORDER BY … COLLATE "C" gives for UTF-8 (and LATIN1) text. */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(j)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return (a.length - i > 0 ? 1 : 0) - (b.length - j > 0 ? 1 : 0);
}

type NarrowRow = { k: string; key: Record<string, unknown>; r: string };

/** Rows of a query in batches through a server-side cursor (inside its own transaction). */
async function* cursorRows(c: Client, sql: string, params: unknown[], batch = 2000): AsyncGenerator<NarrowRow> {
  const name = `cutover_narrow_${Math.random().toString(36).slice(2, 10)}`;
  await c.query('begin read only');
  try {
    await c.query(`declare ${name} no scroll cursor for ${sql}`, params);
    for (;;) {
      const r = await c.query<NarrowRow>(`fetch ${batch} from ${name}`);
      for (const x of r.rows) yield x;
      if (r.rows.length < batch) break;
    }
  } finally {
    await c.query('rollback').catch(() => {});
  }
}

/** What narrowing orders and merges by: the key's text, or the row text for a table without a key. */
function narrowKey(p: TablePlan): string {
  return p.pk.length ? `ROW(${keyList(p.pk)})::text` : rowExpr(p.cols);
}

function narrowWhere(p: TablePlan, chunkIndex: number, params: unknown[]): string {
  return `${p.strategy === 'whole-table' ? 'true' : chunkWhere(p, chunkIndex, params)} and ${p.filter}`;
}

/** Rows per sub-bucket that narrowing aims for. */
const NARROW_ROWS = 1000;

/**
 * A differing chunk split by a hash of its narrowing key (11+): one grouped scan of the chunk per
 * side, both at once, and the sub-buckets whose count or checksum differ — so that narrowing
 * renders, sorts and streams only their rows (a 50,000-row chunk streamed whole took longer than
 * the checksum of the whole table). Undefined: stream the whole chunk (small, or older than 11).
 */
async function differingSubBuckets(src: Client, tgt: Client, p: TablePlan, chunkIndex: number, rows: number): Promise<{ mask: number; buckets: number[] } | undefined> {
  if (!p.hash64 || rows <= 2 * NARROW_ROWS) return undefined;
  const mask = 2 ** Math.min(12, Math.ceil(Math.log2(rows / NARROW_ROWS))) - 1;
  const keyed = p.pk.length > 0;
  const params: unknown[] = [];
  const where = narrowWhere(p, chunkIndex, params);
  // offset 0 keeps the inner query whole: each hash is computed once per row (see hashAggregate)
  const inner = `select ${keyed ? `${rowHash(narrowKey(p), p.utf8)} as kh, ` : ''}${rowHash(rowExpr(p.cols), p.utf8)} as h from ${qualified(p.t.schema, p.t.name)} where ${where} offset 0`;
  const sql = `select (${keyed ? 'kh' : 'h'} & ${mask})::int as sb, count(*)::int8 as n, sum(h)::text as h from (${inner}) s group by 1`;
  const [a, b] = await Promise.all([src, tgt].map((c, i) => q<{ sb: number; n: number; h: string }>(c, sql, params, `sub-buckets of a chunk of ${displayName(p.t)} on the ${i ? 'target' : 'source'}`)));
  const sums = new Map<number, string>();
  for (const x of a) sums.set(x.sb, `${x.n}:${x.h}`);
  const differ = new Set<number>();
  for (const x of b) if (sums.get(x.sb) !== `${x.n}:${x.h}`) differ.add(x.sb);
  const onTarget = new Set(b.map((x) => x.sb));
  for (const x of a) if (!onTarget.has(x.sb)) differ.add(x.sb);
  return { mask, buckets: [...differ] };
}

/**
 * The differing rows of one chunk: both sides streamed in the same order (key text, or the row
 * text for a table without a key) and merged, never more than a batch per side in memory; on 11+
 * only the rows of the chunk's differing sub-buckets.
 */
async function narrow(src: Client, tgt: Client, p: TablePlan, m: ChunkMismatch, limit = 50): Promise<DifferingRow[]> {
  const tbl = qualified(p.t.schema, p.t.name);
  const keyed = p.pk.length > 0;
  const keyObj = keyed ? `json_build_object(${p.pk.map((c) => `${quoteLiteral(c.name)}, ${quoteIdent(c.name)}`).join(', ')})` : `'{}'::json`;
  const row = rowExpr(p.cols);
  const k = narrowKey(p);
  const sub = await differingSubBuckets(src, tgt, p, m.chunk, Math.max(m.sourceRows, m.targetRows));
  if (sub && !sub.buckets.length) return []; // the chunk no longer differs (a live table moved on)
  const open = (c: Client) => {
    const params: unknown[] = [];
    let where = narrowWhere(p, m.chunk, params);
    if (sub) {
      params.push(sub.buckets);
      where += ` and (${rowHash(k, p.utf8)} & ${sub.mask})::int = any($${params.length}::int[])`;
    }
    return cursorRows(c, `select * from (select ${k} as k, ${keyObj} as key, ${row} as r from ${tbl} where ${where}) s order by k collate "C"`, params);
  };
  const a = open(src);
  const b = open(tgt);
  const out: DifferingRow[] = [];
  const cut = (s: string) => (s.length > 500 ? s.slice(0, 500) + '…' : s);
  try {
    let x = await a.next();
    let y = await b.next();
    while ((!x.done || !y.done) && out.length < limit) {
      const cmp = x.done ? 1 : y.done ? -1 : compareCodePoints(x.value.k, y.value.k);
      if (cmp < 0) {
        out.push({ key: x.value!.key, kind: 'missing_on_target', source: cut(x.value!.r) });
        x = await a.next();
      } else if (cmp > 0) {
        out.push({ key: y.value!.key, kind: 'extra_on_target', target: cut(y.value!.r) });
        y = await b.next();
      } else {
        if (x.value!.r !== y.value!.r) out.push({ key: x.value!.key, kind: 'different', source: cut(x.value!.r), target: cut(y.value!.r) });
        x = await a.next();
        y = await b.next();
      }
    }
  } finally {
    // end both cursors' transactions (also when we stopped at the limit)
    await Promise.all([a.return(undefined), b.return(undefined)]);
  }
  return out;
}

async function sampleCompare(src: Client, tgt: Client, p: TablePlan, n: number, sourceRows: number): Promise<{ rows: number; differing: DifferingRow[] }> {
  if (n <= 0 || sourceRows === 0) return { rows: 0, differing: [] };
  const tbl = qualified(p.t.schema, p.t.name);
  const pct = Math.min(100, Math.max(0.0001, ((n * 3) / sourceRows) * 100));
  if (!p.pk.length) {
    // No key: a sampled row must exist on the target with the same text (one scan of the target).
    const row = rowExpr(p.cols);
    const rows = await q<{ r: string }>(src, `select ${row} as r from ${tbl} tablesample bernoulli (${pct}) where ${p.filter} limit ${n}`);
    if (!rows.length) return { rows: 0, differing: [] };
    const found = new Set((await q<{ r: string }>(tgt, `select distinct r from (select ${row} as r from ${tbl} where ${p.filter}) s where r = any($1::text[])`, [rows.map((x) => x.r)])).map((x) => x.r));
    return { rows: rows.length, differing: rows.filter((x) => !found.has(x.r)).map((x) => ({ key: {}, kind: 'missing_on_target' as const, source: x.r })) };
  }
  const keyObj = `json_build_object(${p.pk.map((c) => `${quoteLiteral(c.name)}, ${quoteIdent(c.name)}`).join(', ')})`;
  const keyCols = p.pk.map((c) => `${quoteIdent(c.name)}::text as ${quoteIdent('k_' + c.name)}`).join(', ');
  const rows = await q<any>(src, `select ${keyCols}, ${keyObj} as key, ${rowExpr(p.cols)} as r from ${tbl} tablesample bernoulli (${pct}) where ${p.filter} limit ${n}`);
  if (!rows.length) return { rows: 0, differing: [] };
  const params = p.pk.map((c) => rows.map((r: any) => r['k_' + c.name]));
  const unnest = p.pk.map((c, i) => `$${i + 1}::text[]::${c.type}[]`).join(', ');
  const got = await q<any>(tgt, `select ${keyObj}::text as key, ${rowExpr(p.cols)} as r from ${tbl} where (${keyList(p.pk)}) in (select * from unnest(${unnest}))`, params);
  const byKey = new Map(got.map((g: any) => [g.key, g.r]));
  const differing: DifferingRow[] = [];
  for (const r of rows) {
    const t = byKey.get(JSON.stringify(r.key));
    // json text of the key is rebuilt identically on both sides only for simple keys; fall back to a lookup by value
    const target = t ?? got.find((g: any) => JSON.stringify(JSON.parse(g.key)) === JSON.stringify(r.key))?.r;
    if (target === undefined) differing.push({ key: r.key, kind: 'missing_on_target', source: r.r });
    else if (target !== r.r) differing.push({ key: r.key, kind: 'different', source: r.r, target });
  }
  return { rows: rows.length, differing };
}

export async function openSide(url: string, role: string, settings: string[] = SESSION_SETTINGS): Promise<Client> {
  const c = await connect(url, { role, applicationName: 'cutover-verify' });
  for (const s of settings) await c.query(s);
  return c;
}

/** Compare the data of source and target. Never throws for a difference: it is in the result. */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const t0 = Date.now();
  // Library callers get the same checks as the CLI: 0 or NaN here became an endless loop or a RangeError later.
  const whole = (v: number | undefined, name: string, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) throw new CutoverError('USAGE', `verify: ${name} must be a whole number from ${min} to ${max} (got ${v})`);
  };
  whole(opts.chunkRows, 'chunkRows', 1, 100_000_000);
  whole(opts.parallel, 'parallel', 1, 64);
  whole(opts.sampleRows, 'sampleRows', 0, 1_000_000);
  whole(opts.narrowChunks, 'narrowChunks', 0, 10_000);
  if (opts.olderThan && !(Number.isFinite(opts.olderThan.seconds) && opts.olderThan.seconds >= 0)) throw new CutoverError('USAGE', `verify: olderThan.seconds must be a number ≥ 0 (got ${opts.olderThan.seconds})`);
  const parallel = Math.max(1, opts.parallel ?? 2);
  const srcs: Client[] = [];
  const tgts: Client[] = [];
  if (opts.signal?.aborted) throw new CutoverError('STATE', 'verification aborted');
  // An abort cancels the statements in flight on both servers (a whole-table checksum of a big table
  // runs for minutes; closing the socket alone leaves it running until it tries to send its result).
  let cancelling: Promise<void> | undefined;
  const onAbort = () => {
    cancelling = Promise.all([
      signalBackends(opts.source, srcs, 'pg_cancel_backend', { role: 'source', applicationName: 'cutover-verify-cancel' }),
      signalBackends(opts.target, tgts, 'pg_cancel_backend', { role: 'target', applicationName: 'cutover-verify-cancel' }),
    ]).then(() => undefined);
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    srcs.push(await openSide(opts.source, 'source'));
    tgts.push(await openSide(opts.target, 'target'));
    const [src, tgt] = [srcs[0], tgts[0]];
    // The same server twice would "verify" trivially: refuse it (the CLI checks first; library callers too).
    const same = sameServerReason(await serverIdentity(src), await serverIdentity(tgt));
    if (same) throw new CutoverError('USAGE', same, { hint: 'verify compares two servers: pass the new one as target' });
    const [sourceMajor, targetMajor] = [await serverMajor(src), await serverMajor(tgt)];
    const settings = sessionSettings(sourceMajor, targetMajor);
    for (const x of settings.filter((y) => !SESSION_SETTINGS.includes(y))) await Promise.all([src.query(x), tgt.query(x)]);
    const enc = async (c: Client) => (await q<{ e: string }>(c, `select pg_encoding_to_char(encoding) as e from pg_database where datname = current_database()`))[0].e;
    const utf8 = (await enc(src)) !== (await enc(tgt));
    let cutoff: string | undefined;
    if (opts.olderThan) cutoff = (await q<{ c: string }>(src, `select (now() - make_interval(secs => $1))::text as c`, [opts.olderThan.seconds]))[0].c;
    const names: TableName[] = opts.tables?.length
      ? opts.tables.map((t) => (typeof t === 'string' ? parseTableName(t) : t))
      : (await listTables(src)).filter((t) => !t.partitioned).map((t) => ({ schema: t.schema, name: t.name }));
    const plans: TablePlan[] = [];
    const hash64 = sourceMajor >= 11 && targetMajor >= 11;
    const withFilters = { ...opts, rowFilters: opts.rowFilters ?? (await publicationRowFilters(src, objectNames(opts.name).publication)) };
    for (const t of names) plans.push(await planTable(src, tgt, t, withFilters, cutoff, hash64, utf8));
    for (let i = 1; i < parallel; i++) {
      srcs.push(await openSide(opts.source, 'source', settings));
      tgts.push(await openSide(opts.target, 'target', settings));
    }

    const whole = new Map<number, Sums>(); // pass 1: plan index → whole-table sums
    const chunked = new Map<number, Sums[]>(); // chunk passes: plan index → sums per chunk
    // Each job queries both sides at once; worker w always queries srcs[w] and tgts[w].
    const sessionSeqscan: string[] = srcs.map(() => 'on');
    // Progress in (estimated) rows, not jobs: one whole-table checksum of the largest table is most of
    // the work, and the rate and ETA should say so.
    const rowsOf = (job: Job) => Math.max(1, Math.round(plans[job.plan].est / (job.scope === 'table' || job.scope === 'buckets' ? 1 : plans[job.plan].chunks.length)));
    const checksums = async (jobs: Job[], what: string) => {
      const progress = opts.progress ? new Progress(`verify ${what}`, jobs.reduce((a, j) => a + rowsOf(j), 0), { unit: 'rows (est.)', mode: defaultProgressMode() }) : undefined;
      await poolEach(jobs, srcs.length, { open: async (w) => w }, async (w, job) => {
        if (opts.signal?.aborted) throw new CutoverError('STATE', 'verification aborted');
        const p = plans[job.plan];
        const ps: unknown[] = [];
        const sql = chunkQuery(p, job.scope, ps);
        // A key-range chunk must be read through the key index: without an ORDER BY the planner
        // may pick a full scan per chunk. Whole tables and buckets need the full scan.
        const seq = typeof job.scope === 'number' && (p.strategy === 'integer-range' || p.strategy === 'key-range') ? 'off' : 'on';
        if (sessionSeqscan[w] !== seq) {
          await Promise.all([srcs[w].query(`set enable_seqscan = ${seq}`), tgts[w].query(`set enable_seqscan = ${seq}`)]);
          sessionSeqscan[w] = seq;
        }
        const [a, b] = await Promise.all([
          q<{ b?: number; n: number; h: string | null }>(srcs[w], sql, ps, `checksum of ${displayName(p.t)} on the source`),
          q<{ b?: number; n: number; h: string | null }>(tgts[w], sql, ps, `checksum of ${displayName(p.t)} on the target`),
        ]);
        if (job.scope === 'table') whole.set(job.plan, { sn: a[0].n, tn: b[0].n, sh: a[0].h, th: b[0].h });
        else {
          const r = chunked.get(job.plan) ?? p.chunks.map(() => ({ sn: 0, tn: 0, sh: null, th: null }));
          chunked.set(job.plan, r);
          if (job.scope === 'buckets') {
            // all buckets at once; a bucket with no row on one side is simply absent from its result
            for (const x of a) Object.assign(r[x.b!], { sn: x.n, sh: x.h });
            for (const x of b) Object.assign(r[x.b!], { tn: x.n, th: x.h });
          } else r[job.scope] = { sn: a[0].n, tn: b[0].n, sh: a[0].h, th: b[0].h };
        }
        progress?.tick(rowsOf(job), displayName(p.t));
      });
      progress?.finish();
    };

    // Pass 1: on 11+ one checksum of the whole table per side (a plain scan, both sides at once,
    // tables spread over the session pairs, the largest first). Only a table whose checksum or count
    // differs is read again in key chunks (pass 2) to locate the difference, and only the first
    // differing chunks are narrowed to rows. Before 11 the checksum is an ordered md5: chunks at once.
    const missingTable = plans.map((p) => p.problems.some((x) => x.includes('missing on the target')));
    const chunkJobs = (i: number): Job[] => (plans[i].strategy === 'hash-bucket' ? [{ plan: i, scope: 'buckets' }] : plans[i].chunks.map((_, c) => ({ plan: i, scope: c })));
    const order = plans.map((_, i) => i).filter((i) => !missingTable[i]).sort((x, y) => plans[y].est - plans[x].est);
    const tableFirst = (p: TablePlan) => p.hash64 || p.strategy === 'whole-table';
    await checksums(order.flatMap((i): Job[] => (tableFirst(plans[i]) ? [{ plan: i, scope: 'table' }] : chunkJobs(i))), 'checksums');
    const differs = (x: Sums) => x.sn !== x.tn || x.sh !== x.th;
    const again = order.filter((i) => whole.has(i) && differs(whole.get(i)!) && plans[i].strategy !== 'whole-table');
    for (const i of again) {
      // planned again from the exact count just taken (the estimate may be stale or missing)
      plans[i].est = Math.max(plans[i].est, whole.get(i)!.sn, whole.get(i)!.tn);
      await planChunks(src, plans[i], opts.chunkRows ?? 50_000);
    }
    if (again.length) await checksums(again.flatMap(chunkJobs), 'chunks of differing tables');

    const tables: TableVerification[] = [];
    for (let i = 0; i < plans.length; i++) {
      const p = plans[i];
      const ts = Date.now();
      // the finest level read: the chunks when pass 2 ran, else the whole table as one chunk
      const r = chunked.get(i) ?? (whole.has(i) ? [whole.get(i)!] : []);
      const mismatches: ChunkMismatch[] = [];
      r.forEach((x, c) => {
        if (differs(x)) mismatches.push({ chunk: c, lower: chunked.has(i) ? p.chunks[c].lower : null, upper: chunked.has(i) ? p.chunks[c].upper : null, sourceRows: x.sn, targetRows: x.tn });
      });
      let differingRows: DifferingRow[] = [];
      for (const m of mismatches.slice(0, opts.narrowChunks ?? 1)) differingRows = differingRows.concat(await narrow(src, tgt, p, m));
      const sourceRows = missingTable[i] ? Number((await q(src, `select count(*)::int8 as n from ${qualified(p.t.schema, p.t.name)} where ${p.filter}`))[0].n) : r.reduce((a, x) => a + x.sn, 0);
      const targetRows = r.reduce((a, x) => a + x.tn, 0);
      const sample = missingTable[i] ? { rows: 0, differing: [] } : await sampleCompare(src, tgt, p, opts.sampleRows ?? 20, sourceRows);
      for (const d of sample.differing) if (!differingRows.some((x) => JSON.stringify(x.key) === JSON.stringify(d.key))) differingRows.push(d);
      // a shard: the target must hold no row the filter leaves out (the filters compare only rows inside it)
      const outside = p.rowFilter && !missingTable[i] ? Number((await q(tgt, `select count(*)::int8 as n from ${qualified(p.t.schema, p.t.name)} where not coalesce((${p.rowFilter}), false)`, [], `rows outside the row filter of ${displayName(p.t)} on the target`))[0].n) : 0;
      if (outside) p.problems.push(`${outside} row(s) on the target are outside the row filter (${p.rowFilter})`);
      const ok = !missingTable[i] && mismatches.length === 0 && sample.differing.length === 0 && sourceRows === targetRows && !outside && !p.problems.some((x) => x.startsWith('column(s) missing'));
      tables.push({
        table: displayName(p.t),
        schema: p.t.schema,
        name: p.t.name,
        strategy: p.strategy,
        checksum: chunked.has(i) || !tableFirst(p) ? 'chunks' : 'table',
        sourceRows,
        targetRows,
        chunks: p.chunks.length,
        mismatches,
        differingRows,
        sample: { rows: sample.rows, differing: sample.differing.length },
        problems: p.problems,
        ...(p.rowFilter ? { rowFilter: { where: p.rowFilter, targetRowsOutside: outside } } : {}),
        ok,
        elapsedMs: Date.now() - ts,
      });
    }
    const sequences = await compareSequences(src, tgt);
    const seqOk = !opts.checkSequences || sequences.every((s) => s.targetAheadOfMaxKey !== false);
    return { ok: tables.every((t) => t.ok) && seqOk, tables, sequences, olderThanCutoff: cutoff, elapsedMs: Date.now() - t0 };
  } catch (e) {
    if (opts.signal?.aborted) {
      await cancelling;
      throw new CutoverError('STATE', 'verification aborted: the statements in flight were cancelled on both servers', { cause: e });
    }
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all([...srcs, ...tgts].map((c) => c.end().catch(() => {})));
  }
}

async function compareSequences(src: Client, tgt: Client): Promise<SequenceVerification[]> {
  const list = `select s.schemaname as schema, s.sequencename as name, s.last_value::float8 as v,
                   (select json_build_object('schema', tn.nspname, 'table', tc.relname, 'column', a.attname)
                      from pg_depend d join pg_class tc on tc.oid = d.refobjid join pg_namespace tn on tn.oid = tc.relnamespace
                      join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                     where d.classid = 'pg_class'::regclass and d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
                       and d.refclassid = 'pg_class'::regclass and d.deptype in ('a','i') limit 1) as owner
              from pg_sequences s where s.schemaname not in ('pg_catalog','information_schema') order by 1, 2`;
  const [a, b] = await Promise.all([q<any>(src, list), q<any>(tgt, list)]);
  const tmap = new Map(b.map((x: any) => [`${x.schema}\u0000${x.name}`, x.v]));
  const out: SequenceVerification[] = [];
  for (const s of a) {
    let maxKey: number | null = null;
    if (s.owner) {
      try {
        maxKey = (await q<{ m: number | null }>(src, `select max(${quoteIdent(s.owner.column)})::float8 as m from ${qualified(s.owner.schema, s.owner.table)}`))[0].m;
      } catch {
        maxKey = null;
      }
    }
    const targetValue = tmap.has(`${s.schema}\u0000${s.name}`) ? (tmap.get(`${s.schema}\u0000${s.name}`) ?? null) : null;
    out.push({
      sequence: displayName({ schema: s.schema, name: s.name }),
      sourceValue: s.v,
      targetValue,
      ownedBy: s.owner ? `${displayName({ schema: s.owner.schema, name: s.owner.table })}.${s.owner.column}` : null,
      sourceMaxKey: maxKey,
      targetAheadOfMaxKey: maxKey === null ? null : (targetValue ?? 0) >= maxKey,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Post-verify after a switch: the old side is fenced, the new side takes application writes —
// inserts and DELETEs. "target ≥ source" turned an app DELETE on the new primary into a failed
// (exit 1) cutover. Rows the target lost are excused by the DELETEs it counted since the switch.
// ---------------------------------------------------------------------------------------------

export interface PostverifyCount {
  table: string;
  source: number;
  target: number;
  /** Rows deleted on the target since the switch (pg_stat_user_tables.n_tup_del delta); undefined = unknown. */
  targetDeletes?: number;
}

/** Pure: which tables fail (fewer rows than the source minus the DELETEs the target saw), which only warn. */
export function judgePostverifyCounts(counts: PostverifyCount[]): { ok: boolean; failures: string[]; warnings: string[] } {
  const failures: string[] = [];
  const warnings: string[] = [];
  for (const c of counts) {
    if (c.target >= c.source) continue;
    const deficit = c.source - c.target;
    if (c.targetDeletes !== undefined && deficit <= c.targetDeletes)
      warnings.push(`${c.table}: ${deficit} row(s) fewer on the target, explained by ${c.targetDeletes} DELETE(s) there since the switch`);
    else failures.push(`${c.table} ${c.source} on the source vs ${c.target} on the target${c.targetDeletes !== undefined ? ` (only ${c.targetDeletes} DELETE(s) on the target since the switch)` : ''}`);
  }
  return { ok: failures.length === 0, failures, warnings };
}

/** n_tup_del per table (qualified name → count), fresh (not the transaction's cached snapshot). */
export async function tableDeleteCounters(c: Client, tables: TableName[]): Promise<Map<string, number>> {
  await c.query(`select pg_stat_clear_snapshot()`);
  const r = await q<{ schema: string; name: string; n: number }>(
    c,
    `select schemaname as schema, relname as name, n_tup_del::float8 as n from pg_stat_user_tables where (schemaname, relname) in (select * from unnest($1::text[], $2::text[]))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return new Map(r.map((x) => [qualified(x.schema, x.name), x.n]));
}
