import { describe, expect, it } from 'vitest';
import {
  checkAcknowledged,
  downtimeMs,
  errorWindow,
  latencyStats,
  percentile,
  stallWindow,
  switchVsCalm,
  timeline,
  attributeDrops,
  saturation,
  SATURATION_LIMITS,
  type OpOutcome,
  type OpStatus,
} from '../../load/measure.ts';

/** A fake clock: ops are issued every `every` ms from T0 and last `dur` ms unless told otherwise. */
const T0 = 1_700_000_000_000;
function log(spec: string, every = 100, dur = 10): OpOutcome[] {
  // one char per op: . ok, x fail, ? indeterminate
  const m: Record<string, OpStatus> = { '.': 'ok', x: 'fail', '?': 'indeterminate' };
  return [...spec].map((c, i) => ({ id: `r-${i}`, kind: 'write', startMs: T0 + i * every, endMs: T0 + i * every + dur, status: m[c] }));
}
const op = (id: string, startMs: number, endMs: number, status: OpStatus, kind: 'write' | 'read' = 'write'): OpOutcome => ({ id, kind, startMs: T0 + startMs, endMs: T0 + endMs, status });

describe('errorWindow', () => {
  it('is zero with no failures', () => {
    const w = errorWindow(log('..........'));
    expect(w).toMatchObject({ ms: 0, failures: 0, openStart: false, openEnd: false });
    expect(errorWindow([]).ms).toBe(0);
  });

  it('spans from the last success before the first failure to the first success after the last', () => {
    // ok at 0..2, failures at 3..5, ok from 6: window = end of op 2 → end of op 6
    const w = errorWindow(log('...xxx....'));
    expect(w.startMs).toBe(T0 + 210);
    expect(w.endMs).toBe(T0 + 610);
    expect(w.ms).toBe(400);
    expect(w.failures).toBe(3);
    expect(w.firstFailureId).toBe('r-3');
    expect(w.lastFailureId).toBe('r-5');
  });

  it('starts at the first failure when the log begins with failures', () => {
    const w = errorWindow(log('xx....'));
    expect(w.openStart).toBe(true);
    expect(w.startMs).toBe(T0 + 10);
    expect(w.endMs).toBe(T0 + 210);
    expect(w.ms).toBe(200);
  });

  it('ends at the last failure when the run ends down', () => {
    const w = errorWindow(log('...xx'));
    expect(w.openEnd).toBe(true);
    expect(w.ms).toBe(410 - 210);
  });

  it('counts indeterminate ops as failures and is not shortened by interleaved successes', () => {
    const w = errorWindow(log('..x.?.x...'));
    expect(w.failures).toBe(3);
    expect(w.indeterminate).toBe(1);
    expect(w.startMs).toBe(T0 + 110);
    expect(w.endMs).toBe(T0 + 710);
  });

  it('uses the time the client saw the outcome: a timeout observed late extends the window', () => {
    const ops = [op('a', 0, 5, 'ok'), op('t', 10, 5010, 'indeterminate'), op('b', 100, 105, 'ok'), op('c', 5100, 5105, 'ok')];
    const w = errorWindow(ops);
    expect(w.startMs).toBe(T0 + 105); // b acknowledged before the timeout was seen
    expect(w.endMs).toBe(T0 + 5105);
    expect(w.ms).toBe(5000);
  });

  it('ignores failures outside the cutover interval ± margins', () => {
    // stray failure at 0.3 s, cutover at 5 s..5.5 s, failures at 5.2 s and 5.3 s, stray again at 30 s
    const ops: OpOutcome[] = [];
    for (let t = 0; t <= 40_000; t += 100) ops.push(op(`r${t}`, t, t + 5, t === 300 || t === 5200 || t === 5300 || t === 30_000 ? 'fail' : 'ok'));
    const w = errorWindow(ops, { cutoverStart: T0 + 5000, cutoverEnd: T0 + 5500 });
    expect(w.failures).toBe(2);
    expect(w.outsideFailures).toBe(2);
    expect(w.startMs).toBe(T0 + 5105);
    expect(w.endMs).toBe(T0 + 5405);
    // without the interval, every failure belongs
    const all = errorWindow(ops);
    expect(all.startMs).toBe(T0 + 205);
    expect(all.endMs).toBe(T0 + 30_105);
    // a wider margin still does not adopt a failure that clients saw after 24 s of clean successes
    expect(errorWindow(ops, { cutoverStart: T0 + 5000, cutoverEnd: T0 + 5500, marginAfterMs: 30_000 }).failures).toBe(2);
  });
});

