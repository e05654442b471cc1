/** The throughput bench's search (bench/throughput.ts) on a fake lab whose limit is known. */
import { describe, it, expect } from 'vitest';
import { highestSustained, sustained } from '../../bench/throughput.ts';

const lab = (limit: number) => async (rate: number) => rate <= limit;

describe('highestSustained', () => {
  it('doubles until a rate fails, then bisects to within 10 %', async () => {
    const r = await highestSustained(250, 2000, lab(1300));
    expect(r.probes.slice(0, 4).map((p) => p.rate)).toEqual([250, 500, 1000, 2000]);
    expect(r.rate).toBeLessThanOrEqual(1300);
    expect(r.rate).toBeGreaterThanOrEqual(1300 * 0.9 - 10);
    expect(r.probes.every((p) => p.ok === p.rate <= 1300)).toBe(true);
  });

  it('stops at the cap when every rate holds, and says 0 when not even the first does', async () => {
    expect((await highestSustained(250, 2000, lab(5000))).rate).toBe(2000);
    const none = await highestSustained(250, 2000, lab(0));
    expect(none.rate).toBe(0);
  });

  it('a rate is sustained only with no calm drop, p99 under 100 ms and the rate achieved', () => {
    const s = { calm: { startMs: 2000, endMs: 7000 }, requestedPerSec: 1000, achievedPerSec: 998, dropped: 0, p99Ms: 40, saturated: false, reasons: [] };
    expect(sustained(s)).toBe(true);
    expect(sustained({ ...s, dropped: 1 })).toBe(false);
    expect(sustained({ ...s, p99Ms: 100 })).toBe(false);
    expect(sustained({ ...s, achievedPerSec: 900 })).toBe(false);
    expect(sustained(undefined)).toBe(false);
  });
});
