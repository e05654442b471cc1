/**
 * `cutover verify --quick` (issue 19, item 5): a statistics-level check that takes seconds on any
 * size, beside the full verify (which reads every row of both sides and stays unchanged).
 *
 * Per table:
 * - small tables (≤ exactPages on disk on both sides): exact count(*) on both sides;
 * - larger tables: a row estimate on both sides (n_live_tup, else the planner's), compared within a
 *   tolerance, and the first and last primary key (two index probes each side) — a replication that
 *   stopped or lags shows as a different last key;
 * - every table with a primary key: a sample of rows (random pages on large tables, one row per page,
 *   so the sample is spread over the table without reading it), looked up by key on the target and
 *   compared as row text with the full verify's rendering (same session settings, floats by bits).
 * What it cannot see: a changed row that was not sampled, a count difference on a large table
 * smaller than the tolerance, sequences. It says so in its result; a clean quick check is not a proof.
 */
import { CutoverError } from './errors.ts';
import { qualified, quoteIdent, quoteLiteral, sameServerReason, serverIdentity, serverMajor, type Client } from './pg.ts';
import { Progress, defaultProgressMode } from './progress.ts';
import { displayName, listTables, objectNames, parseTableName, publicationRowFilters, type RowFilter, type TableName } from './replication.ts';
import { columnsOf, keyList, openSide, q, rowExpr, sessionSettings, SESSION_SETTINGS, type Column, type DifferingRow } from './verify.ts';

export interface QuickVerifyOptions {
  source: string;
  target: string;
  tables?: Array<string | TableName>;
  /** Live tables: only rows whose `column` is older than `seconds` (cutoff from the source clock). */
  olderThan?: { column: string; seconds: number };
  /** Rows sampled per table (default 100; 0 = no sample). */
  sampleRows?: number;
  /** Tables of at most this many pages on disk (both sides) are counted exactly (default 1280 = 10 MiB at 8 kB). */
  exactPages?: number;
  /** Relative difference of row estimates tolerated on larger tables (default 0.1 = 10%). */
  estimateTolerance?: number;
  /** Row-filtered tables (shards): counted, ranged and sampled inside the filter. Default: the replication's publication's filters. */
  rowFilters?: RowFilter[];
  /** The replication whose publication's row filters apply (default main). */
  name?: string;
  progress?: boolean;
  signal?: AbortSignal;
}

export interface QuickTable {
  table: string;
  /** exact: count(*) both sides; estimate: planner estimates + key range */
  method: 'exact' | 'estimate';
  sourceRows: number | null;
  targetRows: number | null;
  /** estimate method: |source − target| / max, in % (null when a side has no statistics) */
  estimateDiffPct?: number | null;
  keyRange?: { source: [string | null, string | null]; target: [string | null, string | null]; ok: boolean };
  sample: { rows: number; differing: number };
  differingRows: DifferingRow[];
  problems: string[];
  notes: string[];
  ok: boolean;
}

export interface QuickVerifyResult {
  quick: true;
  ok: boolean;
  tables: QuickTable[];
  /** what was compared, in words (printed with the result) */
  compared: string[];
  /** what a quick check does not compare */
  notCompared: string[];
  olderThanCutoff?: string;
  elapsedMs: number;
}

interface Side {
  /** pages on disk now */
  pages: number;
  relpages: number;
  reltuples: number;
  /** pg_stat_user_tables.n_live_tup; null when the table has no statistics (never written, vacuumed or analyzed since a reset) */
  liveTuples: number | null;
}

/**
 * The cheapest good row estimate. n_live_tup first: every insert and delete keeps it current
 * between ANALYZEs, on the source and on a subscriber alike (initial COPY and applied changes
 * count). Without statistics (reset, restored cluster): the planner's estimate, reltuples per
 * relpages scaled to the current file size — which overshoots on a table bloated by UPDATEs
 * since its last ANALYZE, hence second. Null when neither exists. Pure.
 */
export function estimateRows(s: Side): number | null {
  if (s.liveTuples !== null) return s.liveTuples;
  if (s.reltuples < 0) return null; // 14+: never analyzed
  if (s.relpages <= 0) return s.pages === 0 ? 0 : null; // empty when last looked, or never looked at
  return Math.round((s.reltuples / s.relpages) * s.pages);
}

