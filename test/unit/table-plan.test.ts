/** replicate plan's classes and order (issue 19 item 4), without a server. */
import { describe, expect, it } from 'vitest';
import { classifyTable, formatTablePlan, planTables, type TableStats } from '../../migration/table-plan.ts';

const MiB = 1024 * 1024;
const t = (name: string, mib: number, ins: number, upd: number, del: number, extra: Partial<TableStats> = {}): TableStats => ({
  schema: 'public',
  name,
  bytes: mib * MiB,
  relpages: (mib * MiB) / 8192,
  estimatedRows: ins,
  inserts: ins,
  updates: upd,
  deletes: del,
  hasPk: true,
  replicaIdentity: 'd',
  ...extra,
});

describe('replicate plan', () => {
  it('classes by size first, then by updates+deletes against inserts', () => {
    expect(classifyTable(t('a', 1, 10, 10, 10)).class).toBe('small');
    expect(classifyTable(t('b', 500, 1_000_000, 5_000, 5_000)).class).toBe('append-only'); // exactly 1%
    expect(classifyTable(t('c', 500, 1_000_000, 10_001, 0)).class).toBe('large-and-updated');
    expect(classifyTable(t('d', 500, 0, 0, 0))).toMatchObject({ class: 'large-and-updated', reason: expect.stringContaining('not proven append-only') });
    expect(classifyTable(t('e', 500, 0, 10, 0)).class).toBe('large-and-updated');
    // thresholds are the caller's
    expect(classifyTable(t('f', 500, 100, 50, 0), { smallBytes: 1024 * MiB, appendOnlyRatio: 0.01 }).class).toBe('small');
    expect(classifyTable(t('g', 500, 100, 50, 0), { smallBytes: MiB, appendOnlyRatio: 0.5 }).class).toBe('append-only');
  });

  it('orders small, append-only, large-and-updated, each by ascending size, and says why', () => {
    const p = planTables([t('orders', 900, 1e6, 4e5, 1e3), t('events', 2000, 5e7, 0, 0), t('countries', 0.1, 200, 0, 0), t('users', 40, 1e4, 9e4, 0), t('audit', 300, 1e6, 10, 0), t('carts', 120, 1e5, 1e5, 1e5)]);
    expect(p.order).toEqual(['public.countries', 'public.users', 'public.audit', 'public.events', 'public.carts', 'public.orders']);
    expect(p.counts).toEqual({ small: 2, 'append-only': 2, 'large-and-updated': 2 });
    expect(p.tables.map((x) => x.order)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(p.why['large-and-updated']).toMatch(/^last/);
    const text = formatTablePlan(p);
    expect(text).toContain('cutover replicate start --incremental --tables public.countries,public.users,public.audit,public.events,public.carts,public.orders');
    expect(text).toContain('--skip-copy public.audit,public.events');
  });

  it('flags tables that cannot replicate UPDATE/DELETE and a back-fill without a key; quotes odd names', () => {
    const p = planTables([t('Log Lines', 500, 1e6, 0, 0, { hasPk: false, replicaIdentity: 'd' }), t('k', 500, 1e6, 0, 0, { hasPk: false, replicaIdentity: 'f' })], undefined, '2026-01-01 00:00:00+00');
    const log = p.tables.find((x) => x.name === 'Log Lines')!;
    expect(log.table).toBe('public."Log Lines"');
    expect(log.notes.join(' ')).toMatch(/REPLICA IDENTITY FULL/);
    expect(log.notes.join(' ')).toMatch(/back-fill needs one/);
    expect(p.tables.find((x) => x.name === 'k')!.notes.join(' ')).not.toMatch(/REPLICA IDENTITY FULL/);
    expect(p.warnings[0]).toMatch(/since 2026-01-01/);
    expect(formatTablePlan(p)).toContain(`'public."Log Lines"'`);
  });

  it('an empty database plans nothing and bad thresholds are refused', () => {
    expect(planTables([]).order).toEqual([]);
    expect(() => planTables([], { smallBytes: -1, appendOnlyRatio: 0 })).toThrow(/thresholds must be ≥ 0/);
  });
});
