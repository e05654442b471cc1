/**
 * Seed figures, on one PostgreSQL 17 cluster in the same run:
 *  - the payments preset at 1M rows (DDL, COPY on parallel connections, keys/FKs/indexes, ANALYZE)
 *    beside `pgbench -i -s 10` (1M pgbench_accounts rows: its own client-side COPY FREEZE, vacuum
 *    analyze, primary keys) — rows/s and MB/s of table data written (pg_table_size: heap + TOAST, no
 *    indexes, the same definition for both);
 *  - the same seed with COPY text (the seeder before its binary encoder), and the CPU each side
 *    spent, server (the cluster's processes) and client (Node, or the pgbench process): what bounds
 *    the rate on this machine;
 *  - the COPY phase alone beside pgbench's generate step alone (-I dtg), in rows/s and in MB/s of
 *    COPY text streamed (pgbench's rows are ~20 bytes of text, ours ~80: rows/s alone flatters it);
 *  - starting a run from the golden clone versus starting a fresh cluster and seeding again.
 *  - the production-shaped scenario's DDL (86 tables) seeded by the custom preset, same figures.
 * pgbench is the lab's PostgreSQL client install (lab/tools.ts findTool: CUTOVER_PGBENCH, the
 * cached PyPI client tools, PATH, Debian's folders), the same one the tests use; see PGBENCH below
 * (the one place the baseline command lives).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
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

/** utime + stime (+ the reaped children's, `withChildren`) of a process, in ms; undefined without /proc. */
function procCpuMs(pid: number | 'self', withChildren = false): number | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0)) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU ms spent so far by a local cluster's server processes: the postmaster with the backends it
 * has reaped, plus the live ones. Undefined where /proc cannot tell (then "not measured").
 */
