/** Pure parts of seeding: COPY escaping, load planning, post-load waves, generator determinism. */
import { describe, expect, it } from 'vitest';
import { copyLine, copyValue, dependencyWaves, lineCol, planSeed, postLoadWaves } from '../../lab/seed.ts';
import { applyOverrides, arrayLiteral, getPreset, isoAt, money, Rng, type TableLoad } from '../../scenarios/datasets/index.ts';
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
