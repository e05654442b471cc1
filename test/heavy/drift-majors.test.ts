/**
 * Heavy: every major 11–18 as a source against every newer major, the zoo schema made by hand on
 * both sides — the catalog queries run on each major and no pair gives an error finding. Clusters
 * start one major at a time and stay up for the pairs (8 clusters, 28 pairs).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { drift } from '../../migration/drift/index.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';
import { GLOBALS, baseFor } from '../helpers/drift-zoo.ts';
import { withDatabase } from '../../migration/pg.ts';

const MAJORS = [11, 12, 13, 14, 15, 16, 17, 18];
const tmp = mkdtempSync(join(tmpdir(), 'cutover-drift-majors-'));
const clusters = new Map<number, StartedCluster>();

beforeAll(async () => {
  for (const m of MAJORS) {
    const c = await startCluster({ major: m, name: `pg${m}`, timezone: 'UTC' }, tmp);
    clusters.set(m, c);
    await sql(c.url, GLOBALS);
    // One database per source major it will be compared with, holding what that source can have.
    for (const src of MAJORS.filter((x) => x <= m)) {
      await sql(c.url, `create database zoo${src}`);
      await sql(withDatabase(c.url, `zoo${src}`), baseFor(src));
    }
  }
}, 900_000);

afterAll(async () => {
  await Promise.allSettled([...clusters.values()].map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

it('no pair of majors gives an error finding on the same schema', async () => {
  const bad: string[] = [];
  for (const a of MAJORS)
    for (const b of MAJORS.filter((x) => x > a)) {
      const r = await drift({ source: withDatabase(clusters.get(a)!.url, `zoo${a}`), target: withDatabase(clusters.get(b)!.url, `zoo${a}`), categories: ['schema', 'collation', 'encoding', 'settings', 'incompatibility'] });
      for (const f of r.findings.filter((f) => f.severity === 'error')) bad.push(`${a} → ${b}: ${f.category} ${f.object}: ${f.message}`);
      for (const n of r.notes.filter((n) => /check failed/.test(n))) bad.push(`${a} → ${b}: ${n}`);
    }
  expect(bad, bad.join('\n')).toEqual([]);
}, 900_000);