/** Compare two estimates within a tolerance. Pure. */
export function judgeEstimates(source: number | null, target: number | null, tolerance: number): { ok: boolean | null; diffPct: number | null } {
  if (source === null || target === null) return { ok: null, diffPct: null };
  const m = Math.max(source, target);
  const diff = m === 0 ? 0 : Math.abs(source - target) / m;
  return { ok: diff <= tolerance, diffPct: Math.round(diff * 1000) / 10 };
}

async function side(c: Client, t: TableName): Promise<Side> {
  // a fresh look at the counters, not this session's cached snapshot of them
  await c.query(`select pg_stat_clear_snapshot()`);
  const [r] = await q<Side>(
    c,
    `select (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 as pages, c.relpages::float8 as relpages, c.reltuples::float8 as reltuples,
            case when s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0 or coalesce(s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze) is not null
                 then s.n_live_tup::float8 end as "liveTuples"
       from pg_class c join pg_namespace n on n.oid = c.relnamespace left join pg_stat_user_tables s on s.relid = c.oid
      where n.nspname = $1 and c.relname = $2`,
    [t.schema, t.name],
  );
  return r;
}

/** First and last key (text of each column, joined) through the key's index. */
async function keyEnds(c: Client, tbl: string, pk: Column[], filter: string): Promise<[string | null, string | null]> {
  const k = `array[${pk.map((x) => `${quoteIdent(x.name)}::text`).join(', ')}]::text`;
  // in the key index's own order (a COLLATE "C" order would sort the whole table); text keys are
  // compared only when both databases sort alike (sortsAlike)
  const order = keyList(pk);
  const desc = pk.map((x) => `${quoteIdent(x.name)} desc`).join(', ');
  const [a] = await q<{ k: string }>(c, `select ${k} as k from ${tbl} where ${filter} order by ${order} limit 1`);
  const [b] = await q<{ k: string }>(c, `select ${k} as k from ${tbl} where ${filter} order by ${desc} limit 1`);
  return [a?.k ?? null, b?.k ?? null];
}

/**
 * Sample rows of the source and compare them by key on the target. Small tables: random rows.
 * Large ones: random pages (TABLESAMPLE SYSTEM reads only those), one random row per page.
 */
async function sampleByKey(src: Client, tgt: Client, tbl: string, cols: Column[], pk: Column[], n: number, large: boolean, pages: number, filter: string): Promise<{ rows: number; differing: DifferingRow[] }> {
  if (n <= 0) return { rows: 0, differing: [] };
  const keyObj = `json_build_object(${pk.map((c) => `${quoteLiteral(c.name)}, ${quoteIdent(c.name)}`).join(', ')})`;
  const keyCols = pk.map((c, i) => `${quoteIdent(c.name)}::text as k${i}`).join(', ');
  const row = rowExpr(cols);
  const sql = large
    ? `select distinct on (p) * from (select (ctid::text::point)[0] as p, ${keyCols}, ${keyObj}::text as key, ${row} as r from ${tbl} tablesample system (${Math.min(100, Math.max(0.0001, ((n * 2) / Math.max(1, pages)) * 100))}) where ${filter}) s order by p, random() limit ${n}`
    : `select ${keyCols}, ${keyObj}::text as key, ${row} as r from ${tbl} where ${filter} order by random() limit ${n}`;
  const rows = await q<any>(src, sql, [], `sampling ${tbl} on the source`);
  if (!rows.length) return { rows: 0, differing: [] };
  const params = pk.map((_, i) => rows.map((r: any) => r[`k${i}`]));
  const unnest = pk.map((c, i) => `$${i + 1}::text[]::${c.type}[]`).join(', ');
  const got = await q<any>(tgt, `select ${keyCols}, ${row} as r from ${tbl} where (${keyList(pk)}) in (select * from unnest(${unnest}))`, params, `looking up the sample of ${tbl} on the target`);
  // matched on the keys' text, which both sides render alike under the pinned session settings
  const id = (r: any) => JSON.stringify(pk.map((_, i) => r[`k${i}`]));
  const byKey = new Map(got.map((g: any) => [id(g), g.r as string]));
  const differing: DifferingRow[] = [];
  const cut = (s: string) => (s.length > 500 ? s.slice(0, 500) + '…' : s);
  for (const r of rows) {
    const t = byKey.get(id(r));
    const key = JSON.parse(r.key);
    if (t === undefined) differing.push({ key, kind: 'missing_on_target', source: cut(r.r) });
    else if (t !== r.r) differing.push({ key, kind: 'different', source: cut(r.r), target: cut(t) });
  }
  return { rows: rows.length, differing };
}

