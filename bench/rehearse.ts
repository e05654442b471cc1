/**
 * Downtime the lab measures at 1000 writes/s for the DNS switch (TTL 1 s) and for the pause-style
 * switch (PgBouncer PAUSE/RESUME with the pause fence), over BENCH_REHEARSE_RUNS runs each
 * (default 10; `npm run bench -- --runs 3` for development): median and p95 side by side, lost
 * writes in every run, and where the DNS switch's write-blocked window went (median per part,
 * reports/model.ts BlockedWindow). Then rehearsal throughput: runs per minute for the quickstart
 * scenario.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../lab/rehearse/run.ts';
import { parseScenario } from '../scenarios/load.ts';
import { median, type BenchResult } from './types.ts';
import { valueOf, BLOCKED_PARTS, type Measured, type Report } from '../reports/model.ts';
import { BLOCKED_LABELS } from '../reports/format.ts';

/** A Stat's figure; NaN when no run could measure it (a bench line then shows NaN, not a fake 0). */
const fig = (v: Measured<{ median: number; p95: number }>, k: 'median' | 'p95') => valueOf(v)?.[k] ?? NaN;
const failedOf = (r: { requests: Measured<{ failed: number; indeterminate: number }> }) => { const q = valueOf(r.requests); return q ? q.failed + q.indeterminate : NaN; };

const RUNS = Number(process.env.BENCH_REHEARSE_RUNS ?? 10);

function scenario(name: string, migration: string): ReturnType<typeof parseScenario> {
  return parseScenario(
    `name: ${name}
runs: ${RUNS}
clusters: { old: { major: 13 }, new: { major: 17 } }
dataset: { preset: payments, scale: 2000 }
load: { rate: 1000, duration: 20s, switchAt: 8s, readRatio: 0, maxVus: 600 }
migration: ${migration}
budgets: { maxErrorWindow: 60s, maxStall: 60s, maxLostWrites: 0, allowedDrift: error }
`,
    `${name}.yaml`,
  );
}

/** The write-blocked window's median per part over the trustworthy runs (NaN: no run measured it). */
function blockedLines(what: string, report: Report): BenchResult[] {
  const parts = report.aggregate.blockedWindowMs ?? {};
  // the swap exists only with reverse replication: no line rather than a NaN one without it
  return BLOCKED_PARTS.filter((k) => k !== 'swapMs' || parts[k]).map((k) => ({ name: `${what}: blocked window, ${BLOCKED_LABELS[k]} (median)`, value: parts[k]?.median ?? NaN, unit: 'ms' }));
}

export async function bench(): Promise<BenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-bench-rehearse-'));
  try {
    const out: BenchResult[] = [];
    const dns = await rehearse(scenario('bench-dns', '{ switch: dns, dnsTtl: 1s, fence: terminate }'), { outDir: join(root, 'dns'), formats: ['json'], drift: false });
    const pause = await rehearse(scenario('bench-pause', '{ switch: pgbouncer, fence: pause }'), { outDir: join(root, 'pause'), formats: ['json'], drift: false });
    const a = dns.report.aggregate;
    const b = pause.report.aggregate;
    out.push(
      { name: `dns switch (TTL 1 s), 1000 w/s: error window median (${a.runs} runs)`, value: fig(a.errorWindowMs, 'median'), unit: 'ms' },
      { name: 'dns switch: error window p95', value: fig(a.errorWindowMs, 'p95'), unit: 'ms', goal: 'p95 < 2000 ms (GOV.UK measured 11 s)' },
      { name: 'dns switch: downtime median', value: fig(a.downtimeMs, 'median'), unit: 'ms' },
      { name: 'dns switch: failed requests per run (median)', value: median(dns.report.runs.map((r) => failedOf(r))), unit: 'requests' },
      { name: `pause switch (pgbouncer), 1000 w/s: stall median (${b.runs} runs)`, value: fig(b.stallWindowMs, 'median'), unit: 'ms', baseline: { name: 'dns downtime median', value: fig(a.downtimeMs, 'median') }, ratio: fig(b.stallWindowMs, 'median') / Math.max(1, fig(a.downtimeMs, 'median')) },
      { name: 'pause switch: stall p95', value: fig(b.stallWindowMs, 'p95'), unit: 'ms', goal: 'p95 < 1000 ms' },
      { name: 'pause switch: failed requests, all runs', value: pause.report.runs.reduce((s, r) => s + failedOf(r), 0), unit: 'requests', goal: '0' },
      { name: 'lost writes, all runs of both strategies', value: dns.lostWrites.total + pause.lostWrites.total, unit: 'writes', goal: '0 in every run' },
    );
    out.push(...blockedLines('dns switch', dns.report), ...blockedLines('pause switch', pause.report));
    const t0 = performance.now();
    const q = await rehearse('scenarios/quickstart.yaml', { runs: 3, outDir: join(root, 'quickstart'), formats: ['json'] });
    const minutes = (performance.now() - t0) / 60_000;
    out.push({ name: `quickstart rehearsal throughput (${q.report.aggregate.runs} runs, golden reused)`, value: q.report.aggregate.runs / minutes, unit: 'runs/min' });
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
