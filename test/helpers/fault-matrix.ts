/**
 * A fault matrix: each case is a small rehearsal (13 → 17 embedded clusters, one golden snapshot
 * shared by every case, a small dataset, a low rate, a short load) with one or more faults at a
 * time or a switchover phase, run through the library (`rehearse`). For every case the product's
 * promise is checked, whatever the fault and the phase:
 *  - it ends within a bound (a hang is aborted and fails the case, named);
 *  - the verdict is the expected one (GO, NO-GO, or either when both are right for that fault),
 *    coherent (GO ⇔ no reason), and a NO-GO names the fault;
 *  - every figure is a number or "not measured, because …" — never a budget passed by a figure
 *    that was not measured, and a GO only on real figures;
 *  - nothing is left behind: no cutover* slot/publication/subscription, no process still stopped,
 *    no toxic on a proxy, no fault role/session/setting, traffic where the outcome says it is (the
 *    run's own cleanup.remaining, lab/rehearse/steps.ts faultLeftovers), and after the rehearsal no
 *    server, Toxiproxy, k6 or app process of the lab and no lab folder.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseScenario } from '../../scenarios/load.ts';
import { rehearse, type RehearsalResult } from '../../lab/rehearse/run.ts';
import { processTree, resumeAllStopped, stoppedPids } from '../../lab/night-faults.ts';
import { paths } from '../../lab/paths.ts';
import { describeInjected } from '../../reports/format.ts';
import type { Run } from '../../reports/model.ts';

export interface MatrixCase {
  name: string;
  /** The faults, as a scenario's YAML flow mappings (`{ kind: pause, target: old, phase: catchup, duration: 3s }`). */
  faults: string[];
  /** `either`: both outcomes are right for this fault (it may or may not push the cutover over the edge). */
  verdict: 'go' | 'no-go' | 'either';
  /** A NO-GO's reasons must match this. */
  reason?: RegExp;
  /** Which faults must have been applied: all (default), none (they cannot fire: a phase never reached), any. */
  applied?: 'all' | 'none' | 'any';
  /** Extra scenario YAML lines for `migration:` (flow mapping body), e.g. `reverseReplication: true`. */
  migration?: string;
  /** Load duration (default 16s; the switch at 4s). */
  duration?: string;
}

const FIGURES = ['downtimeMs', 'errorWindowMs', 'stallWindowMs', 'lostWrites', 'unexpectedWrites', 'duplicateWrites', 'splitBrainWrites'] as const;

export function scenarioYaml(c: MatrixCase): string {
  return `name: fault-matrix
runs: 1
clusters: { old: { major: 13 }, new: { major: 17 } }
dataset: { preset: payments, scale: 200 }
load: { rate: 20, duration: ${c.duration ?? '16s'}, switchAt: 4s, retry: bounded }
faults:
${c.faults.map((f) => `  - ${f}`).join('\n')}
migration: { switch: dns, dnsTtl: 1s, fence: terminate, lag: { maxBytes: 1048576, maxSeconds: 5, timeout: 15s }${c.migration ? `, ${c.migration}` : ''} }
budgets: { maxErrorWindow: 15s, maxStall: 15s, maxLostWrites: 0, allowedDrift: error }
`;
}