/** One write every 100 ms over `ms`; failing where `fails(t)` says so. */
function steady(ms: number, fails: (t: number) => boolean = () => false): OpOutcome[] {
  const out: OpOutcome[] = [];
  for (let t = 0; t < ms; t += 100) out.push(op(`w${t}`, t, t + 5, fails(t) ? 'fail' : 'ok'));
  return out;
}
// cutover (fence → resume) from 10 s to 11 s; the widening runs from 9 s to 21 s
const CUT = { cutoverStart: T0 + 10_000, cutoverEnd: T0 + 11_000 };

describe('windows from real failures only', () => {
  it('failures ending before the widening bound end the window there, not at the bound', () => {
    // clients fail from the fence to 2 s after resume, then succeed: the window is fence → 13 s
    const w = errorWindow(steady(30_000, (t) => t >= 10_000 && t < 13_000), CUT);
    expect(w.startMs).toBe(T0 + 9_905);
    expect(w.endMs).toBe(T0 + 13_005);
    expect(w.ms).toBe(3_100);
    expect(w.bursts).toBe(1);
  });

  it('a burst that starts right after resume (no quiet second since) belongs; one after a quiet stretch does not', () => {
    // nothing fails during the cutover; reconnect errors 11.2 s → 12 s; a stray timeout at 18 s
    const ops = steady(30_000, (t) => (t >= 11_200 && t < 12_000) || t === 18_000);
    const w = errorWindow(ops, CUT);
    expect(w.startMs).toBe(T0 + 11_105);
    expect(w.endMs).toBe(T0 + 12_005);
    expect(w.outsideFailures).toBe(1);
  });

  it('a belonging burst ends where its failures end, even past the widening bound', () => {
    // the app never recovers until 25 s: the window is not cut at 21 s
    const w = errorWindow(steady(30_000, (t) => t >= 10_000 && t < 25_000), CUT);
    expect(w.endMs).toBe(T0 + 25_005);
  });

  it('steady background failures outside the cutover do not stretch it', () => {
    // one failure every 3 s through the whole load, a real outage 10 s → 11.5 s
    const w = errorWindow(steady(30_000, (t) => t % 3_000 === 1_500 || (t >= 10_000 && t < 11_500)), CUT);
    expect(w.startMs).toBe(T0 + 9_905);
    expect(w.endMs).toBe(T0 + 11_505);
    expect(w.outsideFailures).toBeGreaterThan(5);
  });

  it('dropped iterations are not failures: steady background drops neither widen the window nor count for the cutover', () => {
    const ops = steady(30_000, (t) => t >= 10_000 && t < 11_000);
    const drops = Array.from({ length: 60 }, (_, i) => T0 + i * 500); // 2 per second, all load long
    const w = errorWindow(ops, CUT);
    expect(w.endMs).toBe(T0 + 11_005);
    const d = attributeDrops(drops, { ...CUT, range: { startMs: T0, endMs: T0 + 30_000 } });
    expect(d).toEqual({ total: 60, cutover: 0, background: 60 });
  });

  it('a drop burst in the switch is attributed to the cutover, above the background rate', () => {
    const background = Array.from({ length: 30 }, (_, i) => T0 + i * 1_000); // 1 per second
    const burst = Array.from({ length: 40 }, (_, i) => T0 + 10_200 + i * 10); // 40 in 0.4 s
    const d = attributeDrops([...background, ...burst].sort((a, b) => a - b), { ...CUT, range: { startMs: T0, endMs: T0 + 30_000 } });
    // about 12 background drops fall in the 12 s widening (predicted from the rate outside it); the burst is the cutover's
    expect(d.cutover).toBeGreaterThanOrEqual(38);
    expect(d.cutover).toBeLessThanOrEqual(42);
    expect(d.cutover + d.background).toBe(70);
    // a handful in the cutover is not a cluster
    expect(attributeDrops([T0 + 10_100, T0 + 10_200], { ...CUT, range: { startMs: T0, endMs: T0 + 30_000 } }).cutover).toBe(0);
  });
});

