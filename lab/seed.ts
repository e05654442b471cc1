/**
 * Seeding: a dataset (preset or custom DDL) streamed into Postgres with COPY … FROM STDIN.
 *
 * Plan, then apply: `planSeed` decides the tables, their row counts and how they are cut into
 * chunks (pure); `seed` runs it. Speed comes from doing what pg_restore and pgbench -i do:
 * create bare tables, COPY into them on several connections at once (COPY binary where the column
 * types allow, see lab/seed-copy.ts; a table the seed created in one COPY FREEZE; a table it did not
 * create cut into row ranges loaded in parallel), then build keys and indexes once over the loaded
 * data — each table's own right after its load, while the others still load — then the FKs.
 * When the DDL already carries FKs (a user's own schema), tables load in dependency waves,
 * parents before children.
 *
 * Nothing half-created is left behind: the DDL runs in one transaction, and if the load or the
 * post-load step fails, every object the seed created is dropped again.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { CutoverError } from '../migration/errors.ts';
import { connect, describeTarget, qualified, quoteIdent, sqlError, withClient, type Client } from '../migration/pg.ts';
import { dumpSchema, splitSql } from '../migration/schema-copy.ts';
import { lexSql } from '../migration/sql-lexer.ts';
import { poolEach } from '../migration/concurrency.ts';
import { EncodeError, copyBatches, copyFormat, copyLine } from './seed-copy.ts';
import { GeneratorPool } from './seed-pool.ts';
import type { Scenario } from '../scenarios/schema.ts';
import { Progress, defaultProgressMode, type ProgressMode } from '../migration/progress.ts';
import { applyOverrides, getPreset, type Dataset, type TableLoad, type Value } from '../scenarios/datasets/index.ts';
import { buildCustom, probeDataset, type CustomDataset } from '../scenarios/datasets/custom.ts';

export interface SeedOptions {
  url: string;
  /** payments | notifications | edge | custom (custom: ddl, or the tables already in the database). */
  preset?: string;
  /** DDL file for preset custom. */
  ddl?: string | null;
  /** Preset custom: copy the schema of this database (pg_dump --schema-only), then seed it. */
  fromUrl?: string | null;
  /** Roughly the total number of rows. */
  scale: number;
  seed?: number;
  /** "table.column" → "faker.module.method" | "null" */
  generators?: Record<string, string>;
  /** Connections loading at once (default: 2 × cores, at most 4, at least 2). */
  parallel?: number;
  /** Generator threads (default: presets from 200k rows on more than 2 cores: cores − 1, at most 4; 0 = on the main thread). */
  threads?: number;
  /** COPY format: binary (default) for every table whose column types all have a binary encoder, text for the others; `text`: every table as text. */
  copyFormat?: 'binary' | 'text';
  /** Progress output: tty line, JSON lines, or nothing (default: by terminal / json flag). */
  progress?: ProgressMode;
  json?: boolean;
}

export interface TableResult {
  table: string;
  rows: number;
  /** Bytes of COPY data sent for this table. */
  bytes: number;
  /** The COPY format the rows went in (binary unless a column type or a value has no binary encoding). */
  format: 'binary' | 'text';
}

export interface SeedResult {
  preset: string;
  seed: number;
  scale: number;
  tables: TableResult[];
  rows: number;
  bytes: number;
  /** Whole seed: DDL, load, keys and indexes. */
  elapsedMs: number;
  /** Just the COPY phase. */
  loadMs: number;
  /** Where the time went: schema, COPY (each table's own keys, indexes and ANALYZE run during it, right after its load), the keys/FKs left after the last COPY, sequences + the ANALYZE left. */
  phases: { schemaMs: number; loadMs: number; keysMs: number; analyzeMs: number };
  rowsPerSec: number;
  mbPerSec: number;
  /** What the plan decided that the user should know (rows capped by a one-to-one key, checks left to the server). */
  notes: string[];
  /** Worker threads that generated the rows (0: the main thread). */
  generatorThreads: number;
}

export interface SeedChunk {
  table: TableLoad;
  from: number;
  to: number;
}

export interface SeedPlan {
  /** Waves of chunks: every chunk of a wave may load in parallel; waves run in order. */
  waves: SeedChunk[][];
  totalRows: number;
}

const CHUNK_MIN_ROWS = 20_000;

/** Order tables into dependency waves (only needed when FKs exist during the load). */
export function dependencyWaves(tables: TableLoad[]): TableLoad[][] {
  const key = (t: TableLoad) => `${t.schema}.${t.name}`;
  const byKey = new Map(tables.map((t) => [key(t), t]));
  const done = new Set<string>();
  const waves: TableLoad[][] = [];
  let left = [...tables];
  while (left.length) {
    const wave = left.filter((t) => t.dependsOn.every((d) => d === key(t) || done.has(d) || !byKey.has(d)));
    if (!wave.length)
      throw new CutoverError('PRECONDITION', `foreign keys form a cycle between ${left.map(key).join(', ')}; cannot order the load`, {
        hint: 'make one of the foreign keys DEFERRABLE or add it after the data (ALTER TABLE … ADD FOREIGN KEY) in the DDL',
      });
    waves.push(wave);
    for (const t of wave) done.add(key(t));
    left = left.filter((t) => !wave.includes(t));
  }
  return waves;
}

/**
 * `frozen`: tables loaded by one COPY … (FREEZE) each (see copyChunk), so they are not cut into row
 * ranges: a frozen COPY needs the table truncated in its own transaction, which one connection holds.
 */
