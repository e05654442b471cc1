/** Pure parts of seeding: COPY escaping, load planning, post-load waves, generator determinism. */
import { describe, expect, it } from 'vitest';
import { copyLine, copyValue, dependencyWaves, lineCol, planSeed, postLoadPlan, postLoadWaves } from '../../lab/seed.ts';
import { applyOverrides, arrayLiteral, getPreset, hashString, isoAt, money, Rng, type TableLoad } from '../../scenarios/datasets/index.ts';
import { stringsFor, TRICKY_STRINGS } from '../../scenarios/datasets/edge.ts';
import { dropSpareWal, hashInputs } from '../../lab/golden.ts';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ctx = { seed: 42, scale: 5000, major: 17, encoding: 'UTF8' };

describe('COPY text format', () => {
  it('escapes backslash, tab, newline and carriage return; NULL is \\N', () => {
    expect(copyValue(null)).toBe('\\N');
    expect(copyValue(true)).toBe('t');
    expect(copyValue(12.5)).toBe('12.5');
    expect(copyValue('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyValue('\\x00ff')).toBe('\\\\x00ff');
    expect(copyLine([1, null, 'x\ty'])).toBe('1\t\\N\tx\\ty\n');
  });
  it('array literals quote every element', () => {
    expect(arrayLiteral(['a,b', 'say "hi"', null, 'back\\slash', '{x}'])).toBe('{"a,b","say \\"hi\\"",NULL,"back\\\\slash","{x}"}');
    expect(arrayLiteral([])).toBe('{}');
    expect(arrayLiteral([1, -2])).toBe('{1,-2}');
  });
  it('money and instants', () => {
    expect(money(5)).toBe('0.05');
    expect(money(123456)).toBe('1234.56');
    expect(money(-250)).toBe('-2.50');
    for (const ms of [0, 1, 86_399_999, 1_704_067_200_000, 1_709_966_400_123, 4_102_444_800_000]) expect(isoAt(ms)).toBe(new Date(ms).toISOString());
    expect(isoAt(-1000)).toBe('1969-12-31T23:59:59.000Z');
  });
});

describe('determinism', () => {
  it('the same seed gives the same rows, whatever the order they are asked in', () => {
    for (const name of ['payments', 'notifications', 'edge']) {
      const a = getPreset(name).build(ctx);
      const b = getPreset(name).build(ctx);
      for (let t = 0; t < a.tables.length; t++) {
        const n = a.tables[t].rows;
        const forward = Array.from({ length: n }, (_, i) => JSON.stringify(a.tables[t].row(i)));
        const backward = Array.from({ length: n }, (_, i) => JSON.stringify(b.tables[t].row(n - 1 - i))).reverse();
        expect(backward).toEqual(forward);
      }
    }
  });
  it('another seed gives other rows', () => {
    const a = getPreset('payments').build(ctx).tables[2].row(10);
    const b = getPreset('payments').build({ ...ctx, seed: 43 }).tables[2].row(10);
    expect(a).not.toEqual(b);
  });
  it('Rng draws are in range', () => {
    const r = new Rng(1, 2, 3);
    for (let k = 0; k < 10_000; k++) {
      const x = r.int(7);
      expect(x >= 0 && x < 7).toBe(true);
    }
    expect(r.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.hex(5)).toMatch(/^[0-9a-f]{10}$/);
  });
});

describe('presets', () => {
  it('payments: shares of the scale, FK values inside the parent ranges, payment account = order account', () => {
    const ds = getPreset('payments').build({ ...ctx, scale: 10_000 });
    const [acc, ord, pay, led] = ds.tables;
    expect([acc.rows, ord.rows, pay.rows, led.rows]).toEqual([500, 2000, 3500, 4000]);
    const orderAccount = new Map<number, number>();
    for (let i = 0; i < ord.rows; i++) {
      const r = ord.row(i);
      expect(r[1]).toBeGreaterThanOrEqual(1);
      expect(r[1]).toBeLessThanOrEqual(acc.rows);
      orderAccount.set(r[0] as number, r[1] as number);
    }
    for (let i = 0; i < pay.rows; i++) {
      const r = pay.row(i);
      expect(orderAccount.get(r[1] as number)).toBe(r[2]);
    }
    const emails = new Set(Array.from({ length: acc.rows }, (_, i) => acc.row(i)[1]));
    expect(emails.size).toBe(acc.rows);
  });
  it('edge: LATIN1 databases get only Latin-1 strings; generated column only from 12', () => {
    expect(stringsFor('UTF8')).toBe(TRICKY_STRINGS);
    expect(stringsFor('LATIN1').every((s) => [...s].every((c) => c.codePointAt(0)! <= 255))).toBe(true);
    expect(stringsFor('LATIN1')).toContain('Ångström');
    expect(stringsFor('LATIN1')).not.toContain('😀');
    expect(getPreset('edge').build({ ...ctx, major: 11 }).preDdl).not.toContain('generated always as');
    expect(getPreset('edge').build(ctx).preDdl).toContain('generated always as (price * qty) stored');
  });
  it('unknown preset and bad overrides are usage/config errors', () => {
    expect(() => getPreset('nope')).toThrow('unknown dataset preset "nope"');
    const ds = getPreset('payments').build(ctx);
    expect(() => applyOverrides(ds, { 'nope.email': 'faker.internet.email' }, 1)).toThrow('generator override nope.email: no table nope in dataset payments');
    expect(() => applyOverrides(ds, { 'accounts.nope': 'faker.internet.email' }, 1)).toThrow('generator override accounts.nope: table accounts has no column nope');
    expect(() => applyOverrides(ds, { 'accounts.email': 'faker.nope.nope' }, 1)).toThrow('generator "faker.nope.nope" is not a faker method');
  });
  it('overrides replace one column deterministically', () => {
    const a = getPreset('payments').build(ctx);
    applyOverrides(a, { 'orders.note': 'faker.person.fullName', 'accounts.full_name': 'null' }, 7);
    const b = getPreset('payments').build(ctx);
    applyOverrides(b, { 'orders.note': 'faker.person.fullName', 'accounts.full_name': 'null' }, 7);
    expect(a.tables[1].row(3)).toEqual(b.tables[1].row(3));
    expect(typeof a.tables[1].row(3)[5]).toBe('string');
    expect(a.tables[0].row(0)[2]).toBeNull();
  });
});

describe('planning', () => {
  const t = (name: string, rows: number, dependsOn: string[] = []): TableLoad => ({ schema: 'public', name, columns: ['id'], rows, dependsOn, row: (i) => [i] });
  it('dependency waves put parents first and refuse cycles', () => {
    const waves = dependencyWaves([t('c', 1, ['public.b']), t('b', 1, ['public.a']), t('a', 1), t('self', 1, ['public.self'])]);
    expect(waves.map((w) => w.map((x) => x.name))).toEqual([['a', 'self'], ['b'], ['c']]);
    expect(() => dependencyWaves([t('x', 1, ['public.y']), t('y', 1, ['public.x'])])).toThrow('foreign keys form a cycle between public.x, public.y; cannot order the load');
  });
  it('a table loaded frozen is one COPY, never cut', () => {
    const big = t('big', 100_000);
    const plan = planSeed({ name: 'x', preDdl: '', postDdl: '', tables: [big, t('other', 100_000)] }, { parallel: 4, fkDuringLoad: false, frozen: new Set([big]) });
    expect(plan.waves[0].filter((c) => c.table === big).map((c) => [c.from, c.to])).toEqual([[0, 100_000]]);
    expect(plan.waves[0].filter((c) => c.table !== big)).toHaveLength(4);
  });
  it('big tables are cut into row ranges, biggest first', () => {
    const plan = planSeed({ name: 'x', preDdl: '', postDdl: '', tables: [t('small', 100), t('big', 100_000)] }, { parallel: 4, fkDuringLoad: false });
    expect(plan.totalRows).toBe(100_100);
    expect(plan.waves[0].map((c) => [c.table.name, c.from, c.to])).toEqual([
      ['big', 0, 25_000],
      ['big', 25_000, 50_000],
      ['big', 50_000, 75_000],
      ['big', 75_000, 100_000],
      ['small', 0, 100],
    ]);
  });
  it('post-load DDL: own keys per table, then FKs per child, then the rest in order', () => {
    const ddl = `alter table a add primary key (id);\ncreate index a_x on a (x);\nalter table "Odd Schema"."B t" add primary key ("Id");\n-- comment\nalter table only public.b add constraint b_a_fk foreign key (a_id) references a (id);\ncreate materialized view mv as select 1;\ncreate unique index mv_i on mv (x);\n`;
    const waves = postLoadWaves(ddl, [{ schema: 'public', name: 'a' }, { schema: 'Odd Schema', name: 'B t' }, { schema: 'public', name: 'b' }]);
    expect(waves).toEqual([
      [['alter table a add primary key (id)', 'create index a_x on a (x)'], ['alter table "Odd Schema"."B t" add primary key ("Id")']],
      [['alter table only public.b add constraint b_a_fk foreign key (a_id) references a (id)']],
      [['create materialized view mv as select 1', 'create unique index mv_i on mv (x)']],
    ]);
    // The own keys by table, so each is built as soon as its table is loaded.
    expect([...postLoadPlan(ddl, [{ schema: 'public', name: 'a' }, { schema: 'Odd Schema', name: 'B t' }, { schema: 'public', name: 'b' }]).own.keys()]).toEqual(['public.a', 'Odd Schema.B t']);
  });
  it('DDL error positions become line and column', () => {
    expect(lineCol('select 1;\ncreate tabel x;\n', 18)).toEqual({ line: 2, col: 8, text: 'create tabel x;' });
    expect(lineCol('abc', 1)).toEqual({ line: 1, col: 1, text: 'abc' });
  });
});

describe('golden copies', () => {
  it('the hash changes with any input', () => {
    expect(hashInputs({ a: 1 })).toBe(hashInputs({ a: 1 }));
    expect(hashInputs({ a: 1 })).not.toBe(hashInputs({ a: 2 }));
  });
  it('keeps only the WAL segment of the shutdown checkpoint (and the next)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-wal-'));
    mkdirSync(join(dir, 'pg_wal', 'archive_status'), { recursive: true });
    for (const f of ['000000010000000000000003', '000000010000000000000009', '00000001000000000000000A', '00000001000000000000000B', '000000010000000100000000']) writeFileSync(join(dir, 'pg_wal', f), '');
    dropSpareWal(dir, '000000010000000000000009');
    expect(readdirSync(join(dir, 'pg_wal')).sort()).toEqual(['000000010000000000000009', '00000001000000000000000A', 'archive_status']);
    rmSync(dir, { recursive: true, force: true });
  });
});