export async function serverCpu(url: string): Promise<() => number | undefined> {
  // The backend's parent, read while the backend is alive.
  const postmaster = await withClient(url, async (c) => {
    const backend = Number((await c.query('select pg_backend_pid() as p')).rows[0].p);
    try {
      return Number(readFileSync(`/proc/${backend}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    } catch {
      return undefined;
    }
  });
  if (postmaster === undefined) return () => undefined;
  return () => {
    let ms = procCpuMs(postmaster, true);
    if (ms === undefined) return undefined;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) ms += procCpuMs(Number(d)) ?? 0;
      } catch {
        // exited while we looked: its time is in the postmaster's reaped children now
      }
    }
    return ms;
  };
}

/** CPU ms of this process, its threads and the children it has waited for (pgbench). */
function clientCpuMs(): number | undefined {
  const own = process.cpuUsage();
  const children = procCpuMs('self', true);
  const self = procCpuMs('self');
  return children === undefined || self === undefined ? undefined : (own.user + own.system) / 1000 + (children - self);
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
    const cpu = await serverCpu(cluster.url);
    /** Wall ms and CPU ms (server, client) of one step. */
    const measured = async (fn: () => Promise<unknown>) => {
      const [s0, c0, t0] = [cpu(), clientCpuMs(), performance.now()];
      await fn();
      const [s1, c1] = [cpu(), clientCpuMs()];
      return { ms: performance.now() - t0, serverMs: s0 === undefined || s1 === undefined ? NaN : s1 - s0, clientMs: c0 === undefined || c1 === undefined ? NaN : c1 - c0 };
    };
    type Run = { rate: number; mb: number; copyRate: number; copyMb: number; loadMb: number; serverMs: number; clientMs: number };
    const ours: Run[] = [];
    const text: Run[] = [];
    const wide: { rate: number; mb: number }[] = [];
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const [copyFormat, into] of [['binary', ours], ['text', text]] as const) {
        const url = await db(`seed${i}`);
        let r!: Awaited<ReturnType<typeof seed>>;
        const m = await measured(async () => (r = await seed({ url, preset: 'payments', scale: ROWS, seed: 42, progress: 'silent', copyFormat })));
        const bytes = await tableBytes(url, '%');
        into.push({ rate: (r.rows * 1000) / r.elapsedMs, mb: bytes / 1048576 / (r.elapsedMs / 1000), copyRate: (r.rows * 1000) / r.loadMs, copyMb: r.bytes / 1048576 / (r.loadMs / 1000), loadMb: bytes / 1048576 / (r.loadMs / 1000), serverMs: m.serverMs, clientMs: m.clientMs });
        await withClient(cluster.url, (c) => c.query(`drop database ${quoteIdent(`seed${i}`)}`));
      }
      if (pgbench) {
        const url = await db('pgbench');
        const rows = PGBENCH.rows;
        const full = await measured(() => execFileP(pgbench, [...PGBENCH.full, url]));
        const bytes = await tableBytes(url, 'pgbench%');
        const gen = await timeIt(() => execFileP(pgbench, [...PGBENCH.generate, url]));
        const genBytes = await tableBytes(url, 'pgbench%');
        runs.push({ rate: (rows * 1000) / full.ms, mb: bytes / 1048576 / (full.ms / 1000), copyRate: (rows * 1000) / gen, copyMb: pgbenchCopyBytes(PGBENCH.scale) / 1048576 / (gen / 1000), loadMb: genBytes / 1048576 / (gen / 1000), serverMs: full.serverMs, clientMs: full.clientMs });
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
    // NaN (not measured) when no run measured it, not the 0 the median of nothing is.
    const med = (xs: Run[], k: keyof Run) => (xs.some((x) => Number.isFinite(x[k])) ? median(xs.map((x) => x[k])) : NaN);
    const base = runs.length ? { rate: med(runs, 'rate'), mb: med(runs, 'mb'), copyRate: med(runs, 'copyRate'), copyMb: med(runs, 'copyMb'), loadMb: med(runs, 'loadMb'), serverMs: med(runs, 'serverMs'), clientMs: med(runs, 'clientMs') } : undefined;
    const cmp = (name: string, value: number, unit: string, b: number | undefined, bname: string, goal?: string): BenchResult =>
      b === undefined ? { name, value, unit, goal: goal && `${goal} (pgbench not found: npx cutover doctor --fetch client)` } : { name, value, unit, baseline: { name: bname, value: b }, ratio: value / b, goal };
    results.push(cmp(`seed payments ${ROWS / 1e6}M rows, whole (PG ${MAJOR})`, med(ours, 'rate'), 'rows/s', base?.rate, 'pgbench -i -s 10 (dtgvp)', 'ratio ≥ 1'));
    results.push(cmp('seed payments, table data written', med(ours, 'mb'), 'MB/s', base?.mb, 'pgbench -i -s 10 (dtgvp)', 'ratio ≥ 0.8'));
    results.push({ name: 'seed payments, table data written, COPY binary', value: med(ours, 'mb'), unit: 'MB/s', baseline: { name: 'same seed, COPY text', value: med(text, 'mb') }, ratio: med(ours, 'mb') / med(text, 'mb') });
    results.push(cmp('seed payments, COPY phase only', med(ours, 'copyRate'), 'rows/s', base?.copyRate, 'pgbench -i -I dtg'));
    results.push(cmp('seed payments, COPY phase only, table data written', med(ours, 'loadMb'), 'MB/s', base?.loadMb, 'pgbench -i -I dtg'));
    results.push(cmp('seed payments, COPY data streamed (binary)', med(ours, 'copyMb'), 'MB/s', base?.copyMb, 'pgbench -i -I dtg (COPY text)'));
    // What bounds it: CPU seconds per seed (NaN: not measured, no /proc). On 2 cores the whole seed
    // cannot take less wall time than (server + client CPU) / 2.
    results.push(cmp('seed payments, server CPU (all backends)', med(ours, 'serverMs') / 1000, 's', base && base.serverMs / 1000, 'pgbench -i -s 10 (dtgvp) server CPU'));
    results.push(cmp('seed payments, client CPU (Node)', med(ours, 'clientMs') / 1000, 's', base && base.clientMs / 1000, 'pgbench -i -s 10 client CPU'));
    results.push({ name: 'seed payments, server CPU with COPY binary', value: med(ours, 'serverMs') / 1000, unit: 's', baseline: { name: 'same seed, COPY text', value: med(text, 'serverMs') / 1000 }, ratio: med(ours, 'serverMs') / med(text, 'serverMs') });

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
