/**
 * Seed figures, on one PostgreSQL 17 cluster in the same run:
 *  - the payments preset at 1M rows (DDL, COPY on parallel connections, keys/FKs/indexes, ANALYZE)
 *    beside `pgbench -i -s 10` (1M pgbench_accounts rows: its own client-side COPY, vacuum, primary
 *    keys) — rows/s and MB/s of table data written;
 *  - the COPY phase alone beside pgbench's generate step alone (-I dtg), in rows/s and in MB/s of
 *    COPY text streamed (pgbench's rows are ~20 bytes of text, ours ~80: rows/s alone flatters it);
 *  - starting a run from the golden clone versus starting a fresh cluster and seeding again.
 *  - the production-shaped scenario's DDL (86 tables) seeded by the custom preset, same figures.
 * pgbench is the lab's PostgreSQL client install (lab/tools.ts findTool: CUTOVER_PGBENCH, the
 * cached PyPI client tools, PATH, Debian's folders), the same one the tests use; see PGBENCH below
 * (the one place the baseline command lives).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { fileURLToPath } from 'node:url';
import { EmbeddedProvider } from '../lab/providers/embedded.ts';
import { findTool } from '../lab/tools.ts';
import { seed } from '../lab/seed.ts';
import { ensureGolden, startFromGolden } from '../lab/golden.ts';
import { parseScenario } from '../scenarios/load.ts';
import { quoteIdent, withClient, withDatabase } from '../migration/pg.ts';
import { median, timeIt, type BenchResult } from './types.ts';

const execFileP = promisify(execFile);
const MAJOR = 17;
const ROWS = 1_000_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PRODUCTION_SHAPED_DDL = fileURLToPath(new URL('../scenarios/production-shaped.sql', import.meta.url));

/**
 * The pgbench baseline, in one place: which binary (the lab's client install through findTool;
 * BENCH_PGBENCH points elsewhere) and the two commands.
 */
export const PGBENCH = {
  scale: 10,
  /** Whole init: drop, create tables, client-side generate (COPY), vacuum, primary keys. */
  full: ['-i', '-q', '-s', '10', '-I', 'dtgvp'],
  /** Generate step alone. */
  generate: ['-i', '-q', '-s', '10', '-I', 'dtg'],
  rows: 10 * 100_000 + 10 + 100,
};

export function pgbenchPath(): string | undefined {
  if (process.env.BENCH_PGBENCH) return existsSync(process.env.BENCH_PGBENCH) ? process.env.BENCH_PGBENCH : undefined;
  return findTool('pgbench');
}

/** Bytes of table data (heap + TOAST, no indexes) of the user tables matching `like`, partitions included. */
export async function tableBytes(url: string, like: string): Promise<number> {
  return withClient(url, async (c) => Number((await c.query(`select coalesce(sum(pg_table_size(c.oid)), 0) as b from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r' and c.relname like $1`, [like])).rows[0].b));
}

/**
 * Bytes of COPY text pgbench -i sends for pgbench_accounts at a scale: one line per account,
 * "aid\tbid\t0\t\n" (its filler column is left to the server's blank padding).
 */
export function pgbenchCopyBytes(scale: number): number {
  let bytes = 0;
  for (let aid = 1; aid <= scale * 100_000; aid++) bytes += String(aid).length + String(Math.floor((aid - 1) / 100_000) + 1).length + 5;
  return bytes;
}

