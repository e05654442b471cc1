import { describe, it, expect } from 'vitest';
import { rehearse } from 'cutover-lab';

describe('cutover of the quickstart scenario', () => {
  it('stays within the downtime budget and loses no acknowledged write', async () => {
    const r = await rehearse('scenarios/quickstart.yaml', { runs: 1, outDir: 'out/example' });

    // the verdict first: when it fails, its reasons say why (a budget missed, lab saturated, …)
    expect(r.pass, r.report.verdict.reasons.join('; ')).toBe(true);
    expect(r.lostWrites.total).toBe(0);
    expect(r.lostWrites.unmeasured).toBe(0);
    expect(r.report.aggregate.splitBrainWrites).toMatchObject({ max: 0 });
    // undefined when no run's downtime could be trusted (crashed or saturated)
    expect(r.downtime, 'no trustworthy downtime figure').toBeDefined();
    expect(r.downtime!.p95Ms).toBeLessThan(5000);
  });
});
