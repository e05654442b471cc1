/**
 * Clone-then-follow (issue 19) end to end: the new cluster is a physical copy of old at the slot's
 * consistent point, pg_upgraded to 18, then subscribed with copy_data = false from that point.
 * Under UPDATE/DELETE load and an INSERT loop whose acknowledged ids are checked on the new side:
 * zero lost writes, a clean verify, and nothing left behind (logical slot, physical slot,
 * publication). One test file per pair (test/integration/clone-follow-*.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPair, sql, type Pair } from './clusters.ts';
import { writeLoop } from './under-load.ts';
import { seed } from '../../lab/seed.ts';
import { cloneSupport, labCloneBuilder } from '../../lab/clone.ts';
import { objectNames, replicationStatus, startCloneReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';

/** INSERTs one at a time; `acked` holds the ids whose COMMIT returned. */
function insertLoop(url: string) {
  let stop = false;
  const acked: number[] = [];
  const run = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    try {
      while (!stop) {
        acked.push((await c.query(`insert into clone_writes (note) values ('w') returning id`)).rows[0].id);
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return { acked, stop: async () => ((stop = true), await run) };
}

export function cloneFollowSuite(oldMajor: number, newMajor: number): void {
  describe(`clone-then-follow ${oldMajor} → ${newMajor} under load`, () => {
    let pair: Pair;
    beforeAll(async () => {
      pair = await startPair(oldMajor, newMajor);
      await seed({ url: pair.old.url, preset: 'payments', scale: 20_000 });
      await sql(pair.old.url, `create table clone_writes (id bigserial primary key, note text, at timestamptz default now())`);
    }, 180_000);
    afterAll(async () => {
      await pair?.destroy();
    });

    it('builds the target from an upgraded copy at the slot LSN, follows it, loses nothing and verifies clean', async () => {
      const load = writeLoop(pair.old.url);
      const inserts = insertLoop(pair.old.url);
      const lines: string[] = [];
      let res;
      try {
        await new Promise((r) => setTimeout(r, 300));
        const builder = labCloneBuilder({ old: pair.old, target: pair.new, slot: objectNames().slot, log: (l) => lines.push(l) });
        res = await startCloneReplication({ source: pair.old.url, target: pair.new.url, clone: builder, log: (l) => lines.push(l) });
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await load.stop();
        await inserts.stop();
      }
      expect(res.initialSync).toBe('clone');
      expect(res.clone!.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(res.targetMajor).toBe(newMajor);
      const tools = cloneSupport(oldMajor, newMajor);
      expect(lines.join('\n')).toContain(`pg_upgrade 18 ${oldMajor} → ${newMajor} (--link; old's pg_controldata/pg_resetwal: ${tools.kind === 'install' ? tools.bin : "the lab's pg_control reader"}`);
      expect(lines.join('\n')).toMatch(/stopped recovery at [0-9A-F]+\/[0-9A-F]+/);
      // writes went on through the whole clone
      expect(load.done.updates).toBeGreaterThan(10);
      expect(inserts.acked.length).toBeGreaterThan(20);
      await waitForSync({ source: pair.old.url, target: pair.new.url, maxLagBytes: 0, timeoutMs: 60_000 });
      const st = await replicationStatus({ source: pair.old.url, target: pair.new.url });
      expect(st.enabled).toBe(true);
      expect(st.problems).toEqual([]);
      const onNew = new Set((await sql(pair.new.url, `select id::int from clone_writes`)).map((r) => r.id));
      expect(inserts.acked.filter((id) => !onNew.has(id))).toEqual([]);
      const v = await verify({ source: pair.old.url, target: pair.new.url, sampleRows: 0 });
      expect(v.tables.filter((t) => !t.ok).map((t) => t.table)).toEqual([]);
      expect(v.ok).toBe(true);
      // the copy's publication is gone from the target; the physical slot from old
      expect(await sql(pair.new.url, `select pubname from pg_publication`)).toEqual([]);
      expect(await sql(pair.old.url, `select slot_name from pg_replication_slots where slot_type = 'physical'`)).toEqual([]);
      const stop = await stopReplication({ source: pair.old.url, target: pair.new.url });
      expect(stop.complete).toBe(true);
      expect(await sql(pair.old.url, `select slot_name from pg_replication_slots`)).toEqual([]);
    }, 240_000);
  });
}