describe('saturation', () => {
  const calm = { startMs: T0 + 2_000, endMs: T0 + 9_000 };
  it('a lab that keeps up is not saturated', () => {
    const s = saturation(steady(30_000), [], calm, 10);
    expect(s).toMatchObject({ achievedPerSec: 10, dropped: 0, saturated: false, reasons: [] });
  });

  it('falls short of the rate, drops iterations or answers slowly: saturated, saying which', () => {
    const slow = steady(30_000).map((o, i) => (i % 2 ? o : { ...o, endMs: o.startMs + 800 }));
    const s = saturation(slow, Array.from({ length: 12 }, (_, i) => T0 + 3_000 + i), calm, 12);
    expect(s.saturated).toBe(true);
    expect(s.reasons.join('; ')).toMatch(/achieved 10(\.\d)? of 12 req\/s/);
    expect(s.reasons.join('; ')).toMatch(/12 iterations dropped/);
    expect(s.reasons.join('; ')).toMatch(/latency p99 800 ms/);
    expect(SATURATION_LIMITS.maxP99Ms).toBe(500);
    // a few drops while k6 grows its VU pool are not saturation
    expect(saturation(steady(30_000), [T0 + 2_100, T0 + 2_200, T0 + 2_300], calm, 10).saturated).toBe(false);
  });
});

describe('stallWindow', () => {
  it('finds the longest gap between acknowledgements without any error', () => {
    const ops = [op('a', 0, 10, 'ok'), op('b', 20, 30, 'ok'), op('held1', 40, 1240, 'ok'), op('held2', 50, 1241, 'ok'), op('c', 1300, 1310, 'ok')];
    const s = stallWindow(ops);
    expect(s).toEqual({ ms: 1210, startMs: T0 + 30, endMs: T0 + 1240, beforeId: 'b', afterId: 'held1' });
    expect(errorWindow(ops).ms).toBe(0);
    expect(downtimeMs(errorWindow(ops).ms, s.ms)).toBe(1210);
  });

  it('orders by end time, not start time, and skips failures', () => {
    const ops = [op('late', 0, 500, 'ok'), op('x', 50, 60, 'fail'), op('early', 100, 110, 'ok')];
    expect(stallWindow(ops)).toMatchObject({ ms: 390, beforeId: 'early', afterId: 'late' });
  });

  it('is zero with fewer than two acknowledgements', () => {
    expect(stallWindow([]).ms).toBe(0);
    expect(stallWindow([op('a', 0, 1, 'ok'), op('b', 0, 9, 'fail')]).ms).toBe(0);
  });

  it('can be restricted to an interval', () => {
    const ops = log('.....', 1000);
    expect(stallWindow(ops, { startMs: T0, endMs: T0 + 2100 }).ms).toBe(1000);
  });
});

describe('latency', () => {
  it('uses nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBe(0);
  });

  it('takes ops overlapping the interval and leaves indeterminate ones out by default', () => {
    const ops = [op('before', 0, 10, 'ok'), op('a', 90, 110, 'ok'), op('b', 150, 450, 'ok'), op('c', 190, 230, 'fail'), op('t', 100, 5100, 'indeterminate'), op('after', 600, 610, 'ok')];
    const s = latencyStats(ops, { startMs: T0 + 100, endMs: T0 + 200 });
    expect(s).toEqual({ count: 3, p50: 40, p99: 300, max: 300 });
    expect(latencyStats(ops, { startMs: T0 + 100, endMs: T0 + 200 }, { statuses: ['ok', 'fail', 'indeterminate'] }).max).toBe(5000);
    expect(latencyStats([], { startMs: 0, endMs: 1 })).toEqual({ count: 0, p50: 0, p99: 0, max: 0 });
  });

  it('compares the switch with a calm interval before it', () => {
    const ops = [...log('..........', 100, 10), op('slow', 1500, 2300, 'ok')];
    const r = switchVsCalm(ops, { startMs: T0 + 1500, endMs: T0 + 2000 }, { gapMs: 100 });
    expect(r.calmInterval).toEqual({ startMs: T0 + 900, endMs: T0 + 1400 });
    expect(r.during.max).toBe(800);
    expect(r.calm.max).toBe(10);
  });
});

