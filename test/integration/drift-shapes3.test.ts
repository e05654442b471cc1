/**
 * Drift cases nobody planted before (issue #14 part 3, third round): privileges on columns, default
 * privileges, ownership, role settings and attributes, row-level security toggles, storage parameters,
 * column storage/compression/statistics, extended statistics, UNLOGGED in both directions, missing
 * tables and columns, column order, constraint deferrability, FK actions and MATCH type, NOT VALID,
 * trigger WHEN/timing/events and ENABLE ALWAYS/REPLICA, rules, event triggers, text search
 * configurations, casts, operators, recorded collation versions.
 *
 * Real clusters of the four version pairs users upgrade (11 → 15, 13 → 17, 16 → 18, 17 → 18; each major
 * starts once). test/fixtures/drift-shapes3/*.sql (gated per source major) is copied with the lab's own
 * schema copy twice per pair: clean_from<N> must have no error finding (every warning/info justified
 * below); plant_from<N> then gets every planted class at once, each asserted by class, severity, object
 * and grouping.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drift, type DriftFinding } from '../../migration/drift/index.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { withDatabase } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';

const PAIRS: Array<[number, number]> = [[11, 15], [13, 17], [16, 18], [17, 18]];
const MAJORS = [...new Set(PAIRS.flat())].sort((a, b) => a - b);
const SOURCES = [...new Set(PAIRS.map((p) => p[0]))];
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'drift-shapes3');
const CATEGORIES = ['schema', 'collation', 'timezone', 'encoding', 'settings', 'incompatibility'] as const;

function shapesFor(major: number): string {
  const parts = ['base.sql', ...(major >= 14 ? ['pg14.sql'] : [])];
  return parts.map((p) => readFileSync(join(FIXTURES, p), 'utf8')).join('\n');
}

// Roles are cluster-wide: the same on every cluster (a schema copy does not carry them), with the same role-level settings.
const GLOBALS = `do $$ begin
  if not exists (select 1 from pg_roles where rolname = 's3_app') then create role s3_app login; end if;
  if not exists (select 1 from pg_roles where rolname = 's3_ro') then create role s3_ro; end if;
  if not exists (select 1 from pg_roles where rolname = 's3_owner') then create role s3_owner; end if;
end $$;
alter role s3_app set search_path = s3, public;`;

const tmp = mkdtempSync(join(tmpdir(), 'cutover-drift-shapes3-'));
const clusters = new Map<number, StartedCluster>();
const at = (major: number, db: string) => withDatabase(clusters.get(major)!.url, db);
const line = (f: DriftFinding) => `${f.category} ${f.severity} ${f.object}: ${f.message}`;
const names = (f: DriftFinding) => [f.object, ...(f.objects ?? [])];

beforeAll(async () => {
  for (let i = 0; i < MAJORS.length; i += 2) {
    const majors = MAJORS.slice(i, i + 2);
    const started = await Promise.all(majors.map((m) => startCluster({ major: m, name: `pg${m}`, timezone: 'UTC' }, tmp)));
    majors.forEach((m, k) => clusters.set(m, started[k]));
  }
  // s3_conn_from<N>: a role of its own for each pair's role-attribute plant (17 is the target of one pair and the source of another).
  for (const m of MAJORS) await sql(clusters.get(m)!.url, GLOBALS + SOURCES.map((s) => `create role s3_conn_from${s} login;`).join('\n'));
  for (const m of SOURCES) {
    await sql(clusters.get(m)!.url, 'create database shapes3');
    await sql(at(m, 'shapes3'), shapesFor(m));
  }
  for (const [src, tgt] of PAIRS)
    for (const db of [`clean_from${src}`, `plant_from${src}`, `latin1_from${src}`]) {
      // latin1_from<N>: the same copy into a database of another encoding and locale (C, LATIN1) on the target.
      await sql(clusters.get(tgt)!.url, db.startsWith('latin1') ? `create database ${db} template template0 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C'` : `create database ${db}`);
      await copySchema({ source: at(src, 'shapes3'), target: at(tgt, db), section: 'pre-data' });
      await copySchema({ source: at(src, 'shapes3'), target: at(tgt, db), section: 'post-data' });
    }
}, 420_000);

afterAll(async () => {
  await Promise.allSettled([...clusters.values()].map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

/** Every warning or info finding an untouched copy may have, and why it is right to report it. */
const JUSTIFIED: Array<{ re: RegExp; why: string }> = [
  // 15 made pg_database_owner own schema public and revoked CREATE from PUBLIC in new databases.
  { re: /^schema info schema public: .*pg_database_owner/, why: 'PostgreSQL 15 changed the owner of schema public in new databases' },
  { re: /^schema warning schema grant public to PUBLIC: CREATE/, why: 'PostgreSQL 15 revoked CREATE on schema public from PUBLIC in new databases' },
  { re: /^incompatibility \w+ /, why: 'release-note checks for the majors crossed, run on the source: documented behaviour changes' },
  { re: /^settings info setting (password_encryption|lc_messages|jit|work_mem|maintenance_work_mem|effective_cache_size|plan_cache_mode|default_toast_compression): /, why: 'a server default that differs between the two majors or builds' },
  { re: /^timezone (warning|info) tz database: /, why: 'the two builds ship tz databases of different releases' },
  { re: /^timezone info setting extra_float_digits: /, why: '12 changed what the default extra_float_digits means' },
  // ICU of the two builds may differ: the corpus check says whether it sorts differently (then it is an error, not justified here).
  { re: /^collation (warning|info) collation .*another library version on each side; the test corpus still sorts the same/, why: 'the two builds link different ICU releases; the corpus sorts the same' },
];