// ---------------------------------------------------------------------------------------------
// The custom seeder's plan (pure parts): CHECK expressions, regex generation, keys, caps.

import { checkBody, compileCheck, deriveBounds, parseExpr } from '../../scenarios/datasets/check-expr.ts';
import { compileRegexGen } from '../../scenarios/datasets/regex-gen.ts';
import { exclusiveArc, planCustom, SeedPlanError, type ColumnInfo, type TableInfo } from '../../scenarios/datasets/custom.ts';
import { productionShapedDdl } from '../../scenarios/datasets/production-shaped.ts';
import { readFileSync } from 'node:fs';

describe('CHECK expressions as pg_get_constraintdef renders them', () => {
  const pass = (def: string, row: Record<string, any>) => compileCheck(checkBody(def))!.passes(row);
  it('ranges, IN lists over varchar, lengths, regexes, IS NULL logic, NOT VALID', () => {
    expect(pass('CHECK (((age >= 18) AND (age <= 120)))', { age: 30 })).toBe(true);
    expect(pass('CHECK (((age >= 18) AND (age <= 120)))', { age: 12 })).toBe(false);
    expect(pass('CHECK (((age >= 18) AND (age <= 120)))', { age: null })).toBe(true);
    const inList = "CHECK (((level)::text = ANY ((ARRAY['debug'::character varying, 'info'::character varying])::text[])))";
    expect(pass(inList, { level: 'info' })).toBe(true);
    expect(pass(inList, { level: 'warn' })).toBe(false);
    expect(pass("CHECK ((char_length(title) >= 5)) NOT VALID", { title: 'abcd' })).toBe(false);
    expect(pass("CHECK ((zip ~ '^[0-9]{5}$'::text))", { zip: '12345' })).toBe(true);
    expect(pass("CHECK ((zip ~ '^[0-9]{5}$'::text))", { zip: '1234x' })).toBe(false);
    expect(pass('CHECK (((delivered_at IS NULL) OR (shipped_at IS NOT NULL)))', { delivered_at: '2024-01-01', shipped_at: null })).toBe(false);
    expect(pass('CHECK ((ends_at > starts_at))', { starts_at: '2024-01-01T00:00:00.000Z', ends_at: '2024-01-01T01:00:00.000Z' })).toBe(true);
    expect(pass('CHECK ((amount >= (0)::numeric))', { amount: '0.00' })).toBe(true);
    expect(pass('CHECK ((amount >= (0)::numeric))', { amount: '-1.50' })).toBe(false);
    expect(pass("CHECK ((line1 <> ''::text))", { line1: '' })).toBe(false);
    // Unknown functions are the server's to judge.
    expect(compileCheck('code_ok(code)')).toBeUndefined();
  });
  it('bounds a generator can honour up front', () => {
    const b = deriveBounds(checkBody("CHECK (((score >= (0)::numeric) AND (score <= (100)::numeric) AND (char_length(code) = 3) AND (ends > starts) AND ((currency)::text = ANY ((ARRAY['EUR'::character varying, 'GBP'::character varying])::text[]))))"));
    expect(b.bounds.get('score')).toMatchObject({ min: 0, max: 100, minExclusive: false, maxExclusive: false });
    expect(b.bounds.get('code')).toMatchObject({ minLength: 3, maxLength: 3 });
    expect(b.bounds.get('currency')?.values).toEqual(['EUR', 'GBP']);
    expect(b.orders).toEqual([{ low: 'starts', high: 'ends', strict: true }]);
    expect(deriveBounds('(VALUE > 0)', 'seats').bounds.get('seats')).toMatchObject({ min: 0, minExclusive: true });
    expect(() => parseExpr('(a > (select 1))')).toThrow();
  });
  it('regular expressions → matching strings', () => {
    for (const pat of ['^[A-Z]{2}$', '^[0-9]{5}$', '^[^@ ]+@[^@ ]+$', '^(GB|DE)[0-9]{2,4}-x?$', '^\\d{3}\\.\\w+$']) {
      const g = compileRegexGen(pat)!;
      const r = new Rng(1, 2, 3);
      for (let k = 0; k < 200; k++) expect(g(() => r.float())).toMatch(new RegExp(pat));
    }
    expect(compileRegexGen('^(a)\\1$')).toBeUndefined();
  });
});