/** Rows of a keyless small table sampled by their text (a small target is scanned once). */
async function sampleByText(src: Client, tgt: Client, tbl: string, cols: Column[], n: number, filter: string): Promise<{ rows: number; differing: DifferingRow[] }> {
  if (n <= 0) return { rows: 0, differing: [] };
  const row = rowExpr(cols);
  const rows = await q<{ r: string }>(src, `select ${row} as r from ${tbl} where ${filter} order by random() limit ${n}`);
  if (!rows.length) return { rows: 0, differing: [] };
  const found = new Set((await q<{ r: string }>(tgt, `select distinct r from (select ${row} as r from ${tbl} where ${filter}) s where r = any($1::text[])`, [rows.map((x) => x.r)])).map((x) => x.r));
  return { rows: rows.length, differing: rows.filter((x) => !found.has(x.r)).map((x) => ({ key: {}, kind: 'missing_on_target' as const, source: x.r })) };
}

async function quickTable(src: Client, tgt: Client, t: TableName, o: Required<Pick<QuickVerifyOptions, 'sampleRows' | 'exactPages' | 'estimateTolerance'>>, cutoff: string | undefined, olderThan: QuickVerifyOptions['olderThan'], sortsAlike: boolean, rowFilter?: string): Promise<QuickTable> {
  const name = displayName(t);
  const tbl = qualified(t.schema, t.name);
  const base: QuickTable = { table: name, method: 'exact', sourceRows: null, targetRows: null, sample: { rows: 0, differing: 0 }, differingRows: [], problems: [], notes: [], ok: false };
  const s = await columnsOf(src, t);
  if (!s) throw new CutoverError('USAGE', `table ${name} does not exist on the source`, { hint: 'check --tables' });
  const g = await columnsOf(tgt, t);
  if (!g) {
    base.problems.push(`table ${name} is missing on the target`);
    return base;
  }
  const targetCols = new Set(g.cols.map((c) => c.name));
  const missing = s.cols.filter((c) => !targetCols.has(c.name));
  if (missing.length) base.problems.push(`column(s) missing on the target: ${missing.map((c) => c.name).join(', ')}`);
  const cols = s.cols.filter((c) => targetCols.has(c.name));
  let filter = 'true';
  if (olderThan && cutoff) {
    if (!s.cols.some((c) => c.name === olderThan.column)) base.notes.push(`column ${olderThan.column} (older-than) not in ${name}: all rows compared`);
    else filter = `${quoteIdent(olderThan.column)} < ${quoteLiteral(cutoff)}::timestamptz`;
  }
  if (rowFilter) {
    filter = `${filter} and coalesce((${rowFilter}), false)`;
    base.notes.push(`row filter ${rowFilter}: only the rows inside it are compared`);
  }
  const [ss, ts] = [await side(src, t), await side(tgt, t)];
  const large = ss.pages > o.exactPages || ts.pages > o.exactPages;
  if (!large) {
    const [[a], [b]] = await Promise.all([q<{ n: number }>(src, `select count(*)::float8 as n from ${tbl} where ${filter}`), q<{ n: number }>(tgt, `select count(*)::float8 as n from ${tbl} where ${filter}`)]);
    base.sourceRows = a.n;
    base.targetRows = b.n;
    if (a.n !== b.n) base.problems.push(`row counts differ: ${a.n} on the source, ${b.n} on the target`);
  } else {
    base.method = 'estimate';
    base.sourceRows = estimateRows(ss);
    base.targetRows = estimateRows(ts);
    // a shard's source estimate counts every row, the target's only the shard's: not comparable
    const j = rowFilter ? { ok: true, diffPct: null } : judgeEstimates(base.sourceRows, base.targetRows, o.estimateTolerance);
    if (rowFilter) base.notes.push('row estimates not compared: the source estimate covers the rows outside the filter too');
    base.estimateDiffPct = j.diffPct;
    if (j.ok === false) base.problems.push(`row estimates differ by ${j.diffPct}% (more than ${o.estimateTolerance * 100}%): ${base.sourceRows} on the source, ${base.targetRows} on the target`);
    if (j.ok === null) base.notes.push(`no row estimate on the ${base.sourceRows === null ? 'source' : 'target'} (no statistics: never analyzed since a reset): rows not estimated — ANALYZE it (the readiness phase does) or run the full verify`);
    if (filter !== 'true') base.notes.push('estimates cover all rows (older-than applies to the key range and the sample)');
    if (s.pk.length) {
      if (!sortsAlike && s.pk.some((c) => c.collatable)) base.notes.push('key range not compared: the databases differ in encoding or collation, so text keys sort differently');
      else {
        const [a, b] = await Promise.all([keyEnds(src, tbl, s.pk, filter), keyEnds(tgt, tbl, s.pk, filter)]);
        const ok = a[0] === b[0] && a[1] === b[1];
        base.keyRange = { source: a, target: b, ok };
        if (!ok) base.problems.push(`key range differs: source ${a[0]} … ${a[1]}, target ${b[0]} … ${b[1]}`);
      }
    } else base.notes.push('no primary key: no key range');
  }
  let sample = { rows: 0, differing: [] as DifferingRow[] };
  if (s.pk.length) sample = await sampleByKey(src, tgt, tbl, cols, s.pk, o.sampleRows, large, ss.pages, filter);
  else if (!large) sample = await sampleByText(src, tgt, tbl, cols, o.sampleRows, filter);
  else base.notes.push('no primary key on a large table: rows not sampled (the full verify compares them)');
  base.sample = { rows: sample.rows, differing: sample.differing.length };
  base.differingRows = sample.differing;
  if (sample.differing.length) base.problems.push(`${sample.differing.length} of ${sample.rows} sampled row(s) differ`);
  base.ok = base.problems.length === 0;
  return base;
}

