/**
 * Issue 12's reproduction: payments seeded, a loop of UPDATEs and DELETEs on accounts and payments
 * on the old primary while `cutover replicate start` copies — it must succeed and verify clean,
 * because the keys are on the target before the copy. The old order (keys only after the copy) is
 * replayed too, to see the failure said plainly: on 17 (disable_on_error) the subscription is
 * disabled and start prints the target log's error line; on 14 (no disable_on_error) the worker
 * retries forever, and the wait stops on that error instead of waiting out its timeout.
 * 11 → 14 is the target without disable_on_error, 13 → 17 the one with it (one test file each,
 * test/integration/replication-under-load-*.test.ts, so each stays well under a minute).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { cli, startPair, sql, type Pair } from './clusters.ts';
import { seed } from '../../lab/seed.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { replicationStatus, startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';
import { withDatabase } from '../../migration/pg.ts';

/** UPDATEs and DELETEs on accounts and payments every few ms until stopped; counts what it did. */
export function writeLoop(url: string) {
  let stop = false;
  const done = { updates: 0, deletes: 0 };
  const run = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    const [{ a, p }] = (await c.query(`select (select max(id) from accounts)::int as a, (select max(id) from payments)::int as p`)).rows;
    try {
      while (!stop) {
        await c.query(`update accounts set balance = balance + 1 where id = $1`, [1 + Math.floor(Math.random() * a)]);
        await c.query(`update payments set amount = amount + 0.01 where id = $1`, [1 + Math.floor(Math.random() * p)]);
        done.updates += 2;
        // ledger entries point at payments: both go in one statement (the FK is checked at its end)
        const r = await c.query(`with l as (delete from ledger_entries where payment_id = $1) delete from payments where id = $1`, [1 + Math.floor(Math.random() * p)]);
        done.deletes += r.rowCount ?? 0;
        await new Promise((res) => setTimeout(res, 15));
      }
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return {
    done,
    async stop() {
      stop = true;
      await run;
    },
  };
}

export function underLoadSuite(oldMajor: number, newMajor: number, disableOnError: boolean): void {
describe(`replicate start under UPDATE/DELETE load ${oldMajor} → ${newMajor}`, () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair(oldMajor, newMajor);
    await seed({ url: pair.old.url, preset: 'payments', scale: 40_000 });
  }, 120_000);

  afterAll(async () => {
    await pair?.destroy();
  });

  it('succeeds with the keys built before the copy, and verifies clean', async () => {
    const load = writeLoop(pair.old.url);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await cli(['replicate', 'start', '--source', pair.old.url, '--target', pair.new.url, '--json']).done;
      expect(r.code, r.out).toBe(0);
      expect(r.stderr).toContain('schema keys');
      const out = JSON.parse(r.stdout);
      expect(out.preData.keys.applied).toBeGreaterThan(0);
      const st = await replicationStatus({ source: pair.old.url, target: pair.new.url });
      expect(st.enabled).toBe(true);
      expect(st.problems).toEqual([]);
    } finally {
      await load.stop();
    }
    // the loop really ran across the copy
    expect(load.done.updates).toBeGreaterThan(10);
    expect(load.done.deletes).toBeGreaterThan(0);
    await waitForSync({ source: pair.old.url, target: pair.new.url, maxLagBytes: 0, timeoutMs: 60_000 });
    const v = await verify({ source: pair.old.url, target: pair.new.url, sampleRows: 0 });
    expect(v.tables.filter((t) => !t.ok).map((t) => t.table)).toEqual([]);
    expect(v.ok).toBe(true);
    const stop = await stopReplication({ source: pair.old.url, target: pair.new.url });
    expect(stop.complete).toBe(true);
  }, 120_000);

  it('in the old order (keys after the copy) stops with the target log error line and what to do', async () => {
    // a fresh database on each side, so the first test's replication is not involved
    await sql(pair.old.url, `create database oldorder`);
    await sql(pair.new.url, `create database oldorder`);
    const src = withDatabase(pair.old.url, 'oldorder');
    const tgt = withDatabase(pair.new.url, 'oldorder');
    await sql(src, `create table accounts (id bigint primary key, balance int not null default 0); insert into accounts select g from generate_series(1, 5000) g`);
    await copySchema({ source: src, target: tgt, section: 'pre-data', keys: false });
    // start itself refuses target tables without keys, naming them
    const refused = await startReplication({ source: src, target: tgt }).catch((e) => e);
    expect(refused.code).toBe('PRECONDITION');
    expect(refused.message).toContain('public.accounts');
    await startReplication({ source: src, target: tgt, allowMissingTargetKeys: true });
    let stopUpdates = false;
    const updates = (async () => {
      while (!stopUpdates) {
        await sql(src, `update accounts set balance = balance + 1 where id = ${1 + Math.floor(Math.random() * 5000)}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    try {
      const t0 = Date.now();
      // A 5000-row copy can finish between two UPDATEs and look in sync for one poll; the next
      // streamed UPDATE then stops the apply worker, which a second look sees.
      let e: any;
      for (let look = 0; look < 5 && !(e instanceof Error); look++) {
        e = await waitForSync({ source: src, target: tgt, maxLagBytes: 0, timeoutMs: 120_000, pollMs: 300 }).catch((x) => x);
        if (!(e instanceof Error)) await new Promise((r) => setTimeout(r, 1000));
      }
      expect(e).toBeInstanceOf(Error);
      expect(Date.now() - t0).toBeLessThan(110_000); // stopped on the error, not on the timeout
      expect(e.message).toContain('has neither REPLICA IDENTITY index nor PRIMARY KEY');
      expect(e.message).toMatch(disableOnError ? /was disabled after an error/ : /keeps failing \((failed|restarted) \d+ times\)/);
      expect(e.hint).toContain('primary key');
      // 'always' as `replicate status` does: before 15 nothing in the catalogs says a sync worker is looping
      const st = await replicationStatus({ source: src, target: tgt, diagnose: 'always' });
      expect(st.applyErrors[0]).toMatchObject({ kind: 'missing-key', relation: 'public.accounts' });
      expect(st.log?.path).toBeDefined();
      if (disableOnError) expect(st.problems.join('\n')).toContain('has neither REPLICA IDENTITY index nor PRIMARY KEY');
      // `replicate status` prints the line itself and exits 1
      const r = await cli(['replicate', 'status', '--source', src, '--target', tgt]).done;
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('has neither REPLICA IDENTITY index nor PRIMARY KEY');
    } finally {
      stopUpdates = true;
      await updates;
      expect((await stopReplication({ source: src, target: tgt })).complete).toBe(true);
    }
  }, 150_000);
});
}
