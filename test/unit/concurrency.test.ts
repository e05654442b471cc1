import { describe, it, expect } from 'vitest';
import { mapLimit } from '../../migration/concurrency.ts';

describe('mapLimit', () => {
  it('keeps at most `limit` in flight and returns results in input order', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimit([30, 10, 20, 5, 15], 2, async (ms, i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return i * 10;
    });
    expect(out).toEqual([0, 10, 20, 30, 40]);
    expect(peak).toBe(2);
  });

  it('stops starting work after a failure and rethrows it once in-flight work settled', async () => {
    const started: number[] = [];
    let settled = 0;
    await expect(
      mapLimit([1, 2, 3, 4, 5], 2, async (x) => {
        started.push(x);
        await new Promise((r) => setTimeout(r, 5));
        settled++;
        if (x === 1) throw new Error('boom');
        return x;
      }),
    ).rejects.toThrow('boom');
    expect(started).toEqual([1, 2]);
    expect(settled).toBe(2);
  });

  it('rejects a non-positive limit', async () => {
    await expect(mapLimit([1], 0, async (x) => x)).rejects.toThrow(RangeError);
  });
});

describe('poolEach', () => {
  it('one resource per worker, at most `limit`, closed after the last item, also after a failure', async () => {
    const { poolEach } = await import('../../migration/concurrency.ts');
    const opened: number[] = [];
    const closed: number[] = [];
    const seen: Array<[number, number]> = [];
    await poolEach([1, 2, 3, 4, 5], 2, { open: async (w) => (opened.push(w), w), close: (r) => void closed.push(r) }, async (r, x) => {
      await new Promise((res) => setTimeout(res, x));
      seen.push([r, x]);
    });
    expect(opened.sort()).toEqual([0, 1]);
    expect(closed.sort()).toEqual([0, 1]);
    expect(seen.map(([, x]) => x).sort()).toEqual([1, 2, 3, 4, 5]);
    const closed2: number[] = [];
    await expect(poolEach([1, 2, 3], 3, { open: async (w) => w, close: (r) => void closed2.push(r) }, async (_r, x) => {
      if (x === 2) throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(closed2.sort()).toEqual([0, 1, 2]);
    // never more workers than items
    const opened3: number[] = [];
    await poolEach([1], 4, { open: async (w) => (opened3.push(w), w) }, async () => {});
    expect(opened3).toEqual([0]);
  });
});