describe('drift shapes 3: an untouched copy has no error finding', () => {
  for (const [src, tgt] of PAIRS)
    it(`${src} → ${tgt}: copied by the lab's schema copy, no error and only justified warnings/infos`, async () => {
      const r = await drift({ source: at(src, 'shapes3'), target: at(tgt, `clean_from${src}`), categories: [...CATEGORIES] });
      const errors = r.findings.filter((f) => f.severity === 'error');
      expect(errors.map(line), JSON.stringify(errors, null, 2)).toEqual([]);
      const unjustified = r.findings.filter((f) => !JUSTIFIED.some((j) => j.re.test(line(f))));
      expect(unjustified.map(line), JSON.stringify(unjustified, null, 2)).toEqual([]);
      expect(r.notes.filter((n) => /check failed|could not/.test(n))).toEqual([]);
      const counts = r.fingerprints.schemaObjects as { source: Record<string, number>; target: Record<string, number> };
      for (const k of ['table', 'column', 'constraint', 'trigger', 'rule', 'event trigger', 'statistics', 'cast', 'operator', 'column grant', 'default privileges'])
        expect(counts.target[k], k).toBe(counts.source[k]);
    }, 120_000);
});

describe('drift shapes 3: the target database has another encoding and locale', () => {
  // Runs before the plants: they change cluster-wide roles.
  for (const [src, tgt] of PAIRS)
    it(`${src} → ${tgt}: UTF8/C.UTF-8 on the source, LATIN1/C on the target`, async () => {
      const r = await drift({ source: at(src, 'shapes3'), target: at(tgt, `latin1_from${src}`), categories: [...CATEGORIES] });
      const enc = r.findings.filter((f) => f.category === 'encoding' && f.severity === 'error' && /encoding/.test(f.object));
      expect(enc.map(line), r.findings.map(line).join('\n')).toHaveLength(1);
      expect(enc[0].message).toMatch(/LATIN1 cannot represent every character the source \(UTF8\) can/);
      expect(enc[0].hint).toMatch(/ENCODING 'UTF8'/);
      // C.UTF-8 → C: the corpus sorts the same (both code-point order), so warnings, not errors: upper()/lower(),
      // ILIKE and regex classes still differ for non-ASCII text. The database's and every text column's — grouped.
      const db = r.findings.filter((f) => f.category === 'collation' && f.object === `database latin1_from${src} default collation`);
      expect(db.map((f) => f.severity), r.findings.map(line).join('\n')).toEqual(['warning']);
      expect(db[0].message).toMatch(/libc:C\.UTF-8 → libc:C/);
      const cols = r.findings.filter((f) => f.category === 'collation' && (f.objects ?? []).includes('column s3.accounts.email'));
      expect(cols.map((f) => f.severity)).toEqual(['warning']);
      expect(cols[0].objects).toEqual(expect.arrayContaining(['column s3.accounts.note', 'column s3.archive.body', 'column s3.order_notes.body']));
      // No column of an explicit collation (s3.people.name is COLLATE s3.de_icu) is in that group.
      expect(cols[0].objects).not.toContain('column s3.people.name');
      expect(r.findings.filter((f) => f.severity === 'error' && f.category !== 'encoding').map(line)).toEqual([]);
    }, 120_000);
});

