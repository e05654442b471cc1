/**
 * 17 → 18 on one pair: the zoo schema (with the 14+/15+ objects: generated columns, SQL-standard
 * function bodies, NULLS NOT DISTINCT) by hand on both sides must give no error finding (18 makes
 * NOT NULL a constraint row and gives partitioned tables an access method: neither may show);
 * then the newer-major plants, each found by category and object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { drift } from '../../migration/drift/index.ts';
import { withDatabase } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';
import { GLOBALS, PLANTS_NEW, baseFor, findingFor } from '../helpers/drift-zoo.ts';

const OLD = 17;
const NEW = 18;
const tmp = mkdtempSync(join(tmpdir(), `cutover-drift-${OLD}-${NEW}-`));
let old: StartedCluster, neu: StartedCluster;
const db = (c: StartedCluster, name: string) => withDatabase(c.url, name);

beforeAll(async () => {
  [old, neu] = await Promise.all([startCluster({ major: OLD, name: 'old', timezone: 'UTC' }, tmp), startCluster({ major: NEW, name: 'new', timezone: 'UTC' }, tmp)]);
  for (const c of [old, neu]) {
    await sql(c.url, GLOBALS);
    for (const d of ['control', 'zoo']) {
      await sql(c.url, `create database ${d}`);
      await sql(db(c, d), baseFor(OLD));
    }
  }
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
  // Same built-in gen_random_uuid on both sides: no resolution finding at all.
  expect(r.findings.filter((f) => /resolution/.test(f.object))).toEqual([]);
});

it(`zoo ${OLD} → ${NEW}: generated column, NULLS NOT DISTINCT and a SQL-standard body are found`, async () => {
  for (const p of PLANTS_NEW) await sql(db(p.on === 'source' ? old : neu, 'zoo'), p.sql);
  const r = await drift({ source: db(old, 'zoo'), target: db(neu, 'zoo'), categories: ['schema'] });
  const missed = PLANTS_NEW.flatMap((p) => p.expect.filter((e) => !findingFor(r.findings, e.object).some((f) => (!e.severity || f.severity === e.severity) && (!e.message || e.message.test(f.message)))).map((e) => `${e.object} ← ${p.sql}: got ${JSON.stringify(findingFor(r.findings, e.object))}`));
  expect(missed, missed.join('\n')).toEqual([]);
});
