/**
 * No table left behind (issue 12 item 3): tables, a partitioned table and a sequence created on the
 * source after `replicate start` are not in the publication. `replicate status` and
 * `missingFromPublication` (which the switchover preflight calls) name them with the command that
 * adds them; `replicate add-table` brings them in (schema + keys, publish, refresh, copy, post-data)
 * and the replication verifies clean. 13 → 17 (partitioned tables published through their root).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, startPair, sql, type Pair } from '../helpers/clusters.ts';
import { connect, withDatabase } from '../../migration/pg.ts';
import { missingFromPublication, replicationStatus, stopReplication, waitForSync } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';

describe('tables and sequences created after replicate start (13 → 17)', () => {
  let pair: Pair;
  let src: string;
  let tgt: string;

  beforeAll(async () => {
    pair = await startPair(13, 17);
    src = pair.old.url;
    tgt = pair.new.url;
    await sql(
      src,
      `create table accounts (id bigserial primary key, name text not null);
       create table events (id bigint not null, at date not null, kind text, primary key (id, at)) partition by range (at);
       create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
       insert into accounts (name) select 'a' || g from generate_series(1, 300) g;
       insert into events select g, date '2024-01-01' + (g % 300), 'k' from generate_series(1, 500) g;`,
    );
    const r = await cli(['replicate', 'start', '--source', src, '--target', tgt]).done;
    expect(r.code, r.out).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (pair) await stopReplication({ source: src, target: tgt }).catch(() => {});
    await pair?.destroy();
  });

  it('reports nothing missing right after start', async () => {
    const c = await connect(src);
    try {
      const cov = await missingFromPublication(c, 'cutover_main');
      expect(cov).toMatchObject({ exists: true, tables: [], sequences: [], sequencesChecked: true });
      expect(cov.fix).toBeUndefined();
    } finally {
      await c.end();
    }
    const r = await cli(['replicate', 'status', '--source', src, '--target', tgt]).done;
    expect(r.code, r.out).toBe(0);
  });

  it('names a table, a partitioned table and a sequence created later; add-table brings them in', async () => {
    await sql(
      src,
      `create table "Invoices" (id bigserial primary key, account_id bigint references accounts (id), total numeric(10,2));
       create index invoices_account on "Invoices" (account_id);
       insert into "Invoices" (account_id, total) select 1 + g % 300, g from generate_series(1, 400) g;
       create table audit (id bigint not null, at date not null, what text, primary key (id, at)) partition by range (at);
       create table audit_2024 partition of audit for values from ('2024-01-01') to ('2025-01-01');
       insert into audit select g, date '2024-06-01', 'x' from generate_series(1, 50) g;
       create sequence ticket_no start 1000;
       select nextval('ticket_no');
       -- a new partition of a table already published through its root is carried by that root
       create table events_2025 partition of events for values from ('2025-01-01') to ('2026-01-01');`,
    );
    const c = await connect(src);
    try {
      const cov = await missingFromPublication(c, 'cutover_main');
      expect(cov.tables.map((t) => t.table)).toEqual(['public."Invoices"', 'public.audit']);
      expect(cov.sequences.map((s) => s.sequence).sort()).toEqual(['public."Invoices_id_seq"', 'public.ticket_no']);
      expect(cov.fix).toContain('cutover replicate add-table --name main --tables');
    } finally {
      await c.end();
    }
    // status: exit 1, the names and the command
    const st = await cli(['replicate', 'status', '--source', src, '--target', tgt, '--json']).done;
    expect(st.code).toBe(1);
    const js = JSON.parse(st.stdout);
    expect(js.coverage.tables.map((t: any) => t.table)).toEqual(['public."Invoices"', 'public.audit']);
    expect(js.problems.join('\n')).toContain('would be EMPTY on the new primary: public."Invoices", public.audit');
    expect(js.problems.join('\n')).toContain('add-table');

    // the target needs the new partition of events before rows land in it (the root carries them)
    const add = await cli(['replicate', 'add-table', '--source', src, '--target', tgt, '--tables', 'public."Invoices",audit,events_2025', '--sequences', 'public.ticket_no', '--json']).done;
    expect(add.code, add.out).toBe(0);
    const res = JSON.parse(add.stdout);
    expect(res.tables).toEqual(['public."Invoices"', 'public.audit', 'public.events_2025']);
    expect(res.alreadyPublished).toEqual(['public.events_2025']);
    expect(res.preData.keys.applied).toBeGreaterThan(0);

    // the target has the rows, the keys and the post-data (index, FK) of the new tables
    expect((await sql(tgt, `select count(*)::int as n from "Invoices"`))[0].n).toBe(400);
    expect((await sql(tgt, `select count(*)::int as n from audit`))[0].n).toBe(50);
    expect((await sql(tgt, `select 1 from pg_indexes where indexname = 'invoices_account'`)).length).toBe(1);
    expect((await sql(tgt, `select 1 from pg_constraint where conrelid = '"Invoices"'::regclass and contype = 'f'`)).length).toBe(1);
    expect((await sql(tgt, `select 1 from pg_class where relname = 'ticket_no' and relkind = 'S'`)).length).toBe(1);

    // live changes flow into them, and nothing is reported missing any more
    await sql(src, `insert into "Invoices" (account_id, total) values (1, 9.99); insert into events values (9001, '2025-03-01', 'new'); delete from audit where id = 7`);
    await waitForSync({ source: src, target: tgt, maxLagBytes: 0, timeoutMs: 60_000 });
    const after = await replicationStatus({ source: src, target: tgt });
    expect(after.problems).toEqual([]);
    expect(after.coverage).toMatchObject({ tables: [], sequences: [] });
    const v = await verify({ source: src, target: tgt, sampleRows: 0 });
    expect(v.tables.filter((t) => !t.ok).map((t) => t.table)).toEqual([]);
    expect(v.tables.map((t) => t.table)).toEqual(expect.arrayContaining(['public."Invoices"', 'public.audit_2024', 'public.events_2025']));
  }, 120_000);

  it('drop-table takes a table out while replication runs: the target keeps its rows, changes stop, the switchover would name it', async () => {
    const before = (await sql(tgt, `select count(*)::int as n from "Invoices"`))[0].n;
    const r = await cli(['replicate', 'drop-table', '--source', src, '--target', tgt, '--tables', 'public."Invoices",public.nosuch', '--json']).done;
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dropped: ['public."Invoices"'], notPublished: ['public.nosuch'] });
    await sql(src, `insert into "Invoices" (account_id, total) values (2, 1.00); insert into accounts (name) values ('after drop')`);
    await waitForSync({ source: src, target: tgt, maxLagBytes: 0, timeoutMs: 60_000 });
    // other tables go on replicating; the dropped one keeps its rows and gets no new ones
    expect((await sql(tgt, `select count(*)::int as n from accounts where name = 'after drop'`))[0].n).toBe(1);
    expect((await sql(tgt, `select count(*)::int as n from "Invoices"`))[0].n).toBe(before);
    const c = await connect(src);
    try {
      expect((await missingFromPublication(c, 'cutover_main')).tables.map((t) => t.table)).toEqual(['public."Invoices"']);
    } finally {
      await c.end();
    }
    // idempotent: a second drop has nothing to do
    const again = await cli(['replicate', 'drop-table', '--source', src, '--target', tgt, '--tables', 'public."Invoices"', '--json']).done;
    expect(JSON.parse(again.stdout)).toMatchObject({ dropped: [], notPublished: ['public."Invoices"'] });
  }, 120_000);

  it('FOR ALL TABLES: a table created later stops apply on the target; status says so and add-table repairs it', async () => {
    await sql(src, `create database alltables`);
    await sql(tgt, `create database alltables`);
    const s2 = withDatabase(src, 'alltables');
    const t2 = withDatabase(tgt, 'alltables');
    await sql(s2, `create table a (id int primary key, v text); insert into a select g, 'x' from generate_series(1, 100) g`);
    const r = await cli(['replicate', 'start', '--name', 'all', '--all-tables', '--source', s2, '--target', t2]).done;
    expect(r.code, r.out).toBe(0);
    await sql(s2, `create table later_t (id int primary key, v text); insert into later_t select g, 'y' from generate_series(1, 5) g`);
    // the row for a table the target lacks stops the apply worker (17: disables the subscription)
    let st = await replicationStatus({ source: s2, target: t2, name: 'all' });
    for (let i = 0; i < 60 && st.enabled !== false; i++) {
      await new Promise((res) => setTimeout(res, 500));
      st = await replicationStatus({ source: s2, target: t2, name: 'all' });
    }
    expect(st.enabled).toBe(false);
    expect(st.applyErrors[0]).toMatchObject({ kind: 'missing-table' });
    expect(st.applyErrors[0].message).toContain('"public.later_t" does not exist');
    expect(st.notSubscribed).toEqual(['public.later_t']);
    expect(st.problems.join('\n')).toContain('add-table');
    const add = await cli(['replicate', 'add-table', '--name', 'all', '--tables', 'later_t', '--source', s2, '--target', t2, '--json']).done;
    expect(add.code, add.out).toBe(0);
    expect(JSON.parse(add.stdout).alreadyPublished).toEqual(['public.later_t']);
    await waitForSync({ source: s2, target: t2, name: 'all', maxLagBytes: 0, timeoutMs: 60_000 });
    expect((await sql(t2, `select count(*)::int as n from later_t`))[0].n).toBe(5);
    const after = await replicationStatus({ source: s2, target: t2, name: 'all' });
    expect(after.problems).toEqual([]);
    expect((await stopReplication({ source: s2, target: t2, name: 'all' })).complete).toBe(true);
  }, 120_000);
});