export function planSeed(ds: Dataset, opts: { parallel: number; fkDuringLoad: boolean; frozen?: ReadonlySet<TableLoad> }): SeedPlan {
  const waves = opts.fkDuringLoad ? dependencyWaves(ds.tables) : [ds.tables];
  const out: SeedChunk[][] = waves.map((tables) => {
    const chunks: SeedChunk[] = [];
    for (const t of tables) {
      // A self-referencing table with its FK in place loads in one COPY: the FK is checked at the end
      // of the statement, which then sees every row it references.
      const whole = (opts.fkDuringLoad && t.selfReferencing) || opts.frozen?.has(t);
      const parts = !whole && t.rows >= 2 * CHUNK_MIN_ROWS ? Math.min(opts.parallel, Math.floor(t.rows / CHUNK_MIN_ROWS)) : 1;
      const size = Math.ceil(t.rows / parts);
      for (let from = 0; from < t.rows; from += size) chunks.push({ table: t, from, to: Math.min(t.rows, from + size) });
    }
    // Biggest first, so the long chunks start early and the small ones fill the gaps.
    return chunks.sort((a, b) => b.to - b.from - (a.to - a.from));
  });
  return { waves: out, totalRows: ds.tables.reduce((n, t) => n + t.rows, 0) };
}

export { copyLine, copyValue } from './seed-copy.ts';

/**
 * One chunk, one COPY, in binary when the table's column types allow (`types`), else text. A value
 * the binary encoder cannot write exactly loads the chunk again as text (the failed COPY left no
 * row). `freeze` (a whole table the seed created and nobody else sees yet): in one transaction,
 * TRUNCATE the empty table then COPY … (FREEZE), the way `pgbench -i` loads: the rows are written
 * frozen, with their hint bits set and the pages all-visible, so the index builds, FK checks and
 * ANALYZE that read them next do not dirty and write every page of the table again.
 */
async function copyChunk(client: Client, chunk: SeedChunk, onBatch: (rows: number, bytes: number) => void, opts: { gen?: GeneratorPool; freeze: boolean; types?: string[] }): Promise<'binary' | 'text'> {
  const format = copyFormat(opts.types);
  try {
    await copyOnce(client, chunk, onBatch, opts);
    return format;
  } catch (e) {
    if (!(e instanceof EncodeError)) throw e;
    await copyOnce(client, chunk, onBatch, { ...opts, types: undefined });
    return 'text';
  }
}

async function copyOnce(client: Client, chunk: SeedChunk, onBatch: (rows: number, bytes: number) => void, opts: { gen?: GeneratorPool; freeze: boolean; types?: string[] }): Promise<void> {
  const t = chunk.table;
  if (!t.columns.length) {
    // Every column is left to its default (or the table has none): COPY needs a column, INSERT does not.
    const n = chunk.to - chunk.from;
    await client.query(`insert into ${qualified(t.schema, t.name)} select from generate_series(1, ${n})`).catch((e: any) => {
      const err = sqlError(e, `loading ${t.schema}.${t.name}`);
      throw new CutoverError(err.code, err.message, { detail: err.detail, hint: err.hint, cause: e });
    });
    onBatch(n, 0);
    return;
  }
  const options = [copyFormat(opts.types) === 'binary' ? 'format binary' : '', opts.freeze ? 'freeze' : ''].filter(Boolean);
  const sql = `copy ${qualified(t.schema, t.name)} (${t.columns.map(quoteIdent).join(', ')}) from stdin${options.length ? ` (${options.join(', ')})` : ''}`;
  const sent = { rows: 0, bytes: 0 };
  async function* batches() {
    const source = opts.gen ? opts.gen.stream(chunk, opts.types) : copyBatches(t, chunk.from, chunk.to, opts.types);
    for await (const { buf, rows } of source) {
      sent.rows += rows;
      sent.bytes += buf.length;
      onBatch(rows, buf.length);
      yield buf;
    }
  }
  try {
    if (opts.freeze) await client.query(`begin; truncate only ${qualified(t.schema, t.name)}`);
    await pipeline(Readable.from(batches(), { objectMode: false }), client.query(copyFrom(sql)));
    if (opts.freeze) await client.query('commit');
  } catch (e: any) {
    if (opts.freeze) await client.query('rollback').catch(() => {});
    // What this attempt counted is not loaded.
    onBatch(-sent.rows, -sent.bytes);
    if (e instanceof EncodeError) throw e;
    const err = sqlError(e, `loading ${t.schema}.${t.name}`);
    throw new CutoverError(err.code, err.message, {
      detail: err.detail,
      hint: err.hint ?? (e?.code?.startsWith?.('23') || e?.code?.startsWith?.('22') ? 'a generated value does not fit a constraint or type: override that column with dataset.generators ("table.column": "faker.…")' : undefined),
      cause: e,
    });
  }
}

/** Line and column of a character offset (1-based) in a text. */
export function lineCol(text: string, position: number): { line: number; col: number; text: string } {
  const before = text.slice(0, Math.max(0, position - 1));
  const line = before.split('\n').length;
  const col = position - before.lastIndexOf('\n') - 1;
  return { line, col, text: text.split('\n')[line - 1] ?? '' };
}