/** Median ms to load every public table of `url` from COPY text and from COPY binary of its own rows. */
export async function copyFormats(url: string): Promise<{ textMs: number; binaryMs: number }> {
  return withClient(url, async (c) => {
    const tables = (await c.query<{ t: string }>(`select c.relname as t from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'`)).rows.map((r) => r.t);
    const dump = async (t: string, binary: boolean) => {
      const bufs: Buffer[] = [];
      await pipeline(c.query(copyTo(`copy ${quoteIdent(t)} to stdout${binary ? ' (format binary)' : ''}`)), new Writable({ write: (ch, _e, cb) => (bufs.push(ch), cb()) }));
      return bufs;
    };
    const data = new Map<string, { text: Buffer[]; binary: Buffer[] }>();
    for (const t of tables) {
      data.set(t, { text: await dump(t, false), binary: await dump(t, true) });
      await c.query(`create table ${quoteIdent('bare_' + t)} (like ${quoteIdent(t)})`);
    }
    const ms = { text: [] as number[], binary: [] as number[] };
    for (let round = 0; round < 3; round++)
      for (const k of ['text', 'binary'] as const) {
        for (const t of tables) await c.query(`truncate ${quoteIdent('bare_' + t)}`);
        ms[k].push(await timeIt(async () => {
          for (const t of tables) await pipeline(Readable.from(data.get(t)![k]), c.query(copyFrom(`copy ${quoteIdent('bare_' + t)} from stdin${k === 'binary' ? ' (format binary)' : ''}`)));
        }));
      }
    return { textMs: median(ms.text), binaryMs: median(ms.binary) };
  });
}

