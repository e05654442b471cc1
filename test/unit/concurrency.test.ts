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