function col(name: string, type: string, over: Partial<ColumnInfo> = {}): ColumnInfo {
  const base = ({ integer: 'int4', bigint: 'int8', text: 'text', uuid: 'uuid', boolean: 'bool' } as Record<string, string>)[type] ?? type;
  return { name, type, base, category: base === 'text' ? 'S' : base === 'bool' ? 'B' : 'N', elemBase: null, elemCategory: null, enumLabels: null, rangeSub: null, typmod: -1, domain: null, domainNotNull: false, domainChecks: [], baseType: type, notNull: true, identity: false, generated: false, serial: false, hasDefault: false, ...over };
}
function table(name: string, columns: ColumnInfo[], extra: Partial<TableInfo> = {}): TableInfo {
  return { oid: hashString(name), schema: 'public', name, columns, checks: [], uniques: [], overlaps: [], fks: [], partition: null, ...extra };
}
const pk = (name: string, cols: string[]) => ({ name, cols, partial: false, kind: 'primary key' as const });
const fk = (name: string, cols: string[], parent: string, parentCols: string[]) => ({ name, cols, parent: `public.${parent}`, parentCols, def: '' });

describe('planCustom: keys, one-to-one, join tables, caps', () => {
  const parents = [table('a', [col('id', 'integer', { serial: true })], { uniques: [pk('a_pkey', ['id'])] }), table('b', [col('id', 'uuid')], { uniques: [pk('b_pkey', ['id'])] })];
  it('a UNIQUE foreign key takes distinct parents and caps the table at the parent count, and says so', () => {
    const one = table('one', [col('id', 'integer', { serial: true }), col('a_id', 'integer')], { uniques: [pk('one_pkey', ['id']), { name: 'one_a_id_key', cols: ['a_id'], partial: false, kind: 'unique' }], fks: [fk('one_a_fk', ['a_id'], 'a', ['id'])] });
    const ds = planCustom([parents[0], one], ctx, { rowsPerTable: 50 });
    const a = ds.tables.find((t) => t.name === 'a')!;
    const t = ds.tables.find((t) => t.name === 'one')!;
    expect(a.rows).toBe(50);
    const refs = Array.from({ length: t.rows }, (_, i) => t.row(i)[1]);
    expect(new Set(refs).size).toBe(t.rows);
    expect(refs.every((x) => typeof x === 'number' && x >= 1 && x <= 50)).toBe(true);
    expect(ds.notes).toContain('public.one: one-to-one with public.a through one_a_id_key (a_id): each row takes a distinct parent');
    // Ask for more rows than parents: capped.
    const capped = planCustom([parents[0], one], ctx, { rowsPerTable: 50 });
    expect(capped.tables.find((x) => x.name === 'one')!.rows).toBeLessThanOrEqual(50);
  });
  it('a join table (composite PK of two FKs) holds distinct pairs over both parents', () => {
    const j = table('ab', [col('a_id', 'integer'), col('b_id', 'uuid')], { uniques: [pk('ab_pkey', ['a_id', 'b_id'])], fks: [fk('ab_a', ['a_id'], 'a', ['id']), fk('ab_b', ['b_id'], 'b', ['id'])] });
    const ds = planCustom([...parents, j], ctx, { rowsPerTable: 40 });
    const t = ds.tables.find((x) => x.name === 'ab')!;
    const pairs = Array.from({ length: t.rows }, (_, i) => JSON.stringify(t.row(i)));
    expect(new Set(pairs).size).toBe(t.rows);
    const bIds = new Set(Array.from({ length: 40 }, (_, i) => ds.tables.find((x) => x.name === 'b')!.row(i)[0]));
    expect(pairs.every((p) => bIds.has(JSON.parse(p)[1]))).toBe(true);
    expect(new Set(pairs.map((p) => JSON.parse(p)[0])).size).toBeGreaterThan(1);
    expect(new Set(pairs.map((p) => JSON.parse(p)[1])).size).toBeGreaterThan(1);
  });
  it('a key over a tiny domain caps the rows and says why', () => {
    const tiny = table('tiny', [col('flag', 'boolean')], { uniques: [pk('tiny_pkey', ['flag'])] });
    const ds = planCustom([tiny], ctx, { rowsPerTable: 10 });
    expect(ds.tables[0].rows).toBe(2);
    expect(ds.notes[0]).toBe('public.tiny: 10 rows asked, 2 loaded — primary key tiny_pkey (flag) allows at most flag values = 2');
  });
  it('a NOT NULL column of an unknown type without default is a planned error with the fix line', () => {
    const t = table('shapes', [col('id', 'integer', { serial: true }), col('at', 'txid_snapshot', { category: 'U' })]);
    const e = (() => {
      try {
        planCustom([t], ctx, {});
      } catch (x) {
        return x;
      }
    })() as SeedPlanError;
    expect(e).toBeInstanceOf(SeedPlanError);
    expect(e.problems[0].fix).toBe('dataset.generators: { "public.shapes.at": "const:10:20:" }');
    // The fix, applied, plans.
    expect(planCustom([t], ctx, { generators: { 'shapes.at': 'const:10:20:' } }).tables[0].row(0)).toEqual([1, '10:20:']);
  });
  it('an exclusive arc (exactly one of the columns set) is planned: each row sets one, in turn', () => {
    expect(exclusiveArc('num_nonnulls(post_id, "Comment Id") = 1')).toEqual(['post_id', 'Comment Id']);
    expect(exclusiveArc('((a IS NULL) <> (b IS NULL))')).toEqual(['a', 'b']);
    expect(exclusiveArc('num_nulls(a, b, c) = 2')).toEqual(['a', 'b', 'c']);
    expect(exclusiveArc('num_nonnulls(a, b) = 2')).toBeUndefined();
    expect(exclusiveArc('((a IS NULL) <> (b IS NOT NULL))')).toBeUndefined();
    const t = table('reports', [col('id', 'integer', { serial: true }), col('a', 'integer', { notNull: false }), col('b', 'text', { notNull: false }), col('c', 'integer', { notNull: false })], {
      uniques: [pk('reports_pkey', ['id'])],
      checks: [{ name: 'reports_one', def: 'CHECK ((num_nonnulls(a, b, c) = 1))' }],
    });
    const ds = planCustom([t], ctx, { rowsPerTable: 60 });
    for (let i = 0; i < 60; i++) expect(ds.tables[0].row(i).slice(1).filter((v) => v !== null), `row ${i}`).toHaveLength(1);
  });
  it('generator keys match names holding dots, quoted or not, and a table name in two schemas needs its schema', () => {
    const a = { ...table('user.group', [col('id', 'integer', { serial: true }), col('granted by', 'text', { notNull: false })]), schema: 'auth' };
    const b = { ...table('orders', [col('id', 'integer', { serial: true }), col('line.no', 'integer')]), schema: 'billing' };
    const c = { ...table('orders', [col('id', 'integer', { serial: true }), col('line.no', 'integer')]), schema: 'audit' };
    const plan = (g: Record<string, string>) => planCustom([a, b, c], ctx, { rowsPerTable: 3, generators: g });
    expect(plan({ 'auth.user.group.granted by': 'const:x' }).tables.find((t) => t.name === 'user.group')!.row(0)).toEqual([1, 'x']);
    expect(plan({ 'auth."user.group"."granted by"': 'const:y' }).tables.find((t) => t.name === 'user.group')!.row(1)).toEqual([2, 'y']);
    expect(plan({ 'billing.orders.line.no': 'const:7' }).tables.find((t) => t.schema === 'billing')!.row(0)).toEqual([1, '7']);
    expect(() => plan({ 'orders.line.no': 'const:7' })).toThrow('generator override orders.line.no: matches billing.orders.line.no and audit.orders.line.no');
    expect(() => plan({ 'billing.orders.nope': 'const:7' })).toThrow('generator override billing.orders.nope: table billing.orders has no column nope');
  });
  it('an identity or serial column with a CHECK on its lower bound starts there', () => {
    const t = table('promos', [col('id', 'integer', { identity: true })], { uniques: [pk('promos_pkey', ['id'])], checks: [{ name: 'promos_id_check', def: 'CHECK ((id >= 1000))' }] });
    const ds = planCustom([t], ctx, { rowsPerTable: 5 });
    expect(Array.from({ length: 5 }, (_, i) => ds.tables[0].row(i)[0])).toEqual([1000, 1001, 1002, 1003, 1004]);
  });
  it('contrib and geometric types have generators, distinct per row in a unique key', () => {
    const types = ['ltree', 'hstore', 'point', 'cube', 'seg', 'box', 'circle', 'tsquery', 'pg_lsn'];
    const t = table('shapes', [col('id', 'integer', { serial: true }), ...types.map((x) => col(x, x, { category: x === 'point' || x === 'box' || x === 'circle' ? 'G' : 'U' }))], {
      uniques: [pk('shapes_pkey', ['id']), ...types.map((x) => ({ name: `shapes_${x}_key`, cols: [x], partial: false, kind: 'unique' as const }))],
    });
    const ds = planCustom([t], ctx, { rowsPerTable: 200 });
    const rows = Array.from({ length: 200 }, (_, i) => ds.tables[0].row(i));
    types.forEach((x, j) => expect(new Set(rows.map((r) => r[j + 1])).size, x).toBe(200));
    expect(String(rows[0][1])).toMatch(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/);
  });
});

