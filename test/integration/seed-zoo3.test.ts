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

const { tmp, freshDb } = seedClusters([11, 17], 'cutover-zoo3-');
const fixture = (name: string) => readFileSync(new URL(`../fixtures/zoo3/${name}.sql`, import.meta.url), 'utf8');

function ddlFile(name: string, major: number): string {
  const f = join(tmp, `${name}${major}.sql`);
  writeFileSync(f, ddlFor(fixture(name), major));
  return f;
}

const q1 = async <T = any>(url: string, sql: string) => withClient(url, async (c) => (await c.query(sql)).rows[0] as T);

describe.each([11, 17])('zoo3 shapes on PostgreSQL %i', (major) => {
  it('a Rails/Django web app: join tables, polymorphic columns, STI, citext, ltree, uuid-ossp, arrays', async () => {
    const url = await freshDb(major, 'webapp');
    const r = await seed({ url, preset: 'custom', ddl: ddlFile('webapp', major), scale: 6000, seed: 11, progress: 'silent' });
    const counts = await withClient(url, (c) => tableCounts(c, ['public']));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    expect(Object.keys(counts)).toHaveLength(17);
    const v = await withClient(url, (c) => validateEverything(c, ['public']));
    expect(v.invalidIndexes).toEqual([]);
    expect(v.fks).toBe(13);
    expect(r.rows).toBe(Object.values(counts).reduce((a, b) => a + b, 0));
    console.log(r.notes.join('\n'));
  });

  it('a warehouse star schema: composite fact keys, tiny key domains, MATCH FULL, percentages', async () => {
    const url = await freshDb(major, 'warehouse');
    const r = await seed({ url, preset: 'custom', ddl: ddlFile('warehouse', major), scale: 12_000, seed: 11, progress: 'silent' });
    const counts = await withClient(url, (c) => tableCounts(c, ['dw']));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    const v = await withClient(url, (c) => validateEverything(c, ['dw']));
    expect(v.invalidIndexes).toEqual([]);
    console.log(counts, r.notes.join('\n'));
  });

  it('a multi-schema app with awkward names: reserved words, spaces, dots, mixed case, cycles', async () => {
    const url = await freshDb(major, 'awkward');
    const schemas = ['auth', 'billing', 'audit', 'Mixed Case'];
    const r = await seed({ url, preset: 'custom', ddl: ddlFile('awkward', major), scale: 6000, seed: 11, progress: 'silent' });
    const counts = await withClient(url, (c) => tableCounts(c, schemas));
    for (const [t, n] of Object.entries(counts)) expect(n, `rows in ${t}`).toBeGreaterThan(0);
    const v = await withClient(url, (c) => validateEverything(c, schemas));
    expect(v.invalidIndexes).toEqual([]);
    console.log(counts, r.notes.join('\n'));
  });
});
