/**
 * The database faults against the switchover machine itself (library form, a command switch), on a
 * real 13 → 17 pair with an app-role writer: what the core does with each. The rehearsal-level
 * versions (k6, DNS, report) need the runner's wiring (notes/watch.md).
 *  - ddl that breaks apply: the switchover refuses (preflight) or aborts (catch-up), the old
 *    primary keeps serving, nothing is left fenced;
 *  - ddl that breaks apply once the catch-up has passed: the sentinel phase sees the disabled
 *    subscription and aborts at once (found by this fault: it held the fence until its 60 s timeout);
 *  - a write burst pushing lag past the gate, plus a long transaction of the app role open across
 *    the fence: the switchover waits at catch-up until lag is under the gate, the sentinel proves
 *    everything arrived before the switch, and the
 *    terminate fence ends the transaction (its rows were never acknowledged); nothing acknowledged
 *    is lost.
 * Heavy (CUTOVER_HEAVY=1): about a minute.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySchema } from '../../migration/schema-copy.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { WatchSession } from '../../migration/watch.ts';
import { ClusterTimelineSampler, summariseTimeline } from '../../migration/timeline.ts';
import { applyDdlFault, startBurst, startLongTransaction, type LongTransaction } from '../../lab/faults.ts';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';

async function until(fn: () => Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what} not reached in time`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe('database faults × switchover 13 → 17', () => {
  let pair: Pair;
  let dir: string;
  let appUrl: string;
  const acked: number[] = [];
  let stopWriter = false;
  let writer: Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'faults-switchover-'));
    pair = await startPair(13, 17);
    await sql(
      pair.old.url,
      `create role app login password 'app-pw';
       create table public.orders (id bigserial primary key, account_id bigint not null, note text);
       insert into public.orders (account_id, note) select g % 7, 'seed' from generate_series(1, 200) g;
       grant select, insert, update on public.orders to app; grant usage on all sequences in schema public to app;`,
    );
    await sql(pair.new.url, `create role app login password 'app-pw'`);
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'pre-data' });
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'post-data' });
    appUrl = Object.assign(new URL(pair.old.url), { username: 'app', password: 'app-pw' }).toString();
    // a steady app writer on the old primary: acknowledged ids are what must not be lost
    writer = (async () => {
      let c: pg.Client | undefined;
      while (!stopWriter) {
        try {
          if (!c) {
            c = new pg.Client({ connectionString: appUrl, connectionTimeoutMillis: 2000 });
            c.on('error', () => {});
            await c.connect();
          }
          const r = await c.query(`insert into public.orders (account_id, note) values (1, 'app') returning id`);
          acked.push(Number(r.rows[0].id));
          await new Promise((res) => setTimeout(res, 20));
        } catch {
          await c?.end().catch(() => {});
          c = undefined;
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      await c?.end().catch(() => {});
    })();
  }, 120_000);

  afterAll(async () => {
    stopWriter = true;
    await writer;
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ddl that breaks apply: refused or aborted cleanly, the old primary serving', async () => {
    const d = await applyDdlFault({ oldUrl: pair.old.url, newUrl: pair.new.url, sql: 'alter table public.orders add column gift boolean' });
    expect(d.breaksApply).toBe(true);
    const session = new WatchSession({ source: pair.old.url, target: pair.new.url });
    try {
      await until(async () => (await session.sample()).subscription.applyState === 'disabled', 30_000, 'apply stopped by the ddl');
    } finally {
      await session.close();
    }
    const t0 = Date.now();
    const r = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      switch: new CommandSwitch({ command: 'true' }),
      appRoles: ['app'],
      stateFile: join(dir, 'ddl.json'),
      lag: { maxBytes: 1024 * 1024, maxSeconds: 5, timeoutMs: 5000 },
    });
    expect(['failed', 'rolled-back']).toContain(r.outcome);
    expect(['preflight', 'catchup']).toContain(r.error?.phase);
    expect(r.phases.find((p) => p.name === 'fence')?.outcome ?? 'pending').not.toBe('ok');
    // refusing must not take longer than the lag timeout and the phase overheads
    expect(Date.now() - t0).toBeLessThan(60_000);
    const n = acked.length;
    await until(async () => acked.length > n + 5, 20_000, 'app writes on the old primary after the refusal');
    // recovery as the report tells it: the column on the new side, enable
    await sql(pair.new.url, `alter table public.orders add column gift boolean; alter subscription cutover_main enable`);
    await until(async () => (await sql(pair.new.url, `select count(*)::int as n from public.orders`))[0].n >= acked.length, 60_000, 'caught up after recovery');
  });

  it('ddl that breaks apply after the catch-up passed: the sentinel says apply stopped at once (it used to hold the fence ~60 s until its timeout), rolled back', async () => {
    const n0 = acked.length;
    const r = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      switch: new CommandSwitch({ command: 'true' }),
      appRoles: ['app'],
      stateFile: join(dir, 'ddl-late.json'),
      lag: { maxBytes: 1024 * 1024, maxSeconds: 5, timeoutMs: 10_000 },
      hooks: {
        onPhase: async (phase, event) => {
          if (phase !== 'catchup' || !((event as unknown) === 'start' || (event as any)?.type === 'phase-start')) return;
          await applyDdlFault({ oldUrl: pair.old.url, newUrl: pair.new.url, sql: 'alter table public.orders add column wrap boolean' });
          // the app writer's next insert carries the new column: apply stops (disable_on_error on 17)
          const s = new WatchSession({ source: pair.old.url, target: pair.new.url });
          try {
            await until(async () => (await s.sample()).subscription.applyState === 'disabled', 30_000, 'apply stopped');
          } finally {
            await s.close();
          }
        },
      },
    });
    expect(r.outcome).toBe('rolled-back');
    // apply stops while the catch-up gate polls (it now refuses a disabled subscription before the
    // fence), or after it passed (the sentinel then says so at once): never a 60 s fence either way
    expect(['catchup', 'sentinel']).toContain(r.error?.phase);
    expect(r.error?.message).toMatch(r.error?.phase === 'catchup' ? /subscription cutover_main is disabled/ : /sentinel row cannot arrive: subscription cutover_main is disabled/);
    await until(async () => acked.length > n0 + 5, 20_000, 'app writes on the old primary after the rollback');
    await sql(pair.new.url, `alter table public.orders add column wrap boolean; alter subscription cutover_main enable`);
    await until(async () => (await sql(pair.new.url, `select count(*)::int as n from public.orders`))[0].n >= acked.length, 60_000, 'caught up after recovery');
  });

  it('burst past the gate + a long app transaction across the fence: waits at the gate, the sentinel covers the rest, the fence ends the transaction, nothing acknowledged is lost', async () => {
    const sampler = new ClusterTimelineSampler({ source: pair.old.url, target: pair.new.url, intervalMs: 500, pids: { old: () => [pair.old.record.pid!], new: () => [pair.new.record.pid!] } });
    sampler.start();
    // as the app role (a batch job of the app): the fence covers it
    const burst = await startBurst({ url: appUrl, table: 'orders', rows: 150_000, durationMs: 4000 });
    let lt: LongTransaction | undefined;
    // a gate low enough that the burst passes it on a quiet machine too (apply keeps up better there: ~250 kB peak)
    const maxBytes = 64 * 1024;
    const r = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      switch: new CommandSwitch({ command: 'true' }),
      appRoles: ['app'],
      stateFile: join(dir, 'burst.json'),
      lag: { maxBytes, maxSeconds: 30, timeoutMs: 90_000 },
      hooks: {
        onPhase: async (phase, event) => {
          const start = (event as unknown) === 'start' || (event as any)?.type === 'phase-start';
          if (phase === 'catchup' && start && !lt) lt = await startLongTransaction({ url: appUrl, table: 'orders', rows: 10, durationMs: 60_000 });
        },
      },
    });
    const b = await burst.done;
    const points = await sampler.stop();
    expect(r.error).toBeUndefined();
    expect(r.outcome).toBe('completed');
    expect(lt).toBeDefined();
    const o = await lt!.done;
    expect(o.outcome).toBe('terminated'); // the terminate fence ended it: never acknowledged, not lost
    expect(o.rowsCommitted).toBe(0);
    const catchup = r.phases.find((p) => p.name === 'catchup')!;
    const fence = r.phases.find((p) => p.name === 'fence')!;
    expect(catchup.outcome).toBe('ok');
    // the gate held: catch-up ended with lag under it; lag AT the fence may be above it (the burst
    // still wrote between the gate and the fence), which the sentinel then waits out before the switch
    expect((catchup.detail?.lag as { bytes: number }).bytes).toBeLessThanOrEqual(maxBytes);
    expect(fence.outcome).toBe('ok');
    expect(r.phases.find((p) => p.name === 'sentinel')!.outcome).toBe('ok');
    console.log(`burst: catch-up waited ${catchup.detail?.waitedMs} ms; lag at fence ${(fence.detail?.lagAtFence as any)?.bytes} bytes (gate ${maxBytes}); fence ${fence.ms} ms, sentinel ${r.phases.find((p) => p.name === 'sentinel')!.ms} ms; long transaction ${o.outcome} after ${o.heldMs} ms`);
    // the burst did push lag past the gate while it wrote
    const sum = summariseTimeline(points, 500);
    expect(b.rowsWritten).toBeGreaterThan(10_000);
    if (b.error) expect(b.error).toMatch(/terminat/); // still writing when the fence came: ended by it
    expect(sum.maxLagBytes!).toBeGreaterThan(maxBytes);
    expect(sum.maxCpu.old!).toBeGreaterThan(0);
    // nothing acknowledged is lost: every acked id is on the new primary
    stopWriter = true;
    await writer;
    const ids = new Set((await sql(pair.new.url, `select id::int8 as id from public.orders where note = 'app'`)).map((x) => Number(x.id)));
    const lost = acked.filter((id) => !ids.has(id));
    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(20);
  });
});
