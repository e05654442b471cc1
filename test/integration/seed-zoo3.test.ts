/**
 * More real-world shapes for the custom seeder (test/fixtures/zoo3/): a Rails/Django-style web app,
 * a warehouse star schema and a multi-schema app with awkward names, each as `pg_dump --schema-only`
 * prints it, seeded unedited on PostgreSQL 11 (features of later majors gated) and 17, then judged by
 * Postgres itself (validateEverything), with rows in every table.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ddlFor, seedClusters, tableCounts, validateEverything } from '../helpers/seed-validate.ts';
import { seed } from '../../lab/seed.ts';
import { withClient } from '../../migration/pg.ts';
import { SeedPlanError } from '../../scenarios/datasets/custom.ts';

const { tmp, freshDb } = seedClusters([11, 17], 'cutover-zoo3-');
const fixture = (name: string) => readFileSync(new URL(`../fixtures/zoo3/${name}.sql`, import.meta.url), 'utf8');

function ddlFile(name: string, major: number): string {
  const f = join(tmp, `${name}${major}.sql`);
  writeFileSync(f, ddlFor(fixture(name), major));
  return f;
}

const q1 = async <T = any>(url: string, sql: string) => withClient(url, async (c) => (await c.query(sql)).rows[0] as T);

/** The `dataset.generators` lines of a planned error's fixes, merged: what a user would paste. */
function generatorsFrom(e: SeedPlanError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of e.problems) for (const m of p.fix.matchAll(/dataset\.generators: (\{ "[^"]+": "[^"]+" \})/g)) Object.assign(out, JSON.parse(m[1]));
  return out;
}