/** The quick check. Never throws for a difference: it is in the result (ok false). */
export async function quickVerify(opts: QuickVerifyOptions): Promise<QuickVerifyResult> {
  const t0 = Date.now();
  const o = { sampleRows: opts.sampleRows ?? 100, exactPages: opts.exactPages ?? 1280, estimateTolerance: opts.estimateTolerance ?? 0.1 };
  if (!Number.isInteger(o.sampleRows) || o.sampleRows < 0 || o.sampleRows > 100_000) throw new CutoverError('USAGE', `verify --quick: sampleRows must be a whole number from 0 to 100000 (got ${o.sampleRows})`);
  if (!Number.isInteger(o.exactPages) || o.exactPages < 0) throw new CutoverError('USAGE', `verify --quick: exactPages must be a whole number ≥ 0 (got ${o.exactPages})`);
  if (!(o.estimateTolerance >= 0 && o.estimateTolerance < 1)) throw new CutoverError('USAGE', `verify --quick: estimateTolerance must be from 0 to below 1 (got ${o.estimateTolerance})`);
  let src: Client | undefined;
  let tgt: Client | undefined;
  try {
    src = await openSide(opts.source, 'source');
    tgt = await openSide(opts.target, 'target');
    const same = sameServerReason(await serverIdentity(src), await serverIdentity(tgt));
    if (same) throw new CutoverError('USAGE', same, { hint: 'verify compares two servers: pass the new one as target' });
    const settings = sessionSettings(await serverMajor(src), await serverMajor(tgt));
    for (const x of settings.filter((y) => !SESSION_SETTINGS.includes(y))) await Promise.all([src.query(x), tgt.query(x)]);
    const enc = async (c: Client) => (await q<{ e: string }>(c, `select pg_encoding_to_char(encoding) || '/' || datcollate as e from pg_database where datname = current_database()`))[0].e;
    const sortsAlike = (await enc(src)) === (await enc(tgt));
    let cutoff: string | undefined;
    if (opts.olderThan) cutoff = (await q<{ c: string }>(src, `select (now() - make_interval(secs => $1))::text as c`, [opts.olderThan.seconds]))[0].c;
    const names: TableName[] = opts.tables?.length
      ? opts.tables.map((t) => (typeof t === 'string' ? parseTableName(t) : t))
      : (await listTables(src)).filter((t) => !t.partitioned).map((t) => ({ schema: t.schema, name: t.name }));
    const filters = opts.rowFilters ?? (await publicationRowFilters(src, objectNames(opts.name).publication));
    const filterOf = (t: TableName) => filters.find((f) => f.schema === t.schema && f.name === t.name)?.where;
    const progress = opts.progress ? new Progress('verify --quick', names.length, { unit: 'tables', mode: defaultProgressMode() }) : undefined;
    const tables: QuickTable[] = [];
    for (const t of names) {
      if (opts.signal?.aborted) throw new CutoverError('STATE', 'verification aborted');
      tables.push(await quickTable(src, tgt, t, o, cutoff, opts.olderThan, sortsAlike, filterOf(t)));
      progress?.tick(1, displayName(t));
    }
    progress?.finish();
    const mib = (o.exactPages * 8) / 1024;
    return {
      quick: true,
      ok: tables.every((t) => t.ok),
      tables,
      compared: [
        `exact row counts of tables up to ${o.exactPages} pages (${mib} MiB at 8 kB) on disk`,
        `larger tables: row estimates (live-tuple statistics) within ${o.estimateTolerance * 100}%, and the first and last primary key`,
        `up to ${o.sampleRows} sampled row(s) per table, looked up by primary key on the target and compared in full`,
      ],
      notCompared: ['rows outside the sample (a changed row that was not sampled is not seen)', 'exact counts of larger tables', 'sequences', 'tables without a primary key beyond their count (large ones: estimate only)'],
      olderThanCutoff: cutoff,
      elapsedMs: Date.now() - t0,
    };
  } finally {
    await Promise.all([src, tgt].map((c) => c?.end().catch(() => {})));
  }
}

