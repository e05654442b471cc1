/** verify --quick's estimate arithmetic (issue 19 item 5), without a server. */
import { describe, expect, it } from 'vitest';
import { estimateRows, judgeEstimates } from '../../migration/verify-quick.ts';

describe('verify --quick estimates', () => {
  it('scales the last ANALYZE density to the current size, like the planner', () => {
    expect(estimateRows({ pages: 200, relpages: 100, reltuples: 10_000 })).toBe(20_000);
    expect(estimateRows({ pages: 0, relpages: 0, reltuples: 0 })).toBe(0);
    expect(estimateRows({ pages: 50, relpages: 0, reltuples: 0 })).toBeNull(); // never looked at since it grew
    expect(estimateRows({ pages: 50, relpages: 50, reltuples: -1 })).toBeNull(); // 14+: never analyzed
  });
  it('compares within the tolerance and says by how much they differ', () => {
    expect(judgeEstimates(1000, 950, 0.1)).toEqual({ ok: true, diffPct: 5 });
    expect(judgeEstimates(1000, 800, 0.1)).toEqual({ ok: false, diffPct: 20 });
    expect(judgeEstimates(0, 0, 0.1)).toEqual({ ok: true, diffPct: 0 });
    expect(judgeEstimates(null, 10, 0.1)).toEqual({ ok: null, diffPct: null });
  });
});
