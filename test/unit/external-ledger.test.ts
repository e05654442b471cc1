/**
 * The removal plan for what the lab created on external servers (pure): dependency order, one
 * statement per kind, never CASCADE, the app role's grants revoked before the role goes.
 */
import { describe, it, expect } from 'vitest';
import { removalPlan } from '../../lab/rehearse/external.ts';

describe('removalPlan', () => {
  const created = [
    'role cutover_app',
    'extension pgcrypto',
    'schema billing',
    'type public.order_status',
    'function public.order_total(c bigint)',
    'table public.orders',
    'table public."Order Items"',
    'view public.paid_orders',
    'sequence public.free_seq',
    'subscription cutover_main',
    'publication cutover_main',
    'slot cutover_main',
    'materialized view public.totals',
  ];

  it('orders the kinds so that what depends on something goes first', () => {
    expect(removalPlan(created).map((s) => s.kind)).toEqual(['subscription', 'publication', 'slot', 'view', 'materialized view', 'table', 'sequence', 'function', 'type', 'extension', 'schema', 'role']);
  });

  it('drops all objects of a kind in one statement, as named (quoted), and never with CASCADE', () => {
    const plan = removalPlan(created);
    expect(plan.find((s) => s.kind === 'table')!.statements).toEqual(['drop table public.orders, public."Order Items"']);
    expect(plan.find((s) => s.kind === 'function')!.statements).toEqual(['drop function public.order_total(c bigint)']);
    expect(plan.find((s) => s.kind === 'materialized view')!.statements).toEqual(['drop materialized view public.totals']);
    expect(plan.flatMap((s) => s.statements).some((x) => /cascade/i.test(x))).toBe(false);
  });

  it('a subscription lets go of its slot first; the role loses its grants (drop owned) before it is dropped', () => {
    const plan = removalPlan(created);
    expect(plan[0]!.statements).toEqual(['alter subscription cutover_main disable', 'alter subscription cutover_main set (slot_name = none)', 'drop subscription cutover_main']);
    expect(plan.at(-1)!.statements).toEqual(['drop owned by cutover_app', 'drop role cutover_app']);
    expect(plan.find((s) => s.kind === 'slot')!.statements[0]).toMatch(/pg_drop_replication_slot\(slot_name\) from pg_replication_slots where quote_ident\(slot_name\) = 'cutover_main'/);
  });

  it('nothing created, nothing to do', () => {
    expect(removalPlan([])).toEqual([]);
  });
});