describe.each([11, 17])('zoo3 shapes on PostgreSQL %i', (major) => {
  it('a Rails/Django web app: join tables capped by tiny parents, polymorphic columns, STI, citext, ltree, uuid-ossp, arrays', async () => {
    const url = await freshDb(major, 'webapp');
    const r = await seed({ url, preset: 'custom', ddl: ddlFile('webapp', major), scale: 6000, seed: 11, progress: 'silent' });
    const counts = await withClient(url, (c) => tableCounts(c, ['public']));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    expect(Object.keys(counts)).toHaveLength(19);
    const v = await withClient(url, (c) => validateEverything(c, ['public']));
    expect(v.invalidIndexes).toEqual([]);
    expect(v.fks).toBe(19);
    expect(v.checks).toBe(11);
    // Exclusive arcs (exactly one of two FKs set): both targets used.
    expect(await q1(url, `select count(post_id)::int > 0 and count(comment_id)::int > 0 as ok from abuse_reports`)).toEqual({ ok: true });
    expect(await q1(url, `select count(post_id)::int > 0 and count(category_id)::int > 0 as ok from bookmarks`)).toEqual({ ok: true });
    expect(r.rows).toBe(Object.values(counts).reduce((a, b) => a + b, 0));
    // Keys over tiny domains cap their tables, and a join table over two capped parents is capped at their pairs; each cap is said.
    expect(counts.plans).toBe(4);
    expect(counts.feature_flags).toBe(5);
    expect(counts.feature_flags_plans).toBe(20);
    expect(r.notes.some((n) => /^public\.feature_flags_plans: \d+ rows asked, 20 loaded — primary key feature_flags_plans_pkey \(feature_flag_id, plan_id\)/.test(n)), r.notes.join('\n')).toBe(true);
    expect(r.notes.some((n) => /^public\.plans: \d+ rows asked, 4 loaded — unique plans_tier_key/.test(n))).toBe(true);
    // The other join tables take distinct pairs, as many as asked.
    expect(counts.groups_accounts).toBe(counts.accounts);
    expect((await q1(url, `select count(distinct (group_id, account_id))::int as n from groups_accounts`)).n).toBe(counts.groups_accounts);
    // Single-table inheritance and polymorphic columns take values of their IN lists (and several of them).
    expect((await q1(url, `select count(distinct type)::int as n from accounts`)).n).toBeGreaterThan(1);
    expect((await q1(url, `select count(distinct commentable_type)::int as n from comments`)).n).toBeGreaterThan(1);
    // ltree paths that ltree parses, distinct; citext emails distinct case-insensitively (the unique index was rebuilt).
    expect((await q1(url, `select count(distinct path)::int as n, count(distinct public.nlevel(path))::int as l from categories`))).toSatisfy((x: any) => x.n === counts.categories && x.l > 1);
    expect((await q1(url, `select count(distinct lower(email::text))::int as n from accounts`)).n).toBe(counts.accounts);
    await withClient(url, async (c) => {
      // The application's next inserts: identity, serial, uuid_generate_v4() and jsonb/array defaults.
      const a = await c.query(`insert into accounts (type, name, email, created_at, updated_at) values ('User', 'New', 'NEW@example.com', now(), now()) returning id, uuid, settings, roles`);
      expect(a.rows[0]).toMatchObject({ settings: {}, roles: [] });
      await c.query(`insert into posts (author_id, title, slug, created_at, updated_at) values ($1, 't', 'brand-new-slug', now(), now())`, [a.rows[0].id]);
      await c.query(`insert into comments (commentable_type, commentable_id, author_id, body, created_at, updated_at) values ('Account', $1, $1, 'hi', now(), now())`, [a.rows[0].id]);
      await c.query(`insert into tags (name) values ('brand-new-tag')`);
      await c.query(`insert into django_content_type (app_label, model) values ('new', 'thing')`);
    });
  });

  it('a warehouse star schema: a fact keyed by 4 dimensions, tiny key domains planned as caps, MATCH FULL, percentages', async () => {
    const url = await freshDb(major, 'warehouse');
    const r = await seed({ url, preset: 'custom', ddl: ddlFile('warehouse', major), scale: 12_000, seed: 11, progress: 'silent' });
    const counts = await withClient(url, (c) => tableCounts(c, ['dw']));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    expect(Object.keys(counts)).toHaveLength(11);
    const v = await withClient(url, (c) => validateEverything(c, ['dw']));
    expect(v.invalidIndexes).toEqual([]);
    expect(v.fks).toBe(11);
    expect(v.domains).toBe(1);
    // A key over an enum × boolean, a boolean, a smallint range × an enum, char(2) matching ^[A-Z]{2}$: capped at the domain, and said.
    const caps: [string, number, RegExp][] = [
      ['dim_channel', 6, /unique dim_channel_kind_is_online_key \(kind, is_online\) allows at most kind values × is_online values = 6/],
      ['etl_flags', 2, /unique etl_flags_is_full_load_key \(is_full_load\)/],
      ['weekday_targets', 21, /primary key weekday_targets_pkey \(day_of_week, kind\) allows at most day_of_week values × kind values = 21/],
      ['dim_region', 676, /unique dim_region_country_code_key \(country_code\)/],
    ];
    for (const [t, n, why] of caps) {
      expect(counts[t], t).toBe(n);
      expect(r.notes.some((x) => x.startsWith(`dw.${t}: `) && x.includes(`, ${n} loaded — `) && why.test(x)), `${t}: ${r.notes.join('\n')}`).toBe(true);
    }
    // MATCH FULL: both store columns or neither; some facts have a store, some do not.
    expect(await q1(url, `select count(*) filter (where (store_region_key is null) <> (store_no is null))::int as half, count(*) filter (where store_no is not null)::int as set from dw.fact_sales`)).toSatisfy((x: any) => x.half === 0 && x.set > 0);
    // The fact's 4-FK primary key spreads over every dimension.
    expect(await q1(url, `select count(distinct date_key)::int > 1 and count(distinct product_key)::int > 1 and count(distinct customer_key)::int > 1 and count(distinct channel_key)::int > 1 as ok from dw.fact_sales`)).toEqual({ ok: true });
    expect(await q1(url, `select bool_and(rating > 0 and rating < 10) and bool_and(weight_kg > 0 and weight_kg < 10) as ok from dw.dim_product`)).toEqual({ ok: true });
    // An identity with a CHECK on its lower bound starts there.
    expect((await q1(url, `select min(promotion_key)::int as m from dw.dim_promotion`)).m).toBe(1000);
    await withClient(url, async (c) => {
      await c.query(`insert into dw.dim_promotion (code, discount, starts_on, ends_on) values ('NEW', 5, current_date, current_date)`);
      await c.query(`insert into dw.dim_customer (customer_id, name, segment, valid_from) values ('NEW', 'n', 'B', current_date)`);
      await c.query(`insert into dw.dim_product (sku, name, list_price) values ('NEW-SKU', 'n', 1)`);
    });
  });

  it('a multi-schema app with awkward names: reserved words, spaces, dots, mixed case, a deferred cycle, a trigger', async () => {
    const url = await freshDb(major, 'awkward');
    const schemas = ['auth', 'billing', 'audit', 'Mixed Case'];
    const ddl = ddlFile('awkward', major);
    let generators: Record<string, string> | undefined;
    if (major >= 12) {
      // quote."Total" = qty * "Unit" in numeric(10,2): the planned rows overflow it; the server's probe says so before a row is loaded.
      const e = await seed({ url, preset: 'custom', ddl, scale: 6000, seed: 11, progress: 'silent' }).catch((x) => x);
      expect(e, String(e?.message)).toBeInstanceOf(SeedPlanError);
      expect(e.problems.map((p: any) => `${p.table}.${p.column}`)).toEqual(['billing.quote.Total']);
      expect(e.problems[0].constraint).toMatch(/^GENERATED ALWAYS AS .*qty.*"Unit".* STORED, type numeric\(10,2\)$/);
      expect(e.problems[0].fix).toContain('dataset.generators: { "billing.quote.qty": "regex:[1-9][0-9]?" }');
      expect((await q1(url, `select count(*)::int as n from pg_namespace where nspname in ('billing', 'Mixed Case')`)).n).toBe(0);
      // What the fixes say, pasted as they are.
      generators = generatorsFrom(e);
      expect(Object.keys(generators).sort()).toEqual(['billing.quote.Unit', 'billing.quote.qty']);
    }
    // A generator line for a column whose name holds a dot, in a table whose name holds a space.
    const r = await seed({ url, preset: 'custom', ddl, scale: 6000, seed: 11, progress: 'silent', generators: { ...generators, 'audit.Event Log.old.row': 'null' } });
    const counts = await withClient(url, (c) => tableCounts(c, schemas));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    expect(Object.keys(counts)).toHaveLength(major >= 12 ? 15 : 13);
    const v = await withClient(url, (c) => validateEverything(c, schemas));
    expect(v.invalidIndexes).toEqual([]);
    expect(v.fks).toBe(major >= 12 ? 16 : 15);
    expect(v.domains).toBe(2);
    expect((await q1(url, `select count("old.row")::int as n from audit."Event Log"`)).n).toBe(0);
    // The trigger did not fire during the load and is back on.
    expect(r.notes.some((n) => /trigger Order Audit did not fire/.test(n)), r.notes.join('\n')).toBe(true);
    expect((await q1(url, `select tgenabled from pg_trigger where tgname = 'Order Audit'`)).tgenabled).toBe('O');
    if (major >= 12) {
      expect(await q1(url, `select bool_and("Gross" = round("Net" * 1.19, 2)) as ok from billing."price list"`)).toEqual({ ok: true });
      expect((await q1(url, `select count(distinct tableoid)::int as n from billing."price list"`)).n).toBe(2);
      expect((await q1(url, `select max("Total")::float as m from billing.quote`)).m).toBeLessThan(1_000_000);
    }
    await withClient(url, async (c) => {
      // Sequences and identities (quoted, mixed-case, with spaces) are past the data; the trigger writes the identity-ALWAYS log.
      const u = await c.query(`insert into auth."user" ("userName", "E-Mail") values ('brand new', 'new@example.com') returning id`);
      await c.query(`insert into auth."Group" ("Name", "from") values ('g', current_date)`);
      const before = (await c.query(`select count(*)::int as n from audit."Event Log"`)).rows[0].n;
      await c.query(`insert into billing."order" ("user", currency, "Net", "from") values ($1, 'EUR', 1, now())`, [u.rows[0].id]);
      expect((await c.query(`select count(*)::int as n from audit."Event Log"`)).rows[0].n).toBe(before + 1);
      await c.query(`insert into "Mixed Case"."Rooms" ("Room No", "Floor") values (-1, 1)`);
      await c.query(`insert into "Mixed Case"."Room Booking" ("Room", "During", "Booked By") values (-1, '[2030-01-01,2030-01-02)', $1)`, [u.rows[0].id]);
    });
  });
});