export function formatQuickVerify(r: QuickVerifyResult): string {
  const lines = ['QUICK CHECK — statistics and sampled rows, not a full comparison (run `cutover verify` without --quick for checksums of every row)'];
  for (const c of r.compared) lines.push(`  compared: ${c}`);
  for (const t of r.tables) {
    const rows = t.method === 'exact' ? `${t.sourceRows ?? '-'} / ${t.targetRows ?? '-'} rows (exact)` : `~${t.sourceRows ?? '?'} / ~${t.targetRows ?? '?'} rows (estimate${t.estimateDiffPct !== undefined && t.estimateDiffPct !== null ? `, ${t.estimateDiffPct}% apart` : ''})${t.keyRange ? `, key range ${t.keyRange.ok ? 'same' : 'DIFFERS'}` : ''}`;
    lines.push(`${t.ok ? 'ok      ' : 'MISMATCH'} ${t.table}: ${rows}, sample ${t.sample.rows} row(s)${t.sample.differing ? `, ${t.sample.differing} differ` : ''}`);
    for (const p of t.problems) lines.push(`         ${p}`);
    for (const n of t.notes) lines.push(`         note: ${n}`);
    for (const d of t.differingRows.slice(0, 10)) lines.push(`         ${d.kind} ${JSON.stringify(d.key)}${d.source !== undefined ? `\n           source: ${d.source}` : ''}${d.target !== undefined ? `\n           target: ${d.target}` : ''}`);
  }
  lines.push(`not compared: ${r.notCompared.join('; ')}`);
  lines.push(`verify --quick: ${r.ok ? 'OK' : 'MISMATCH'} (${r.tables.length} table(s) in ${r.elapsedMs} ms${r.olderThanCutoff ? `, rows older than ${r.olderThanCutoff}` : ''})`);
  return lines.join('\n');
}