describe('checkAcknowledged', () => {
  const ops: OpOutcome[] = [
    op('ok-1', 0, 1, 'ok'),
    op('ok-2', 0, 1, 'ok'),
    op('lost-1', 0, 1, 'ok'),
    op('ind-landed', 0, 1, 'indeterminate'),
    op('ind-missing', 0, 1, 'indeterminate'),
    op('fail-1', 0, 1, 'fail'),
    op('fail-but-there', 0, 1, 'fail'),
    op('retried', 0, 1, 'indeterminate'),
    op('retried', 2, 3, 'ok'),
    op('read-1', 0, 1, 'ok', 'read'),
  ];
  const present = ['ok-1', 'ok-2', 'ind-landed', 'fail-but-there', 'retried', 'ghost'];

  it('classifies lost, unexpected, recovered and wrongly failed writes', () => {
    const r = checkAcknowledged({ ops, presentIds: present });
    expect(r.attempted).toBe(8);
    expect(r.acknowledged).toBe(4);
    expect(r.lost).toEqual(['lost-1']);
    expect(r.unexpected).toEqual(['ghost']);
    expect(r.recovered).toEqual(['ind-landed']);
    expect(r.indeterminateMissing).toEqual(['ind-missing']);
    expect(r.failedButPresent).toEqual(['fail-but-there']);
    expect(r.duplicates).toEqual([]);
    expect(r.splitBrain).toEqual([]);
  });

  it('reports duplicates and split-brain writes', () => {
    const r = checkAcknowledged({ ops, presentIds: new Set(present), duplicateCounts: new Map([['ok-1', 2], ['ok-2', 1]]), oldPrimaryIdsAfterFence: ['late-1', 'late-1', 'late-0'] });
    expect(r.duplicates).toEqual(['ok-1']);
    expect(r.splitBrain).toEqual(['late-0', 'late-1']);
    expect(checkAcknowledged({ ops, presentIds: present, duplicateCounts: { 'ok-2': 3 } }).duplicates).toEqual(['ok-2']);
  });

  it('finds nothing wrong when every acknowledged write is there', () => {
    const r = checkAcknowledged({ ops: log('....'), presentIds: ['r-0', 'r-1', 'r-2', 'r-3'] });
    expect(r).toMatchObject({ attempted: 4, acknowledged: 4, lost: [], unexpected: [], recovered: [] });
  });
});

describe('timeline', () => {
  it('buckets by end time with per-second rates and p99', () => {
    const ops = [op('a', 0, 10, 'ok'), op('b', 0, 30, 'ok'), op('c', 0, 600, 'fail'), op('d', 500, 1200, 'indeterminate'), op('e', 1100, 1900, 'ok')];
    const t = timeline(ops, 500, { startMs: T0, endMs: T0 + 1999 });
    expect(t.map((p) => p.tMs - T0)).toEqual([0, 500, 1000, 1500]);
    expect(t[0]).toEqual({ tMs: T0, okPerSec: 4, failPerSec: 0, indeterminatePerSec: 0, latencyP99Ms: 30 });
    expect(t[1].failPerSec).toBe(2);
    expect(t[2]).toMatchObject({ failPerSec: 2, indeterminatePerSec: 2, okPerSec: 0, latencyP99Ms: 0 });
    expect(t[3]).toMatchObject({ okPerSec: 2, latencyP99Ms: 800 });
    expect(timeline([], 1000)).toEqual([]);
    expect(() => timeline(ops, 0)).toThrow(RangeError);
  });
});
