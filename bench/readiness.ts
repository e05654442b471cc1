/**
 * What the readiness phase buys in the first seconds after the switch: scenarios/readiness-effect.yaml
 * (a query that needs statistics, a new primary without autovacuum) rehearsed BENCH_READINESS_RUNS
 * times (default 3) with readiness on and as many with it off, in the same bench run. The figure
 * is the report's own: latency of the first 10 s after resume ÷ the calm interval, p50 and p99,
 * median over the runs — with readiness off as the baseline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../lab/rehearse/run.ts';
import { loadScenario } from '../scenarios/load.ts';
import { valueOf, type Measured } from '../reports/model.ts';
import type { BenchResult } from './types.ts';

const RUNS = Number(process.env.BENCH_READINESS_RUNS ?? 3);

/** A Stat's median; NaN when no run measured it (the line then shows NaN, not a fake figure). */
const med = (v: Measured<{ median: number }>) => valueOf(v)?.median ?? NaN;

export async function bench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-bench-readiness-'));
  try {
    const s = await loadScenario('scenarios/readiness-effect.yaml');
    const on = (await rehearse(s, { runs: RUNS, outDir: join(root, 'on'), formats: ['json'], drift: false })).report.aggregate;
    const off = (await rehearse({ ...s, migration: { ...s.migration, readiness: false } }, { runs: RUNS, outDir: join(root, 'off'), formats: ['json'], drift: false })).report.aggregate;
    const line = (p: 'P50' | 'P99'): BenchResult => {
      const a = med(on[`afterSwitchRatio${p}`]);
      const b = med(off[`afterSwitchRatio${p}`]);
      return { name: `first 10 s after the switch ÷ calm, ${p.toLowerCase()}, readiness on (${on.runs} runs)`, value: a, unit: '×', baseline: { name: `readiness off (${off.runs} runs)`, value: b }, ratio: a / b, goal: 'readiness on ≈ ×1 (the calm interval); off shows the plans without statistics' };
    };
    return [line('P50'), line('P99')];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
