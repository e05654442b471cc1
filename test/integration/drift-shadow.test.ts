/**
 * Shadow reads as a library on one real pair (17 → 17) with planted drift:
 *   old  UTC, libc C.UTF-8;  new  America/New_York, ICU en-US, extra_float_digits = 0 on the database,
 *   and data planted on new as drift leaves it: a NULL that became a default, a double-encoded string.
 * Each mismatch must be counted under its cause; the mirror must take live reads and refuse writes;
 * a difference that goes away on the re-read is lag, not drift.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { drift, ShadowMirror, ShadowTally, shadowBudget, shadowCompare, shadowQueries } from '../../migration/drift/index.ts';
import { connect, withDatabase, type Client } from '../../migration/pg.ts';
import { startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { startCluster, sql } from '../helpers/clusters.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cutover-drift-shadow-'));
let old: StartedCluster, neu: StartedCluster;
let src: Client, tgt: Client;

const DDL = `
  create table items (id int primary key, name text not null, at timestamptz not null, price float8, note text, label text);
  insert into items values
    (1, 'résumé', '2024-03-10 06:30+00', 0.1, null, 'a'), (2, 'resume', '2024-03-10 07:30+00', 0.2, 'x', 'b'),
    (3, 'Zürich', '2024-11-03 05:30+00', 1, null, 'c'), (4, 'co-op', '2024-01-01', 2, 'y', 'd'),
    (5, 'coop', '2024-01-01', 3, 'z', 'e'), (6, 'Coop', '2024-01-01', 4, 'w', 'f'), (9, 'nine', '2024-01-01', 5, 'v', 'café');`;

beforeAll(async () => {
  [old, neu] = await Promise.all([
    startCluster({ major: 17, name: 'old', timezone: 'UTC' }, tmp),
    startCluster({ major: 17, name: 'new', timezone: 'America/New_York', localeProvider: 'icu', icuLocale: 'en-US', locale: 'en_US.UTF-8' }, tmp),
  ]);
  await Promise.all([sql(old.url, DDL), sql(neu.url, DDL)]);
  const dbname = new URL(neu.url).pathname.slice(1);
  await sql(neu.url, `alter database "${dbname}" set extra_float_digits = 0`);
  await sql(neu.url, `update items set note = 'n/a' where id = 1; update items set label = convert_from(convert_to('café', 'UTF8'), 'LATIN1') where id = 9`);
  [src, tgt] = await Promise.all([connect(old.url), connect(neu.url)]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([src?.end(), tgt?.end()]);
  await Promise.allSettled([old, neu].filter(Boolean).map((c) => c.destroy()));
  rmSync(tmp, { recursive: true, force: true });
});

it('a queries file: each planted drift counted under its cause, with latency on both sides', async () => {
  const tally = new ShadowTally();
  const r = await shadowQueries(src, tgt, { text: `
    select name from items order by name;             -- collation
    select id, at from items order by id;              -- timezone
    select id, note from items order by id;            -- NULL -> default
    select label from items where id = 9;              -- encoding
    select sum(price) from items where id < 3;         -- float text (extra_float_digits)
    select count(*) from items;                        -- the same on both
  ` }, tally);
  expect(r.map((c) => c.mismatch?.cause ?? null)).toEqual(['collation', 'timezone', 'null-default', 'encoding', 'float-text', null]);
  const s = tally.summary();
  expect(s).toMatchObject({ compared: 6, mismatches: 5, byCause: { collation: 1, timezone: 1, 'null-default': 1, encoding: 1, 'float-text': 1, other: 0 } });
  expect(s.perQuery).toHaveLength(6);
  for (const q of s.perQuery) expect(q.source.p50).toBeGreaterThan(0), expect(q.target.p50).toBeGreaterThan(0);
  expect(s.events.map((e) => e.cause)).toEqual(['collation', 'timezone', 'null-default', 'encoding', 'float-text']);
  expect(shadowBudget(s, 0).pass).toBe(false);
});

it('the mirror takes a share of live reads with parameters, refuses writes, and counts by cause', async () => {
  let n = 0;
  const m = new ShadowMirror(src, tgt, { mirror: 0.5, random: () => (n++ % 2 ? 0.9 : 0.1), settleMs: 0 });
  const taken = [1, 2, 3, 4].map((id) => m.offer('select id, at from items where id = $1', [id]));
  expect(taken).toEqual([true, false, true, false]);
  expect(m.offer('update items set note = null', [])).toBe(false);
  const s = await m.drain();
  expect(s).toMatchObject({ compared: 2, mismatches: 2, byCause: { timezone: 2 }, skipped: 0 });
  expect((await sql(old.url, 'select count(*)::int as n from items where note is null'))[0].n).toBe(2);
});

it('a difference that goes away on the re-read is replication lag (settled), not a mismatch', async () => {
  await sql(old.url, `insert into items values (20, 'late', '2024-01-01', 1, 'n', 'l')`);
  setTimeout(() => void sql(neu.url, `insert into items values (20, 'late', '2024-01-01', 1, 'n', 'l')`), 100);
  const c = await shadowCompare(src, tgt, 'select id, name from items where id >= 20', [], { settleMs: 1500 });
  expect(c).toMatchObject({ settled: true, mismatch: null });
  await expect(shadowCompare(src, tgt, 'delete from items')).rejects.toThrow(/is not a read/);
});

it('under real logical replication with live writes: mirrored reads count timezone and collation, the subscriber\'s sequences are a warning', async () => {
  const [so, ne] = [withDatabase(old.url, 'repl'), withDatabase(neu.url, 'repl')];
  for (const c of [old, neu]) {
    await sql(c.url, 'create database repl');
    await sql(withDatabase(c.url, 'repl'), 'create table t (id serial primary key, name text not null, at timestamptz not null default now())');
  }
  await sql(so, `insert into t (name, at) select n, '2024-03-10 06:30+00' from unnest(array['résumé', 'resume', 'Zürich', 'co-op', 'coop', 'Coop']) n`);
  await startReplication({ source: so, target: ne, name: 'shadowtest' });
  try {
    await waitForSync({ source: so, target: ne, name: 'shadowtest', timeoutMs: 60_000 });
    const [a, b] = await Promise.all([connect(so), connect(ne)]);
    try {
      const mirror = new ShadowMirror(a, b, { mirror: 1, settleMs: 300 });
      // Live writes on the old side while reads are mirrored.
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await sql(so, `insert into t (name, at) values ('w', '2024-01-01 00:00+00')`);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      for (let i = 1; i <= 6; i++) {
        mirror.offer('select id, at from t where id = $1', [i]);
        mirror.offer('select name from t where id <= 6 order by name');
        await new Promise((r) => setTimeout(r, 30));
      }
      const s = await mirror.drain();
      writing = false;
      await writer;
      expect(s.compared).toBe(12);
      expect(s.byCause).toMatchObject({ timezone: 6, collation: 6, other: 0 });
      expect(s.perQuery.map((q) => q.runs)).toEqual([6, 6]);
      // The target subscribes: its sequence is behind by design until the switchover syncs it.
      const r = await drift({ source: so, target: ne, categories: ['schema'] });
      const seq = r.findings.find((f) => f.object === 'sequence public.t_id_seq');
      expect(seq, JSON.stringify(r.findings, null, 1)).toMatchObject({ severity: 'warning', message: expect.stringMatching(/receives rows by logical replication/) });
      expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
    } finally {
      await Promise.allSettled([a.end(), b.end()]);
    }
  } finally {
    await stopReplication({ source: so, target: ne, name: 'shadowtest' });
  }
}, 120_000);
