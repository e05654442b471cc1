/** The grace fence's decisions (issue 19 item 3), without a server: which session is ended when. */
import { describe, expect, it } from 'vitest';
import { checkGrace, graceStep, startGrace, type ActivityRow } from '../../migration/grace.ts';

const row = (pid: number, state: string | null, xactStart: number | null): ActivityRow => ({ pid, role: 'app', state, xactStart, application: 'svc' });

describe('grace fence decisions', () => {
  it('idle sessions are ended at once, in-flight transactions wait, then finish or are cut', () => {
    const fencedAt = 10_000;
    const s = startGrace([row(1, 'idle', null), row(2, 'active', 9_000), row(3, 'idle in transaction', 9_500), row(4, 'active', 9_900)], fencedAt, 3000);
    expect([...s.inFlight.keys()]).toEqual([2, 3, 4]);

    let d = graceStep(s, [row(1, 'idle', null), row(2, 'active', 9_000), row(3, 'idle in transaction', 9_500), row(4, 'active', 9_900)], 10_050);
    expect(d.terminate).toEqual([1]);
    expect(d.done).toBe(false);
    expect(s.idleTerminated).toBe(1);

    // 2 committed (idle now), 3 committed and began a new transaction after the fence, 4 is still in its own; 1 still visible while it exits
    d = graceStep(s, [row(1, 'idle', null), row(2, 'idle', null), row(3, 'active', 11_000), row(4, 'active', 9_900)], 11_500);
    expect(d.finished.sort()).toEqual([2, 3]);
    expect(d.terminate.sort()).toEqual([1, 2, 3]);
    expect(s.idleTerminated).toBe(1); // pid 1 is not counted twice
    expect(d.done).toBe(false);

    // before the grace ends nothing in flight is cut
    d = graceStep(s, [row(4, 'active', 9_900)], 12_999);
    expect(d.terminate).toEqual([]);
    // the grace is over: 4 is cut
    d = graceStep(s, [row(4, 'active', 9_900)], 13_000);
    expect(d.cut).toEqual([4]);
    expect(d.terminate).toEqual([4]);
    expect(d.done).toBe(true);
    expect(s.inFlight.get(4)!.afterMs).toBe(3000);
    expect(s.inFlight.get(2)!.outcome).toBe('finished');
  });

  it('a session that left by itself finished; one whose state we cannot see is assumed busy', () => {
    const s = startGrace([row(5, 'active', 900), row(6, null, null)], 1000, 500);
    expect(s.inFlight.size).toBe(2);
    let d = graceStep(s, [row(6, null, null)], 1100);
    expect(d.finished).toEqual([5]);
    expect(d.terminate).toEqual([]);
    d = graceStep(s, [row(6, null, null)], 1500);
    expect(d.cut).toEqual([6]);
    expect(d.done).toBe(true);
  });

  it('a login that raced NOLOGIN (new session, new transaction) is ended at once', () => {
    const s = startGrace([], 1000, 5000);
    const d = graceStep(s, [row(7, 'active', 1200)], 1300);
    expect(d.terminate).toEqual([7]);
    expect(d.done).toBe(true);
  });

  it('bad grace values are refused with the limit and a fix', () => {
    expect(() => checkGrace(-1)).toThrow(/whole number of ms from 0/);
    expect(() => checkGrace(1.5)).toThrow(/whole number/);
    expect(() => checkGrace(9500, 10_000)).toThrow(/does not fit in the fence timeout 10000 ms/);
    expect(() => checkGrace(500, 10_000)).not.toThrow();
  });
});