describe('planCustom: FOREIGN KEYs overlapping in some columns (multi-tenant)', () => {
  const tenants = table('tenants', [col('id', 'integer', { serial: true })], { uniques: [pk('tenants_pkey', ['id'])] });
  const scoped = (name: string) =>
    table(name, [col('tenant_id', 'integer'), col('id', 'integer')], { uniques: [pk(`${name}_pkey`, ['tenant_id', 'id'])], fks: [fk(`${name}_tenant`, ['tenant_id'], 'tenants', ['id'])] });
  const users = scoped('users');
  const teams = scoped('teams');
  const members = table('team_members', [col('tenant_id', 'integer'), col('team_id', 'integer'), col('user_id', 'integer')], {
    uniques: [pk('team_members_pkey', ['tenant_id', 'team_id', 'user_id'])],
    fks: [fk('tm_tenant', ['tenant_id'], 'tenants', ['id']), fk('tm_team', ['tenant_id', 'team_id'], 'teams', ['tenant_id', 'id']), fk('tm_user', ['user_id', 'tenant_id'], 'users', ['id', 'tenant_id'])],
  });
  const docs = table('documents', [col('tenant_id', 'integer'), col('id', 'integer'), col('owner_id', 'integer'), col('folder_id', 'integer', { notNull: false }), col('reviewer_id', 'integer', { notNull: false })], {
    uniques: [pk('documents_pkey', ['tenant_id', 'id'])],
    fks: [fk('doc_folder', ['tenant_id', 'folder_id'], 'documents', ['tenant_id', 'id']), fk('doc_owner', ['tenant_id', 'owner_id'], 'users', ['tenant_id', 'id']), fk('doc_reviewer', ['tenant_id', 'reviewer_id'], 'users', ['tenant_id', 'id'])],
  });
  const rowsOf = (ds: ReturnType<typeof planCustom>, name: string) => {
    const t = ds.tables.find((x) => x.name === name)!;
    return Array.from({ length: t.rows }, (_, i) => Object.fromEntries(t.columns.map((c, j) => [c, t.row(i)[j]])));
  };
  for (const rowsPerTable of [12, 60]) {
    it(`every parent of a row agrees on tenant_id; the join table holds distinct combinations, capped at what the parents allow (${rowsPerTable} rows asked)`, () => {
      const ds = planCustom([tenants, users, teams, members, docs], ctx, { rowsPerTable });
      const u = new Set(rowsOf(ds, 'users').map((r) => `${r.tenant_id}/${r.id}`));
      const tm = rowsOf(ds, 'teams');
      const tset = new Set(tm.map((r) => `${r.tenant_id}/${r.id}`));
      const m = rowsOf(ds, 'team_members');
      for (const r of m) {
        expect(tset.has(`${r.tenant_id}/${r.team_id}`), JSON.stringify(r)).toBe(true);
        expect(u.has(`${r.tenant_id}/${r.user_id}`), JSON.stringify(r)).toBe(true);
      }
      expect(new Set(m.map((r) => `${r.tenant_id}/${r.team_id}/${r.user_id}`)).size).toBe(m.length);
      // What the parents allow, counted from their rows: Σ over tenants of teams × users.
      const per = (rows: Record<string, any>[]) => {
        const a = new Map<any, number>();
        for (const r of rows) a.set(r.tenant_id, (a.get(r.tenant_id) ?? 0) + 1);
        return a;
      };
      const ut = per(rowsOf(ds, 'users'));
      const allowed = [...per(tm)].reduce((a, [t, n]) => a + n * (ut.get(t) ?? 0), 0);
      expect(m.length).toBe(Math.min(rowsPerTable, allowed));
      if (allowed < rowsPerTable) expect(ds.notes.some((n) => n.startsWith(`public.team_members: ${rowsPerTable} rows asked, ${allowed} loaded — primary key team_members_pkey`))).toBe(true);
      // Documents: the owner in the document's tenant; a folder is an earlier document of the tenant or NULL; a reviewer (nullable) likewise or NULL.
      const d = rowsOf(ds, 'documents');
      const dset = new Set(d.map((r) => `${r.tenant_id}/${r.id}`));
      for (const r of d) {
        expect(u.has(`${r.tenant_id}/${r.owner_id}`), JSON.stringify(r)).toBe(true);
        if (r.folder_id !== null) expect(dset.has(`${r.tenant_id}/${r.folder_id}`), JSON.stringify(r)).toBe(true);
        if (r.reviewer_id !== null) expect(u.has(`${r.tenant_id}/${r.reviewer_id}`), JSON.stringify(r)).toBe(true);
      }
      expect(d.some((r) => r.folder_id !== null)).toBe(true);
      expect(d.some((r) => r.reviewer_id !== null)).toBe(true);
      expect(d.some((r) => r.folder_id === null)).toBe(true);
      expect(new Set(d.map((r) => r.tenant_id)).size).toBeGreaterThan(1);
    });
  }
  it('groups over groups: a comment agrees with its document (itself a group) and its author, whatever the order of the tables', () => {
    const comments = table('comments', [col('id', 'integer', { serial: true }), col('tenant_id', 'integer'), col('doc_id', 'integer'), col('author_id', 'integer')], {
      uniques: [pk('comments_pkey', ['id'])],
      fks: [fk('c_doc', ['tenant_id', 'doc_id'], 'documents', ['tenant_id', 'id']), fk('c_author', ['author_id', 'tenant_id'], 'users', ['id', 'tenant_id'])],
    });
    const ds = planCustom([comments, docs, members, teams, users, tenants], ctx, { rowsPerTable: 50 });
    const u = new Set(rowsOf(ds, 'users').map((r) => `${r.tenant_id}/${r.id}`));
    const d = new Set(rowsOf(ds, 'documents').map((r) => `${r.tenant_id}/${r.id}`));
    const c = rowsOf(ds, 'comments');
    expect(c).toHaveLength(50);
    for (const r of c) {
      expect(d.has(`${r.tenant_id}/${r.doc_id}`), JSON.stringify(r)).toBe(true);
      expect(u.has(`${r.tenant_id}/${r.author_id}`), JSON.stringify(r)).toBe(true);
    }
  });
  it('a NOT NULL follower whose parent has no row with the shared value is a planned error; a nullable one is NULL there', () => {
    // projects are only in tenant 1 (const), tasks' lead (users) spans all tenants.
    const projects = table('projects', [col('tenant_id', 'integer'), col('id', 'integer')], { uniques: [pk('projects_pkey', ['tenant_id', 'id'])] });
    const tasks = (notNull: boolean) =>
      table('tasks', [col('id', 'integer', { serial: true }), col('tenant_id', 'integer'), col('owner_id', 'integer'), col('project_id', 'integer', { notNull })], {
        uniques: [pk('tasks_pkey', ['id'])],
        fks: [fk('task_owner', ['tenant_id', 'owner_id'], 'users', ['tenant_id', 'id']), fk('task_project', ['tenant_id', 'project_id'], 'projects', ['tenant_id', 'id'])],
      });
    const generators = { 'projects.tenant_id': 'const:999' };
    const e = (() => {
      try {
        planCustom([tenants, users, projects, tasks(true)], ctx, { rowsPerTable: 20, generators });
      } catch (x) {
        return x;
      }
    })() as SeedPlanError;
    expect(e).toBeInstanceOf(SeedPlanError);
    expect(e.problems.map((p) => `${p.table}.${p.column} ${p.constraint}`)).toEqual(['public.tasks.tenant_id, project_id FOREIGN KEY task_project']);
    expect(e.problems[0].why).toMatch(/no public\.users row \(through task_owner\) has a public\.projects row with the same tenant_id/);
    const ds = planCustom([tenants, users, projects, tasks(false)], ctx, { rowsPerTable: 20, generators });
    expect(rowsOf(ds, 'tasks').every((r) => r.project_id === null)).toBe(true);
  });
  it('still unsupported, said before a row is loaded: shared columns spread over two FKs, and chains of overlaps', () => {
    const p = (name: string, cols: string[]) => table(name, cols.map((c) => col(c, 'integer')), { uniques: [pk(`${name}_pkey`, cols)] });
    const spread = table('t', [col('a', 'integer'), col('b', 'integer'), col('c', 'integer')], { fks: [fk('t_ab', ['a', 'b'], 'p1', ['a', 'b']), fk('t_bc', ['b', 'c'], 'p2', ['b', 'c']), fk('t_ac', ['a', 'c'], 'p3', ['a', 'c'])] });
    const chain = table('u', [col('a', 'integer'), col('b', 'integer'), col('c', 'integer'), col('d', 'integer')], { fks: [fk('u_ab', ['a', 'b'], 'p1', ['a', 'b']), fk('u_bc', ['b', 'c'], 'p2', ['b', 'c']), fk('u_cd', ['c', 'd'], 'p4', ['c', 'd'])] });
    const e = (() => {
      try {
        planCustom([p('p1', ['a', 'b']), p('p2', ['b', 'c']), p('p3', ['a', 'c']), p('p4', ['c', 'd']), spread, chain], ctx, { rowsPerTable: 10 });
      } catch (x) {
        return x;
      }
    })() as SeedPlanError;
    expect(e).toBeInstanceOf(SeedPlanError);
    expect(e.problems.map((x) => `${x.table}.${x.column} ${x.constraint}`)).toEqual(['public.t.a, c FOREIGN KEY t_ac', 'public.u.c FOREIGN KEY u_cd']);
    expect(e.problems[0].why).toMatch(/several FOREIGN KEYs \(t_ab, t_bc\).*unsupported shape/);
    expect(e.problems[1].why).toMatch(/chain of overlaps/);
    expect(e.problems[0].fix).toMatch(/seed without t_ac/);
  });
});

