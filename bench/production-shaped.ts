/**
 * The production-shaped scenario's figures (scenarios/production-shaped.yaml: 86 tables, 11 → 15):
 *  - seed time of its DDL by the custom preset on the old cluster (plan, probe, COPY, indexes, FKs),
 *    with rows/s and MB/s of table data written;
 *  - replicate: pre-data schema copy + publication/subscription + initial sync until every table
 *    is `r` (the figure that grows with tables and rows), then post-data (indexes, keys, FKs).
 * Each run seeds a fresh old database and replicates into a fresh new one. BENCH_PS_SCALE rows
 * (default 200000, the scenario's scale), BENCH_RUNS_PS runs (default 1: it is the heavy one).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmbeddedProvider } from '../lab/providers/embedded.ts';
import { seed } from '../lab/seed.ts';
import { quoteIdent, withClient, withDatabase } from '../migration/pg.ts';
import { copySchema } from '../migration/schema-copy.ts';
import { startReplication, stopReplication, waitForSync } from '../migration/replication.ts';
import { median, timeIt, type BenchResult } from './types.ts';
import { tableBytes } from './seed.ts';

const OLD = 11;
const NEW = 15;
const SCALE = Number(process.env.BENCH_PS_SCALE ?? 200_000);
const RUNS = Number(process.env.BENCH_RUNS_PS ?? 1);
const DDL = fileURLToPath(new URL('../scenarios/production-shaped.sql', import.meta.url));

export async function bench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-ps-'));
  const p = new EmbeddedProvider();
  const [o, n] = await Promise.all([p.start({ name: 'old', major: OLD }, { dir: join(dir, 'old') }), p.start({ name: 'new', major: NEW }, { dir: join(dir, 'new') })]);
  const db = async (url: string, name: string) => {
    await withClient(url, (c) => c.query(`drop database if exists ${quoteIdent(name)}`).then(() => c.query(`create database ${quoteIdent(name)}`)));
    return withDatabase(url, name);
  };
  try {
    const seedMs: number[] = [];
    const rates: number[] = [];
    const mbs: number[] = [];
    const syncMs: number[] = [];
    const postMs: number[] = [];
    let rows = 0;
    for (let i = 0; i < RUNS; i++) {
      const src = await db(o.url, `ps${i}`);
      const r = await seed({ url: src, preset: 'custom', ddl: DDL, scale: SCALE, seed: 2024, progress: 'silent' });
      rows = r.rows;
      seedMs.push(r.elapsedMs);
      rates.push((r.rows * 1000) / r.elapsedMs);
      mbs.push((await tableBytes(src, '%')) / 1048576 / (r.elapsedMs / 1000));
      const dst = await db(n.url, `ps${i}`);
      const name = `bench_ps_${i}`;
      syncMs.push(
        await timeIt(async () => {
          await copySchema({ source: src, target: dst, section: 'pre-data' });
          await startReplication({ source: src, target: dst, name });
          await waitForSync({ source: src, target: dst, name, pollMs: 250 });
        }),
      );
      postMs.push(await timeIt(() => copySchema({ source: src, target: dst, section: 'post-data' })));
      await stopReplication({ source: src, target: dst, name });
    }
    return [
      { name: `production-shaped seed (${rows} rows, 86 tables, PG ${OLD})`, value: median(seedMs) / 1000, unit: 's' },
      { name: 'production-shaped seed rate', value: median(rates), unit: 'rows/s' },
      { name: 'production-shaped seed, table data written', value: median(mbs), unit: 'MB/s' },
      { name: `production-shaped replicate → all r (${OLD}→${NEW})`, value: median(syncMs) / 1000, unit: 's' },
      { name: 'production-shaped post-data (indexes, keys, FKs)', value: median(postMs) / 1000, unit: 's' },
    ];
  } finally {
    await Promise.allSettled([o.destroy(), n.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
