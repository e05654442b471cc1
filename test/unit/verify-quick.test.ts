/** verify --quick's estimate arithmetic (issue 19 item 5), without a server. */
import { describe, expect, it } from 'vitest';
import { estimateRows, judgeEstimates } from '../../migration/verify-quick.ts';

describe('verify --quick estimates', () => {
  it('takes the live-tuple counter first: a table bloated by UPDATEs since ANALYZE is not over-estimated', () => {
    expect(estimateRows({ pages: 133, relpages: 100, reltuples: 40_000, liveTuples: 39_200 })).toBe(39_200);
    expect(estimateRows({ pages: 10, relpages: 10, reltuples: 500, liveTuples: 0 })).toBe(0); // statistics say empty
  });
  it('without statistics, scales the last ANALYZE density to the current size, like the planner', () => {
    expect(estimateRows({ pages: 200, relpages: 100, reltuples: 10_000, liveTuples: null })).toBe(20_000);
    expect(estimateRows({ pages: 0, relpages: 0, reltuples: 0, liveTuples: null })).toBe(0);
    expect(estimateRows({ pages: 50, relpages: 0, reltuples: 0, liveTuples: null })).toBeNull(); // never looked at since it grew
    expect(estimateRows({ pages: 50, relpages: 50, reltuples: -1, liveTuples: null })).toBeNull(); // 14+: never analyzed
  });
  it('compares within the tolerance and says by how much they differ', () => {
    expect(judgeEstimates(1000, 950, 0.1)).toEqual({ ok: true, diffPct: 5 });
    expect(judgeEstimates(1000, 800, 0.1)).toEqual({ ok: false, diffPct: 20 });
    expect(judgeEstimates(0, 0, 0.1)).toEqual({ ok: true, diffPct: 0 });
    expect(judgeEstimates(null, 10, 0.1)).toEqual({ ok: null, diffPct: null });
  });
});