describe('the production-shaped scenario', () => {
  const ddl = productionShapedDdl();
  it('the committed DDL is the generator output', () => {
    expect(readFileSync(new URL('../../scenarios/production-shaped.sql', import.meta.url), 'utf8')).toBe(ddl);
  });
  it('is production-shaped: ≥ 80 tables, ≥ 150 indexes, ≥ 100 FKs, uuid via pgcrypto, the constraint classes', () => {
    const tables = (ddl.match(/^create table (?!\S+ partition of)/gm) ?? []).length;
    const fks = (ddl.match(/\breferences\b/g) ?? []).length;
    const pks = (ddl.match(/primary key/g) ?? []).length;
    const uniques = (ddl.match(/\bunique\b/g) ?? []).length;
    const indexes = (ddl.match(/^create (unique )?index/gm) ?? []).length;
    expect(tables).toBeGreaterThanOrEqual(80);
    expect(fks).toBeGreaterThanOrEqual(100);
    expect(pks + uniques + indexes).toBeGreaterThanOrEqual(150);
    expect(ddl).toMatch(/create extension if not exists pgcrypto/);
    expect(ddl).toMatch(/uuid primary key default gen_random_uuid\(\)/);
    expect(ddl).toMatch(/primary key \(\w+, \w+\)/);
    expect(ddl).toMatch(/parent_id integer references categories \(id\)/);
    expect(ddl).toMatch(/create type \w+ as enum/);
    expect(ddl).toMatch(/create domain/);
    expect(ddl).toMatch(/partition by range/);
    expect(ddl).toMatch(/organisation_id uuid primary key references organisations/); // one-to-one, shared key
  });
});

