import { describe, expect, it } from 'vitest';
import { classifyMismatch, classifyValues, shadowBlockSchema, shadowBudget, ShadowTally } from '../../migration/drift/shadow-compare.ts';
import { compareResults } from '../../migration/drift/shadow.ts';

describe('classifyValues', () => {
  it('names each cause', () => {
    expect(classifyValues('2024-03-10 06:30:00+00', '2024-03-10 01:30:00-05')).toBe('timezone');
    expect(classifyValues('2024-03-10', '2024-03-09')).toBe('timezone');
    expect(classifyValues(null, 'n/a')).toBe('null-default');
    expect(classifyValues('0.30000000000000004', '0.3')).toBe('float-text');
    expect(classifyValues('1e-07', '1.0000000000000001e-07')).toBe('float-text');
    expect(classifyValues('3', '4')).toBe('other');
    expect(classifyValues('café', 'cafÃ©')).toBe('encoding');
    expect(classifyValues('RÉSUMÉ', 'RéSUMé')).toBe('collation');
    expect(classifyValues('Straße', 'strasse')).toBe('other');
    expect(classifyValues('same', 'same')).toBeNull();
  });
});

describe('classifyMismatch (ordering-aware)', () => {
  it('same rows in another order: collation for text, other for numbers (ties)', () => {
    const a = [['a'], ['B']];
    const b = [['B'], ['a']];
    expect(classifyMismatch(compareResults(a, b, true), a, b)).toMatchObject({ cause: 'collation', detail: /another order from row 1/ });
    expect(classifyMismatch(compareResults(a, b, false), a, b)).toBeNull();
    const n = [['1'], ['2']];
    const m = [['2'], ['1']];
    expect(classifyMismatch(compareResults(n, m, true), n, m)?.cause).toBe('other');
  });
  it('pairs differing rows by their first column and lists every cause', () => {
    const a = [['1', '2024-01-01 00:00:00+00', null], ['2', 'x', '0.1']];
    const b = [['2', 'x', '0.1'], ['1', '2023-12-31 19:00:00-05', 'dflt']];
    const m = classifyMismatch(compareResults(a, b, false), a, b)!;
    expect(m.causes).toEqual(['timezone', 'null-default']);
    expect(m.cause).toBe('timezone');
    expect(m.sample[0]).toEqual({ source: a[0], target: b[1] });
  });
  it('rows missing on one side are other', () => {
    const a = [['1', 'x'], ['2', 'y']];
    const b = [['1', 'x']];
    expect(classifyMismatch(compareResults(a, b, false), a, b)?.causes).toEqual(['other']);
  });
});

describe('tally and budget', () => {
  it('counts per cause, latency per query, events on the timeline', () => {
    const t = new ShadowTally({ startedAt: 1000 });
    const base = { query: 'select 1', ordered: false, rows: { source: 1, target: 1 } };
    t.add({ ...base, latencyMs: { source: 1, target: 2 }, mismatch: null }, 1100);
    t.add({ ...base, latencyMs: { source: 3, target: 4 }, mismatch: { cause: 'timezone', causes: ['timezone'], detail: 'd', sample: [] } }, 1500);
    t.add({ ...base, latencyMs: { source: 5, target: 6 }, mismatch: null, settled: true } as any, 1600);
    const s = t.summary();
    expect(s).toMatchObject({ compared: 3, mismatches: 1, settled: 1, byCause: { timezone: 1, collation: 0 } });
    expect(s.perQuery).toEqual([{ query: 'select 1', runs: 3, mismatches: 1, source: { p50: 3, p95: 5 }, target: { p50: 4, p95: 6 } }]);
    expect(s.events).toEqual([{ atMs: 500, query: 'select 1', cause: 'timezone', causes: ['timezone'], detail: 'd' }]);
    expect(shadowBudget(s, 1).pass).toBe(true);
    expect(shadowBudget(s, 0)).toMatchObject({ pass: false, reason: '1 shadow-read mismatch(es) (timezone 1) over the budget of 0' });
  });
  it('the shadow: block has defaults and refuses nonsense', () => {
    expect(shadowBlockSchema.parse({ queries: 'q.sql' })).toEqual({ queries: 'q.sql', mirror: 0, maxQueue: 100, statementTimeoutMs: 10000, settleMs: 500 });
    expect(shadowBlockSchema.safeParse({ mirror: 2 }).success).toBe(false);
    expect(shadowBlockSchema.safeParse({ mirorr: 0.1 }).success).toBe(false);
  });
});