interface Expect {
  object: string;
  severity: DriftFinding['severity'];
  category?: DriftFinding['category'];
  message?: RegExp;
  group?: string[];
}
interface Plant {
  what: string;
  /** Only for a source of at least this major (the object exists there). */
  since?: number;
  sql: (db: string) => string;
  expect: Expect[];
}

const PLANTS: Plant[] = [
  { what: 'a column privilege revoked', sql: () => `revoke select (email) on s3.accounts from s3_ro`,
    expect: [{ object: 'column grant s3.accounts.email to s3_ro: SELECT', severity: 'error' }] },
  { what: 'a default privilege missing', sql: () => `alter default privileges for role s3_owner in schema s3 revoke select on tables from s3_ro`,
    // error: the next table s3_owner creates is not readable by s3_ro ("permission denied" after the cutover).
    expect: [{ object: 'default privileges for s3_owner in schema s3 on tables to s3_ro: SELECT', severity: 'error' }] },
  // warning: who may ALTER/DROP/VACUUM it changes; the grants held through ownership move with it.
  { what: 'a table owned by another role', sql: () => `alter table s3.people owner to s3_app`,
    expect: [{ object: 'table s3.people', severity: 'warning', message: /owned by/ }] },
  { what: 'a role setting in this database', sql: (db) => `alter role s3_app in database ${db} set statement_timeout = '5s'`,
    expect: [{ object: 'role s3_app in database {db} setting statement_timeout', category: 'settings', severity: 'warning', message: /on the target only/ }] },
  { what: 'role settings (cluster-wide): search_path and TimeZone set on the target only', sql: (db) => `alter role s3_conn_${db.replace(/^plant_/, '')} set search_path = public, s3;
      alter role s3_conn_${db.replace(/^plant_/, '')} set timezone = 'Asia/Tokyo'`,
    // errors: that role's sessions resolve names / print timestamps differently on the target (statement_timeout in
    // the plant above stays a warning: it stops statements, it does not change results).
    expect: [
      { object: 'role s3_conn_{from} setting search_path', category: 'settings', severity: 'error', message: /public, s3 is set for role s3_conn_from\d+ on the target only: its sessions resolve names/ },
      { object: 'role s3_conn_{from} setting TimeZone', category: 'settings', severity: 'error', message: /Asia\/Tokyo/ },
    ] },
  { what: 'role attributes: no LOGIN, a CONNECTION LIMIT', sql: (db) => `alter role s3_conn_${db.replace(/^plant_/, '')} nologin connection limit 3`,
    expect: [{ object: 'role s3_conn_{from}', severity: 'error', message: /cannot log in \(LOGIN\) on the target/ }, { object: 'role s3_conn_{from}', severity: 'warning', message: /connection limit of none on the source, 3 on the target/ }] },
  { what: 'FORCE ROW LEVEL SECURITY off', sql: () => `alter table s3.accounts no force row level security`,
    expect: [{ object: 'table s3.accounts', severity: 'error', message: /FORCE ROW LEVEL SECURITY/ }] },
  { what: 'storage parameters reset', sql: () => `alter table s3.accounts reset (fillfactor)`,
    expect: [{ object: 'table s3.accounts', severity: 'warning', message: /fillfactor/ }] },
  { what: 'a column STORAGE and statistics target reset', sql: () => `alter table s3.accounts alter column note set storage extended; alter table s3.accounts alter column email set statistics -1`,
    // STORAGE only changes TOAST behaviour (info); a statistics target changes estimates and so plans (warning).
    expect: [{ object: 'column s3.accounts.note', severity: 'info', message: /storage EXTERNAL/ }, { object: 'column s3.accounts.email', severity: 'warning', message: /statistics target of 500/ }] },
  { what: 'a column COMPRESSION reset (14+)', since: 14, sql: () => `alter table s3.accounts alter column secret set compression default`,
    expect: [{ object: 'column s3.accounts.secret', severity: 'info', message: /with pglz on the source, the default .* on the target/ }] },
  { what: 'CREATE STATISTICS missing', sql: () => `drop statistics s3.orders_qty_price`,
    expect: [{ object: 'statistics s3.orders_qty_price', severity: 'warning' }] },
  { what: 'UNLOGGED on the target, and LOGGED where the source is unlogged', sql: () => `alter table s3.orders_log set unlogged; alter table s3.scratch set logged`,
    expect: [{ object: 'table s3.orders_log', severity: 'error', message: /UNLOGGED on the target/ }, { object: 'table s3.scratch', severity: 'warning', message: /never replicated/ }] },
  { what: 'a table missing, a column missing, a column extra, another column order',
    sql: () => `drop table s3.archive; alter table s3.order_notes drop column body; alter table s3.people add column extra int;
      drop table s3.ordered; create table s3.ordered (a int, c int, b int)`,
    expect: [
      { object: 'table s3.archive', severity: 'error', message: /exists on the source but not on the target/ },
      { object: 'column s3.order_notes.body', severity: 'error', message: /exists on the source but not on the target/ },
      // An extra column and another order are warnings, not info: logical replication and the lab's COPY map
      // columns by name, but the application's INSERT … VALUES without a column list (and SELECT *) does not.
      { object: 'column s3.people.extra', severity: 'warning', message: /INSERT without a column list/ },
      { object: 'table s3.ordered', severity: 'warning', message: /another order \(a, b, c on the source, a, c, b on the target\)/ },
    ] },
  { what: 'deferrability changed', sql: () => `alter table s3.orders_log alter constraint orders_log_order_fk deferrable initially deferred`,
    expect: [{ object: 'constraint s3.orders_log.orders_log_order_fk', severity: 'error', message: /DEFERRABLE INITIALLY DEFERRED only on the target/ }] },
  { what: 'FK action and MATCH type changed',
    sql: () => `alter table s3.orders drop constraint orders_account_fk;
      alter table s3.orders add constraint orders_account_fk foreign key (account_id) references s3.accounts (id) on update restrict;
      alter table s3.order_notes drop constraint order_notes_fk;
      alter table s3.order_notes add constraint order_notes_fk foreign key (order_id, qty) references s3.orders (id, qty) on delete set null`,
    expect: [
      { object: 'constraint s3.orders.orders_account_fk', severity: 'error', message: /CASCADE/ },
      { object: 'constraint s3.order_notes.order_notes_fk', severity: 'error', message: /MATCH FULL/ },
    ] },
  { what: 'a NOT VALID constraint on the target', sql: () => `alter table s3.orders drop constraint orders_qty_pos; alter table s3.orders add constraint orders_qty_pos check (qty > 0) not valid`,
    expect: [{ object: 'constraint s3.orders.orders_qty_pos', severity: 'warning', message: /NOT VALID|not validated|validated/i }] },
  { what: "a trigger's WHEN, and another's timing and events",
    sql: () => `drop trigger orders_touch on s3.orders; create trigger orders_touch before update on s3.orders for each row execute procedure s3.touch();
      drop trigger orders_log_touch on s3.orders_log; create trigger orders_log_touch after insert or update on s3.orders_log for each row execute procedure s3.touch()`,
    expect: [{ object: 'trigger s3.orders.orders_touch', severity: 'error', message: /WHEN|fires/ }, { object: 'trigger s3.orders_log.orders_log_touch', severity: 'error' }] },
  { what: 'ENABLE ALWAYS lost (fires on logical apply no more)', sql: () => `alter table s3.orders enable trigger orders_always`,
    // warning: the target becomes the primary and fires it for local writes either way; only where it applies
    // replicated rows (its own subscription, a fallback) does the lost ALWAYS matter. (The reverse, ALWAYS only on
    // the target, is an error: it fires twice during the rehearsal's replication — drift-zoo plants that.)
    expect: [{ object: 'trigger s3.orders.orders_always', severity: 'warning', message: /no longer fires for them/ }] },
  { what: 'a rule and an event trigger missing', sql: () => `drop rule orders_log_noupdate on s3.orders_log; drop event trigger s3_ddl_watch`,
    // both errors: statements run unrewritten; DDL guards/auditing are gone.
    expect: [{ object: 'rule s3.orders_log.orders_log_noupdate', severity: 'error', message: /unrewritten/ }, { object: 'event trigger s3_ddl_watch', severity: 'error' }] },
  { what: 'a text search configuration changed', sql: () => `alter text search configuration s3.english_simple alter mapping for asciiword with english_stem`,
    expect: [{ object: 'text search configuration s3.english_simple', severity: 'error', message: /mapping is asciiword:simple on the source, asciiword:english_stem on the target/ }] },
  { what: 'a cast and an operator missing', sql: () => `drop cast (s3.money2 as numeric); drop operator s3.=== (s3.money2, s3.money2)`,
    expect: [{ object: 'cast s3.money2 AS numeric', severity: 'error' }, { object: 'operator s3.===(s3.money2,s3.money2)', severity: 'error' }] },
  { what: 'a collation version recorded differently', sql: (db) => `update pg_collation set collversion = '0.1' where collname = 'de_icu' and collnamespace = 's3'::regnamespace;
      update pg_database set datcollversion = '0.1' where datname = '${db}'`,
    expect: [
      { object: 'collation s3.de_icu on the target', category: 'collation', severity: 'warning', message: /recorded with version 0\.1/ },
      // The database's default (libc C.UTF-8 here) has no library version: a recorded one means the locale changed under it.
      { object: 'collation default on the target', category: 'collation', severity: 'warning', message: /recorded with version 0\.1 but the target's library reports (no version|\S+)/ },
    ] },
];

describe('drift shapes 3: planted drift of every class is caught', () => {
  for (const [src, tgt] of PAIRS)
    it(`${src} → ${tgt}: every planted class at its severity, on its object`, async () => {
      const db = `plant_from${src}`;
      const plants = PLANTS.filter((p) => !p.since || src >= p.since);
      for (const p of plants) await sql(at(tgt, db), p.sql(db));
      const r = await drift({ source: at(src, 'shapes3'), target: at(tgt, db), categories: [...CATEGORIES] });
      const missed: string[] = [];
      const matched = new Set<DriftFinding>();
      for (const p of plants)
        for (let e of p.expect) {
          e = { ...e, object: e.object.replace('{db}', db).replace('{from}', `from${src}`) };
          const hits = r.findings.filter((f) => f.category === (e.category ?? 'schema') && names(f).includes(e.object) && f.severity === e.severity && (!e.message || e.message.test(f.message)));
          const good = hits.filter((f) => !e.group || e.group.every((o) => f.objects?.includes(o)));
          if (!good.length) {
            const near = r.findings.filter((f) => names(f).some((n) => n.startsWith(e.object.split(' on the ')[0]))).map(line);
            missed.push(`${p.what}: ${e.category ?? 'schema'} ${e.severity} ${e.object} ${e.message ?? ''}\n    got: ${near.join('\n         ') || 'nothing'}`);
          }
          for (const f of good) matched.add(f);
          for (const f of good) expect(f.hint.length, f.object).toBeGreaterThan(10);
        }
      expect(missed, missed.join('\n') + '\nALL:\n' + r.findings.map(line).join('\n')).toEqual([]);
      // Roles are cluster-wide and clusters serve several pairs: another pair's role plant (17 was a target of
      // 13 → 17, 18 of 16 → 18) is real drift between these two servers too, not this pair's.
      const otherPairs = new RegExp(`^role s3_conn_from(?!${src}$)`);
      const unexplained = r.findings.filter((f) => f.severity === 'error' && !matched.has(f) && !otherPairs.test(f.object));
      expect(unexplained.map(line), JSON.stringify(unexplained, null, 2)).toEqual([]);
      expect(r.ok).toBe(false);
    }, 120_000);
});


describe('drift shapes 3: release-note incompatibilities of 18 (run last: they add a cluster-wide role)', () => {
  for (const [src, tgt] of PAIRS.filter(([, t]) => t === 18))
    it(`${src} → ${tgt}: an UNLOGGED partitioned table and an MD5 password on the source`, async () => {
      await sql(clusters.get(src)!.url, `create database incompat18`);
      // Before 18 UNLOGGED was accepted on a partitioned table; 18 refuses it (pg_dump prints it: the copy would stop).
      await sql(at(src, 'incompat18'), `create schema s3x; create unlogged table s3x.events (at date not null, v int) partition by range (at);
        create table s3x.events_2025 partition of s3x.events for values from ('2025-01-01') to ('2026-01-01')`);
      await sql(clusters.get(src)!.url, `set password_encryption = 'md5'; create role s3_md5_from${src} login password 'not-a-real-secret-x7'`);
      await sql(clusters.get(tgt)!.url, `create database incompat_from${src}`);
      const r = await drift({ source: at(src, 'incompat18'), target: at(tgt, `incompat_from${src}`), categories: ['incompatibility'] });
      const unlogged = r.findings.filter((f) => f.object === 'table s3x.events');
      expect(unlogged.map((f) => `${f.category} ${f.severity}`), r.findings.map(line).join('\n')).toEqual(['incompatibility error']);
      expect(unlogged[0].message).toMatch(/PostgreSQL 18: UNLOGGED partitioned tables are refused/);
      expect(unlogged[0].hint).toMatch(/SET LOGGED/);
      // …and the target really refuses it.
      await expect(sql(at(tgt, `incompat_from${src}`), `create unlogged table s3x_events (at date) partition by range (at)`)).rejects.toThrow(/unlogged|partitioned/i);
      // Only the parent: its (logged) partition is fine.
      expect(r.findings.filter((f) => f.object === 'table s3x.events_2025')).toEqual([]);
      const md5 = r.findings.filter((f) => f.object === `role s3_md5_from${src}`);
      expect(md5.map((f) => `${f.category} ${f.severity}`), r.findings.map(line).join('\n')).toEqual(['incompatibility warning']);
      expect(md5[0].message).toMatch(/MD5 passwords are deprecated/);
      // The secret itself is never read, so never reported.
      expect(JSON.stringify(r)).not.toMatch(/not-a-real-secret|md5[0-9a-f]{32}/);
    }, 120_000);
});
