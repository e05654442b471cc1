/**
 * Saturation is its own verdict, on a real rehearsal: when the calm interval shows the lab could not
 * sustain the load, the headline, report.json, report.md and junit.xml say "lab saturated: …", the
 * exit code is 1, and the run's downtime does not enter the aggregate.
 */
import { describe, it, expect } from 'vitest';
import { rehearseCli } from '../helpers/rehearse-cli.ts';

describe('rehearsal: a saturated lab', () => {
  it('says so everywhere and exits 1', async () => {
    const r = await rehearseCli('test/fixtures/scenarios/lab-saturated.yaml', ['--no-drift'], { json: false });
    expect(r.code, r.stderr.slice(-2000)).toBe(1);
    const run1 = r.report.runs[0];
    expect(run1.error, run1.error).toBeUndefined();
    expect(run1.saturation).toMatchObject({ saturated: true, requestedPerSec: 40, reasons: expect.arrayContaining([expect.stringMatching(/^achieved [\d.]+ of 40 req\/s/), expect.stringMatching(/iterations dropped/)]) });
    const text = /lab saturated: [\d.,]+ of 40 req\/s, [\d,]+ dropped, p99 \d+ ms — downtime figures not trustworthy/;
    expect(r.stdout).toMatch(text);
    expect(r.stdout).toMatch(/downtime \(longest time without a successful write\): median not measured/);
    expect(r.report.verdict.reasons.join('\n')).toMatch(text);
    expect(r.report.aggregate).toMatchObject({ saturatedRuns: 1, downtimeMs: { notMeasured: expect.stringMatching(/1 saturated/) } });
    expect(r.md).toMatch(text);
    expect(r.failures).toMatch(text);
  });
});
