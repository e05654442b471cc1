import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classify, countOutcomes, parseK6Json, parseK6Stream } from '../../load/outcomes.ts';

// A real k6 v2.2.0 run of load/writes.js (RATE=12, 4 s, TIMEOUT=1s, 2 VUs) against
// test/fixtures/k6/fake-app.mjs, which answers ok / 503 committed=false / 503 committed=unknown /
// resets / answers too late, then stops listening (connection refused) after 3 s.
const FIXTURE = new URL('../fixtures/k6/writes-mixed-outcomes.json', import.meta.url).pathname;

describe('parseK6Json on a real k6 output', () => {
  it('reads one outcome per request with start, end and classification', async () => {
    const r = await parseK6Json(FIXTURE);
    expect(r.skipped).toBe(0);
    expect(r.ops).toHaveLength(46);
    expect(countOutcomes(r.ops)).toEqual({
      write: { ok: 16, fail: 18, indeterminate: 5 },
      read: { ok: 3, fail: 3, indeterminate: 1 },
    });
    expect(r.droppedIterations.count).toBe(3);
    expect(r.droppedIterations.timesMs).toHaveLength(3);
    for (const o of r.ops) {
      expect(o.id).toMatch(/^fx-\d+-\d+$/);
      expect(o.endMs).toBeGreaterThanOrEqual(o.startMs);
      expect(o.endMs - o.startMs).toBeLessThan(1500); // TIMEOUT=1s
    }
    expect(new Set(r.ops.map((o) => o.id)).size).toBe(46);
    // timeouts last the whole timeout and are indeterminate
    const timeouts = r.ops.filter((o) => o.error?.includes('timeout'));
    expect(timeouts).toHaveLength(2);
    for (const o of timeouts) {
      expect(o.status).toBe('indeterminate');
      expect(o.endMs - o.startMs).toBeGreaterThanOrEqual(990);
    }
    // connection refused never reached the app: a definite failure
    expect(r.ops.filter((o) => o.error?.includes('refused')).every((o) => o.status === 'fail')).toBe(true);
    const ok = r.ops.find((o) => o.status === 'ok' && o.kind === 'write')!;
    expect(ok.httpStatus).toBe(201);
    expect(ok.error).toBeUndefined();
    expect(['payment', 'ledger', 'notification', 'status']).toContain(ok.op);
  });

  it('reads gzipped output the same way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outcomes-'));
    try {
      const gz = join(dir, 'points.json.gz');
      writeFileSync(gz, gzipSync(readFileSync(FIXTURE)));
      const r = await parseK6Json(gz);
      expect(r.ops).toHaveLength(46);
      expect(r.droppedIterations.count).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseK6Stream', () => {
  it('skips unrelated and cut-short lines and counts points without an id', async () => {
    const lines = [
      '{"type":"Metric","data":{"name":"op_duration","type":"trend"},"metric":"op_duration"}',
      '{"metric":"http_reqs","type":"Point","data":{"time":"2026-01-01T00:00:00Z","value":1,"tags":{"status":"200"}}}',
      '{"metric":"op_duration","type":"Point","data":{"time":"2026-01-01T00:00:01.5Z","value":500,"tags":{"kind":"write","status":"201","committed":"","error_code":""},"metadata":{"id":"a","t0":"1767225601000"}}}',
      '{"metric":"op_duration","type":"Point","data":{"time":"2026-01-01T00:00:01.5Z","value":1,"tags":{"kind":"write","status":"201"}}}',
      '{"metric":"op_duration","type":"Point","data":{"time":"2026-01-01T00:00:0',
    ];
    const r = await parseK6Stream(Readable.from(lines.join('\n')));
    expect(r.ops).toEqual([{ id: 'a', kind: 'write', startMs: 1767225601000, endMs: 1767225601500, status: 'ok', httpStatus: 201 }]);
    expect(r.skipped).toBe(2);
    expect(r.firstSkipReason).toMatch(/metadata\.id/);
  });
});

describe('classify', () => {
  it('maps answers and errors to ok / fail / indeterminate', () => {
    expect(classify(201, undefined, undefined)).toBe('ok');
    expect(classify(503, 'false', 1503)).toBe('fail');
    expect(classify(503, 'unknown', 1503)).toBe('indeterminate');
    expect(classify(404, undefined, 1404)).toBe('fail');
    expect(classify(502, undefined, 1502)).toBe('indeterminate');
    expect(classify(0, undefined, 1050)).toBe('indeterminate'); // timeout
    expect(classify(0, undefined, 1220)).toBe('indeterminate'); // reset by peer
    expect(classify(0, undefined, 1000)).toBe('indeterminate'); // EOF
    expect(classify(0, undefined, 1212)).toBe('fail'); // refused: never sent
    expect(classify(0, undefined, 1101)).toBe('fail'); // no such host
    expect(classify(0, undefined, undefined)).toBe('indeterminate');
  });
});
