/**
 * The full verify (issue 19 part 5): one whole-table checksum per side, key chunks only for a table
 * whose checksum differs. PostgreSQL 11 (C.UTF-8, its database defaulting to other time zone,
 * date, interval, bytea, float and money output) → 17 (en_US.utf8, other defaults again): the same
 * rows must verify clean with one checksum per table, and a changed, a missing and an extra row
 * must each be found on every key strategy — integer range, key range (uuid, composite), hash
 * buckets over a text key whose order differs between the two collations — and named by key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, startPair, type Pair } from '../helpers/clusters.ts';
import { verify, type DifferingRow } from '../../migration/verify.ts';
import { connect, quoteIdent } from '../../migration/pg.ts';

let pair: Pair;
const DDL = `
  create table typed (id int8 primary key, f8 float8, f4 float4, ts timestamptz, d date, iv interval, b bytea, m money, n numeric, j jsonb);
  create table uu (id uuid primary key, v text);
  create table comp (a int, b int, v text, primary key (a, b));
  create table names (k text primary key, v int);
  create table wide (id int primary key, v text);
  create table bag (a int, t text);`;
const DATA = `
  insert into typed select g, g / 10.0, g / 3.0, '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour', '2026-01-01'::date + g,
    make_interval(days => g, secs => g * 1.5), decode(md5(g::text), 'hex'), (g * 1.25)::numeric::money, g / 7.0, jsonb_build_object('g', g, 'f', g / 3.0)
    from generate_series(1, 2000) g;
  insert into uu select md5(g::text)::uuid, 'u' || g from generate_series(1, 2000) g;
  insert into comp select g % 40, g / 40, 'c' || g from generate_series(1, 2000) g;
  insert into names select (array['a', 'B', 'ä', 'Z', 'é', '_'])[1 + g % 6] || g, g from generate_series(1, 2000) g;
  insert into wide select g, 'w' || g from generate_series(1, 20000) g;
  insert into bag select g % 500, 'dup ' || (g % 500) from generate_series(1, 6000) g;
  analyze;`;
// Per-database defaults that change how values print, different on each side; verify pins its own.
const defaults = (url: string, s: string) => sql(url, `alter database ${quoteIdent(new URL(url).pathname.slice(1))} set ${s}`);
const SOURCE_DEFAULTS = ["timezone = 'America/New_York'", "datestyle = 'SQL, DMY'", "intervalstyle = 'iso_8601'", "bytea_output = 'escape'", 'extra_float_digits = 0', "lc_monetary = 'en_US.utf8'"];
const TARGET_DEFAULTS = ["timezone = 'Asia/Kolkata'", "datestyle = 'German'", "intervalstyle = 'sql_standard'", 'extra_float_digits = 1', "lc_monetary = 'de_DE.utf8'"];
const OPTS = { chunkRows: 200, sampleRows: 0, narrowChunks: 50 };

beforeAll(async () => {
  pair = await startPair(11, 17, { old: { locale: 'C.UTF-8' }, new: { locale: 'en_US.utf8' } });
  for (const url of [pair.old.url, pair.new.url]) {
    await sql(url, DDL);
    await sql(url, DATA);
  }
  for (const s of SOURCE_DEFAULTS) await defaults(pair.old.url, s);
  for (const s of TARGET_DEFAULTS) await defaults(pair.new.url, s);
});
afterAll(async () => pair?.destroy());

const kinds = (rows: DifferingRow[]) => rows.map((d) => [d.kind, d.key]).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));

describe('full verify: one checksum per table, chunks only on a mismatch (11 → 17)', () => {
  it('the same rows verify clean with one checksum per table, although every rendering default differs', async () => {
    // the hazard is real: the same row prints differently with each side's defaults, and the text keys sort differently
    const row = `select ts::text || ' ' || iv::text || ' ' || b::text || ' ' || f8::text || ' ' || m::text as r from typed where id = 1001`;
    expect((await sql(pair.old.url, row))[0].r).not.toBe((await sql(pair.new.url, row))[0].r);
    const order = `select string_agg(k, ',' order by k) as o from (select k from names where v <= 6) s`;
    expect((await sql(pair.old.url, order))[0].o).not.toBe((await sql(pair.new.url, order))[0].o);

    const v = await verify({ source: pair.old.url, target: pair.new.url, ...OPTS });
    expect(v.tables.filter((t) => !t.ok).map((t) => ({ table: t.table, rows: t.differingRows.slice(0, 2) }))).toEqual([]);
    const by = Object.fromEntries(v.tables.map((t) => [t.name, t]));
    expect(['typed', 'uu', 'comp', 'names'].map((n) => [by[n].name, by[n].checksum, by[n].sourceRows, by[n].targetRows])).toEqual(
      ['typed', 'uu', 'comp', 'names'].map((n) => [n, 'table', 2000, 2000]),
    );
    expect([by.typed.strategy, by.uu.strategy, by.comp.strategy, by.names.strategy]).toEqual(['integer-range', 'key-range', 'key-range', 'hash-bucket']);
    // key-range boundaries cost a scan of the key: not taken while the checksum matches
    expect([by.uu.chunks, by.comp.chunks]).toEqual([1, 1]);
  });

  it('finds a changed, a missing and an extra row on every key strategy and names each by its key', async () => {
    const t = pair.new.url;
    const uuid = async (g: number) => (await sql(pair.old.url, `select md5($1::text)::uuid::text as u`, [String(g)]))[0].u;
    const [u100, u1000] = [await uuid(100), await uuid(1000)];
    // typed: one float by 1e-13 (invisible at 15 digits: compared by its bits), a deleted row, an extra row
    await sql(t, `update typed set f8 = f8 + 1e-13 where id = 1000; delete from typed where id = 100; insert into typed (id) values (5000)`);
    await sql(t, `update uu set v = 'changed' where id = $1`, [u1000]);
    await sql(t, `delete from uu where id = $1`, [u100]);
    await sql(t, `insert into uu values ('ffffffff-0000-0000-0000-000000000000', 'extra')`);
    await sql(t, `update comp set v = null where (a, b) = (10, 25); delete from comp where (a, b) = (3, 2); insert into comp values (99, 99, 'extra')`);
    await sql(t, `update names set v = -v where k = 'ä8'; delete from names where k = 'B1'; insert into names values ('Ö extra', 0)`);

    const v = await verify({ source: pair.old.url, target: t, ...OPTS });
    expect(v.ok).toBe(false);
    const by = Object.fromEntries(v.tables.map((x) => [x.name, x]));
    expect(kinds(by.typed.differingRows)).toEqual(kinds([
      { kind: 'different', key: { id: 1000 } },
      { kind: 'missing_on_target', key: { id: 100 } },
      { kind: 'extra_on_target', key: { id: 5000 } },
    ]));
    expect(kinds(by.uu.differingRows)).toEqual(kinds([
      { kind: 'different', key: { id: u1000 } },
      { kind: 'missing_on_target', key: { id: u100 } },
      { kind: 'extra_on_target', key: { id: 'ffffffff-0000-0000-0000-000000000000' } },
    ]));
    expect(kinds(by.comp.differingRows)).toEqual(kinds([
      { kind: 'different', key: { a: 10, b: 25 } },
      { kind: 'missing_on_target', key: { a: 3, b: 2 } },
      { kind: 'extra_on_target', key: { a: 99, b: 99 } },
    ]));
    expect(kinds(by.names.differingRows)).toEqual(kinds([
      { kind: 'different', key: { k: 'ä8' } },
      { kind: 'missing_on_target', key: { k: 'B1' } },
      { kind: 'extra_on_target', key: { k: 'Ö extra' } },
    ]));
    for (const x of ['typed', 'uu', 'comp', 'names'].map((n) => by[n])) {
      expect([x.name, x.ok, x.checksum]).toEqual([x.name, false, 'chunks']);
      expect([x.sourceRows, x.targetRows]).toEqual([2000, 2000]);
      expect(x.chunks).toBeGreaterThan(5); // the key-range boundaries were planned once the checksum differed
      expect(x.mismatches.length).toBeGreaterThanOrEqual(1);
      expect(x.mismatches.length).toBeLessThanOrEqual(3);
    }
    // integer ranges: the chunks that differ are the ones holding the planted keys
    const holds = (id: number) => by.typed.mismatches.some((m) => (m.lower === null || Number(m.lower[0]) <= id) && (m.upper === null || id < Number(m.upper[0])));
    expect([100, 1000, 5000].every(holds)).toBe(true);
    // the same table named alone: the others are not read
    const one = await verify({ source: pair.old.url, target: t, ...OPTS, tables: ['public.comp'] });
    expect(one.tables.map((x) => [x.name, x.ok, x.differingRows.length])).toEqual([['comp', false, 3]]);
  });

  it('a large differing chunk is split by a hash of the key first, and still every row is named (with and without a key)', async () => {
    const t = pair.new.url;
    await sql(t, `update wide set v = 'changed' where id = 7777; delete from wide where id = 15000; insert into wide values (30000, 'extra')`);
    // without a key the rows are a multiset: one of twelve equal rows gone, one new
    await sql(t, `delete from bag where ctid = (select ctid from bag where a = 42 limit 1); insert into bag values (-1, 'new')`);
    const v = await verify({ source: pair.old.url, target: t, sampleRows: 0, tables: ['public.wide', 'public.bag'] });
    const by = Object.fromEntries(v.tables.map((x) => [x.name, x]));
    expect(by.wide.mismatches.map((m) => [m.sourceRows, m.targetRows])).toEqual([[20000, 20000]]); // one chunk of 20,000 rows
    expect(kinds(by.wide.differingRows)).toEqual(kinds([
      { kind: 'different', key: { id: 7777 } },
      { kind: 'missing_on_target', key: { id: 15000 } },
      { kind: 'extra_on_target', key: { id: 30000 } },
    ]));
    expect(by.bag.differingRows.map((d) => [d.kind, d.source ?? d.target]).sort()).toEqual([
      ['extra_on_target', '(-1,new)'],
      ['missing_on_target', '(42,"dup 42")'],
    ]);
  });
  it('an abort cancels the statements in flight on both servers instead of leaving them running', async () => {
    // a checksum that cannot finish: the target's table is locked by another session
    const holder = await connect(pair.new.url);
    await holder.query(`begin; lock table wide in access exclusive mode`);
    const active = async () =>
      (await sql(pair.new.url, `select count(*)::int as n from pg_stat_activity where application_name = 'cutover-verify' and state = 'active'`))[0].n as number;
    try {
      const ac = new AbortController();
      const run = verify({ source: pair.old.url, target: pair.new.url, sampleRows: 0, tables: ['public.wide'], signal: ac.signal }).catch((e) => e);
      const t0 = Date.now();
      while ((await active()) === 0 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
      expect(await active()).toBe(1); // waiting for the lock
      ac.abort();
      const e = await run;
      expect(e.message).toContain('verification aborted: the statements in flight were cancelled on both servers');
      // gone while the lock is still held: cancelled, not ended by the lock's release
      expect(await active()).toBe(0);
      expect((await sql(pair.new.url, `select count(*)::int as n from pg_locks where relation = 'wide'::regclass and mode = 'AccessExclusiveLock' and granted`))[0].n).toBe(1);
    } finally {
      await holder.query('rollback').catch(() => {});
      await holder.end();
    }
  });
});
