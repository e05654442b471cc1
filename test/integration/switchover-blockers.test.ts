/**
 * What stops a switchover before anything is fenced, on a real 13 → 17 pair: a table created on
 * the source after replication started (it would be empty on the new primary), a subscription
 * whose apply stopped (its lag can never drain); and the grace fence letting an in-flight
 * transaction finish.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForSync, objectNames } from '../../migration/replication.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { allChanges, readState } from '../../migration/switchover/state.ts';
import { startReplicatedItemsPair, sql, type Pair } from '../helpers/clusters.ts';

describe('switchover blockers (13 → 17)', () => {
  let pair: Pair;
  let dir: string;
  const appUrl = (url: string) => Object.assign(new URL(url), { username: 'app', password: 'app' }).toString();
  const base = () => ({ source: pair.old.url, target: pair.new.url, switch: new CommandSwitch({ command: 'true' }), appRoles: ['app'], timeouts: { readiness: 60_000 } as any });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchover-blockers-'));
    pair = await startReplicatedItemsPair(13, 17);
  });
  afterAll(async () => {
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a table created on the source after replication started blocks the switch with its name; nothing changes', async () => {
    await sql(pair.old.url, `create table public.invoices (id bigint primary key, total numeric)`);
    try {
      const r = await switchover({ ...base(), stateFile: join(dir, 'coverage.json') });
      expect(r.ok).toBe(false);
      expect(r.error?.phase).toBe('preflight');
      expect(r.error?.message).toMatch(/public\.invoices/);
      expect(r.error?.message).toMatch(/replicate add-table/);
      expect(allChanges(readState(join(dir, 'coverage.json'))!)).toEqual([]);
      expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: true }]);
    } finally {
      await sql(pair.old.url, `drop table public.invoices`);
    }
  });

  it('a disabled subscription (apply stopped) fails the catch-up at once instead of waiting out its timeout', async () => {
    const sub = objectNames('main').subscription;
    await sql(pair.new.url, `alter subscription ${sub} disable`);
    // preflight refuses a disabled subscription too; catch-up is what sees it when apply stops after preflight
    const t0 = Date.now();
    const r = await switchover({ ...base(), lag: { timeoutMs: 120_000 }, stateFile: join(dir, 'disabled.json') });
    await sql(pair.new.url, `alter subscription ${sub} enable`);
    expect(r.ok).toBe(false);
    expect(['preflight', 'catchup']).toContain(r.error?.phase);
    expect(r.error?.message).toMatch(/disabled/);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: true }]);
  });

  it('grace fence: an in-flight transaction finishes and commits within the grace; the switchover completes', async () => {
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
    const app = new pg.Client({ connectionString: appUrl(pair.old.url) });
    app.on('error', () => {});
    await app.connect();
    let inFlight: Promise<unknown> | undefined;
    const r = await switchover({
      ...base(),
      fenceGrace: 4000,
      timeouts: { fence: 20_000 } as any,
      stateFile: join(dir, 'grace.json'),
      hooks: {
        onPhase: async (name, event) => {
          if (name !== 'fence' || event !== 'start') return;
          await app.query('begin');
          await app.query(`insert into public.items (note) values ('in flight')`);
          inFlight = app.query('select pg_sleep(1.5)').then(() => app.query('commit'));
        },
      },
    });
    await inFlight?.catch(() => {});
    await app.end().catch(() => {});
    expect(r.ok, JSON.stringify(r.error)).toBe(true);
    const fence = readState(join(dir, 'grace.json'))!.phases.find((p) => p.name === 'fence')!;
    expect((fence.detail as any)?.grace?.finished).toBeGreaterThanOrEqual(1);
    // committed on the old primary inside the grace, and carried to the new one before the switch
    expect(await sql(pair.new.url, `select count(*)::int as n from public.items where note = 'in flight'`)).toEqual([{ n: 1 }]);
  });
});
