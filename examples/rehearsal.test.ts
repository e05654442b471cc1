import { describe, it, expect } from 'vitest';
import { rehearse } from 'cutover-lab';

describe('cutover of the quickstart scenario', () => {
  it('stays within the downtime budget and loses no acknowledged write', async () => {
    const r = await rehearse('scenarios/quickstart.yaml', { runs: 1, outDir: 'out/example' });

    expect(r.lostWrites.total).toBe(0);
    expect(r.lostWrites.unmeasured).toBe(0);
    expect(r.report.aggregate.splitBrainWrites).toMatchObject({ max: 0 });
    expect(r.downtime?.p95Ms).toBeLessThan(5000);
    expect(r.pass).toBe(true);
  });
});