/** Run DDL in one transaction; a failure rolls back and names the line, column and Postgres hint. */
export async function applyDdl(client: Client, ddl: string, source: string): Promise<void> {
  await client.query('begin');
  try {
    await client.query(ddl);
    await client.query('commit');
  } catch (e: any) {
    await client.query('rollback').catch(() => {});
    const pos = e?.position ? lineCol(ddl, Number(e.position)) : undefined;
    const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
    const detail = [pos ? `line ${pos.line}: ${pos.text.slice(0, pos.col - 1)}▸${pos.text.slice(pos.col - 1)}` : '', e?.detail, e?.where].filter(Boolean).join('\n');
    throw new CutoverError('SQL', `the DDL in ${source} failed${where}: ${e?.message ?? e}${e?.code ? ` (SQLSTATE ${e.code})` : ''}; nothing was created`, {
      detail: detail || undefined,
      hint: e?.hint ?? (e?.code === '42P07' || e?.code === '42710' ? 'the object already exists: seed into an empty database' : 'fix the DDL and run again'),
      exitCode: 2,
      cause: e,
    });
  }
}

interface Snapshot {
  namespaces: Set<number>;
  relations: Set<number>;
  types: Set<number>;
  functions: Set<number>;
}

async function snapshot(c: Client): Promise<Snapshot> {
  const ids = async (sql: string) => new Set((await c.query<{ oid: number }>(sql)).rows.map((r) => Number(r.oid)));
  return {
    namespaces: await ids(`select oid from pg_namespace`),
    relations: await ids(`select oid from pg_class where relkind in ('r','p','v','m','S','f')`),
    types: await ids(`select t.oid from pg_type t left join pg_class c on c.oid = t.typrelid where t.typtype in ('e','d','r') or (t.typtype = 'c' and c.relkind = 'c')`),
    functions: await ids(`select oid from pg_proc`),
  };
}

/** Drop everything created since `before` (used when a seed fails half-way). */
async function dropCreated(c: Client, before: Snapshot): Promise<void> {
  const now = await snapshot(c);
  const fresh = (a: Set<number>, b: Set<number>) => [...b].filter((x) => !a.has(x));
  const ns = fresh(before.namespaces, now.namespaces);
  for (const oid of ns) {
    const r = await c.query<{ n: string }>(`select nspname as n from pg_namespace where oid = $1`, [oid]);
    if (r.rows[0]) await c.query(`drop schema if exists ${quoteIdent(r.rows[0].n)} cascade`).catch(() => {});
  }
  for (const oid of fresh(before.relations, now.relations)) {
    const r = await c.query<{ n: string; k: string }>(`select oid::regclass::text as n, relkind as k from pg_class where oid = $1`, [oid]);
    if (!r.rows[0]) continue;
    const kind = { r: 'table', p: 'table', v: 'view', m: 'materialized view', S: 'sequence', f: 'foreign table' }[r.rows[0].k] ?? 'table';
    await c.query(`drop ${kind} if exists ${r.rows[0].n} cascade`).catch(() => {});
  }
  for (const oid of fresh(before.types, now.types)) {
    const r = await c.query<{ n: string }>(`select oid::regtype::text as n from pg_type where oid = $1`, [oid]);
    if (r.rows[0]) await c.query(`drop type if exists ${r.rows[0].n} cascade`).catch(() => {});
  }
  for (const oid of fresh(before.functions, now.functions)) {
    const r = await c.query<{ n: string }>(`select oid::regprocedure::text as n from pg_proc where oid = $1`, [oid]);
    if (r.rows[0]) await c.query(`drop routine if exists ${r.rows[0].n} cascade`).catch(() => {});
  }
}

/** The tables that are plain heaps (relkind r: not partitioned parents, not foreign tables). */
async function plainTables(c: Client, tables: TableLoad[]): Promise<Set<TableLoad>> {
  const r = await c.query<{ k: string }>(`select relkind as k from unnest($1::text[]) with ordinality u(n, i) join pg_class c on c.oid = u.n::regclass order by i`, [tables.map((t) => qualified(t.schema, t.name))]);
  return new Set(tables.filter((_, i) => r.rows[i]?.k === 'r'));
}

/**
 * The base type of every loaded column, in COPY order: domains resolved to the type under them,
 * enums as `enum`, anything else by its name (arrays `_int4`, ranges, composites: no binary encoder).
 */
async function columnTypes(c: Client, tables: TableLoad[]): Promise<Map<TableLoad, string[]>> {
  const r = await c.query<{ i: string; col: string; base: string }>(
    `with recursive cols as (
       select u.i, a.attname, a.atttypid from unnest($1::text[]) with ordinality u(n, i)
         join pg_attribute a on a.attrelid = u.n::regclass and a.attnum > 0 and not a.attisdropped),
     d(oid, cur) as (
       select distinct atttypid, atttypid from cols
       union all
       select d.oid, t.typbasetype from d join pg_type t on t.oid = d.cur where t.typtype = 'd')
     select cols.i, cols.attname as col, case b.typtype when 'e' then 'enum' else b.typname end as base
       from cols join d on d.oid = cols.atttypid join pg_type b on b.oid = d.cur and b.typtype <> 'd'`,
    [tables.map((t) => qualified(t.schema, t.name))],
  );
  const byTable = new Map<number, Map<string, string>>();
  for (const row of r.rows) byTable.set(Number(row.i), (byTable.get(Number(row.i)) ?? new Map()).set(row.col, row.base));
  return new Map(tables.map((t, k) => [t, t.columns.map((col) => byTable.get(k + 1)?.get(col) ?? '?')]));
}

/**
 * Move every sequence behind a loaded column past the loaded values: identity and OWNED BY sequences,
 * and any sequence a column default calls (a sequence shared by two tables, owned by neither, is moved
 * past the largest value of all of them).
 */