export async function bench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-bench-seed-'));
  const cluster = await new EmbeddedProvider().start({ name: 'seedbench', major: MAJOR }, { dir: join(root, 'server') });
  const results: BenchResult[] = [];
  try {
    const db = async (name: string) => {
      await withClient(cluster.url, (c) => c.query(`drop database if exists ${quoteIdent(name)}`).then(() => c.query(`create database ${quoteIdent(name)}`)));
      return withDatabase(cluster.url, name);
    };

    // Ours (payments, and the production-shaped DDL) and pgbench -i at a comparable volume (scale 10 =
    // 1,000,110 rows), interleaved run by run: on a shared machine the load changes by the minute, and
    // measuring one side after the other would compare two machines.
    const pgbench = pgbenchPath();
    const ours: { rate: number; mb: number; copyRate: number; copyMb: number }[] = [];
    const wide: { rate: number; mb: number }[] = [];
    const runs: { rate: number; mb: number; copyRate: number; copyMb: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      {
        const url = await db(`seed${i}`);
        const r = await seed({ url, preset: 'payments', scale: ROWS, seed: 42, progress: 'silent' });
        const bytes = await tableBytes(url, '%');
        ours.push({ rate: (r.rows * 1000) / r.elapsedMs, mb: bytes / 1048576 / (r.elapsedMs / 1000), copyRate: (r.rows * 1000) / r.loadMs, copyMb: r.bytes / 1048576 / (r.loadMs / 1000) });
        await withClient(cluster.url, (c) => c.query(`drop database ${quoteIdent(`seed${i}`)}`));
      }
      if (pgbench) {
        const url = await db('pgbench');
        const rows = PGBENCH.rows;
        const full = await timeIt(() => execFileP(pgbench, [...PGBENCH.full, url]));
        const bytes = await tableBytes(url, 'pgbench%');
        const gen = await timeIt(() => execFileP(pgbench, [...PGBENCH.generate, url]));
        runs.push({ rate: (rows * 1000) / full, mb: bytes / 1048576 / (full / 1000), copyRate: (rows * 1000) / gen, copyMb: pgbenchCopyBytes(PGBENCH.scale) / 1048576 / (gen / 1000) });
        await withClient(cluster.url, (c) => c.query(`drop database pgbench`));
      }
      {
        // A wide custom schema nobody tuned the seeder for: the production-shaped scenario's DDL.
        const url = await db(`wide${i}`);
        const r = await seed({ url, preset: 'custom', ddl: PRODUCTION_SHAPED_DDL, scale: ROWS, seed: 42, progress: 'silent' });
        const bytes = await tableBytes(url, '%');
        wide.push({ rate: (r.rows * 1000) / r.elapsedMs, mb: bytes / 1048576 / (r.elapsedMs / 1000) });
        await withClient(cluster.url, (c) => c.query(`drop database ${quoteIdent(`wide${i}`)}`));
      }
    }
    const base = runs.length ? { rate: median(runs.map((r) => r.rate)), mb: median(runs.map((r) => r.mb)), copyRate: median(runs.map((r) => r.copyRate)), copyMb: median(runs.map((r) => r.copyMb)) } : undefined;
    const rate = median(ours.map((o) => o.rate));
    const mb = median(ours.map((o) => o.mb));
    const copyRate = median(ours.map((o) => o.copyRate));
    const cmp = (name: string, value: number, unit: string, b: number | undefined, bname: string, goal?: string): BenchResult =>
      b === undefined ? { name, value, unit, goal: goal && `${goal} (pgbench not found: npx cutover doctor --fetch client)` } : { name, value, unit, baseline: { name: bname, value: b }, ratio: value / b, goal };
    results.push(cmp(`seed payments ${ROWS / 1e6}M rows, whole (PG ${MAJOR})`, rate, 'rows/s', base?.rate, 'pgbench -i -s 10 (dtgvp)', 'ratio ≥ 1'));
    results.push(cmp('seed payments, table data written', mb, 'MB/s', base?.mb, 'pgbench -i -s 10 (dtgvp)', 'ratio ≥ 0.8'));
    results.push(cmp('seed payments, COPY phase only', copyRate, 'rows/s', base?.copyRate, 'pgbench -i -I dtg'));
    results.push(cmp('seed payments, COPY text streamed', median(ours.map((o) => o.copyMb)), 'MB/s', base?.copyMb, 'pgbench -i -I dtg'));

    results.push(cmp(`seed production-shaped (86 tables) ${ROWS / 1e6}M rows, whole`, median(wide.map((w) => w.rate)), 'rows/s', base?.rate, 'pgbench -i -s 10 (dtgvp)'));
    results.push(cmp('seed production-shaped, table data written', median(wide.map((w) => w.mb)), 'MB/s', base?.mb, 'pgbench -i -s 10 (dtgvp)', 'ratio ≥ 0.8'));

    // Text or binary COPY: the same payments rows, both formats produced by Postgres itself, loaded
    // into bare copies of the tables (no keys, no indexes), interleaved — the server's side of the choice.
    {
      const url = await db('formats');
      await seed({ url, preset: 'payments', scale: ROWS, seed: 42, progress: 'silent' });
      const f = await copyFormats(url);
      results.push({ name: 'COPY FROM binary, server side (payments rows)', value: f.binaryMs / 1000, unit: 's', baseline: { name: 'COPY FROM text, same rows', value: f.textMs / 1000 }, ratio: f.binaryMs / f.textMs });
      await withClient(cluster.url, (c) => c.query(`drop database formats`));
    }

    // Golden clone vs seeding again, at 1M rows.
    const s = parseScenario(`name: bench-golden\nseed: 42\nclusters: { old: { major: ${MAJOR} }, new: { major: ${MAJOR} } }\ndataset: { preset: payments, scale: ${ROWS} }\n`);
    const golden = await ensureGolden(s, { root: join(root, 'golden'), progress: 'silent' });
    // Both measured from nothing to a cluster answering with the data; teardown is not counted.
    const clones: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const c = await startFromGolden(golden, s, { dir: join(root, `clone${i}`) });
      await withClient(c.url, (cl) => cl.query('select 1 from payments limit 1'));
      clones.push(performance.now() - t0);
      await c.destroy();
    }
    const reseeds: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const c = await new EmbeddedProvider().start({ name: 'reseed', major: MAJOR }, { dir: join(root, `reseed${i}`) });
      try {
        await seed({ url: c.url, preset: 'payments', scale: ROWS, seed: 42, progress: 'silent' });
        reseeds.push(performance.now() - t0);
      } finally {
        await c.destroy();
      }
    }
    const cloneMs = median(clones);
    const reseedMs = median(reseeds);
    results.push({ name: `start run from golden clone (${ROWS / 1e6}M rows)`, value: cloneMs, unit: 'ms', baseline: { name: 'fresh cluster + seed again', value: reseedMs }, ratio: cloneMs / reseedMs, goal: 'ratio ≤ 0.1 (10× faster)' });
    return results;
  } finally {
    await cluster.destroy();
    rmSync(root, { recursive: true, force: true });
  }
}
