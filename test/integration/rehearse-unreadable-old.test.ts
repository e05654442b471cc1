/**
 * Nothing unknown is a pass, on a real rehearsal: the old primary is kill -9'd after the switch and
 * not restarted, so the split-brain check and the drift check after the switch cannot read it. Both
 * are "not measured, because …" and the run is NO-GO, in report.json, report.md and junit.xml.
 */
import { describe, it, expect } from 'vitest';
import { rehearseCli } from '../helpers/rehearse-cli.ts';

describe('rehearsal: an unreadable old primary is NO-GO', () => {
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
