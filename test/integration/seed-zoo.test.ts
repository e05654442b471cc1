/**
 * The schema zoo (test/fixtures/zoo/zoo.sql): every constraint class the custom seeder plans for,
 * seeded on PostgreSQL 11 and 17, then judged by Postgres itself — every CHECK and FK dropped,
 * re-added NOT VALID and VALIDATEd (plain re-add where partitioned tables do not allow NOT VALID),
 * domain constraints likewise, every table REINDEXed (a duplicate in a unique index fails it).
 * And a schema the plan cannot satisfy: the planned error names table, column and fix, before a row
 * is loaded, and nothing is left behind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seed } from '../../lab/seed.ts';
import { quoteIdent, withClient } from '../../migration/pg.ts';
import { SeedPlanError } from '../../scenarios/datasets/custom.ts';
import { seedClusters, validateEverything } from '../helpers/seed-validate.ts';

const { tmp, freshDb } = seedClusters([11, 17], 'cutover-zoo-');
const ZOO = readFileSync(new URL('../fixtures/zoo/zoo.sql', import.meta.url), 'utf8');
// Generated columns exist from 12 on.
const ZOO_12 = `${ZOO}\ncreate table priced (id serial primary key, price numeric(8, 2) not null check (price > 0), qty int not null check (qty between 1 and 9), total numeric(12, 2) generated always as (price * qty) stored);\n`;

describe.each([11, 17])('the schema zoo on PostgreSQL %i', (major) => {
  let url: string;
  let notes: string[];
  let rows: Record<string, number>;
  beforeAll(async () => {
    url = await freshDb(major, 'zoo');
    const ddl = join(tmp, `zoo${major}.sql`);
    writeFileSync(ddl, major >= 12 ? ZOO_12 : ZOO);
    const r = await seed({ url, preset: 'custom', ddl, scale: 16000, seed: 3, progress: 'silent' });
    notes = r.notes;
    rows = Object.fromEntries(r.tables.map((t) => [t.table, t.rows]));
  });
  const one = <T = any>(sql: string) => withClient(url, async (c) => (await c.query(sql)).rows[0] as T);

  it('loads every table, caps rows where a key allows no more, and says so', async () => {
    expect(Object.values(rows).every((n) => n > 0)).toBe(true);
    expect(rows.tiny_key).toBe(6); // (boolean, 3-label enum)
    expect(rows.countries).toBe(Math.min(676, rows.orgs)); // char(2) matching ^[A-Z]{2}$: 676 values
    expect(notes.some((n) => /public\.tiny_key: \d+ rows asked, 6 loaded — primary key tiny_key_pkey/.test(n))).toBe(true);
    expect(notes.some((n) => /public\.org_settings: one-to-one with public\.orgs through org_settings_org_id_key/.test(n))).toBe(true);
    for (const [t, n] of Object.entries(rows)) expect((await one(`select count(*)::int as n from ${quoteIdent(t)}`)).n, t).toBe(n);
    // Partial unique indexes over a capped parent: not capped, the rows past the cap leave the WHERE.
    expect(rows.capitals).toBe(rows.orgs);
    expect(rows.capitals).toBeGreaterThan(rows.countries);
    expect(notes.some((n) => /^public\.capitals: partial unique index capitals_one_per_country \(country\) WHERE is_capital: the first 676 rows/.test(n))).toBe(true);
    const cap = await one(`select count(*) filter (where is_capital)::int as c, count(*) filter (where retired_at is null)::int as r from capitals`);
    expect(cap.c).toBeGreaterThan(0);
    expect(cap.c).toBeLessThanOrEqual(676);
    expect(cap.r).toBeLessThanOrEqual(676);
  });

  it('Postgres validates every CHECK, FK and domain constraint, and every unique index rebuilds', async () => {
    const v = await withClient(url, (c) => validateEverything(c));
    expect(v.invalidIndexes).toEqual([]);
    expect(v.checks).toBeGreaterThanOrEqual(11);
    expect(v.fks).toBeGreaterThanOrEqual(14);
    expect(v.domains).toBe(3);
    expect(v.reindexed).toBeGreaterThan(20);
  });

  it('one-to-one, join tables, self references and cycles hold real references', async () => {
    expect(await one(`select count(*) = count(distinct org_id) as ok from org_settings`)).toEqual({ ok: true });
    expect((await one(`select count(distinct org_id)::int as o, count(distinct user_id)::int as u from memberships`)).u).toBeGreaterThan(1);
    expect((await one(`select count(parent_id)::int as n from categories`)).n).toBeGreaterThan(0);
    expect((await one(`select count(*)::int as n from cyc_a a join cyc_b b on b.id = a.b_id join cyc_a a2 on a2.id = b.a_id`)).n).toBeGreaterThan(0);
    expect((await one(`select count(reversal_of)::int as n from ledger`)).n).toBeGreaterThan(0);
    // The composite FK and the plain one on the shared tenant_id agree.
    expect((await one(`select count(*)::int as n from tasks t join projects p on p.tenant_id = t.tenant_id and p.id = t.project_id`)).n).toBe(rows.tasks);
  });

  it('rows land inside the partitions, CHECK bounds and orders hold, sequences are past the data', async () => {
    const parts = await withClient(url, async (c) => (await c.query(`select tableoid::regclass::text as p, count(*)::int as n from events group by 1 order by 1`)).rows);
    expect(parts.map((p) => p.p)).toEqual(['events_2024_01', 'events_2024_02', 'events_2024_03']);
    expect((await one(`select count(distinct tableoid)::int as n from regional`)).n).toBe(2);
    expect(await one(`select bool_and(ends_at > starts_at) as a, bool_and(room between 1 and 50) as b from bookings`)).toEqual({ a: true, b: true });
    expect(await one(`select bool_and(zip ~ '^[0-9]{5}$') as z from addresses`)).toEqual({ z: true });
    expect(await one(`select bool_and(email ~ '^[a-z0-9._-]+@[a-z0-9-]+\\.[a-z]{2,}$') as e from users`)).toEqual({ e: true });
    await withClient(url, async (c) => {
      const o = await c.query(`insert into orgs (name, slug, plan, seats) values ('n', 'brand-new', 'pro', 3) returning id`);
      await c.query(`insert into users (org_id, email, tags) values ($1, 'new@example.com', '{}')`, [o.rows[0].id]);
      await c.query(`insert into categories (name) values ('new')`);
    });
    if (major >= 12) expect(await one(`select bool_and(total = price * qty) as ok, count(*)::int > 0 as some from priced`)).toEqual({ ok: true, some: true });
  });
});

describe('a schema the plan cannot satisfy', () => {
  const DDL = `create function code_ok(text) returns boolean language sql immutable as $$ select $1 like 'V-%' $$;
create table vouchers (id serial primary key, code text not null check (code_ok(code)));
create table shapes (id serial primary key, at txid_snapshot not null);
`;
  async function tablesIn(url: string) {
    return withClient(url, async (c) => (await c.query(`select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r','p')`)).rows.length);
  }
  it('names table, column, constraint and the generators line that fixes it, before loading; then the fix works', async () => {
    const url = await freshDb(17, 'unsat');
    const ddl = join(tmp, 'unsat.sql');
    writeFileSync(ddl, DDL);
    // 1. A type without a generator: known from the catalogs alone.
    const e1 = await seed({ url, preset: 'custom', ddl, scale: 100, progress: 'silent' }).catch((e) => e);
    expect(e1).toBeInstanceOf(SeedPlanError);
    expect(e1.exitCode).toBe(2);
    expect(e1.problems).toEqual([
      { table: 'public.shapes', column: 'at', constraint: 'NOT NULL, type txid_snapshot', why: 'the seeder has no generator for this type and the column has no default', fix: 'dataset.generators: { "public.shapes.at": "const:10:20:" }' },
    ]);
    expect(e1.message).toContain('public.shapes.at: NOT NULL, type txid_snapshot');
    expect(await tablesIn(url)).toBe(0);
    // 2. With that fixed, a CHECK the seeder cannot read: the server rejects the sample rows, still before loading.
    const e2 = await seed({ url, preset: 'custom', ddl, scale: 100, progress: 'silent', generators: { 'shapes.at': 'const:10:20:' } }).catch((e) => e);
    expect(e2).toBeInstanceOf(SeedPlanError);
    expect(e2.problems).toHaveLength(1);
    expect(e2.problems[0]).toMatchObject({ table: 'public.vouchers', column: 'code', constraint: 'CHECK vouchers_code_check CHECK (code_ok(code))', fix: 'dataset.generators: { "public.vouchers.code": "const:<a value that passes vouchers_code_check>" }' });
    expect(e2.problems[0].why).toMatch(/^\d+ of \d+ sample rows fail it$/);
    expect(e2.message).toMatch(/nothing was loaded/);
    expect(await tablesIn(url)).toBe(0);
    // 3. Both fixed: it seeds.
    const r = await seed({ url, preset: 'custom', ddl, scale: 100, progress: 'silent', generators: { 'shapes.at': 'const:10:20:', 'public.vouchers.code': 'regex:V-[0-9]{6}' } });
    expect(r.rows).toBe(100);
    expect(await withClient(url, async (c) => (await c.query(`select bool_and(code ~ '^V-[0-9]{6}$') as ok from vouchers`)).rows[0])).toEqual({ ok: true });
  });
});

describe('extension-provided defaults on an old major', () => {
  it('a schema dumped from 13+ (gen_random_uuid() built in, no CREATE EXTENSION) seeds unedited on 11', async () => {
    const url = await freshDb(11, 'ext_defaults');
    const ddl = join(tmp, 'ext.sql');
    writeFileSync(ddl, `create table accounts (id uuid primary key default gen_random_uuid(), name text not null);\ncreate table sessions (id uuid primary key default gen_random_uuid(), account_id uuid not null references accounts (id));\n`);
    const r = await seed({ url, preset: 'custom', ddl, scale: 200, progress: 'silent' });
    expect(r.notes[0]).toBe('created extension pgcrypto: the DDL calls gen_random_uuid(), built in only from PostgreSQL 13 and does not create it');
    expect(await withClient(url, async (c) => (await c.query(`select count(*)::int as n from sessions s join accounts a on a.id = s.account_id`)).rows[0].n)).toBe(100);
    await withClient(url, (c) => c.query(`insert into accounts (name) values ('default works')`));
  });
});

describe('the empty tables of an existing schema', () => {
  it('are seeded with their constraints left in place (never taken off), parents first', async () => {
    const url = await freshDb(17, 'existing');
    const constraints = async () => withClient(url, async (c) => (await c.query(`select conname, pg_get_constraintdef(oid) as def from pg_constraint where connamespace = 'public'::regnamespace order by 1`)).rows);
    await withClient(url, (c) =>
      c.query(`create table teams (id serial primary key, name text not null unique);
        create table people (id serial primary key, team_id int not null references teams (id), mentor_id int references people (id), email text not null unique);
        create table badges (person_id int primary key references people (id), level int not null check (level between 1 and 3));`),
    );
    const before = await constraints();
    const r = await seed({ url, preset: 'custom', scale: 30_000, progress: 'silent' });
    expect(r.tables.map((t) => t.table).sort()).toEqual(['badges', 'people', 'teams']);
    expect(await constraints()).toEqual(before);
    await withClient(url, async (c) => {
      expect((await c.query(`select count(*)::int as n from people p join people m on m.id = p.mentor_id`)).rows[0].n).toBeGreaterThan(0);
      expect((await c.query(`select count(*)::int as n from badges b join people p on p.id = b.person_id`)).rows[0].n).toBe(r.tables.find((t) => t.table === 'badges')!.rows);
    });
  });
});

describe('generator threads', () => {
  it('load exactly the rows the main thread would (preset and custom)', async () => {
    const hash = (url: string) =>
      withClient(url, async (c) => {
        const t = await c.query<{ q: string }>(`select format('%I.%I', n.nspname, c.relname) as q from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname = 'public' order by 1`);
        const parts: string[] = [];
        for (const { q } of t.rows) parts.push((await c.query(`select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as h from ${q} t`)).rows[0].h);
        return parts.join('|');
      });
    const ddl = join(tmp, 'zoo-threads.sql');
    writeFileSync(ddl, ZOO_12);
    const out: string[] = [];
    for (const threads of [0, 2]) {
      const a = await freshDb(17, `thr_pay_${threads}`);
      const ra = await seed({ url: a, preset: 'payments', scale: 12_000, seed: 5, progress: 'silent', threads, parallel: 3 });
      const b = await freshDb(17, `thr_zoo_${threads}`);
      const rb = await seed({ url: b, preset: 'custom', ddl, scale: 4000, seed: 5, progress: 'silent', threads });
      expect([ra.generatorThreads, rb.generatorThreads]).toEqual([threads, threads]);
      out.push((await hash(a)) + '#' + (await hash(b)));
    }
    expect(out[1]).toBe(out[0]);
  });
});
