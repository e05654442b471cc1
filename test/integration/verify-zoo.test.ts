/**
 * The verify zoo (issue 20): a LATIN1 PostgreSQL 11 source and a UTF8 17 target holding the same
 * rows must verify clean — non-ASCII text, text keys (hash buckets), floats inside composites,
 * geometric types and ranges, float arrays, a table without a key — and each kind of damage on the
 * target must be found and narrowed to its rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, startPair, type Pair } from '../helpers/clusters.ts';
import { verify } from '../../migration/verify.ts';

let pair: Pair;
const DDL = `
  create type pt2 as (x float8, y float4, label text);
  create table txt (k text primary key, v text);
  create table geo (id int primary key, c pt2, p point, b box, r numrange, fr float8[]);
  create table farr (id int primary key, a float8[], b float4[]);
  create table nokey (a int, t text);
  create table big (id int primary key, v text);`;
const DATA = `
  insert into txt select 'clé ' || g || ' ' || chr(224 + g % 20), 'çà et là ' || g from generate_series(1, 300) g;
  insert into geo select g, row((g / 7.0)::float8, (g / 3.0)::float4, 'é' || g)::pt2, point(g / 7.0, 0.1::float8 + 0.2::float8), box(point(0.1, 0.2), point(g / 3.0, 1e-300::float8)), numrange(0.1, g), array[(g / 7.0)::float8, 0.1::float8 + 0.2::float8] from generate_series(1, 50) g;
  insert into farr values (1, null, null), (2, '{}', '{}'), (3, '{NULL,1.5}', '{0.1}'), (4, '{{1,2},{3,4}}', null), (5, array[0.1::float8 + 0.2::float8, '-0'::float8, 'NaN', 'Infinity'], '{1e-40}');
  insert into nokey select g % 10, 'ü ' || (g % 10) from generate_series(1, 40) g;
  insert into big select g, repeat('x', 200) || g from generate_series(1, 3000) g;
  analyze;`;

beforeAll(async () => {
  pair = await startPair(11, 17, { old: { locale: 'C', encoding: 'LATIN1' } });
  for (const url of [pair.old.url, pair.new.url]) {
    await sql(url, DDL);
    await sql(url, DATA);
  }
});
afterAll(async () => pair?.destroy());

describe('verify zoo: LATIN1 11 → UTF8 17', () => {
  it('the same rows verify clean (no false mismatch from encoding or float output)', async () => {
    expect((await sql(pair.old.url, `select pg_encoding_to_char(encoding) as e from pg_database where datname = current_database()`))[0].e).toBe('LATIN1');
    const v = await verify({ source: pair.old.url, target: pair.new.url, chunkRows: 100, sampleRows: 20 });
    const bad = v.tables.filter((t) => !t.ok).map((t) => ({ table: t.table, mismatches: t.mismatches.length, rows: t.differingRows.slice(0, 3) }));
    expect(bad).toEqual([]);
    const txt = v.tables.find((t) => t.name === 'txt')!;
    expect(txt.strategy).toBe('hash-bucket');
    expect(txt.chunks).toBeGreaterThan(1);
    expect(v.tables.find((t) => t.name === 'nokey')!.sample.rows).toBeGreaterThan(0);
  });

  it('finds and narrows each kind of damage on the target', async () => {
    const t = pair.new.url;
    await sql(t, `update farr set a = '{}' where id = 1`); // NULL → '{}'
    await sql(t, `update farr set a = '{{1,2,3,4}}' where id = 4`); // same elements, other shape
    await sql(t, `update txt set v = v || '!' where k = 'clé 7 ç'`);
    await sql(t, `update geo set c = row((c).x + 1e-9, (c).y, (c).label)::pt2 where id = 5`);
    await sql(t, `delete from nokey where ctid = (select ctid from nokey where a = 3 limit 1)`);
    await sql(t, `insert into nokey values (99, 'extra')`);
    await sql(t, `update big set v = 'changed' where id = 1500`);
    const v = await verify({ source: pair.old.url, target: t, chunkRows: 100, sampleRows: 0 });
    const by = (name: string) => v.tables.find((x) => x.name === name)!;
    expect(by('farr').ok).toBe(false);
    expect(by('farr').differingRows.map((d) => d.key).sort((a: any, b: any) => a.id - b.id)).toEqual([{ id: 1 }, { id: 4 }]);
    expect(by('txt').differingRows.map((d) => [d.kind, d.key])).toEqual([['different', { k: 'clé 7 ç' }]]);
    expect(by('geo').differingRows.map((d) => d.key)).toEqual([{ id: 5 }]);
    const nk = by('nokey');
    expect(nk.ok).toBe(false);
    expect(nk.differingRows.map((d) => [d.kind, d.source ?? d.target]).sort()).toEqual([
      ['extra_on_target', '(99,extra)'],
      ['missing_on_target', '(3,"ü 3")'],
    ]);
    expect(by('big').differingRows.map((d) => [d.kind, d.key])).toEqual([['different', { id: 1500 }]]);
    expect(v.tables.filter((x) => !x.ok).map((x) => x.name).sort()).toEqual(['big', 'farr', 'geo', 'nokey', 'txt']);
  });
});