async function syncSequences(c: Client, tables: TableLoad[]): Promise<void> {
  const maxOf = new Map<string, bigint>();
  for (const t of tables) {
    const r = await c.query<{ attname: string; seq: string }>(
      `select a.attname, pg_get_serial_sequence($1, a.attname) as seq from pg_attribute a
        where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped and pg_get_serial_sequence($1, a.attname) is not null
       union
       select a.attname, s.oid::regclass::text from pg_attrdef d
         join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
         join pg_depend dep on dep.classid = 'pg_attrdef'::regclass and dep.objid = d.oid and dep.refclassid = 'pg_class'::regclass
         join pg_class s on s.oid = dep.refobjid and s.relkind = 'S'
        where d.adrelid = $1::regclass and a.attnum > 0 and not a.attisdropped`,
      [qualified(t.schema, t.name)],
    );
    for (const { attname, seq } of r.rows) {
      if (!t.columns.includes(attname)) continue;
      const m = (await c.query<{ m: string | null }>(`select max(${quoteIdent(attname)})::bigint::text as m from ${qualified(t.schema, t.name)}`).catch(() => ({ rows: [{ m: null }] }))).rows[0].m;
      if (m === null) continue;
      const prev = maxOf.get(seq);
      if (prev === undefined || BigInt(m) > prev) maxOf.set(seq, BigInt(m));
    }
  }
  for (const [seq, m] of maxOf) await c.query(`select setval($1, $2::bigint)`, [seq, m.toString()]);
}

const IDENT = String.raw`(?:"(?:[^"]|"")*"|[A-Za-z_][\w$]*)`;
const QNAME = `(${IDENT}(?:\\.${IDENT})?)`;
const unquote = (q: string) => (q.match(new RegExp(IDENT, 'g')) ?? []).map((p) => (p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p.toLowerCase()));

/**
 * What to build after the data: each table's own keys and indexes (`own`, by "schema.name": built as
 * soon as that table is loaded, while the others still load), then the waves of `later` in order.
 */
export interface KeyPlan {
  own: Map<string, string[]>;
  later: string[][][];
}

/**
 * Cut a post-load DDL script into waves of groups that may run in parallel: first each table's own
 * keys and indexes (one group per table), then foreign keys (one group per child table; a foreign
 * key locks its child, then its parent, so an acyclic FK graph cannot deadlock), then everything
 * else in order (materialized views, sequences).
 */
export function postLoadWaves(postDdl: string, tables: { schema: string; name: string }[]): string[][][] {
  const { own, later } = postLoadPlan(postDdl, tables);
  return [[...own.values()], ...later].filter((w) => w.length);
}

/** The same cut as postLoadWaves, with the own keys and indexes by table. */
export function postLoadPlan(postDdl: string, tables: { schema: string; name: string }[]): KeyPlan {
  const known = new Set(tables.map((t) => `${t.schema}.${t.name}`));
  const tableOf = (stmt: string): string | undefined => {
    const m = new RegExp(`^alter\\s+table\\s+(?:only\\s+)?${QNAME}`, 'i').exec(stmt) ?? new RegExp(`^create\\s+(?:unique\\s+)?index\\s+(?:${IDENT}\\s+)?on\\s+(?:only\\s+)?${QNAME}`, 'i').exec(stmt);
    if (!m) return undefined;
    const parts = unquote(m[1]);
    const key = parts.length === 1 ? `public.${parts[0]}` : `${parts[0]}.${parts[1]}`;
    return known.has(key) ? key : undefined;
  };
  const own = new Map<string, string[]>();
  const fks = new Map<string, string[]>();
  const rest: string[] = [];
  // The one SQL lexer: a `;` inside a string, a dollar-quoted body or a comment does not end a statement.
  for (const { sql } of splitSql(postDdl)) {
    const stmt = sql.trim().replace(/;$/, '').trim();
    if (!stmt) continue;
    const t = tableOf(stmt);
    if (!t) rest.push(stmt);
    else if (/\bforeign\s+key\b/i.test(stmt)) fks.set(t, [...(fks.get(t) ?? []), stmt]);
    else own.set(t, [...(own.get(t) ?? []), stmt]);
  }
  return { own, later: [[...fks.values()], rest.length ? [rest] : []].filter((w) => w.length) };
}

/** A connection for building keys: index builds sort in memory instead of spilling to disk. */
async function keysConnection(url: string): Promise<Client> {
  const c = await connect(url, { role: 'seed target', applicationName: 'cutover-seed' });
  await c.query(`set maintenance_work_mem = '256MB'`).catch(async (e) => (await c.end().catch(() => {}), Promise.reject(e)));
  return c;
}

/** The statements of one group, in order, on one connection. */
async function runGroup(c: Client, group: string[], context: string): Promise<void> {
  for (const stmt of group) {
    // Foreign keys of a cycle (a → b, b → a) built at once lock both tables in opposite orders:
    // Postgres aborts one as a deadlock; it succeeds once the other is done.
    for (let attempt = 1; ; attempt++) {
      try {
        await c.query(stmt);
        break;
      } catch (e: any) {
        if (e?.code === '40P01' && attempt < 5) {
          await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100));
          continue;
        }
        throw sqlError(e, `${context} (${stmt.split('\n')[0].slice(0, 100)})`);
      }
    }
  }
}