/** The lab's processes still running under this test process (servers, Toxiproxy, k6, the app, the switchover). */
function labProcesses(): string[] {
  return processTree(process.pid)
    .slice(1)
    .map((pid) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`;
      } catch {
        return '';
      }
    })
    .filter((x) => /postgres|toxiproxy|k6|cutover\.mjs|load\/app/.test(x));
}

const labDirs = () => (existsSync(paths.labs()) ? readdirSync(paths.labs()).filter((d) => d.startsWith(`rehearse-fault-matrix-${process.pid}-`)) : []);

/** Run one case with a hard bound; returns the result (the checks are in expectPromiseKept). */
export async function runCase(c: MatrixCase, boundMs = 180_000): Promise<{ r: RehearsalResult; run: Run; ms: number; log: string[] }> {
  const scenario = parseScenario(scenarioYaml(c), `fault-matrix/${c.name}.yaml`);
  const outDir = mkdtempSync(join(tmpdir(), 'cutover-fault-matrix-'));
  const abort = new AbortController();
  const log: string[] = [];
  const t0 = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const p = rehearse(scenario, { outDir, formats: ['json'], drift: false, signal: abort.signal, log: (l) => log.push(`${((Date.now() - t0) / 1000).toFixed(1)} ${l}`) });
  try {
    const r = await Promise.race([
      p,
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`case ${c.name} did not end within ${boundMs} ms (a hang); last log lines:\n${log.slice(-12).join('\n')}`)), boundMs))),
    ]);
    return { r, run: r.report.runs[0], ms: Date.now() - t0, log };
  } catch (e) {
    abort.abort();
    await Promise.race([p.catch(() => {}), new Promise((res) => setTimeout(res, 60_000))]);
    // the case failed already; do not let what it left stopped fail the next ones too
    resumeAllStopped();
    throw e;
  } finally {
    clearTimeout(timer);
    rmSync(outDir, { recursive: true, force: true });
  }
}

/** Everything the product promises for a faulted run (see the file comment). */
export async function expectPromiseKept(c: MatrixCase, { r, run, log }: { r: RehearsalResult; run: Run; log: string[] }): Promise<void> {
  const reasons = r.report.verdict.reasons;
  const context = `${c.name}: verdict ${r.pass ? 'GO' : 'NO-GO'}\n  reasons: ${reasons.join('\n    ')}\n  phases: ${run.phases.map((p) => `${p.name}:${p.outcome}`).join(' ')}\n  faults: ${JSON.stringify(run.faults)}\n  log tail:\n${log.slice(-15).join('\n')}`;
  // the verdict: coherent, the one expected, and a NO-GO names the fault
  expect(r.pass, context).toBe(reasons.length === 0);
  expect(r.pass, context).toBe(run.pass);
  if (c.verdict === 'go') expect(reasons.filter((x) => !/lab saturated/.test(x)), context).toEqual([]);
  if (c.verdict === 'no-go') expect(r.pass, context).toBe(false);
  if (!r.pass && c.reason) expect(reasons.join('\n'), context).toMatch(c.reason);
  if (!r.pass && run.faults.length) {
    const named = run.faults.some((f) => reasons.some((x) => x.includes(describeInjected(f))));
    expect(named, `${context}\n  (no reason names a fault)`).toBe(true);
  }
  // the faults: every planned one is in the report, applied or with the reason it was not
  expect(run.faults.length, context).toBe(c.faults.length);
  const applied = run.faults.filter((f) => !f.error);
  if ((c.applied ?? 'all') === 'all') expect(run.faults.map((f) => f.error ?? 'applied'), context).toEqual(run.faults.map(() => 'applied'));
  if (c.applied === 'none') expect(applied, context).toEqual([]);
  for (const f of run.faults) if (f.error) expect(f.error.length, context).toBeGreaterThan(10);
  // figures: a number or "not measured, because …"; a budget never passes on a figure not measured
  for (const k of FIGURES) {
    const v = run[k] as unknown;
    const ok = (typeof v === 'number' && Number.isFinite(v) && v >= 0) || (typeof (v as { notMeasured?: unknown })?.notMeasured === 'string' && (v as { notMeasured: string }).notMeasured.length > 10);
    expect(ok, `${context}\n  figure ${k} = ${JSON.stringify(v)}`).toBe(true);
  }
  for (const b of run.budgets) if (typeof b.actual !== 'number') expect(b.pass, `${context}\n  budget ${b.name}`).toBe(false);
  if (r.pass) {
    expect(run.error, context).toBeUndefined();
    for (const b of run.budgets) expect(typeof b.actual, `${context}\n  budget ${b.name}`).toBe('number');
    for (const k of FIGURES) expect(typeof run[k], `${context}\n  figure ${k}`).toBe('number');
  }
  // a run that errored measured nothing it could not: its loss check says so or is a real count
  if (typeof run.lostWrites === 'number') expect(run.lostWrites, context).toBe(0);
  if (typeof run.splitBrainWrites === 'number') expect(run.splitBrainWrites, context).toBe(0);
  // traffic never half-switched: a switch that went through was followed by resume, or the run says it stopped
  const sw = run.phases.find((p) => p.name === 'switch');
  if (sw?.outcome === 'ok' && run.phases.find((p) => p.name === 'resume')?.outcome !== 'ok') expect(run.error ?? '', context).toMatch(/stopped|failed/);
  // nothing left behind, as the run itself checked before teardown (replication, faults, traffic)
  expect(run.cleanup, context).toBeDefined();
  expect(run.cleanup!.remaining, context).toEqual([]);
  // … and after the rehearsal: no stopped process, no process or folder of the lab
  expect(stoppedPids(), context).toEqual([]);
  const until = Date.now() + 15_000;
  while (labProcesses().length && Date.now() < until) await new Promise((res) => setTimeout(res, 250));
  expect(labProcesses(), context).toEqual([]);
  expect(labDirs(), context).toEqual([]);
}
