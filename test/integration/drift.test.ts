/**
 * Drift on real clusters. Four clusters for the whole file; each planted difference lives in its
 * own database or table so one pair serves several tests:
 *   old   11, UTC, libc C.UTF-8, UTF8              — the source of every comparison
 *   same  17, UTC, libc C.UTF-8, UTF8              — the clean target (and schema/grant/default/settings drift in db "planted")
 *   tzicu 17, America/New_York, ICU en-US          — timezone, collation and shadow-read order drift
 *   latin 17, UTC, locale C, LATIN1                — encoding drift
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drift, type DriftFinding } from '../../migration/drift/index.ts';
import { CutoverError } from '../../migration/errors.ts';
import { withDatabase } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cutover-drift-'));
let old: StartedCluster, same: StartedCluster, tzicu: StartedCluster, latin: StartedCluster;

const APP = (latin1: boolean) => `
  create table "Order Items" (id int primary key, name text not null, note text, at timestamp default now()::timestamp, price float8, "Ünï code" text);
  create index on "Order Items" (name);
  insert into "Order Items" values
    (1, 'résumé', null, '2024-03-10 01:30', 0.1, 'a'), (2, 'resume', 'x', '2024-03-10 02:30', 0.2, 'b'), (3, 'Zürich', null, '2024-11-03 01:30', 1e-7, 'c'),
    (4, 'co-op', 'y', '2024-01-01', 3, 'd'), (5, 'coop', null, '2024-01-01', 4, 'e'), (6, 'Coop', 'z', '2024-01-01', 5, 'f')
    ${latin1 ? '' : `, (7, 'Ωmega', null, '2024-01-01', 6, '😀'), (8, 'emoji 😀', 'w', '2024-01-01', 7, 'Ω')`};
  create table events (id int primary key, happened timestamptz not null, day date default current_date);
  insert into events values (1, '2024-03-10 06:30+00', '2024-03-10'), (2, '2024-11-03 05:30+00', '2024-11-03');`;

function ofCategory(r: { findings: DriftFinding[] }, cat: string, severity?: string) {
  return r.findings.filter((f) => f.category === cat && (!severity || f.severity === severity));
}

beforeAll(async () => {
  [old, same, tzicu, latin] = await Promise.all([
    startCluster({ major: 11, name: 'old', timezone: 'UTC' }, tmp),
    startCluster({ major: 17, name: 'same', timezone: 'UTC' }, tmp),
    startCluster({ major: 17, name: 'tzicu', timezone: 'America/New_York', localeProvider: 'icu', icuLocale: 'en-US', locale: 'en_US.UTF-8' }, tmp),
    startCluster({ major: 17, name: 'latin', timezone: 'UTC', locale: 'C', encoding: 'LATIN1' }, tmp),
  ]);
  await Promise.all([sql(old.url, APP(false)), sql(same.url, APP(false)), sql(tzicu.url, APP(false)), sql(latin.url, APP(true))]);
  // db "planted": the source has a nullable column with NULLs, a grant and a database-level setting;
  // the target gained a DEFAULT, lost the grant and the setting.
  for (const c of [old, same]) {
    await sql(c.url, `create role reader; create role limited login password 'limited-pw'`);
    await sql(c.url, 'create database planted');
    await sql(withDatabase(c.url, 'planted'), `
      create table accounts (id int primary key, nickname text ${c === same ? `default 'n/a'` : ''});
      insert into accounts values (1, null), (2, 'bob'), (3, null);
      ${c === old ? 'grant select on accounts to reader;' : ''}`);
  }
  await sql(old.url, `alter database planted set search_path = public, extra`);
  await sql(withDatabase(old.url, 'planted'), `create table legacy (a int) with oids`);
}, 240_000);

afterAll(async () => {
  await Promise.allSettled([old, same, tzicu, latin].filter(Boolean).map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

const SHADOW = [
  'select name from "Order Items" order by name',
  'select count(*), sum(price) from "Order Items"',
  'select id, happened from events order by id',
  'select * from "Order Items" where id < 7', // no ORDER BY: compared as a multiset
];

describe('drift on a clean pair (11 → 17, identical settings)', () => {
  it('has no error findings, and repeated runs give identical fingerprints and findings', async () => {
    const a = await drift({ source: old.url, target: same.url, queries: SHADOW });
    const errors = a.findings.filter((f) => f.severity === 'error');
    expect(errors, JSON.stringify(errors, null, 2)).toEqual([]);
    expect(a.ok).toBe(true);
    expect(ofCategory(a, 'behaviour').filter((f) => f.severity !== 'info' || !/plan/.test(f.message))).toEqual([]);
    expect(a.fingerprints.collationFingerprint).toMatchObject({ source: { default: expect.any(String) } });
    const cf = a.fingerprints.collationFingerprint as any;
    expect(cf.source.default).toBe(cf.target.default);
    // The second run also installs amcheck (after its schema check) and checks the text indexes.
    const b = await drift({ source: old.url, target: same.url, queries: SHADOW, installAmcheck: true });
    expect(b.fingerprints['amcheck.source']).toEqual({ indexes: 1, problems: 0 });
    expect(b.fingerprints['amcheck.target']).toEqual({ indexes: 1, problems: 0 });
    expect(b.fingerprints.collationFingerprint).toEqual(a.fingerprints.collationFingerprint);
    expect(b.fingerprints.timezoneFingerprint).toEqual(a.fingerprints.timezoneFingerprint);
    const stable = (r: typeof a) => r.findings.filter((f) => f.category !== 'behaviour').map((f) => JSON.stringify(f)).sort();
    expect(stable(b)).toEqual(stable(a));
  });

  it('the same cluster against itself has no findings but info', async () => {
    const r = await drift({ source: same.url, target: same.url, categories: ['schema', 'collation', 'timezone', 'settings', 'data', 'encoding'] });
    expect(r.findings.filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('cutover drift exits 0 with --json', () => {
    const p = spawnSync(process.execPath, ['bin/cutover.mjs', 'drift', '--source', old.url, '--target', same.url, '--json'], { encoding: 'utf8' });
    expect(p.status, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ ok: true });
  });
});

describe('planted drift', () => {
  it('timezone and collation (new cluster: America/New_York, ICU en-US)', async () => {
    const r = await drift({ source: old.url, target: tzicu.url, categories: ['timezone', 'collation'] });
    expect(r.ok).toBe(false);
    expect(ofCategory(r, 'timezone', 'error').map((f) => f.object)).toEqual(expect.arrayContaining(['setting TimeZone', 'default of column public."Order Items".at', 'default of column public.events.day']));
    expect(r.findings.find((f) => f.object === 'setting TimeZone')).toMatchObject({ old: 'UTC', new: 'America/New_York' });
    const coll = ofCategory(r, 'collation', 'error').map((f) => f.object);
    expect(coll).toEqual(expect.arrayContaining(['database app default collation', 'column public."Order Items".name']));
    expect(r.findings.find((f) => f.object === 'database app default collation')?.new).toMatchObject({ provider: 'icu', locale: 'en-US' });
  });

  it('cutover drift --json on the drifted pair exits 1 naming timezone and collation findings', () => {
    const p = spawnSync(process.execPath, ['bin/cutover.mjs', 'drift', '--source', old.url, '--target', tzicu.url, '--json', '--categories', 'timezone,collation'], { encoding: 'utf8' });
    expect(p.status, p.stderr).toBe(1);
    const out = JSON.parse(p.stdout);
    expect(out.findings.some((f: DriftFinding) => f.category === 'timezone' && f.object === 'setting TimeZone')).toBe(true);
    expect(out.findings.some((f: DriftFinding) => f.category === 'collation' && f.object.includes('"Order Items".name'))).toBe(true);
  });

  it('shadow reads: a differing order, differing timestamps, with likely causes', async () => {
    const r = await drift({ source: old.url, target: tzicu.url, categories: ['behaviour'], queries: SHADOW });
    const q1 = r.findings.find((f) => f.object === 'query #1' && f.severity === 'error');
    expect(q1?.message).toMatch(/different order.*likely cause: collation/);
    const q3 = r.findings.find((f) => f.object === 'query #3' && f.severity === 'error');
    expect(q3?.message).toMatch(/likely cause: timezone/);
    expect(r.fingerprints.shadowByCause).toMatchObject({ collation: 1, timezone: 1 });
    expect(r.findings.find((f) => f.object === 'query #2' && f.severity === 'error')).toBeUndefined();
    expect(r.findings.find((f) => f.object === 'query #4' && f.severity === 'error')).toBeUndefined();
  });

  it('encoding (UTF8 → LATIN1): the encodings and the source text LATIN1 cannot hold', async () => {
    const r = await drift({ source: old.url, target: latin.url, categories: ['encoding'] });
    expect(r.findings.find((f) => f.object === 'database app encoding')).toMatchObject({ severity: 'error', old: 'UTF8', new: 'LATIN1' });
    const cols = ofCategory(r, 'encoding', 'error').map((f) => f.object);
    expect(cols).toEqual(expect.arrayContaining(['column public."Order Items".name', 'column public."Order Items"."Ünï code"']));
    expect(cols).not.toContain('column public."Order Items".note');
  });

  it('schema, data, settings and incompatibility in db "planted": added default, removed grant, lost database setting, WITH OIDS', async () => {
    const r = await drift({ source: withDatabase(old.url, 'planted'), target: withDatabase(same.url, 'planted'), categories: ['schema', 'data', 'settings', 'incompatibility'] });
    expect(r.ok).toBe(false);
    expect(r.findings.find((f) => f.category === 'schema' && f.object === 'column public.accounts.nickname')).toMatchObject({ severity: 'error', old: { default: null }, new: { default: `'n/a'::text` } });
    expect(r.findings.find((f) => f.category === 'schema' && f.object === 'grant public.accounts to reader: SELECT')).toMatchObject({ severity: 'error' });
    expect(r.findings.find((f) => f.category === 'data' && f.object === 'column public.accounts.nickname')?.message).toMatch(/2 NULLs on the source and a DEFAULT/);
    expect(r.findings.find((f) => f.category === 'settings' && f.object === 'database planted setting search_path')).toMatchObject({ severity: 'error', old: 'public, extra', new: null });
    expect(r.findings.find((f) => f.category === 'incompatibility' && f.object === 'table public.legacy')).toMatchObject({ severity: 'error' });
  });
});

describe('bad input', () => {
  it('refuses a query that writes, before running anything', async () => {
    await expect(drift({ source: old.url, target: same.url, categories: ['behaviour'], queries: ['select 1', 'update "Order Items" set note = null'] })).rejects.toThrow(/query #2 .* is not a read/);
  });

  it('refuses a write hidden in a function (read-only transaction)', async () => {
    await sql(old.url, `create or replace function sneaky() returns int language sql as $$ insert into events values (99, now()) returning 1 $$`);
    const e = await drift({ source: old.url, target: same.url, categories: ['behaviour'], queries: ['select sneaky()'] }).catch((x) => x);
    expect(e).toBeInstanceOf(CutoverError);
    expect(e.message).toMatch(/query #1 .* tried to write/);
    await sql(old.url, `drop function sneaky()`);
  });

  it('names the query with a syntax error; the CLI exits 2', () => {
    const file = join(tmp, 'bad.sql');
    writeFileSync(file, `-- ok\nselect 1;\nselect * fro "Order Items";\n`);
    const p = spawnSync(process.execPath, ['bin/cutover.mjs', 'drift', '--source', old.url, '--target', same.url, '--queries', file, '--categories', 'behaviour'], { encoding: 'utf8' });
    expect(p.status).toBe(2);
    expect(p.stderr).toMatch(/query #2 \(select \* fro "Order Items"\) has a syntax error/);
    expect(p.stderr).not.toContain(new URL(old.url).password);
  });

  it('an unreachable server is a connection error (exit 2)', () => {
    const p = spawnSync(process.execPath, ['bin/cutover.mjs', 'drift', '--source', 'postgres://u:secret@127.0.0.1:1/app', '--target', same.url], { encoding: 'utf8' });
    expect(p.status).toBe(2);
    expect(p.stderr).toMatch(/cannot connect to the source at 127.0.0.1:1\/app/);
    expect(p.stderr).not.toContain('secret');
  });

  it('a role that cannot read the tables gets a clear error', async () => {
    const u = new URL(withDatabase(old.url, 'planted'));
    u.username = 'limited';
    u.password = 'limited-pw';
    const e = await drift({ source: u.toString(), target: same.url, categories: ['schema'] }).catch((x) => x);
    expect(e).toBeInstanceOf(CutoverError);
    expect(e.code).toBe('PRIVILEGE');
    expect(e.message).toMatch(/source role cannot read public.accounts/);
  });
});
