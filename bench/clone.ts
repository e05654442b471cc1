/**
 * Clone-then-follow beside the logical initial sync, same old cluster (13), same run, a fresh new
 * 18 cluster for every attempt:
 * - clone: pg_basebackup, recovery to the slot's LSN, pg_upgrade --link, subscription from that
 *   LSN (startCloneReplication) → every table ready;
 * - logical: schema pre-data, publication/subscription, initial copy → every table ready, then
 *   post-data (the clone brings the indexes and FKs along, so the like-for-like figure includes it;
 *   the figure without post-data is printed too).
 * Sizes: BENCH_CLONE_ROWS (default BENCH_ROWS or 1000000; "1000000,10000000" adds 10M, several
 * minutes per attempt). Each figure is the median of BENCH_RUNS runs (default 3), alternating order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedProvider } from '../lab/providers/embedded.ts';
import { labCloneBuilder } from '../lab/clone.ts';
import { copySchema } from '../migration/schema-copy.ts';
import { objectNames, startCloneReplication, startReplication, stopReplication, waitForSync } from '../migration/replication.ts';
import { seed } from './replicate.ts';
import { median, timeIt, type BenchResult } from './types.ts';

const OLD = 13;
const NEW = 18;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_CLONE_ROWS ?? process.env.BENCH_ROWS ?? '1000000').split(',').map(Number).filter((n) => n > 0);

export async function bench(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const p = new EmbeddedProvider();
  for (const rows of SIZES) {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-clone-'));
    const old = await p.start({ name: 'old', major: OLD }, { dir: join(dir, 'old') });
    try {
      await seed(old.url, rows);
      const clone: number[] = [];
      const logical: number[] = [];
      const logicalToReady: number[] = [];
      const parts: Record<string, number[]> = {};
      let attempt = 0;
      const fresh = () => p.start({ name: 'new', major: NEW }, { dir: join(dir, `new-${attempt++}`) });
      const runClone = async () => {
        const n = await fresh();
        try {
          let timings: Record<string, number> = {};
          clone.push(
            await timeIt(async () => {
              const r = await startCloneReplication({ source: old.url, target: n.url, clone: labCloneBuilder({ old, target: n, slot: objectNames().slot }) });
              timings = r.clone!.timings;
              await waitForSync({ source: old.url, target: n.url, pollMs: 250 });
            }),
          );
          for (const [k, v] of Object.entries(timings)) (parts[k] ??= []).push(v);
          await stopReplication({ source: old.url, target: n.url });
        } finally {
          await n.destroy();
        }
      };
      const runLogical = async () => {
        const n = await fresh();
        try {
          let ready = 0;
          logical.push(
            await timeIt(async () => {
              ready = await timeIt(async () => {
                await copySchema({ source: old.url, target: n.url, section: 'pre-data' });
                await startReplication({ source: old.url, target: n.url });
                await waitForSync({ source: old.url, target: n.url, pollMs: 250 });
              });
              await copySchema({ source: old.url, target: n.url, section: 'post-data' });
            }),
          );
          logicalToReady.push(ready);
          await stopReplication({ source: old.url, target: n.url });
        } finally {
          await n.destroy();
        }
      };
      for (let i = 0; i < RUNS; i++) {
        if (i % 2 === 0) (await runClone(), await runLogical());
        else (await runLogical(), await runClone());
      }
      const [c, l, lr] = [median(clone), median(logical), median(logicalToReady)];
      const steps = Object.entries(parts).map(([k, v]) => `${k} ${(median(v) / 1000).toFixed(1)} s`).join(', ');
      results.push(
        { name: `clone-then-follow → all tables ready (${rows} rows, ${OLD}→${NEW}; ${steps})`, value: c / 1000, unit: 's', baseline: { name: 'logical: pre-data + copy + post-data', value: l / 1000 }, ratio: c / l },
        { name: `clone-then-follow → all tables ready (${rows} rows)`, value: c / 1000, unit: 's', baseline: { name: 'logical: pre-data + copy, no post-data', value: lr / 1000 }, ratio: c / lr },
      );
    } finally {
      await old.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}
