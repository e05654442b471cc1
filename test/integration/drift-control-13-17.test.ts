/**
 * Identical-database controls on 13 → 17 (one pair): the zoo schema made by hand on both sides, and
 * a production-shaped schema copied by the tool's own copySchema, must give no error finding.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { drift } from '../../migration/drift/index.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { withDatabase } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';
import { COPIED, GLOBALS, baseFor } from '../helpers/drift-zoo.ts';

const OLD = 13;
const NEW = 17;
const tmp = mkdtempSync(join(tmpdir(), `cutover-drift-${OLD}-${NEW}-`));
let old: StartedCluster, neu: StartedCluster;
const db = (c: StartedCluster, name: string) => withDatabase(c.url, name);

beforeAll(async () => {
  [old, neu] = await Promise.all([startCluster({ major: OLD, name: 'old', timezone: 'UTC' }, tmp), startCluster({ major: NEW, name: 'new', timezone: 'UTC' }, tmp)]);
  for (const [c, major] of [[old, OLD], [neu, NEW]] as const) {
    await sql(c.url, GLOBALS);
    for (const d of ['control', 'copied']) await sql(c.url, `create database ${d}`);
    await sql(db(c, 'control'), baseFor(Math.min(OLD, major)));
  }
  await sql(db(old, 'copied'), COPIED);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([old, neu].filter(Boolean).map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

it(`control ${OLD} → ${NEW}: the same schema by hand on both sides has no error finding`, async () => {
  const r = await drift({ source: db(old, 'control'), target: db(neu, 'control') });
  const errors = r.findings.filter((f) => f.severity === 'error');
  expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
  expect(r.notes.filter((n) => /check failed/.test(n))).toEqual([]);
});

it(`control ${OLD} → ${NEW}: a schema copied by copySchema has no error finding`, async () => {
  await copySchema({ source: db(old, 'copied'), target: db(neu, 'copied'), section: 'pre-data' });
  await copySchema({ source: db(old, 'copied'), target: db(neu, 'copied'), section: 'post-data' });
  const r = await drift({ source: db(old, 'copied'), target: db(neu, 'copied'), categories: ['schema', 'collation', 'timezone', 'encoding', 'settings', 'incompatibility'] });
  const errors = r.findings.filter((f) => f.severity === 'error');
  expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
});
