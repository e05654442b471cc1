/** The watch's pure parts: thresholds, transitions, lag in seconds from LSN history, sizes, redaction, CPU from /proc, timeline summary. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpuMeter, parseProcStat, treeTicks } from '../../migration/cpu.ts';
import { summariseTimeline, toTimelinePoint } from '../../migration/timeline.ts';
import { catchupBlockers, evaluate, lagSecondsFromHistory, lsnToNumber, makeAlert, parseBytes, redactWebhook, transitions, type WatchSample } from '../../migration/watch.ts';

function sample(over: Partial<WatchSample> = {}, sub: Partial<WatchSample['subscription']> = {}, slot: Partial<WatchSample['slot']> = {}): WatchSample {
  const side = { reachable: true, major: 16, connections: 3, idleInTransaction: 0, oldestXactSeconds: null, datfrozenxidAge: 100 };
  return {
    at: '2026-01-01T00:00:00.000Z',
    tMs: 0,
    replication: { subscription: 'cutover_main', slot: 'cutover_main' },
    source: { ...side, walLsn: '0/100' },
    target: side,
    slot: { exists: true, active: true, walRetainedBytes: 1000, lagBytes: 10, confirmedFlushLsn: '0/F0', walStatus: 'reserved', xminAge: null, catalogXminAge: 5, ...slot },
    lagBytes: slot.lagBytes ?? 10,
    lagSeconds: 0,
    lagSecondsFrom: 'caught-up',
    subscription: { exists: true, enabled: true, disableOnError: true, applyState: 'streaming', workerPid: 1, syncWorkers: 0, lastMessageAt: null, applyErrorCount: 0, syncErrorCount: 0, conflicts: null, ...sub },
    ...over,
  };
}

describe('watch thresholds', () => {
  it('a healthy sample crosses nothing', () => {
    expect(evaluate(sample(), { maxLagBytes: 100, maxLagSeconds: 5, maxWalRetainedBytes: 10_000, maxXminAge: 1000 })).toEqual([]);
  });

  it('names each threshold crossed, with value and limit', () => {
    const s = sample({ lagBytes: 5000, lagSeconds: 12, lagSecondsFrom: 'walsender' }, { enabled: false, applyState: 'disabled', applyErrorCount: 2 }, { walRetainedBytes: 1e9, catalogXminAge: 5000 });
    const c = evaluate(s, { maxLagBytes: 100, maxLagSeconds: 5, maxWalRetainedBytes: 1e6, maxXminAge: 1000 });
    expect(c.map((x) => x.id)).toEqual(['subscription-disabled', 'lag-bytes', 'lag-seconds', 'wal-retained', 'xmin-age']);
    expect(c[0].message).toContain('disable_on_error');
    expect(c[1]).toMatchObject({ value: 5000, limit: 100 });
  });

  it('apply erroring: worker down while enabled, or the error counter rising', () => {
    expect(evaluate(sample({}, { applyState: 'down', workerPid: null }), {}).map((x) => x.id)).toEqual(['apply-erroring']);
    const prev = sample({}, { applyErrorCount: 1 });
    expect(evaluate(sample({}, { applyErrorCount: 3 }), {}, prev)[0]).toMatchObject({ id: 'apply-erroring', value: 3 });
    expect(evaluate(sample({}, { applyErrorCount: 1 }), {}, prev)).toEqual([]);
    // a worker that is down because the source is unreachable is the source's problem, said once
    expect(evaluate(sample({ source: { ...sample().source, reachable: false, error: 'refused' } }, { applyState: 'down' }), {}).map((x) => x.id)).toEqual(['source-unreachable']);
  });

  it('missing objects and a lost slot', () => {
    expect(evaluate(sample({}, { exists: false, applyState: 'missing' }, { exists: false }), {}).map((x) => x.id)).toEqual(['slot-missing', 'subscription-missing']);
    expect(evaluate(sample({}, {}, { walStatus: 'lost' }), {}).map((x) => x.id)).toEqual(['slot-lost']);
  });

  it('transitions: crossed once, cleared once', () => {
    const a = [{ id: 'lag-bytes' as const, message: 'x' }];
    const b = [{ id: 'lag-bytes' as const, message: 'y' }, { id: 'subscription-disabled' as const, message: 'z' }];
    expect(transitions([], a).crossed.map((c) => c.id)).toEqual(['lag-bytes']);
    expect(transitions(a, b)).toMatchObject({ crossed: [{ id: 'subscription-disabled' }], cleared: [] });
    expect(transitions(b, []).cleared.map((c) => c.id)).toEqual(['lag-bytes', 'subscription-disabled']);
  });

  it('an alert carries host:port/db, never a URL or password', () => {
    const a = makeAlert('crossed', { id: 'lag-bytes', message: 'm', value: 5, limit: 1 }, sample(), { source: 'postgres://u:pw-123@db1:5432/app', target: 'postgres://u:pw-456@db2/app' });
    expect(a.source).toBe('db1:5432/app');
    expect(a.target).toBe('db2:5432/app');
    expect(JSON.stringify(a)).not.toMatch(/pw-|postgres:/);
  });
});

describe('lag in seconds from the LSN history', () => {
  const h = [
    { tMs: 0, lsn: 1000 },
    { tMs: 1000, lsn: 2000 },
    { tMs: 2000, lsn: 4000 },
  ];
  it('interpolates the instant the source was at the confirmed position', () => {
    expect(lagSecondsFromHistory(h, 3000, 2000)).toEqual({ seconds: 0.5, lowerBound: false });
    expect(lagSecondsFromHistory(h, 4000, 2000)).toEqual({ seconds: 0, lowerBound: false });
    expect(lagSecondsFromHistory(h, 500, 2000)).toEqual({ seconds: 2, lowerBound: true });
    expect(lagSecondsFromHistory([], 500, 2000)).toBeNull();
    expect(lagSecondsFromHistory([{ tMs: 2000, lsn: 4000 }], 500, 2000)).toBeNull(); // first sample: unknown, not "≥ 0 s"
  });
  it('parses LSNs', () => {
    expect(lsnToNumber('0/10')).toBe(16);
    expect(lsnToNumber('1/0')).toBe(2 ** 32);
  });
});

describe('sizes and webhook redaction', () => {
  it('parses sizes', () => {
    expect(parseBytes('16MB')).toBe(16 * 1024 ** 2);
    expect(parseBytes('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('2048')).toBe(2048);
    expect(parseBytes('lots')).toBeUndefined();
  });
  it('keeps tokens out of messages', () => {
    expect(redactWebhook('https://user:tok@hooks.example.com/T000/B000/XXXX?k=1')).toBe('https://hooks.example.com/…');
  });
});

describe('CPU from /proc', () => {
  const stat = (pid: number, comm: string, ppid: number, ut: number, st: number, cut = 0, cst = 0) =>
    `${pid} (${comm}) S ${ppid} 1 1 0 -1 4194560 100 0 0 0 ${ut} ${st} ${cut} ${cst} 20 0 1 0 100 1000 10`;
  it('parses a stat line whose command holds spaces and parentheses', () => {
    expect(parseProcStat(stat(42, 'postgres: walsender (x) 1', 7, 30, 12, 5, 1))).toEqual({ pid: 42, comm: 'postgres: walsender (x) 1', state: 'S', ppid: 7, own: 42, reaped: 6 });
  });
  it('sums a process tree, and a reaped child keeps its time in its parent', () => {
    const root = mkdtempSync(join(tmpdir(), 'proc-'));
    const put = (pid: number, line: string) => {
      mkdirSync(join(root, String(pid)), { recursive: true });
      writeFileSync(join(root, String(pid), 'stat'), line);
    };
    try {
      put(10, stat(10, 'postgres', 1, 100, 50));
      put(11, stat(11, 'postgres', 10, 20, 10));
      put(12, stat(12, 'postgres', 11, 5, 5));
      put(99, stat(99, 'other', 1, 1000, 1000));
      expect(treeTicks([10], root)).toBe(190);
      const m = new CpuMeter(() => [10], root);
      expect(m.read(0)).toBeNull();
      // child 12 exits and is reaped by 11 (its 10 ticks move to 11's cutime); 11 used 100 more ticks
      rmSync(join(root, '12'), { recursive: true });
      put(11, stat(11, 'postgres', 10, 120, 10, 10, 0));
      expect(m.read(1000)).toBe(1); // 100 ticks in 1 s = one core
      expect(new CpuMeter(() => [12345], root).read(0)).toBeNull();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('cluster timeline summary', () => {
  it('takes the worst figures and the rise of the error counter', () => {
    const pts = [
      toTimelinePoint(sample({ lagBytes: 10 }, { applyErrorCount: 2 }, { walRetainedBytes: 100, catalogXminAge: 3 }), 0, { old: 0.5, new: null }),
      toTimelinePoint(sample({ lagBytes: 5000, lagSeconds: 3 }, { applyErrorCount: 5, applyState: 'down' }, { walRetainedBytes: 900, catalogXminAge: 40 }), 1000, { old: 1.2, new: 0.1 }),
    ];
    expect(summariseTimeline(pts)).toEqual({ points: 2, maxWalRetainedBytes: 900, maxLagBytes: 5000, maxLagSeconds: 3, maxXminAge: 40, applyNotStreamingSeconds: 1, applyErrors: 3, maxCpu: { old: 1.2, new: 0.1 } });
  });
});

describe('catch-up blockers', () => {
  it('a disabled subscription blocks, a worker retrying does not', () => {
    expect(catchupBlockers(sample({}, { enabled: false, applyState: 'disabled' })).map((c) => c.id)).toEqual(['subscription-disabled']);
    expect(catchupBlockers(sample({}, { applyState: 'down', workerPid: null }))).toEqual([]);
  });
});