describe('shapes the plan reads from a generated column or has a new generator for (PostgreSQL 17)', () => {
  it('seeds multiranges and a key over a generated column planned through its source; a computed key that still repeats is named before a row is loaded', async () => {
    const url = await freshDb(17, 'generated_keys');
    const ddl = join(tmp, 'generated.sql');
    writeFileSync(
      ddl,
      `create table spans (id int primary key, busy int4multirange not null, dates datemultirange);
       create table people (id serial primary key, slug text not null, slug_key text generated always as (upper(slug)) stored unique);
       create table visits (id int primary key, person int not null references people, at timestamptz not null,
         day date generated always as ((at at time zone 'UTC')::date) stored, unique (person, day));\n`,
    );
    const e = await seed({ url, preset: 'custom', ddl, scale: 3000, progress: 'silent' }).catch((x) => x);
    expect(e, String(e?.message)).toBeInstanceOf(SeedPlanError);
    // people.slug_key = upper(slug) is planned as a key over slug and holds; visits' (person, day) is planned over (person, at), whose days repeat.
    expect(e.problems.map((p: any) => `${p.table}.${p.column} ${p.constraint}`)).toEqual(['public.visits.person, at UNIQUE visits_person_day_key']);
    expect(e.problems[0].fix).toMatch(/^day is generated from person, at: the seed makes those distinct, not what the expression computes from them \(an unsupported shape\) — seed without visits_person_day_key, or give dataset\.generators: \{ "public\.visits\.at": "regex:/);
    expect((await q1(url, `select count(*)::int as n from pg_class where relname in ('spans', 'people', 'visits')`)).n).toBe(0);
    // Without the computed key that repeats, the rest seeds: multiranges, and the key over upper(slug) holds.
    const ddl2 = join(tmp, 'generated2.sql');
    writeFileSync(ddl2, readFileSync(ddl, 'utf8').replace(', unique (person, day)', ''));
    await seed({ url, preset: 'custom', ddl: ddl2, scale: 3000, progress: 'silent' });
    await withClient(url, async (c) => {
      const v = await validateEverything(c, ['public']);
      expect(v.invalidIndexes).toEqual([]);
      const counts = await tableCounts(c, ['public']);
      for (const [t, k] of Object.entries(counts)) expect(k, `rows in ${t}`).toBeGreaterThan(0);
      expect((await c.query(`select count(distinct slug_key)::int as n from people`)).rows[0].n).toBe(counts.people);
      expect((await c.query(`select count(*) filter (where busy <> '{}' and upper(busy) > lower(busy))::int as n from spans`)).rows[0].n).toBe(counts.spans);
    });
  });
});
