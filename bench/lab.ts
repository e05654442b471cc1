/**
 * Lab figures: bringing a pair of clusters up cold (binaries downloaded into an empty cache) and
 * warm (cached), and cloning a stopped cluster's data directory versus initdb.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedProvider, cloneDataDir } from '../lab/providers/embedded.ts';
import { ensureBinaries } from '../lab/binaries.ts';
import { serverUser } from '../lab/osuser.ts';
import { medianMs, timeIt, type BenchResult } from './types.ts';

const OLD = 13;
const NEW = 17;

async function pair(dir: string): Promise<void> {
  const p = new EmbeddedProvider();
  const [a, b] = await Promise.all([p.start({ name: 'old', major: OLD }, { dir: join(dir, 'old') }), p.start({ name: 'new', major: NEW }, { dir: join(dir, 'new') })]);
  await Promise.all([a.destroy(), b.destroy()]);
}

export async function bench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-bench-lab-'));
  const saved = process.env.CUTOVER_HOME;
  try {
    // Cold: an empty binary cache, so the pair's binaries (and the client tools, which come with the
    // first server) are fetched from the registries.
    process.env.CUTOVER_HOME = join(root, 'cold-home');
    const cold = await timeIt(() => pair(join(root, 'cold')));
    process.env.CUTOVER_HOME = saved;
    if (saved === undefined) delete process.env.CUTOVER_HOME;
    await Promise.all([ensureBinaries(OLD), ensureBinaries(NEW)]);
    const warm = await medianMs(3, (i) => pair(join(root, `warm${i}`)));

    // initdb vs cloning a stopped data directory of the same cluster.
    const p = new EmbeddedProvider();
    const initdb = await medianMs(3, async (i) => {
      const c = await p.start({ name: 'i', major: NEW }, { dir: join(root, `initdb${i}`) });
      await c.stop();
    });
    const src = join(root, 'initdb0', 'data');
    const clone = await medianMs(3, (i) => cloneDataDir(src, join(root, `clone${i}`, 'data'), serverUser()));
    return [
      { name: `pair ${OLD}+${NEW} up+down, cold (download servers + client tools)`, value: cold, unit: 'ms' },
      { name: `pair ${OLD}+${NEW} up+down, warm (cached binaries)`, value: warm, unit: 'ms', baseline: { name: 'cold', value: cold }, ratio: warm / cold },
      { name: `clone stopped data dir (PG ${NEW})`, value: clone, unit: 'ms', baseline: { name: 'initdb+start+stop', value: initdb }, ratio: clone / initdb, goal: 'ratio < 1' },
    ];
  } finally {
    if (saved === undefined) delete process.env.CUTOVER_HOME;
    else process.env.CUTOVER_HOME = saved;
    rmSync(root, { recursive: true, force: true });
  }
}
