/**
 * `npm run bench`: every bench/<topic>.ts that exports `bench()`, run one after another (they share
 * two cores; running them together would measure each other). Figures are medians; each is printed
 * beside a baseline measured in the same run, with the ratio. `--json` prints the results as JSON;
 * `--only lab,seed` runs a subset; `--runs N` sets the rehearsal bench's runs per strategy.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1].split(',') : undefined;
// `--runs N`: fewer rehearsal runs per strategy while developing (the full bench: ≥ 10)
const runsIdx = args.indexOf('--runs');
if (runsIdx >= 0) process.env.BENCH_REHEARSE_RUNS = args[runsIdx + 1];

const topics = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['main.ts', 'types.ts'].includes(f))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((t) => !only || only.includes(t))
  .sort();

const all: Array<BenchResult & { topic: string }> = [];
let failed = false;
for (const topic of topics) {
  const mod = await import(pathToFileURL(join(here, `${topic}.ts`)).href);
  if (typeof mod.bench !== 'function') continue;
  process.stderr.write(`bench: ${topic}…\n`);
  try {
    const results: BenchResult[] = await mod.bench();
    for (const r of results) {
      all.push({ topic, ...r });
      if (!json) {
        const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
        const base = r.baseline ? `  vs ${r.baseline.name} ${fmt(r.baseline.value)} ${r.unit}  ratio ${r.ratio?.toFixed(2)}` : '';
        console.log(`${topic.padEnd(10)} ${r.name.padEnd(60)} ${fmt(r.value).padStart(10)} ${r.unit}${base}${r.goal ? `  (goal: ${r.goal})` : ''}`);
      }
    }
  } catch (e: any) {
    failed = true;
    console.error(`bench ${topic} failed: ${e?.message ?? e}`);
  }
}
if (json) console.log(JSON.stringify(all, null, 2));
process.exitCode = failed ? 1 : 0;
