/**
 * Nothing unknown is a pass, on real rehearsals (real servers, k6, Toxiproxy): a fault that cannot
 * be applied, and an old primary that cannot be read after the switch (split-brain check and drift
 * after the switch), each end NO-GO with the reason in report.json, report.md and junit.xml.
 */
import { describe, it, expect } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';

const run = promisify(execFile);

async function rehearseCli(scenario: string, extra: string[] = []) {
  const out = mkdtempSync(join(tmpdir(), 'cutover-unknowns-'));
  const res = await run(process.execPath, ['bin/cutover.mjs', 'rehearse', scenario, '--out', out, '--format', 'json,md,junit', ...extra], { maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(junit);
  const cases = [doc.testsuites.testsuite.testcase].flat();
  const failures = cases.filter((c: any) => c.failure).map((c: any) => String(c.failure.message)).join('\n');
  return { ...res, report, md, failures };
}

describe('rehearsal: what could not be measured or injected is NO-GO', () => {
  it('a fault that cannot be applied', async () => {
    const r = await rehearseCli('test/fixtures/scenarios/fault-cannot-apply.yaml', ['--no-drift']);
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const run1 = r.report.runs[0];
    expect(run1.error, run1.error).toBeUndefined();
    expect(run1.faults).toEqual([expect.objectContaining({ kind: 'kill', target: 'switchover', error: expect.stringMatching(/the switchover is not running/) })]);
    expect(run1.pass).toBe(false);
    const reason = /fault kill -9 switchover at .* could not be applied: the switchover is not running/;
    expect(r.report.verdict.reasons.join('\n')).toMatch(reason);
    expect(r.md).toMatch(/NO-GO/);
    expect(r.md).toMatch(reason);
    expect(r.failures).toMatch(/fault kill -9 switchover .* could not be applied/);
    // the rest of the run was measured as usual
    expect(run1.lostWrites).toBe(0);
    expect(run1.requests.total).toBeGreaterThan(300);
  });

  it('an old primary that cannot be read after the switch: split-brain and drift after are not measured', async () => {
    const r = await rehearseCli('test/fixtures/scenarios/old-primary-gone.yaml');
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const run1 = r.report.runs[0];
    expect(run1.error, run1.error).toBeUndefined();
    expect(run1.phases.find((p: any) => p.name === 'resume')?.outcome).toBe('ok');
    expect(run1.faults).toEqual([expect.objectContaining({ kind: 'kill', target: 'old' })]);
    expect(run1.faults[0].error).toBeUndefined();
    expect(run1.splitBrainWrites).toEqual({ notMeasured: expect.stringMatching(/^the old primary could not be read for the split-brain check/) });
    expect(r.report.drift.after).toEqual({ notMeasured: expect.stringMatching(/^the drift check failed/) });
    // what could be read was: the new primary has every acknowledged write
    expect(run1.lostWrites).toBe(0);
    const splitBrain = /split-brain writes not measured, because the old primary could not be read/;
    const driftAfter = /drift after the switch not measured, because the drift check failed/;
    const reasons = r.report.verdict.reasons.join('\n');
    expect(reasons).toMatch(splitBrain);
    expect(reasons).toMatch(driftAfter);
    expect(r.md).toMatch(splitBrain);
    expect(r.md).toMatch(driftAfter);
    expect(r.failures).toMatch(splitBrain);
    expect(r.failures).toMatch(driftAfter);
  });
});
