/**
 * The drift zoo on one real pair, 11 → 15 (the pgcrypto-to-built-in gen_random_uuid boundary):
 *   db "control": the same schema on both sides — no error finding;
 *   db "copied":  a production-shaped schema with pgcrypto uuid defaults on 11, copied to 15 by the
 *                 tool's own copySchema (pre-data, post-data) — no error finding;
 *   db "zoo":     the same schema, then every planted difference at once — each one found, by
 *                 category and object, in words.
 * Controls run first: the planted role attribute is cluster-wide.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drift, type DriftFinding } from '../../migration/drift/index.ts';
import { copySchema, dumpSchema, splitSql } from '../../migration/schema-copy.ts';
import { normaliseDeparse } from '../../migration/drift/schema.ts';
import { withDatabase } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';
import { mkdirFor, serverUser } from '../../lab/osuser.ts';
import { BASE, COPIED, GLOBALS, PLANTS, findingFor } from '../helpers/drift-zoo.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cutover-drift-zoo-'));
let old: StartedCluster, neu: StartedCluster;
const db = (c: StartedCluster, name: string) => withDatabase(c.url, name);
const errors = (fs: DriftFinding[]) => fs.filter((f) => f.severity === 'error');

beforeAll(async () => {
  [old, neu] = await Promise.all([startCluster({ major: 11, name: 'old', timezone: 'UTC' }, tmp), startCluster({ major: 15, name: 'new', timezone: 'UTC' }, tmp)]);
  for (const c of [old, neu]) {
    await sql(c.url, GLOBALS);
    for (const d of ['control', 'zoo', 'copied']) await sql(c.url, `create database ${d}`);
    await Promise.all([sql(db(c, 'control'), BASE), sql(db(c, 'zoo'), BASE)]);
  }
  await sql(db(old, 'copied'), COPIED);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([old, neu].filter(Boolean).map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('drift zoo 11 → 15', () => {
  it('control: the same schema on both sides has no error finding; gen_random_uuid is one info finding listing its objects', async () => {
    const r = await drift({ source: db(old, 'control'), target: db(neu, 'control') });
    expect(errors(r.findings), JSON.stringify(errors(r.findings), null, 2)).toEqual([]);
    const res = r.findings.filter((f) => f.object === 'function gen_random_uuid() resolution');
    if (res.length !== 1) console.log(JSON.stringify(r.findings.filter((f) => f.category === 'schema'), null, 1), r.notes);
    expect(res).toHaveLength(1);
    expect(res[0]).toMatchObject({ severity: 'info', old: 'public.gen_random_uuid', new: 'pg_catalog.gen_random_uuid' });
    expect(res[0].objects).toEqual(expect.arrayContaining(['column app.payments.uid default', 'column app.tokens.id default', 'column app.sessions.id default', 'view app.uuids']));
    expect(res[0].message).toMatch(/public\.gen_random_uuid \(from extension pgcrypto\) on the source and to the built-in pg_catalog\.gen_random_uuid on the target/);
    // Expressions that print differently across majors are re-printed by the target's deparser (all of them could be);
    // 11's (email = (CURRENT_USER)::text) vs 15's (email = CURRENT_USER) is absorbed by a deparse rule.
    expect(r.notes.join('\n'), r.notes.join('\n')).toMatch(/(\d+) expressions print differently across majors; \1 re-printed by the target's deparser/);
    // No catalog codes in what a reader sees.
    for (const f of r.findings) expect(f.message, f.message).not.toMatch(/source "[a-z]", target "[a-z]"/);
  });

  it('copied by the tool (copySchema pre-data + post-data, pgcrypto defaults on 11): no error finding', async () => {
    await copySchema({ source: db(old, 'copied'), target: db(neu, 'copied'), section: 'pre-data' });
    await copySchema({ source: db(old, 'copied'), target: db(neu, 'copied'), section: 'post-data' });
    const r = await drift({ source: db(old, 'copied'), target: db(neu, 'copied'), categories: ['schema', 'collation', 'timezone', 'encoding', 'settings', 'incompatibility'] });
    expect(errors(r.findings), JSON.stringify(errors(r.findings), null, 2)).toEqual([]);
    // pg_dump qualifies the default (public.gen_random_uuid()), the target keeps calling pgcrypto's: nothing differs.
    expect(r.findings.filter((f) => f.category === 'schema' && /gen_random_uuid/.test(f.message))).toEqual([]);
  });

  it(`finds every planted difference (${PLANTS.length} plants), each by category and object, in words`, async () => {
    for (const p of PLANTS) await sql(db(p.on === 'source' ? old : neu, 'zoo'), p.sql);
    // A tablespace (pg_dumpall --globals-only) only the target has, holding a table the source keeps in the default one.
    const ts = join(tmp, 'zoo_ts');
    mkdirFor(ts, serverUser());
    await sql(neu.url, `create tablespace zoo_ts location '${ts}'`);
    await sql(db(neu, 'zoo'), `alter table app.parent set tablespace zoo_ts`);
    const r = await drift({ source: db(old, 'zoo'), target: db(neu, 'zoo'), categories: ['schema'] });
    const missed: string[] = r.notes.filter((n) => /check failed|could not/.test(n));
    let expectations = 0;
    for (const p of PLANTS)
      for (const e of p.expect) {
        expectations++;
        const hits = findingFor(r.findings, e.object).filter((f) => (!e.severity || f.severity === e.severity) && (!e.message || e.message.test(f.message)));
        if (!hits.length) missed.push(`${e.object} ${e.severity ?? ''} ${e.message ?? ''} ← ${p.sql}\n    got: ${JSON.stringify(findingFor(r.findings, e.object).map((f) => [f.severity, f.message]))}`);
      }
    for (const [object, severity] of [['table app.parent', 'warning'], ['tablespace zoo_ts', 'info']] as const)
      if (!findingFor(r.findings, object).some((f) => f.severity === severity)) missed.push(`${object} ${severity} (tablespace plant)`);
    expect(missed, missed.join('\n')).toEqual([]);
    expect(expectations).toBeGreaterThanOrEqual(40);
    expect(r.ok).toBe(false);
    for (const f of r.findings) {
      expect(f.message.length, f.object).toBeGreaterThan(20);
      expect(f.hint.length, f.object).toBeGreaterThan(5);
    }
    // Passwords in user mappings are never read.
    expect(JSON.stringify(r)).not.toContain('zoo-secret');
  });

  it('parity with a dump diff: every object pg_dump --schema-only shows differently is named by a drift finding (spellings of two majors aside)', async () => {
    // Statements per dump object ("TABLE app.payments", "TRIGGER app.t name", "ACL …"), with owners and grants.
    const dump = async (url: string) => {
      const m = new Map<string, string[]>();
      for (const section of ['pre-data', 'post-data'] as const)
        for (const st of splitSql(await dumpSchema(url, section, { owners: true }))) {
          if (/^(SET |SELECT pg_catalog\.set_config)/.test(st.sql)) continue;
          // The same object as two majors' servers print it: the spellings drift absorbs too.
          const text = normaliseDeparse(st.sql).replace(/\((IN )/g, '(').replace(/, multirange_type_name = \S+/g, '');
          m.set(st.object, [...(m.get(st.object) ?? []), text].sort());
        }
      return m;
    };
    const [a, b] = await Promise.all([dump(db(old, 'zoo')), dump(db(neu, 'zoo'))]);
    const r = await drift({ source: db(old, 'zoo'), target: db(neu, 'zoo'), categories: ['schema'] });
    const said = r.findings.map((f) => [f.object, ...(f.objects ?? []), f.message].join(' ')).join('\n').toLowerCase().replace(/"/g, '');
    const missed: string[] = [];
    let differing = 0;
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      const x = a.get(k) ?? [];
      const y = b.get(k) ?? [];
      if (JSON.stringify(x) === JSON.stringify(y)) continue;
      differing++;
      const names = [k.split(' ').pop()!.replace(/\(.*$/, '').replace(/"/g, '').toLowerCase()];
      for (const st of [...x, ...y]) {
        const m = /^ALTER TABLE (?:ONLY )?(\S+) ALTER COLUMN (\S+)/.exec(st);
        if (m) names.push(`${m[1]}.${m[2]}`.replace(/"/g, '').toLowerCase());
      }
      if (!names.some((n) => said.includes(n))) missed.push(`${k}\n  source: ${x.join(' ').slice(0, 300)}\n  target: ${y.join(' ').slice(0, 300)}`);
    }
    expect(differing).toBeGreaterThan(40);
    expect(missed, missed.join('\n')).toEqual([]);
  });
});

