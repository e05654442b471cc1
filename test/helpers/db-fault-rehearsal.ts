/** Shared checks for the database-fault rehearsals (test/integration/rehearse-ddl.test.ts, test/heavy/rehearse-db-faults.test.ts). */
import { expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse, type RehearsalResult } from '../../lab/rehearse/run.ts';
import type { Run } from '../../reports/model.ts';

export async function rehearseShipped(file: string): Promise<{ r: RehearsalResult; run: Run }> {
  const r = await rehearse(file, { outDir: mkdtempSync(join(tmpdir(), 'cutover-dbfault-')), formats: ['json', 'md'], drift: false });
  return { r, run: r.report.runs[0] };
}

/** Nothing acknowledged lost, nothing written on the old side after the fence, nothing left behind, a cluster timeline sampled (database-fault runs). */
export function expectCleanFaultRun(run: Run): void {
  expect(run.lostWrites).toBe(0);
  expect(run.splitBrainWrites).toBe(0);
  expect(run.cleanup?.remaining).toEqual([]);
  // the forward replication existed and was removed after the run
  expect(run.cleanup?.dropped).toEqual(expect.arrayContaining([expect.stringMatching(/^subscription cutover_main/), expect.stringMatching(/^publication cutover_main/), expect.stringMatching(/slot cutover_main/)]));
  expect(run.clusterTimeline?.length).toBeGreaterThan(5);
  expect(run.clusterTimeline!.some((p) => p.walRetainedBytes !== null && p.connections.old !== null)).toBe(true);
  for (const f of run.faults) expect(f.error).toBeUndefined();
}

/** The only reasons for a NO-GO are the lab's own saturation (2 shared cores): the cutover itself was within budget. */
export function expectPassOrOnlySaturated(r: RehearsalResult): void {
  if (r.pass) return;
  const other = r.report.verdict.reasons.filter((x) => !/lab saturated|not measured, because the load ran calm for only/.test(x));
  expect(other).toEqual([]);
}
