/**
 * The pure parts of "drift compares meaning, not spelling" (issue #14 part 3): spellings two majors
 * give the same thing are absorbed, real differences keep their severity and are grouped by cause.
 * The same cases on real clusters: test/integration/drift-shapes.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { icuLanguageTag } from '../../migration/drift/collation.ts';
import { diffSchema, explainMissing, type SchemaSnapshot } from '../../migration/drift/schema.ts';
import { diffTimezone } from '../../migration/drift/timezone.ts';
import { diffServerSettings } from '../../migration/drift/settings.ts';

const o = { sourceMajor: 13, targetMajor: 17 };

describe('ICU locales', () => {
  it('reads language_REGION (11–15 as written) and language-REGION (16+ canonical) as one locale, and nothing else', () => {
    expect(icuLanguageTag('de_AT')).toBe('de-AT');
    expect(icuLanguageTag('de-AT')).toBe('de-AT');
    expect(icuLanguageTag('root')).toBe('und');
    expect(icuLanguageTag('und-u-ks-level2')).toBe('und-u-ks-level2');
    expect(icuLanguageTag('de@collation=phonebook')).toBe('de@collation=phonebook');
    const coll = (locale: string): SchemaSnapshot => ({ collation: { 'shop.at': { provider: 'i', locale, ctype: null, deterministic: true, icu_rules: null, owner: 'postgres' } } });
    expect(diffSchema(coll('de_AT'), coll('de-AT'), o)).toEqual([]);
    // A real difference stays one.
    expect(diffSchema(coll('de_AT'), coll('de-CH'), o)).toMatchObject([{ severity: 'error', object: 'collation shop.at' }]);
    // libc locales are not ICU tags: de_AT.UTF-8 and de-AT.UTF-8 are not the same name.
    const libc = (locale: string): SchemaSnapshot => ({ collation: { 'shop.at': { provider: 'c', locale, ctype: null, deterministic: true, icu_rules: null, owner: 'postgres' } } });
    expect(diffSchema(libc('de_AT'), libc('de-AT'), o)).toHaveLength(1);
  });
});

describe('indexes', () => {
  const idx = (props: Record<string, unknown>): SchemaSnapshot => ({
    index: { 'shop.i': { table: 'shop.t', method: 'btree', unique: false, primary: false, keys: '(a)', predicate: null, valid: true, clustered: false, options: null, tablespace: null, ...props } as any },
  });
  it('a unique index over other rows or keys is an error (it refuses or admits other rows); a plain one a warning', () => {
    expect(diffSchema(idx({ predicate: 'a > 1' }), idx({ predicate: 'a > 0' }), o)).toMatchObject([{ severity: 'warning', message: expect.stringMatching(/partial/) }]);
    expect(diffSchema(idx({ unique: true, predicate: 'a > 1' }), idx({ unique: true, predicate: 'a > 0' }), o)).toMatchObject([{ severity: 'error', message: expect.stringMatching(/enforces uniqueness over other rows/) }]);
    expect(diffSchema(idx({ unique: true, keys: '(a) NULLS NOT DISTINCT' }), idx({ unique: true, keys: '(a)' }), o)).toMatchObject([{ severity: 'error', message: expect.stringMatching(/unique index shop.i has other keys/) }]);
    expect(diffSchema(idx({ keys: '(lower(a))' }), idx({ keys: '(upper(a))' }), o)).toMatchObject([{ severity: 'warning' }]);
  });
});

describe('partitions', () => {
  it('a missing partition names its parent and bounds, and what happens to its rows', () => {
    const s = explainMissing('table', 'shop.events_2025', { kind: 'table', partition_of: "shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')" });
    expect(s.severity).toBe('error');
    expect(s.message).toMatch(/partition of shop\.events FOR VALUES FROM .*DEFAULT partition .*no partition of relation/);
    expect(s.hint).toMatch(/^CREATE TABLE shop\.events_2025 PARTITION OF shop\.events FOR VALUES/);
  });
});

describe('settings that change results', () => {
  const s = { TimeZone: 'UTC', DateStyle: 'ISO, MDY', IntervalStyle: 'postgres', timezone_abbreviations: 'Default', extra_float_digits: '1', standard_conforming_strings: 'on' };
  const none = { timestampColumns: [], expressions: [] };
  it('DateStyle: another field order is an error, another output format a warning', () => {
    expect(diffTimezone(s, { ...s, DateStyle: 'SQL, DMY' }, none, 17, 18)).toMatchObject([{ object: 'setting DateStyle', severity: 'error', message: expect.stringMatching(/MDY → DMY/) }]);
    expect(diffTimezone(s, { ...s, DateStyle: 'German, MDY' }, none, 17, 18)).toMatchObject([{ object: 'setting DateStyle', severity: 'warning' }]);
    expect(diffTimezone(s, { ...s, DateStyle: 'Postgres, US' }, none, 17, 18)).toMatchObject([{ severity: 'warning' }]);
    expect(diffTimezone(s, { ...s, IntervalStyle: 'sql_standard' }, none, 17, 18)).toMatchObject([{ object: 'setting IntervalStyle', severity: 'warning' }]);
  });
  it('TimeZone: one finding for every zone-dependent expression (one cause), listing them', () => {
    const expressions = ['view a.v', 'index a.i', 'default of column a.t.d', 'constraint a.t.c'].map((object) => ({ object, expr: "date_trunc('day', now())" }));
    const f = diffTimezone(s, { ...s, TimeZone: 'Asia/Tokyo' }, { timestampColumns: [], expressions }, 17, 18);
    expect(f.map((x) => x.object)).toEqual(['setting TimeZone', 'view a.v (+3 more)']);
    expect(f[1]).toMatchObject({ severity: 'error', objects: expressions.map((e) => e.object) });
    expect(f[1].message).toMatch(/^4 objects depend on the server TimeZone \(UTC → Asia\/Tokyo\)/);
  });
  it('default_text_search_config is an error: full-text functions without a configuration find other rows', () => {
    expect(diffServerSettings({ default_text_search_config: 'pg_catalog.english' }, { default_text_search_config: 'pg_catalog.simple' })).toMatchObject([{ severity: 'error' }]);
  });
});

describe('re-printing by the target: generated columns, domain CHECKs, SQL-standard bodies', () => {
  it('plans each on a temporary object (a table copy, a domain, a function) and leaves plain-text bodies alone', async () => {
    const { reprintItems } = await import('../../migration/drift/schema.ts');
    const a: SchemaSnapshot = {
      column: { 'shop.m.kilos': { type: 'numeric', generated: '(grams / 1000.0)' } },
      type: { 'shop.sku': { kind: 'domain', base_type: 'text' } },
      'domain constraint': { 'shop.sku.sku_len': { definition: 'CHECK (((length(VALUE) >= 3) AND (length(VALUE) <= 32)))' } },
      function: {
        'shop.f(p bigint)': { kind: 'function', language: 'sql', result: 'bigint', body: 'BEGIN ATOMIC\n SELECT (p + 1);\nEND' },
        'shop.g()': { kind: 'function', language: 'sql', result: 'integer', body: ' select 1 ' },
        'shop.p(IN x integer)': { kind: 'procedure', language: 'sql', result: null, body: 'BEGIN ATOMIC\n SELECT x;\nEND' },
      },
    };
    const b: SchemaSnapshot = {
      column: { 'shop.m.kilos': { type: 'numeric', generated: '(grams / 1000)' } },
      type: a.type,
      'domain constraint': { 'shop.sku.sku_len': { definition: 'CHECK ((length(VALUE) >= 3) AND (length(VALUE) <= 32))' } },
      function: {
        'shop.f(p bigint)': { kind: 'function', language: 'sql', result: 'bigint', body: 'BEGIN ATOMIC\n SELECT p + 1;\nEND' },
        'shop.g()': { kind: 'function', language: 'sql', result: 'integer', body: ' select 2 ' },
        'shop.p(IN x integer)': { kind: 'procedure', language: 'sql', result: null, body: 'BEGIN ATOMIC\n SELECT x + 0;\nEND' },
      },
    };
    const items = reprintItems(a, b);
    expect(items.map((i) => `${i.kind} ${i.key} ${i.prop} on ${i.table}`)).toEqual([
      'column shop.m.kilos generated on shop.m',
      'domain constraint shop.sku.sku_len definition on null',
      'function shop.f(p bigint) body on null',
      'function shop.p(IN x integer) body on null',
    ]);
    expect(items[0].apply('pg_temp.t')).toEqual(['alter table pg_temp.t drop column kilos', 'alter table pg_temp.t add column kilos numeric generated always as ((grams / 1000.0)) stored']);
    expect(items[1].apply('')).toEqual(['create domain pg_temp.cutover_drift_d as text constraint cutover_drift_c CHECK (((length(VALUE) >= 3) AND (length(VALUE) <= 32)))']);
    expect(items[2].apply('')).toEqual(['create function pg_temp.cutover_drift_f(p bigint) returns bigint language sql BEGIN ATOMIC\n SELECT (p + 1);\nEND']);
    expect(items[3].apply('')[0]).toMatch(/^create procedure pg_temp\.cutover_drift_f\(IN x integer\) language sql BEGIN ATOMIC/);
  });
});

describe('zone-dependent expressions', () => {
  it('constants and explicitly zoned values do not depend on the server TimeZone; local-time casts and now() words do', async () => {
    const { dependsOnZone } = await import('../../migration/drift/timezone.ts');
    for (const e of ["(created_day >= '2000-01-01'::date)", "date_trunc('day'::text, (placed_at AT TIME ZONE 'UTC'::text))", "date_trunc('month'::text, (placed_at AT TIME ZONE 'UTC'::text)), ((total)::integer)"])
      expect(dependsOnZone(e), e).toBe(false);
    for (const e of ["('now'::text)::date", '((placed_at)::date = CURRENT_DATE)', "date_trunc('day'::text, placed_at)", "date_trunc('day'::text, (a AT TIME ZONE 'UTC'::text)) + (b)::date", "'today'::date"])
      expect(dependsOnZone(e), e).toBe(true);
  });
});

describe('the schema copy splits SQL-standard bodies whole', () => {
  it('keeps BEGIN ATOMIC … END (with CASE … END and semicolons inside) as one statement', async () => {
    const { splitSql } = await import('../../migration/schema-copy.ts');
    const text = `CREATE FUNCTION shop.classify(p numeric) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT CASE WHEN (p > (100)::numeric) THEN 'big'::text ELSE 'end;'::text END AS "case";
 SELECT 1;
END;
CREATE PROCEDURE shop.p() LANGUAGE sql BEGIN ATOMIC INSERT INTO "END" VALUES (1); END;
CREATE TABLE t (atomic int, "begin" int);
SELECT 'BEGIN ATOMIC';
SELECT 2;`;
    const st = splitSql(text).map((s) => s.sql);
    expect(st).toHaveLength(5);
    expect(st[0]).toMatch(/^CREATE FUNCTION shop\.classify[\s\S]*SELECT 1;\nEND;$/);
    expect(st[1]).toMatch(/^CREATE PROCEDURE shop\.p\(\)[\s\S]*; END;$/);
    expect(st.slice(2)).toEqual(['CREATE TABLE t (atomic int, "begin" int);', "SELECT 'BEGIN ATOMIC';", 'SELECT 2;']);
  });
});
