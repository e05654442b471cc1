/**
 * Nothing unknown is a pass, on a real rehearsal (real servers, k6, Toxiproxy): a fault that cannot
 * be applied ends NO-GO with the reason in report.json, report.md and junit.xml. (The unreadable
 * old primary is in rehearse-unreadable-old.test.ts; helpers in test/helpers/rehearse-cli.ts.)
 */
import { describe, it, expect } from 'vitest';
import { rehearseCli } from '../helpers/rehearse-cli.ts';

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

});
