/**
 * The grace fence on a real PostgreSQL 17 (issue 19 item 3): after NOLOGIN, a transaction in
 * flight that ends within the grace commits its write; one longer than the grace is terminated and
 * its write is not committed; an idle session is ended at once.
 */
import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, startCluster } from '../helpers/clusters.ts';
import { fence, unfence } from '../../migration/fence.ts';
import { describeGrace } from '../../migration/grace.ts';
import { connect } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

let cluster: StartedCluster & { tmp: string };
const as = (role: string, app: string) => {
  const u = new URL(cluster.url);
  u.username = role;
  u.password = 'pw';
  u.pathname = '/app';
  u.searchParams.set('application_name', app);
  return u.toString();
};
async function session(app: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: as('app_rw', app) });
  c.on('error', () => {});
  await c.connect();
  return c;
}

beforeAll(async () => {
  cluster = await startCluster({ major: 17 });
  await sql(cluster.url, `create role app_rw login password 'pw'; create table orders (id int primary key, note text); grant insert, select on orders to app_rw`);
}, 120_000);
afterAll(async () => {
  await cluster?.destroy();
  if (cluster?.tmp) rmSync(cluster.tmp, { recursive: true, force: true });
});

describe('grace fence', () => {
  it('an in-flight transaction shorter than the grace commits, a longer one is terminated and rolled back, idle sessions go at once', async () => {
    const admin = await connect(cluster.url);
    const short = await session('short-txn');
    const long = await session('long-txn');
    const idle = await session('idle');
    const changes: any[] = [];
    try {
      // separate round trips: between statements the session is "idle in transaction", which is in flight too
      const shortTxn = (async () => {
        await short.query('begin');
        await short.query('select pg_sleep(1.5)');
        await short.query(`insert into orders values (1, 'short')`);
        await short.query('commit');
      })();
      const longTxn = (async () => {
        await long.query('begin');
        await long.query('select pg_sleep(8)');
        await long.query(`insert into orders values (2, 'long')`);
        await long.query('commit');
      })();
      const longResult = longTxn.then(() => 'committed', (e) => `failed: ${e.message}`);
      // both transactions are open before the fence closes
      for (let i = 0; i < 200; i++) {
        const n = (await admin.query(`select count(*)::int as n from pg_stat_activity where usename = 'app_rw' and xact_start is not null`)).rows[0].n;
        if (n === 2) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const f = await fence(admin, 'terminate', { roles: ['app_rw'], grace: 3000, timeoutMs: 15_000, record: async (c) => void changes.push(c) });
      await shortTxn; // it finished inside the grace: no error for the client
      expect(await longResult).toMatch(/terminat/);
      expect(f.remaining).toBe(0);
      const g = f.grace!;
      expect(g.inFlight).toBe(2);
      expect(g.finished).toBe(1);
      expect(g.terminated).toBe(1);
      expect(g.idleTerminated).toBe(1);
      const cut = g.sessions.find((s) => s.outcome === 'terminated')!;
      expect(cut.application).toBe('long-txn');
      expect(cut.afterMs).toBeGreaterThanOrEqual(3000); // never cut before the grace is over
      expect(g.heldMs).toBe(cut.afterMs);
      expect(g.sessions.find((s) => s.outcome === 'finished')!.application).toBe('short-txn');
      expect(describeGrace(g)).toMatch(/1 finished, 1 terminated/);
      expect(await idle.query('select 1').then(() => 'alive', () => 'ended')).toBe('ended');
      // the short write committed, the long one did not
      expect((await admin.query(`select id, note from orders order by id`)).rows).toEqual([{ id: 1, note: 'short' }]);
      expect(changes.some((c) => c.kind === 'role-login')).toBe(true);
    } finally {
      await unfence(admin, changes);
      await Promise.all([short, long, idle].map((c) => c.end().catch(() => {})));
      await admin.end();
    }
  }, 60_000);

  it('a pooled connection that starts a new transaction after the fence is ended then, not after the grace', async () => {
    const admin = await connect(cluster.url);
    const pooled = await session('pooled');
    const changes: any[] = [];
    try {
      let n = 0;
      const loop = (async () => {
        // autocommit statements back to back, each its own transaction, as a pooler's server connection runs them
        for (;;) await pooled.query(`insert into orders select 1000 + $1::int, (select 'loop' from pg_sleep(0.2))`, [n++]);
      })().catch((e) => e.message as string);
      while (n < 2) await new Promise((r) => setTimeout(r, 20));
      const f = await fence(admin, 'terminate', { roles: ['app_rw'], grace: 5000, timeoutMs: 15_000, record: async (c) => void changes.push(c) });
      expect(await loop).toMatch(/terminat/);
      const s = f.grace!.sessions.find((x) => x.application === 'pooled');
      // its statement at the fence committed; the next one was new work and ended it (not the grace
      // running out). Caught between two statements, it held nothing and was ended at once.
      if (s) expect(s.outcome).toBe('finished');
      else expect(f.grace!.idleTerminated).toBe(1);
      expect(f.grace!.terminated).toBe(0);
      expect(f.remaining).toBe(0);
    } finally {
      await unfence(admin, changes);
      await pooled.end().catch(() => {});
      await admin.end();
    }
  }, 60_000);

  it('no transaction in flight: nothing is held; a grace on another strategy is refused', async () => {
    const admin = await connect(cluster.url);
    const idle = await session('idle');
    const changes: any[] = [];
    try {
      const f = await fence(admin, 'terminate', { roles: ['app_rw'], grace: 3000, timeoutMs: 15_000, record: async (c) => void changes.push(c) });
      expect(f.grace).toMatchObject({ inFlight: 0, heldMs: 0, idleTerminated: 1 });
      await expect(fence(admin, 'read-only', { roles: ['app_rw'], grace: 500, record: async () => {} })).rejects.toThrow(/terminate fence only/);
    } finally {
      await unfence(admin, changes);
      await idle.end().catch(() => {});
      await admin.end();
    }
  }, 60_000);
});
