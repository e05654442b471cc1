/**
 * `--skip-copy` back-fill on real servers, PostgreSQL 13 → 17 (issue 19 item 4): an append-only
 * table written all through the back-fill ends identical on both sides (verify), no streamed row
 * collides with a back-filled one (the snapshot is the slot's own), the count check is reported,
 * and a table without a primary key is refused before anything exists.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';
import { startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { verify } from '../../migration/verify.ts';
import { withClient } from '../../migration/pg.ts';

let pair: Pair;
const ROWS = 100_000;

beforeAll(async () => {
  pair = await startPair(13, 17);
  await sql(
    pair.old.url,
    `create table events (id bigint generated always as identity primary key, kind text, payload jsonb, amount float8, at timestamptz, raw bytea);
     insert into events (kind, payload, amount, at, raw) select 'k' || (g % 7), jsonb_build_object('n', g), g / 3.0, timestamptz '2026-01-01' + g * interval '1 s', decode(md5(g::text), 'hex') from generate_series(1, ${ROWS}) g;
     create table accounts (id int primary key, name text);
     insert into accounts select g, 'a' || g from generate_series(1, 100) g;
     create table audit (at timestamptz, line text)`,
  );
}, 240_000);
afterAll(async () => {
  await pair?.destroy();
});

describe('--skip-copy back-fill (13 → 17)', () => {
  it('refuses a table without a primary key before anything exists', async () => {
    const r = await cli(['replicate', 'start', '--source', pair.old.url, '--target', pair.new.url, '--tables', 'events,audit', '--skip-copy', 'audit']).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--skip-copy public\.audit: the table has no primary key, which the back-fill needs/);
    expect(await sql(pair.old.url, `select count(*)::int as n from pg_replication_slots`)).toEqual([{ n: 0 }]);
    expect(await sql(pair.old.url, `select count(*)::int as n from pg_publication`)).toEqual([{ n: 0 }]);
    expect(await sql(pair.new.url, `select count(*)::int as n from pg_tables where schemaname = 'public'`)).toEqual([{ n: 0 }]);
  });

  it('a table written during the back-fill ends identical on both sides', async () => {
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'pre-data' });
    // a writer appends to events (and updates accounts, a copied table) all through start and back-fill
    let stop = false;
    let written = 0;
    const writer = withClient(pair.old.url, async (c) => {
      while (!stop) {
        await c.query(`insert into events (kind, payload, amount, at, raw) values ('live', '{"live": true}', 0.1, now(), '\\x00ff')`);
        await c.query(`update accounts set name = name || '.' where id = $1`, [1 + (written % 100)]);
        written++;
      }
    });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const before = written;
      const started = await startReplication({ source: pair.old.url, target: pair.new.url, tables: ['events', 'accounts'], backfill: [{ schema: 'public', name: 'events' }], backfillChunkRows: 5_000 });
      const writtenDuringBackfill = written;
      expect(writtenDuringBackfill).toBeGreaterThan(before); // rows were written while the slot was made and the back-fill ran
      const b = started.backfill!.tables[0];
      expect(started.backfill!.ok).toBe(true);
      expect(b).toMatchObject({ table: 'public.events', chunks: Math.ceil(b.snapshotRows / 5_000) });
      // the snapshot is the slot's: rows written before it are in it, rows after it stream — none in both
      expect(b.snapshotRows).toBeGreaterThanOrEqual(ROWS);
      expect(b.read).toBe(b.snapshotRows);
      expect(b.alreadyPresent).toBe(0);
      expect(b.inserted).toBe(b.snapshotRows);
      expect(b.presentOnTarget).toBe(b.snapshotRows);
      expect(started.tables.find((t) => t.name === 'events')).toMatchObject({ copyData: false, backfill: true });
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await writer;
      expect(written).toBeGreaterThan(writtenDuringBackfill); // the writer ran on past the back-fill too
      await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
      // quiesced: wait until the last written row arrived, then compare every row
      const last = ROWS + written;
      const until = Date.now() + 30_000;
      while ((await sql(pair.new.url, `select count(*)::int as n from events where id = $1`, [last]))[0].n === 0) {
        if (Date.now() > until) throw new Error(`row ${last} never arrived`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const v = await verify({ source: pair.old.url, target: pair.new.url, tables: ['events', 'accounts'] });
      expect(v.tables.map((t) => [t.table, t.ok, t.sourceRows === t.targetRows])).toEqual([
        ['public.events', true, true],
        ['public.accounts', true, true],
      ]);
      expect(v.tables[0].sourceRows).toBe(ROWS + written);
    } finally {
      stop = true;
      await writer.catch(() => {});
      await stopReplication({ source: pair.old.url, target: pair.new.url });
    }
  });

  it('the CLI back-fills in incremental mode too (first, then the other tables one by one), and verify agrees', async () => {
    await sql(pair.new.url, `drop schema public cascade; create schema public`);
    const r = await cli(['replicate', 'start', '--source', pair.old.url, '--target', pair.new.url, '--incremental', '--tables', 'accounts,events', '--skip-copy', 'events']).done;
    try {
      expect(r.code, r.out).toBe(0);
      expect(r.stderr).toMatch(/created slot cutover_main at [0-9A-F]+\/[0-9A-F]+ with its snapshot, for the back-fill of public\.events/);
      expect(r.stderr).toMatch(/back-fill public\.events: (\d+) of \1 snapshot row\(s\) read, \1 inserted, 0 already there; count check ok \(\1 on the target\)/);
      expect(r.stderr).toMatch(/"progress":"back-fill public\.events".*"ratePerSec":\d+/);
      expect(r.stdout).toMatch(/replication main started: 2 table\(s\), all ready, 1 back-filled \(count check ok\)/);
      expect(r.stderr.indexOf('back-fill public.events:')).toBeLessThan(r.stderr.indexOf('added public.accounts'));
      const v = await verify({ source: pair.old.url, target: pair.new.url, tables: ['events', 'accounts'] });
      expect(v.ok).toBe(true);
    } finally {
      await stopReplication({ source: pair.old.url, target: pair.new.url });
    }
  });
});
