/**
 * The highest write rate the whole lab sustains on this machine (sample app, k6, Toxiproxy and both
 * servers, with replication running): a rate is sustained when a rehearsal's calm interval (before
 * the fence) shows zero dropped iterations, latency p99 < 100 ms and ≥ 95 % of the rate achieved.
 * Rates double from BENCH_THROUGHPUT_FROM (default 250) until one is not sustained (or
 * BENCH_THROUGHPUT_MAX, default 2000, is), then bisect between the last sustained and the first
 * failed rate down to a 10 % step. One short DNS-switch run per probe (12 s of load, the switch at
 * 8 s: 5 s of calm after the 2 s warm-up). The figure is beside the goal, 1000 writes/s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../lab/rehearse/run.ts';
import { parseScenario } from '../scenarios/load.ts';
import { valueOf, type Saturation } from '../reports/model.ts';
import type { BenchResult } from './types.ts';

const FROM = Number(process.env.BENCH_THROUGHPUT_FROM ?? 250);
const MAX = Number(process.env.BENCH_THROUGHPUT_MAX ?? 2000);
export const GOAL_PER_SEC = 1000;
export const MAX_CALM_P99_MS = 100;

/** Sustained: nothing dropped in the calm interval, p99 under 100 ms, the rate achieved. */
export function sustained(s: Saturation | undefined): boolean {
  return !!s && s.dropped === 0 && s.p99Ms < MAX_CALM_P99_MS && s.achievedPerSec >= 0.95 * s.requestedPerSec;
}

/**
 * The rates to probe: doubling from `from` while `ok(rate)`, then bisecting between the last
 * sustained and the first failed rate until they are within 10 %. Returns the highest sustained
 * rate (0 when not even `from` was) and every probe made.
 */
export async function highestSustained(from: number, max: number, ok: (rate: number) => Promise<boolean>): Promise<{ rate: number; probes: Array<{ rate: number; ok: boolean }> }> {
  const probes: Array<{ rate: number; ok: boolean }> = [];
  const probe = async (rate: number) => {
    const r = await ok(rate);
    probes.push({ rate, ok: r });
    return r;
  };
  let good = 0;
  let bad: number | undefined;
  for (let rate = from; ; rate = Math.min(max, rate * 2)) {
    if (await probe(rate)) good = rate;
    else {
      bad = rate;
      break;
    }
    if (rate >= max) break;
  }
  if (bad === undefined) return { rate: good, probes };
  let hi: number = bad;
  let lo = good || Math.round(hi / 4);
  while (hi - lo > 0.1 * hi) {
    const mid: number = Math.round((lo + hi) / 2 / 10) * 10;
    if (mid <= lo || mid >= hi) break;
    if (await probe(mid)) lo = good = mid;
    else hi = mid;
  }
  return { rate: good, probes };
}

function scenario(rate: number) {
  return parseScenario(
    `name: bench-throughput-${rate}
runs: 1
clusters: { old: { major: 13 }, new: { major: 17 } }
dataset: { preset: payments, scale: 2000 }
load: { rate: ${rate}, duration: 12s, switchAt: 8s, readRatio: 0, maxVus: ${Math.max(100, Math.ceil(rate * 0.6))} }
migration: { switch: dns, dnsTtl: 1s, fence: terminate }
budgets: { maxErrorWindow: 60s, maxStall: 60s, maxLostWrites: 0, allowedDrift: error }
`,
    `bench-throughput-${rate}.yaml`,
  );
}

export async function bench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-bench-throughput-'));
  try {
    const seen: Array<{ rate: number; sat?: Saturation }> = [];
    const { rate, probes } = await highestSustained(FROM, MAX, async (r) => {
      const res = await rehearse(scenario(r), { outDir: join(root, String(r)), formats: ['json'], drift: false });
      const sat = valueOf(res.report.runs[0]?.saturation);
      seen.push({ rate: r, sat });
      const s = sat ? `${sat.achievedPerSec}/s achieved, ${sat.dropped} dropped, p99 ${sat.p99Ms} ms` : 'calm interval not measured';
      process.stderr.write(`bench throughput: ${r} writes/s → ${sustained(sat) ? 'sustained' : 'not sustained'} (${s})\n`);
      return sustained(sat);
    });
    const at = (r: number) => seen.find((x) => x.rate === r)?.sat;
    const goal = at(GOAL_PER_SEC);
    return [
      {
        name: `highest rate sustained (0 calm drops, calm p99 < ${MAX_CALM_P99_MS} ms; probes ${probes.map((p) => `${p.rate}${p.ok ? '✓' : '✗'}`).join(' ')})`,
        value: rate,
        unit: 'writes/s',
        baseline: { name: 'goal', value: GOAL_PER_SEC },
        ratio: rate / GOAL_PER_SEC,
        goal: `≥ ${GOAL_PER_SEC} writes/s`,
      },
      // the goal rate itself, when a probe ran at it: what was missing (NaN: no probe at 1000)
      { name: `at ${GOAL_PER_SEC} writes/s: calm dropped iterations`, value: goal?.dropped ?? NaN, unit: 'iterations', goal: '0' },
      { name: `at ${GOAL_PER_SEC} writes/s: calm latency p99`, value: goal?.p99Ms ?? NaN, unit: 'ms', goal: `< ${MAX_CALM_P99_MS} ms` },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
