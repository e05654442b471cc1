/**
 * The seeder's COPY binary encoder against real servers (the oldest and a recent major): every type
 * it encodes, at its awkward values, loads to exactly what COPY text of the same values loads; a value
 * without an exact binary form falls back to text and still loads; a seed in binary and one forced to
 * text give the same content.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { startCluster } from '../helpers/clusters.ts';
import { BINARY_TYPES, EncodeError, copyBatches, copyFormat } from '../../lab/seed-copy.ts';
import { seed } from '../../lab/seed.ts';
import { quoteIdent, withClient, withDatabase } from '../../migration/pg.ts';
import type { TableLoad, Value } from '../../scenarios/datasets/gen.ts';

const COLUMNS: [string, string, string, Value[]][] = [
  // name, SQL type, base type as the seeder resolves it, values
  ['i2', 'smallint', 'int2', [0, -32768, 32767, '17']],
  ['i4', 'integer', 'int4', [-2147483648, 2147483647, 1, ' 42 ']],
  ['i8', 'bigint', 'int8', [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, '-9007199254740991']],
  ['f4', 'real', 'float4', [1.5, -0.25, 'NaN', '1e10']],
  ['f8', 'double precision', 'float8', [Math.PI, -1e-300, 'Infinity', '-Infinity']],
  ['b', 'boolean', 'bool', [true, false, 't', 'false']],
  ['t', 'text', 'text', ['', 'plain', 'tab\there, newline\nthere, back\\slash', 'ünïcödé ✓ '.repeat(20)]],
  ['vc', 'varchar(12)', 'varchar', ['abc', 'é', 12, true]],
  ['bp', 'char(5)', 'bpchar', ['ab', 'abcde', 'x ', 'Ω']],
  ['e', 'mood', 'enum', ['ok', 'sad', 'ok', 'sad']],
  ['dm', 'positive', 'int4', [1, 2, 3, 4]],
  ['u', 'uuid', 'uuid', ['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-4fff-bfff-ffffffffffff', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '123e4567-e89b-12d3-a456-426614174000']],
  ['tz', 'timestamptz', 'timestamptz', ['2024-01-02T03:04:05.678Z', '1999-12-31 23:59:59.999999+00', '2000-01-01T00:00:00+05:30', '1970-01-01 00:00:00-0800']],
  ['ts', 'timestamp', 'timestamp', ['2024-02-29 12:00:00', '2000-01-01T00:00:00.000001', '1969-07-20 20:17:40+02', '2038-01-19T03:14:08.5Z']],
  ['d', 'date', 'date', ['2000-01-01', '1999-12-31', '2024-02-29', '1900-03-01']],
  ['n', 'numeric', 'numeric', ['0', '-0.00', '123456789012345678901234567890.000000000000000000001', 'NaN']],
  ['n2', 'numeric(12,2)', 'numeric', [1234.5, '-0.01', '9999999999.994', '+10000.1']],
  ['n3', 'numeric(8,4)', 'numeric', ['.5', '0.0001', '1000', '1.']],
  ['j', 'json', 'json', ['{"b": 1,  "a": [1, 2]}', '[]', '"x"', 'null']],
  ['jb', 'jsonb', 'jsonb', ['{"b": 1,  "a": [1, 2]}', '{"ü": "✓"}', '1.50', 'true']],
  ['by', 'bytea', 'bytea', ['\\x', '\\x00ff10', '\\xDEADbeef', '\\x' + 'ab'.repeat(3000)]],
];

const DDL = `create type mood as enum ('ok', 'sad'); create domain positive as integer check (value > 0);`;

function table(name: string, columns: string[], rows: Value[][]): TableLoad {
  return { schema: 'public', name, columns, rows: rows.length, dependsOn: [], row: (i) => rows[i] };
}

async function load(url: string, t: TableLoad, types?: string[]): Promise<void> {
  const binary = copyFormat(types) === 'binary';
  await withClient(url, async (c) => {
    const sql = `copy ${quoteIdent(t.name)} (${t.columns.map(quoteIdent).join(', ')}) from stdin${binary ? ' (format binary)' : ''}`;
    await pipeline(Readable.from([...copyBatches(t, 0, t.rows, types)].map((b) => b.buf)), c.query(copyFrom(sql)));
  });
}

const rowsText = (url: string, t: string) => withClient(url, async (c) => (await c.query(`select x::text as r from ${quoteIdent(t)} x order by id`)).rows.map((r) => r.r));

for (const major of [11, 17]) {
  describe(`COPY binary on PostgreSQL ${major}`, () => {
    let cluster: Awaited<ReturnType<typeof startCluster>>;
    const tmp = mkdtempSync(join(tmpdir(), `cutover-seed-binary-${major}-`));
    beforeAll(async () => {
      cluster = await startCluster({ major }, tmp);
    });
    afterAll(async () => {
      await cluster?.destroy();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('every encoded type loads to what COPY text of the same values loads', async () => {
      expect(new Set(COLUMNS.map((c) => c[2]))).toEqual(new Set([...BINARY_TYPES]));
      const cols = ['id', ...COLUMNS.map((c) => c[0])];
      const rows = COLUMNS[0][3].map((_, i) => [i, ...COLUMNS.map((c) => c[3][i])]);
      // a NULL in every column
      rows.push([rows.length, ...COLUMNS.map(() => null)]);
      const types = ['int4', ...COLUMNS.map((c) => c[2])];
      await withClient(cluster.url, async (c) => {
        await c.query(DDL);
        for (const t of ['as_binary', 'as_text']) await c.query(`create table ${t} (id int, ${COLUMNS.map(([n, type]) => `${n} ${type}`).join(', ')})`);
      });
      expect(copyFormat(types)).toBe('binary');
      await load(cluster.url, table('as_binary', cols, rows), types);
      await load(cluster.url, table('as_text', cols, rows));
      const [bin, text] = [await rowsText(cluster.url, 'as_binary'), await rowsText(cluster.url, 'as_text')];
      expect(bin.length).toBe(rows.length);
      expect(bin).toEqual(text);
    });

    it('a value with no exact binary form is an EncodeError before anything is sent; a type without an encoder means text', () => {
      const t = (v: Value, type: string) => () => [...copyBatches(table('x', ['a'], [[v]]), 0, 1, [type])];
      expect(t('2024-01-01 00:00:00', 'timestamptz')).toThrow(EncodeError); // no zone: the session TimeZone decides
      expect(t('1e5', 'numeric')).toThrow(EncodeError);
      expect(t('infinity', 'date')).toThrow(EncodeError);
      expect(t('12345678901234567890', 'int8')).toThrow(EncodeError);
      expect(t(40000, 'int2')).toThrow(EncodeError);
      expect(t('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', 'uuid')).toThrow(EncodeError);
      expect(t('\\x0g', 'bytea')).toThrow(EncodeError);
      expect(copyFormat(['int4', '_int4'])).toBe('text');
      expect(copyFormat(undefined)).toBe('text');
    });

    it('a seed loads binary where it can, falls back to text per table, and gives the content text COPY gives', async () => {
      const ddl = join(tmp, 'schema.sql');
      writeFileSync(ddl, `create table events (id bigint primary key, at timestamptz not null, amount numeric(10,2), tags text[]);
create table plain (id bigint primary key, at timestamptz not null, amount numeric(10,2), note text);`);
      const hashes: string[] = [];
      for (const copyFormat of ['binary', 'text'] as const) {
        const db = `fallback_${copyFormat}`;
        await withClient(cluster.url, (c) => c.query(`create database ${db}`));
        const url = withDatabase(cluster.url, db);
        // A timestamptz without a zone has no exact binary form: plain falls back to text (the failed COPY left nothing).
        const r = await seed({ url, preset: 'custom', ddl, scale: 2000, seed: 3, progress: 'silent', copyFormat, generators: { 'plain.at': 'const:2024-05-06 07:08:09' } });
        expect(Object.fromEntries(r.tables.map((t) => [t.table, t.format]))).toEqual({ events: 'text', plain: 'text' });
        const pay = await seed({ url, preset: 'payments', scale: 3000, seed: 3, progress: 'silent', copyFormat });
        expect(pay.tables.every((t) => t.format === copyFormat)).toBe(true);
        expect(r.rows + pay.rows).toBe(5000);
        hashes.push(
          await withClient(url, async (c) => {
            const parts: string[] = [];
            for (const t of ['events', 'plain', 'accounts', 'orders', 'payments', 'ledger_entries']) parts.push((await c.query(`select count(*) || ':' || md5(string_agg(t::text, '|' order by t::text)) as h from ${t} t`)).rows[0].h);
            return parts.join(' ');
          }),
        );
      }
      expect(hashes[0]).toBe(hashes[1]);
    });
  });
}