/** Run waves of statement groups: groups of a wave in parallel (one connection each), statements of a group in order. */
async function runWaves(url: string, waves: string[][][], parallel: number, context: string): Promise<void> {
  for (const wave of waves) await poolEach(wave, parallel, { open: () => keysConnection(url), close: (c) => c.end() }, (c, group) => runGroup(c, group, context));
}

export function defaultParallel(): number {
  return Math.max(2, Math.min(4, availableParallelism()));
}

export async function seed(opts: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const preset = opts.preset ?? (opts.ddl ? 'custom' : 'payments');
  const seedValue = opts.seed ?? 42;
  if (!Number.isInteger(opts.scale) || opts.scale <= 0)
    throw new CutoverError('USAGE', `scale must be a whole number greater than 0 (got ${opts.scale})`, { hint: 'scale is roughly the total number of rows, e.g. --scale 5000', exitCode: 2 });
  if (opts.fromUrl && preset !== 'custom') throw new CutoverError('USAGE', `a schema source (fromUrl) is only used with preset custom (got ${preset})`, { hint: 'drop --preset or pass --preset custom', exitCode: 2 });
  if (opts.ddl && preset !== 'custom') throw new CutoverError('USAGE', `--ddl is only used with --preset custom (got --preset ${preset})`, { hint: 'drop --preset or pass --preset custom', exitCode: 2 });
  const parallel = Math.max(1, opts.parallel ?? defaultParallel());
  const admin = await connect(opts.url, { role: 'seed target' });
  try {
    const info = await admin.query<{ v: string; enc: string }>(`select current_setting('server_version_num') as v, current_setting('server_encoding') as enc`);
    const major = Math.floor(Number(info.rows[0].v) / 10000);
    const ctx = { seed: seedValue, scale: opts.scale, major, encoding: info.rows[0].enc };
    const before = await snapshot(admin);

    let ds: Dataset;
    let custom: CustomDataset | undefined;
    const extensionNotes: string[] = [];
    // Constraints and indexes the loader takes off the seeded tables and puts back after the data
    // (custom schemas: FKs in any order — cycles, self references — and indexes built once).
    let deferred: Deferred | undefined;
    // User triggers of the tables the DDL created: off during the load, back on after it.
    let triggers: { enable: string[]; notes: string[] } | undefined;
    if (preset === 'custom' && opts.fromUrl) {
      if (opts.ddl) throw new CutoverError('USAGE', 'give either a DDL file or a database to copy the schema from, not both', { exitCode: 2 });
      // The user's schema, the way pg_restore would build it: tables first, keys and indexes after the data.
      // psql meta-commands (\\restrict … in recent pg_dump output) are not SQL.
      const noMeta = (sql: string) => sql.replace(/^\\\S+.*$/gm, '');
      const pre = noMeta(await dumpSchema(opts.fromUrl, 'pre-data'));
      const post = noMeta(await dumpSchema(opts.fromUrl, 'post-data'));
      await applyDdl(admin, pre, `the schema of ${describeTarget(opts.fromUrl)}`);
      await admin.query('reset all');
      try {
        ds = custom = await withClient(opts.fromUrl, (source) => buildCustom(admin, ctx, { onlyNewSince: before.relations, constraintsFrom: source, generators: opts.generators }), { role: 'schema source' });
        await probeDataset(admin, custom, copyText, copyInto);
      } catch (e) {
        await dropCreated(admin, before);
        throw e;
      }
      ds.postDdl = post;
    } else if (preset === 'custom') {
      let ddlText: string | undefined;
      if (opts.ddl) {
        try {
          ddlText = await readFile(opts.ddl, 'utf8');
        } catch (e: any) {
          throw new CutoverError('USAGE', `cannot read DDL file ${opts.ddl}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { exitCode: 2, cause: e });
        }
        const known = new Set((await admin.query<{ name: string }>(`select name from pg_settings`)).rows.map((r) => r.name));
        const cleaned = dropUnknownSettings(ddlText, known);
        ddlText = cleaned.ddl;
        if (cleaned.dropped.length) extensionNotes.push(`left out ${cleaned.dropped.map((x) => `SET ${x}`).join(', ')}: PostgreSQL ${major} has no such setting (a dump by a newer pg_dump)`);
        extensionNotes.push(...(await provideExtensionFunctions(admin, ddlText, major)));
        await applyDdl(admin, ddlText, opts.ddl);
        await admin.query('reset all');
      }
      try {
        ds = custom = await buildCustom(admin, ctx, { onlyNewSince: opts.ddl ? before.relations : undefined, generators: opts.generators });
        await probeDataset(admin, custom, copyText, copyInto);
        // Only on tables this seed created: an existing schema's constraints are never taken off
        // (a crash half-way would lose them); its tables load parent first instead.
        if (opts.ddl) deferred = await deferConstraints(admin, custom);
        if (opts.ddl) triggers = await disableTriggers(admin, custom);
      } catch (e) {
        if (opts.ddl) await dropCreated(admin, before);
        throw e;
      }
    } else {
      ds = getPreset(preset).build(ctx);
    }
    if (!custom) applyOverrides(ds, opts.generators ?? {}, seedValue);
    if (preset !== 'custom') await applyDdl(admin, ds.preDdl, `preset ${preset}`);
    const notes = [...extensionNotes, ...(custom?.notes ?? []), ...(triggers?.notes ?? [])];
    const mode = opts.progress ?? defaultProgressMode(opts.json);
    if (mode !== 'silent') for (const n of notes) process.stderr.write(mode === 'json' ? JSON.stringify({ note: `seed: ${n}` }) + '\n' : `seed: ${n}\n`);

    // Tables this seed created (preset, DDL, copied schema) load frozen; plain tables only (a
    // partitioned parent cannot be COPY FREEZE'd). Existing tables of a custom seed never are.
    const created = preset !== 'custom' || !!opts.ddl || !!opts.fromUrl;
    const frozen = created ? await plainTables(admin, ds.tables) : new Set<TableLoad>();
    const plan = planSeed(ds, { parallel, fkDuringLoad: preset === 'custom' && !deferred && !opts.fromUrl, frozen });
    const progress = new Progress(`seed ${preset}`, plan.totalRows, { mode });
    const perTable = new Map<TableLoad, TableResult>(ds.tables.map((t) => [t, { table: t.schema === 'public' ? t.name : `${t.schema}.${t.name}`, rows: 0, bytes: 0, format: 'binary' }]));
    const types = opts.copyFormat === 'text' ? new Map<TableLoad, string[]>() : await columnTypes(admin, ds.tables);
    const loadStart = Date.now();
    // Generation threads: only where the main thread is the bottleneck — presets (profiled: with COPY
    // binary the server's share of the load halved and the main thread is the load's bound), not custom
    // schemas (threads measured slower there) — from a few hundred thousand rows (a thread starts in
    // ~0.5 s), and with a core to spare for them: on 2 cores, threads and server backends only trade
    // places (measured: 1 or 2 threads added 0.8–1.4 s of CPU to a 1M-row payments seed and no speed),
    // so the default there is none.
    const cores = availableParallelism();
    const threads = opts.threads ?? (!custom && plan.totalRows >= 200_000 && cores > 2 ? Math.min(4, cores - 1) : 0);
    const gen = threads > 0 ? await GeneratorPool.create(ds, { preset, ctx, generators: opts.generators ?? {}, schema: custom?.schema }, threads) : undefined;
    // Each table's own keys and indexes are built by the connection that loaded its last chunk, right
    // after it, while the other connections still load: the load is bound by the generating thread,
    // so a backend building an index uses a core that would otherwise wait.
    const keys = mergeKeyPlans(deferred, postLoadPlan(ds.postDdl, ds.tables));
    const context = preset === 'custom' ? 'building the indexes and foreign keys of the custom schema' : `building keys, foreign keys and indexes of preset ${preset}`;
    const chunksLeft = new Map<TableLoad, number>();
    for (const chunk of plan.waves.flat()) chunksLeft.set(chunk.table, (chunksLeft.get(chunk.table) ?? 0) + 1);
    let copyEnd = loadStart;
    const analyzed = new Set<TableLoad>();
    try {
      for (const wave of plan.waves) {
        const open = async () => {
          const c = await keysConnection(opts.url);
          // Loaded data is recreated on demand; skip the WAL flush wait per commit.
          await c.query('set synchronous_commit = off').catch(async (e) => (await c.end().catch(() => {}), Promise.reject(e)));
          return c;
        };
        await poolEach(wave, parallel, { open, close: (c) => c.end() }, async (c, chunk) => {
          const res = perTable.get(chunk.table)!;
          const format = await copyChunk(
            c,
            chunk,
            (rows, bytes) => {
              res.rows += rows;
              res.bytes += bytes;
              progress.tick(rows, chunk.table.name);
            },
            { gen, freeze: frozen.has(chunk.table), types: types.get(chunk.table) },
          );
          if (format === 'text') res.format = 'text';
          copyEnd = Math.max(copyEnd, Date.now());
          const left = chunksLeft.get(chunk.table)! - 1;
          chunksLeft.set(chunk.table, left);
          if (left > 0) return;
          const key = `${chunk.table.schema}.${chunk.table.name}`;
          const own = keys.own.get(key);
          if (own) {
            keys.own.delete(key);
            await runGroup(c, own, context);
          }
          // Its statistics too, while the load still leaves a core free (the FKs built later only read).
          await runGroup(c, [`analyze ${qualified(chunk.table.schema, chunk.table.name)}`], 'analyze');
          analyzed.add(chunk.table);
        });
      }
      await gen?.close();
      const loadMs = copyEnd - loadStart;
      const keysStart = copyEnd;
      progress.finish('building keys and indexes');
      // What is left: own keys of tables no chunk loaded (none, or a DDL's other tables), FKs, the rest.
      await runWaves(opts.url, [[...keys.own.values()], ...keys.later].filter((w) => w.length), parallel, context);
      deferred = undefined;
      const keysMs = Date.now() - keysStart;
      for (const stmt of triggers?.enable ?? []) await admin.query(stmt);
      await syncSequences(admin, ds.tables);
      const unanalyzed = ds.tables.filter((t) => !analyzed.has(t));
      if (unanalyzed.length) await runWaves(opts.url, [unanalyzed.map((t) => [`analyze ${qualified(t.schema, t.name)}`])], parallel, 'analyze');
      const analyzeMs = Date.now() - keysStart - keysMs;
      const tables = [...perTable.values()];
      const rows = tables.reduce((n, t) => n + t.rows, 0);
      const bytes = tables.reduce((n, t) => n + t.bytes, 0);
      const elapsedMs = Date.now() - started;
      return {
        preset,
        seed: seedValue,
        scale: opts.scale,
        tables,
        rows,
        bytes,
        elapsedMs,
        loadMs,
        phases: { schemaMs: loadStart - started, loadMs, keysMs, analyzeMs },
        rowsPerSec: Math.round((rows * 1000) / Math.max(1, elapsedMs)),
        mbPerSec: Math.round((bytes / 1048576 / Math.max(0.001, elapsedMs / 1000)) * 100) / 100,
        notes,
        generatorThreads: gen ? threads : 0,
      };
    } catch (e) {
      await gen?.close();
      progress.finish('failed; dropping what the seed created');
      await dropCreated(admin, before).catch(() => {});
      // Tables that existed before (custom without DDL): empty them again and give them back their constraints.
      if (preset === 'custom' && !opts.ddl && !opts.fromUrl) {
        await admin.query(`truncate ${ds.tables.map((t) => qualified(t.schema, t.name)).join(', ')} cascade`).catch(() => {});
        if (deferred) for (const group of [...deferred.own.values(), ...deferred.later.flat()]) for (const stmt of group) await admin.query(stmt).catch(() => {});
      }
      throw e;
    }
  } finally {
    await admin.end().catch(() => {});
  }
}

/**
 * Functions a DDL calls that, on this major, only an extension provides: gen_random_uuid() is built
 * in from 13 but pgcrypto's on 11 and 12; uuid_generate_v4() is always uuid-ossp's. A schema dumped
 * from a newer server says neither. Creates the extension (when the DDL does not) so the DDL runs
 * unedited, and says so.
 */
export function extensionsNeeded(ddl: string, major: number): string[] {
  const code = lexSql(ddl)
    .filter((s) => s.kind === 'code')
    .map((s) => s.text.toLowerCase())
    .join(' ');
  const out: string[] = [];
  const creates = (ext: string) => new RegExp(`create\\s+extension\\s+(if\\s+not\\s+exists\\s+)?"?${ext}"?`).test(lexSql(ddl).map((s) => (s.kind === 'ident' ? s.text.slice(1, -1) : s.kind === 'code' ? s.text : ' ')).join('').toLowerCase());
  if (major < 13 && /\bgen_random_uuid\s*\(/.test(code) && !creates('pgcrypto')) out.push('pgcrypto');
  if (/\buuid_generate_v[1345]\w*\s*\(/.test(code) && !creates('uuid-ossp')) out.push('uuid-ossp');
  return out;
}

async function provideExtensionFunctions(c: Client, ddl: string, major: number): Promise<string[]> {
  const notes: string[] = [];
  // A pg_dump file empties search_path (set_config('search_path', '', false)) and calls a built-in
  // gen_random_uuid() unqualified: on 11/12 it only resolves when pgcrypto lives in pg_catalog.
  const emptiesPath = /set_config\s*\(\s*'search_path'\s*,\s*''/i.test(ddl);
  for (const ext of extensionsNeeded(ddl, major)) {
    try {
      await c.query(`create extension if not exists ${quoteIdent(ext)}${emptiesPath ? ' schema pg_catalog' : ''}`);
    } catch (e) {
      throw sqlError(e, `creating extension ${ext}, which the DDL's ${ext === 'pgcrypto' ? 'gen_random_uuid()' : 'uuid_generate_v*()'} needs on PostgreSQL ${major}`);
    }
    notes.push(`created extension ${ext}${emptiesPath ? ' in schema pg_catalog (the DDL empties search_path)' : ''}: the DDL calls ${ext === 'pgcrypto' ? 'gen_random_uuid(), built in only from PostgreSQL 13' : 'uuid_generate_v*()'} and does not create it`);
  }
  return notes;
}

/**
 * `SET name = …` statements for settings this server does not have (a dump by a newer pg_dump:
 * `SET transaction_timeout` from 17, `SET default_table_access_method` from 12) and psql
 * meta-commands (`\\restrict …`) blanked out, in place, so error positions still point into the file.
 */
export function dropUnknownSettings(ddl: string, known: ReadonlySet<string>): { ddl: string; dropped: string[] } {
  const dropped: string[] = [];
  const blank = (t: string) => t.replace(/[^\n]/g, ' ');
  const out = lexSql(ddl)
    .map((seg) =>
      seg.kind !== 'code'
        ? seg.text
        : seg.text
            .replace(/^[ \t]*SET[ \t]+(?:SESSION[ \t]+)?([A-Za-z_][\w]*)[ \t]*(?:=|TO)[^;]*;/gim, (m, name: string) => (known.has(name.toLowerCase()) ? m : (dropped.push(name), blank(m))))
            .replace(/^\\[a-z]+\b.*$/gm, (m) => blank(m)),
    )
    .join('');
  return { ddl: out, dropped };
}

/**
 * Turn off the user triggers of the tables about to be loaded (pg_restore --disable-triggers): a trigger
 * that writes to another table would add rows behind the plan (duplicate keys once they are rebuilt), one
 * that refuses rows would stop the load. Returns the statements that turn them back on, as they were.
 */
async function disableTriggers(c: Client, ds: CustomDataset): Promise<{ enable: string[]; notes: string[] }> {
  const r = await c.query<{ rel: string; key: string; name: string; state: string }>(
    `select t.tgrelid::regclass::text as rel, n.nspname || '.' || c.relname as key, t.tgname as name, t.tgenabled as state
       from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
      where t.tgrelid = any($1) and not t.tgisinternal and t.tgenabled <> 'D' order by 1, 3`,
    [ds.schema.map((t) => t.oid)],
  );
  const enable: string[] = [];
  const notes: string[] = [];
  for (const t of r.rows) {
    await c.query(`alter table ${t.rel} disable trigger ${quoteIdent(t.name)}`);
    enable.push(`alter table ${t.rel} enable ${t.state === 'A' ? 'always ' : t.state === 'R' ? 'replica ' : ''}trigger ${quoteIdent(t.name)}`);
    notes.push(`${t.key}: trigger ${t.name} did not fire during the load (what it writes was not written); it is enabled again after it`);
  }
  return { enable, notes };
}

/** COPY text of rows (the probe's sample). */
function copyText(rows: Value[][]): string {
  let s = '';
  for (const r of rows) s += copyLine(r);
  return s;
}

async function copyInto(c: Client, sql: string, text: string): Promise<void> {
  const stream = c.query(copyFrom(sql));
  await pipeline(Readable.from([Buffer.from(text)]), stream);
}

/** What puts everything back: keys and indexes per table (own), then FKs per child table (later). */
type Deferred = KeyPlan;

/** Two key plans as one: own keys of a table together, the later waves one after the other. */
function mergeKeyPlans(a: KeyPlan | undefined, b: KeyPlan): KeyPlan {
  if (!a) return b;
  const own = new Map(a.own);
  for (const [t, stmts] of b.own) own.set(t, [...(own.get(t) ?? []), ...stmts]);
  return { own, later: [...a.later, ...b.later] };
}

/**
 * Take the FKs, keys and indexes off the tables about to be loaded, remembering their definitions,
 * the way pg_restore builds a schema: FKs then hold in any load order (cycles, self references,
 * parallel chunks of one table), and each key and index is built once over the data instead of
 * row by row. Putting them back is Postgres validating the plan: every key rebuilt, every FK checked.
 */
async function deferConstraints(c: Client, ds: CustomDataset): Promise<Deferred> {
  const oids = ds.schema.map((t) => t.oid);
  const fks = await c.query<{ rel: string; name: string; def: string }>(
    `select conrelid::regclass::text as rel, conname as name, pg_get_constraintdef(oid) as def
       from pg_constraint where contype = 'f' and conparentid = 0 and (conrelid = any($1) or confrelid = any($1)) order by 1, 2`,
    [oids],
  );
  // Primary keys and unique constraints too: the plan makes them distinct by construction (and the
  // probe checked a sample), and one sort-and-build per key is far cheaper than a B-tree insert per row
  // (random uuid keys split pages all over). Exclusion constraints stay: rare, and not re-addable cheaply.
  const keys = await c.query<{ rel: string; name: string; def: string }>(
    `select conrelid::regclass::text as rel, conname as name, pg_get_constraintdef(oid) as def
       from pg_constraint where contype in ('p', 'u') and conparentid = 0 and conrelid = any($1) order by contype, 1, 2`,
    [oids],
  );
  const idx = await c.query<{ rel: string; name: string; def: string }>(
    `select i.indrelid::regclass::text as rel, ic.oid::regclass::text as name, pg_get_indexdef(i.indexrelid) as def
       from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = any($1) and not i.indisexclusion
        and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)
        and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
      order by 1, 2`,
    [oids],
  );
  await c.query('begin');
  try {
    for (const f of fks.rows) await c.query(`alter table ${f.rel} drop constraint ${quoteIdent(f.name)}`);
    for (const k of keys.rows) await c.query(`alter table ${k.rel} drop constraint ${quoteIdent(k.name)}`);
    for (const x of idx.rows) await c.query(`drop index ${x.name}`);
    await c.query('commit');
  } catch (e) {
    await c.query('rollback').catch(() => {});
    throw sqlError(e, 'taking the foreign keys and indexes off the tables to load');
  }
  // Keyed the way the loader names its tables (schema.name), whatever search_path renders in regclass.
  const names = await c.query<{ rel: string; key: string }>(`select c.oid::regclass::text as rel, n.nspname || '.' || c.relname as key from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = any($1)`, [oids]);
  const keyOf = new Map(names.rows.map((r) => [r.rel, r.key]));
  const own = new Map<string, string[]>();
  // An index of a partitioned table renders as CREATE INDEX … ON ONLY …: built that way it would cover no
  // partition and stay invalid; built without ONLY it is built on every partition again.
  const idxDefs = idx.rows.map((x) => ({ rel: x.rel, def: x.def.replace(/^(CREATE (?:UNIQUE )?INDEX \S+ ON )ONLY /, '$1') }));
  for (const r of [...keys.rows.map((k) => ({ rel: k.rel, def: `alter table ${k.rel} add constraint ${quoteIdent(k.name)} ${k.def}` })), ...idxDefs]) {
    const key = keyOf.get(r.rel) ?? r.rel;
    own.set(key, [...(own.get(key) ?? []), r.def]);
  }
  const fkGroups = new Map<string, string[]>();
  for (const f of fks.rows) fkGroups.set(f.rel, [...(fkGroups.get(f.rel) ?? []), `alter table ${f.rel} add constraint ${quoteIdent(f.name)} ${f.def}`]);
  return { own, later: fkGroups.size ? [[...fkGroups.values()]] : [] };
}

/** Seed options for a scenario's dataset (the seed step of a rehearsal). */
export function seedOptionsFor(s: Pick<Scenario, 'dataset' | 'seed'>, url: string, extra: Partial<SeedOptions> = {}): SeedOptions {
  return {
    url,
    preset: s.dataset.preset,
    ddl: s.dataset.ddl,
    fromUrl: s.dataset.fromUrl,
    scale: s.dataset.scale,
    seed: s.seed,
    generators: s.dataset.generators,
    ...extra,
  };
}