describe('post-load statements are split by the SQL lexer', () => {
  it('a ;\\n inside a string, a dollar-quoted body or a comment does not end a statement', () => {
    const post = `alter table only public.t add constraint t_pkey primary key (id);
-- a comment with a ;
create function public.f() returns text language sql as $$ select 'a;
b' $$;
comment on table public.t is 'semi;
colon';
create index t_x on public.t (x);
`;
    const waves = postLoadWaves(post, [{ schema: 'public', name: 't' }]);
    expect(waves[0]).toEqual([['alter table only public.t add constraint t_pkey primary key (id)', 'create index t_x on public.t (x)']]);
    expect(waves[1]).toEqual([["create function public.f() returns text language sql as $$ select 'a;\nb' $$", "comment on table public.t is 'semi;\ncolon'"]]);
  });
});

describe('extension-provided functions a DDL needs on an old major', () => {
  it('gen_random_uuid() needs pgcrypto before 13 unless the DDL creates it; uuid_generate_v4() always needs uuid-ossp', async () => {
    const { extensionsNeeded } = await import('../../lab/seed.ts');
    expect(extensionsNeeded('create table t (id uuid default gen_random_uuid())', 11)).toEqual(['pgcrypto']);
    expect(extensionsNeeded('create table t (id uuid default gen_random_uuid())', 13)).toEqual([]);
    expect(extensionsNeeded('CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;\ncreate table t (id uuid default public.gen_random_uuid())', 12)).toEqual([]);
    expect(extensionsNeeded(`create table t (id uuid default uuid_generate_v4(), note text default 'gen_random_uuid()') -- gen_random_uuid()`, 11)).toEqual(['uuid-ossp']);
    expect(extensionsNeeded('create extension "uuid-ossp";\ncreate table t (id uuid default uuid_generate_v4())', 11)).toEqual([]);
  });
});
