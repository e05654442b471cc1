/**
 * Row-filter shards on real servers, PostgreSQL 16 → 18 (issue 19 item 4): `replicate start
 * --row-filter` publishes only the matching rows (initial copy and changes, an UPDATE that moves a
 * row out of the shard deletes it on the target), status shows the filter, verify compares only
 * the rows inside it and counts a target row outside it as a mismatch; a clause Postgres refuses —
 * or one that would break UPDATEs on the source — is refused before anything is created; a < 15
 * publisher is refused with the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';
import { replicationStatus, rowFilterFkWarnings, startReplication, stopReplication } from '../../migration/replication.ts';
import { withClient } from '../../migration/pg.ts';
import { verify } from '../../migration/verify.ts';
import { quickVerify } from '../../migration/verify-quick.ts';

let pair: Pair;
const SCHEMA = `create table orders (id bigint primary key, region text not null, amount int);
  create table notes (id int primary key, body text);
  create table tickets (id int generated always as identity primary key, body text);
  create table readings (id int, region text, v int, primary key (id, region)) partition by list (region);
  create table readings_eu partition of readings for values in ('eu');
  create table readings_us partition of readings for values in ('us')`;

async function untilOnTarget(sqlText: string, want: number): Promise<void> {
  const until = Date.now() + 30_000;
  while (Number((await sql(pair.new.url, sqlText))[0].n) !== want) {
    if (Date.now() > until) throw new Error(`target never reached ${want} for ${sqlText}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const leftovers = async () => ({
  publications: (await sql(pair.old.url, `select pubname from pg_publication`)).map((r) => r.pubname),
  slots: (await sql(pair.old.url, `select slot_name from pg_replication_slots`)).map((r) => r.slot_name),
  subscriptions: (await sql(pair.new.url, `select subname from pg_subscription`)).map((r) => r.subname),
});

beforeAll(async () => {
  pair = await startPair(16, 18);
  await sql(pair.old.url, SCHEMA);
  await sql(pair.old.url, `insert into orders select g, case when g % 4 = 0 then 'eu' else 'us' end, g from generate_series(1, 2000) g;
    insert into notes select g, 'note ' || g from generate_series(1, 10) g;
    insert into tickets (body) select 't' || g from generate_series(1, 20) g;
    insert into readings select g, case when g % 2 = 0 then 'eu' else 'us' end, g from generate_series(1, 40) g`);
}, 240_000);
afterAll(async () => {
  await pair?.destroy();
});

describe('row-filter shards (16 → 18)', () => {
  it('refuses a clause Postgres rejects, and one on a column outside the replica identity, before anything exists', async () => {
    const bad = await cli(['replicate', 'start', '--source', pair.old.url, '--target', pair.new.url, '--row-filter', 'orders:region = nosuchcolumn']).done;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/row filter\(s\) refused by the source, nothing was created: row filter of public\.orders \(region = nosuchcolumn\): column "nosuchcolumn" does not exist/);
    // region is not in the primary key: with this filter every UPDATE of orders would fail on the source
    const identity = await startReplication({ source: pair.old.url, target: pair.new.url, rowFilters: [{ schema: 'public', name: 'orders', where: `region = 'eu'` }] }).catch((e) => e);
    expect(identity.message).toMatch(/refused by the source.*not part of the replica identity/s);
    expect(identity.hint).toMatch(/replica identity/);
    expect(await leftovers()).toEqual({ publications: [], slots: [], subscriptions: [] });
    // and the CLI leaves even the target's schema untouched
    expect(await sql(pair.new.url, `select count(*)::int as n from pg_tables where schemaname = 'public'`)).toEqual([{ n: 0 }]);
  });

  it('replicates, shows and verifies only the shard', async () => {
    await sql(pair.old.url, `alter table orders replica identity full`);
    // three filters: one on a GENERATED ALWAYS identity key (the identity check must not trip over
    // it), one on a partitioned table (published through its root)
    const r = await cli(['replicate', 'start', '--source', pair.old.url, '--target', pair.new.url, '--row-filter', `orders:region = 'eu'`, '--row-filter', 'tickets:id % 2 = 0', '--row-filter', `readings:id <= 10`]).done;
    expect(r.code, r.out).toBe(0);
    try {
      expect(await sql(pair.new.url, `select region, count(*)::int as n from orders group by 1`)).toEqual([{ region: 'eu', n: 500 }]);
      expect(await sql(pair.new.url, `select count(*)::int as n from notes`)).toEqual([{ n: 10 }]);
      expect(await sql(pair.new.url, `select count(*)::int as n, min(id) as lo from tickets`)).toEqual([{ n: 10, lo: 2 }]);
      expect(await sql(pair.new.url, `select count(*)::int as n, max(id) as hi from readings`)).toEqual([{ n: 10, hi: 10 }]);
      // changes follow the filter: a new eu row arrives, a us row does not, a row leaving the shard is deleted
      await sql(pair.old.url, `insert into orders values (3001, 'eu', 1), (3002, 'us', 1); update orders set region = 'us' where id = 4`);
      await untilOnTarget(`select count(*)::int as n from orders`, 500);
      await untilOnTarget(`select count(*)::int as n from orders where id = 3001`, 1);
      expect(await sql(pair.new.url, `select count(*)::int as n from orders where id in (4, 3002)`)).toEqual([{ n: 0 }]);

      const st = await replicationStatus({ source: pair.old.url, target: pair.new.url });
      expect(st.tables.find((t) => t.name === 'orders')?.rowFilter).toMatch(/region = 'eu'/);
      expect(st.tables.find((t) => t.name === 'notes')?.rowFilter).toBeUndefined();
      const status = await cli(['replicate', 'status', '--source', pair.old.url, '--target', pair.new.url]).done;
      expect(status.stdout).toMatch(/public\.orders .*WHERE \(region = 'eu'::text\)/);

      const v = await verify({ source: pair.old.url, target: pair.new.url });
      expect(v.ok).toBe(true);
      expect(v.tables.find((t) => t.name === 'orders')).toMatchObject({ sourceRows: 500, targetRows: 500, rowFilter: { targetRowsOutside: 0 } });
      // the quick check too: counted (small) or key-ranged and sampled (large) inside the filter
      const quick = await quickVerify({ source: pair.old.url, target: pair.new.url });
      expect(quick.ok).toBe(true);
      expect(quick.tables.find((t) => t.table === 'public.orders')).toMatchObject({ method: 'exact', sourceRows: 500, targetRows: 500 });
      const large = await quickVerify({ source: pair.old.url, target: pair.new.url, exactPages: 0 });
      const quickOrders = large.tables.find((t) => t.table === 'public.orders')!;
      expect(large.ok, JSON.stringify(quickOrders)).toBe(true);
      expect(quickOrders).toMatchObject({ method: 'estimate', keyRange: { ok: true } });
      expect(quickOrders.notes.join(' ')).toMatch(/row estimates not compared: the source estimate covers the rows outside the filter too/);
      // a row outside the shard on the target, and a shard row changed: both are mismatches
      await sql(pair.new.url, `alter subscription cutover_main disable`);
      await sql(pair.new.url, `insert into orders values (9999, 'us', 1); update orders set amount = -1 where id = 8`);
      const bad = await verify({ source: pair.old.url, target: pair.new.url });
      const orders = bad.tables.find((t) => t.name === 'orders')!;
      expect(bad.ok).toBe(false);
      expect(orders.problems.join(' ')).toMatch(/1 row\(s\) on the target are outside the row filter/);
      expect(orders.differingRows).toEqual([expect.objectContaining({ kind: 'different', key: { id: 8 } })]);
      const out = await cli(['verify', '--source', pair.old.url, '--target', pair.new.url]).done;
      expect(out.code).toBe(1);
      expect(out.stdout).toMatch(/MISMATCH public\.orders: 500 \/ 500 rows WHERE \(region = 'eu'::text\)/);
    } finally {
      await stopReplication({ source: pair.old.url, target: pair.new.url });
    }
  });

  it('warns, before anything exists, when a filtered table is referenced by a replicated table', async () => {
    await sql(pair.old.url, `create table order_lines (id int primary key, order_id bigint references orders (id)); create table "Audit" (id int primary key, order_id bigint references orders (id))`);
    try {
      const orders = { schema: 'public', name: 'orders', rowFilter: `id % 4 = 0` };
      const lines = { schema: 'public', name: 'order_lines' };
      const ws = await withClient(pair.old.url, (c) => rowFilterFkWarnings(c, [orders], [orders, lines, { schema: 'public', name: 'notes' }]));
      // "Audit" is not replicated: no warning for it; order_lines is, with every row
      expect(ws).toHaveLength(1);
      expect(ws[0]).toContain('public.orders is published with a row filter (id % 4 = 0) and public.order_lines references it ("order_lines_order_id_fkey")');
      expect(ws[0]).toContain('fails to validate');
      // filtered the same way: still named (two filters cannot be proved to agree), with the child's filter
      const same = await withClient(pair.old.url, (c) => rowFilterFkWarnings(c, [orders, { ...lines, rowFilter: `order_id % 4 = 0` }], [orders, lines]));
      expect(same[0]).toContain(`unless public.order_lines's own filter (order_id % 4 = 0)`);
      expect(await withClient(pair.old.url, (c) => rowFilterFkWarnings(c, [{ schema: 'public', name: 'notes', rowFilter: 'id > 1' }], [orders, lines]))).toEqual([]);
    } finally {
      await sql(pair.old.url, `drop table order_lines; drop table "Audit"`);
    }
  });

  it('refuses a PostgreSQL < 15 publisher with the reason', async () => {
    const old = await startPair(13, 18);
    try {
      await sql(old.old.url, SCHEMA);
      await sql(old.new.url, SCHEMA);
      const r = await startReplication({ source: old.old.url, target: old.new.url, rowFilters: [{ schema: 'public', name: 'orders', where: `id > 0` }] }).catch((e) => e);
      expect(r.message).toMatch(/row filters need a PostgreSQL 15\+ publisher; the source runs 13/);
      expect(r.hint).toMatch(/leave out --row-filter/);
      expect((await sql(old.old.url, `select count(*)::int as n from pg_publication`))[0].n).toBe(0);
    } finally {
      await old.destroy();
    }
  });
});
