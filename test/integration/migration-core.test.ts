/**
 * Migration core end to end on real pairs: schema copy, replication, verification, preflight,
 * cleanup after crashes and failed starts, connection errors. Small data: this is the default suite.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { lag, replicationStatus, startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';
import { preflight } from '../../migration/preflight.ts';
import { CutoverError } from '../../migration/errors.ts';

const execFileP = promisify(execFile);
const SCH = 'Sch "Quote" ü';
const QS = '"Sch ""Quote"" ü"';
const ITEMS = `${QS}."Order Items"`;

async function slots(url: string): Promise<string[]> {
  return (await sql(url, `select slot_name from pg_replication_slots order by 1`)).map((r) => r.slot_name);
}

async function until(fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe.each([
  [11, 17],
  [13, 16],
])('migration core %i → %i', (oldMajor, newMajor) => {
  let pair: Pair;
  let src: string;
  let tgt: string;

  beforeAll(async () => {
    pair = await startPair(oldMajor, newMajor);
    src = pair.old.url;
    tgt = pair.new.url;
    await sql(
      src,
      `create schema ${QS};
       create table ${ITEMS} (id bigserial primary key, "Näme ""x""" text, amount numeric(12,2), f float8, r real, ts timestamptz default now(), note text);
       create table public.parent (id int primary key, label text);
       create table public.child (id int primary key, parent_id int not null references public.parent(id), payload jsonb);
       create index child_parent on public.child (parent_id);
       create table public."Composite Key" (a int, b text, v text, primary key (a, b));
       insert into ${ITEMS} ("Näme ""x""", amount, f, r, note)
         select 'név ' || g, g * 1.25, g / 10.0, g / 3.0, case when g % 3 = 0 then null when g % 3 = 1 then '' else 'ü"''x' end
         from generate_series(1, 500) g;
       insert into public.parent select g, 'p' || g from generate_series(1, 50) g;
       insert into public.child select g, 1 + g % 50, jsonb_build_object('k', g) from generate_series(1, 200) g;
       insert into public."Composite Key" select g % 7, 'k é ' || g, null from generate_series(1, 120) g;
       analyze;`,
    );
  });

  afterAll(async () => {
    await pair?.destroy();
  });

  it('reports a wrong password as AUTH and an unreachable host as CONNECT, without the password', async () => {
    const bad = new URL(src);
    bad.password = 'Wr0ng-secret';
    const e1 = await preflight({ source: bad.toString(), target: tgt }).catch((e) => e);
    expect(e1).toBeInstanceOf(CutoverError);
    expect(e1.code).toBe('AUTH');
    expect(e1.exitCode).toBe(2);
    expect(JSON.stringify([e1.message, e1.hint, e1.detail])).not.toContain('Wr0ng-secret');
    const nowhere = new URL(src);
    nowhere.hostname = '127.0.0.1';
    nowhere.port = '1';
    const e2 = await preflight({ source: src, target: nowhere.toString() }).catch((e) => e);
    expect(e2.code).toBe('CONNECT');
    expect(e2.exitCode).toBe(2);
  });

  it('copies the schema idempotently, replicates, and verifies with zero mismatches', async () => {
    const pre = await copySchema({ source: src, target: tgt, section: 'pre-data' });
    expect(pre.applied).toBeGreaterThan(0);
    const again = await copySchema({ source: src, target: tgt, section: 'pre-data' });
    expect(again.skipped.map((s) => s.object).join('\n')).toContain('Order Items');
    // keys before the copy: every primary key is on the target before a row is copied, nothing else of post-data
    const pks = `select conrelid::regclass::text as t from pg_constraint where contype = 'p' and connamespace <> 'pg_catalog'::regnamespace order by 1`;
    expect(pre.keys?.applied).toBeGreaterThan(0);
    expect(await sql(tgt, pks)).toEqual(await sql(src, pks));
    expect(await sql(tgt, `select 1 from pg_constraint where contype = 'f'`)).toEqual([]);
    expect(await sql(tgt, `select 1 from pg_indexes where indexname = 'child_parent'`)).toEqual([]);

    const started = await startReplication({ source: src, target: tgt });
    expect(started.slot).toBe('cutover_main');
    expect(started.tables.map((t) => t.table)).toContain(`${QS}."Order Items"`);
    const st = await waitForSync({ source: src, target: tgt, timeoutMs: 120_000 });
    expect(st.allReady).toBe(true);
    expect(st.tables.every((t) => t.stateName.startsWith('ready'))).toBe(true);

    const post = await copySchema({ source: src, target: tgt, section: 'post-data' });
    expect(post.applied).toBeGreaterThan(0);
    const fks = await sql(tgt, `select conname from pg_constraint where contype = 'f'`);
    expect(fks.length).toBe(1);
    expect((await sql(tgt, `select 1 from pg_publication`)).length).toBe(0); // our publication is not schema

    // live changes stream
    await sql(src, `insert into ${ITEMS} ("Näme ""x""", f) values ('late', 0.1); update public.parent set label = null where id = 3; delete from public.child where id = 7`);
    await until(async () => (await sql(tgt, `select count(*)::int as n from ${ITEMS}`))[0].n === 501 && (await sql(tgt, `select 1 from public.child where id = 7`)).length === 0);
    const l = await lag({ source: src });
    expect(l.slot.exists).toBe(true);
    expect(typeof l.bytes).toBe('number');

    const v = await verify({ source: src, target: tgt, chunkRows: 100 });
    const bad = v.tables.filter((t) => !t.ok);
    expect(bad).toEqual([]);
    expect(v.ok).toBe(true);
    const items = v.tables.find((t) => t.name === 'Order Items')!;
    expect(items.sourceRows).toBe(501);
    expect(items.chunks).toBeGreaterThan(1);
    expect(v.tables.find((t) => t.name === 'Composite Key')!.strategy).toBe('hash-bucket');
    const seq = v.sequences.find((s) => s.ownedBy?.includes('Order Items'))!;
    expect(seq.sourceMaxKey).toBe(501);
    expect(seq.targetAheadOfMaxKey).toBe(false); // sequences are not replicated: set at cutover
  });

  it('finds a row changed on the target and narrows it to that row', async () => {
    await sql(tgt, `alter subscription cutover_main disable`);
    await sql(tgt, `update ${ITEMS} set note = 'tampered' where id = 250`);
    await sql(tgt, `update public.parent set label = null where id = 10`); // value → NULL must count
    const v = await verify({ source: src, target: tgt, chunkRows: 100 });
    expect(v.ok).toBe(false);
    const items = v.tables.find((t) => t.name === 'Order Items')!;
    expect(items.mismatches.length).toBe(1);
    expect(items.differingRows.map((d) => [d.kind, d.key])).toEqual([['different', { id: 250 }]]);
    const parent = v.tables.find((t) => t.name === 'parent')!;
    expect(parent.ok).toBe(false);
    expect(parent.differingRows[0].key).toEqual({ id: 10 });
    expect(v.tables.filter((t) => !t.ok).length).toBe(2);
    // the CLI exits 1 and lists it
    const r = await execFileP('node', ['bin/cutover.mjs', 'verify', '--source', src, '--target', tgt, '--tables', `${QS}."Order Items"`, '--json'], { cwd: process.cwd() }).catch((e) => e);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).tables[0].differingRows[0].key).toEqual({ id: 250 });
    expect(r.stdout + r.stderr).not.toContain(new URL(src).password);
  });

  it('stop removes everything, also after a crash half-way and after a failed or aborted start', async () => {
    const stop = await stopReplication({ source: src, target: tgt });
    expect(stop.complete).toBe(true);
    expect(await slots(src)).toEqual([]);
    expect((await sql(src, `select 1 from pg_publication`)).length).toBe(0);
    expect((await sql(tgt, `select 1 from pg_subscription`)).length).toBe(0);

    // crash half-way: the subscription went away without its slot (the worst orphan), publication left too
    await startReplication({ source: src, target: tgt, name: 'Crash Run', copyData: false, allowNonEmptyTarget: true });
    await sql(tgt, `alter subscription cutover_crash_run disable`);
    await sql(tgt, `alter subscription cutover_crash_run set (slot_name = none)`);
    await sql(tgt, `drop subscription cutover_crash_run`);
    expect(await slots(src)).toContain('cutover_crash_run');
    const s2 = await stopReplication({ source: src, target: tgt, name: 'Crash Run' });
    expect(s2.complete).toBe(true);
    expect(s2.dropped.join()).toContain('replication slot cutover_crash_run');
    expect(await slots(src)).toEqual([]);

    // crash with everything still running, the walsender active: stop still gets the slot
    await startReplication({ source: src, target: tgt, name: 'crash2', copyData: false, allowNonEmptyTarget: true });
    await until(async () => (await sql(src, `select active from pg_replication_slots where slot_name = 'cutover_crash2'`))[0]?.active === true);
    await sql(src, `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'cutover-lab' and pid <> pg_backend_pid()`);
    expect((await stopReplication({ source: src, target: tgt, name: 'crash2' })).complete).toBe(true);
    expect(await slots(src)).toEqual([]);

    // failed start: the subscriber cannot log in to the source → nothing is left behind
    const wrong = new URL(src);
    wrong.password = 'not-the-password';
    const e = await startReplication({ source: src, target: tgt, name: 'failed', sourceConninfoUrl: wrong.toString(), copyData: false, allowNonEmptyTarget: true }).catch((x) => x);
    expect(e).toBeInstanceOf(CutoverError);
    expect(String(e.message) + e.detail).not.toContain('not-the-password');
    expect(await slots(src)).toEqual([]);
    expect((await sql(src, `select 1 from pg_publication`)).length).toBe(0);

    // aborted start (incremental, aborted while waiting on the first table)
    const ac = new AbortController();
    const p = startReplication({ source: src, target: tgt, name: 'aborted', mode: 'incremental', copyData: false, allowNonEmptyTarget: true, tables: ['parent', 'child'], signal: ac.signal, log: (l) => l.startsWith('created subscription') && ac.abort() });
    await expect(p).rejects.toThrow();
    expect(await slots(src)).toEqual([]);
    expect((await sql(src, `select 1 from pg_publication`)).length).toBe(0);
    expect((await sql(tgt, `select 1 from pg_subscription`)).length).toBe(0);
    const st = await replicationStatus({ source: src, target: tgt, name: 'aborted' });
    expect(st.subscriptionExists || st.publicationExists || st.slotHealth.exists).toBe(false);
  });

  it('preflight flags a table without a primary key (error), unlogged tables and matviews (warning)', async () => {
    await sql(src, `create table public."No Key" (x int, y text); create unlogged table public.scratch (id int primary key); create materialized view public.mv as select count(*) from public.parent`);
    try {
      const r = await preflight({ source: src, target: tgt });
      expect(r.ok).toBe(false);
      const nopk = r.findings.find((f) => f.id === 'table.no_primary_key')!;
      expect(nopk.severity).toBe('error');
      expect(nopk.object).toBe('public."No Key"');
      expect(r.findings.find((f) => f.id === 'table.unlogged')).toMatchObject({ severity: 'warning', object: 'public.scratch' });
      expect(r.findings.find((f) => f.id === 'table.materialized_view')).toMatchObject({ severity: 'warning', object: 'public.mv' });
      expect(r.findings.find((f) => f.id === 'tool.pg_dump')?.severity).toBe('info');
      expect(r.findings.some((f) => f.id === 'source.wal_level')).toBe(false);
      // the replication itself refuses to publish it
      const e = await startReplication({ source: src, target: tgt, name: 'nopk', tables: ['"No Key"'] }).catch((x) => x);
      expect(e.code).toBe('PRECONDITION');
      expect(await slots(src)).toEqual([]);
    } finally {
      await sql(src, `drop table public."No Key"; drop table public.scratch; drop materialized view public.mv`);
    }
  });
});
