import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { parseK6Stream } from '../../load/outcomes.ts';

const point = (metric: string, time: string, value: number, tags: Record<string, string>, metadata: Record<string, string> = {}) =>
  JSON.stringify({ metric, type: 'Point', data: { time, value, tags, metadata } });

describe('the cutover_op / cutover_ack contract', () => {
  it('acknowledged ops are ok with their key; a 2xx without ack is indeterminate; a refused dial fails; metadata and tags both work', async () => {
    const lines = [
      point('http_req_duration', '2026-01-01T00:00:01.000Z', 200, { status: '201' }, { cutover_op: 'a' }),
      point('cutover_ack', '2026-01-01T00:00:01.001Z', 1, {}, { cutover_op: 'a', key: '42' }),
      point('http_req_duration', '2026-01-01T00:00:02.000Z', 100, { status: '200', cutover_op: 'b' }),
      point('http_req_duration', '2026-01-01T00:00:03.000Z', 1, { status: '0', error_code: '1212' }, { cutover_op: 'c' }),
      point('http_req_duration', '2026-01-01T00:00:04.000Z', 5000, { status: '0', error_code: '1050' }, { cutover_op: 'd' }),
      point('http_req_duration', '2026-01-01T00:00:05.000Z', 5, { status: '200' }), // untagged: a read or a health call
      JSON.stringify({ metric: 'dropped_iterations', type: 'Point', data: { time: '2026-01-01T00:00:06.000Z', value: 1, tags: {} } }),
    ];
    const out = await parseK6Stream(Readable.from(lines.join('\n') + '\n'));
    expect(out.format).toBe('contract');
    const by = Object.fromEntries(out.ops.map((o) => [o.id, o]));
    expect(Object.keys(by).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(by.a).toMatchObject({ status: 'ok', key: '42', startMs: Date.parse('2026-01-01T00:00:00.800Z'), endMs: Date.parse('2026-01-01T00:00:01.000Z') });
    expect(by.b).toMatchObject({ status: 'indeterminate', error: 'HTTP 200 without a cutover_ack' });
    expect(by.c!.status).toBe('fail');
    expect(by.d!.status).toBe('indeterminate');
    expect(out.droppedIterations.count).toBe(1);
  });

  it("the sample workload's op_duration points win over its contract points (no double counting)", async () => {
    const lines = [
      point('op_duration', '2026-01-01T00:00:01.000Z', 10, { kind: 'write', status: '201' }, { id: 'x', t0: String(Date.parse('2026-01-01T00:00:00.990Z')) }),
      point('http_req_duration', '2026-01-01T00:00:01.000Z', 10, { status: '201' }, { cutover_op: 'x' }),
      point('cutover_ack', '2026-01-01T00:00:01.000Z', 1, {}, { cutover_op: 'x', key: 'x' }),
    ];
    const out = await parseK6Stream(Readable.from(lines.join('\n') + '\n'));
    expect(out.format).toBe('op_duration');
    expect(out.ops).toHaveLength(1);
  });
});
