/**
 * The pgbouncer switch with the pause fence, on a real 11 → 17 pair behind Debian's pgbouncer as
 * the lab starts it (lab/pgbouncer.ts: its own ini, including its server_login_retry): a query
 * sent while the pool is paused is HELD — it completes only after the resume phase released it,
 * without an error — while the database entry is repointed from old to new; a steady writer sees
 * no error and loses nothing; `current()` reads the running pooler (SHOW DATABASES).
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTraversable, serverUser } from '../../lab/osuser.ts';
import { startPgbouncer, type StartedPgbouncer } from '../../lab/pgbouncer.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { PgbouncerSwitch } from '../../migration/switch/pgbouncer.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';

const PGBOUNCER = '/usr/sbin/pgbouncer';

describe.skipIf(!existsSync(PGBOUNCER))('switchover with the pgbouncer switch (pause fence)', () => {
  let pair: Pair;
  let dir: string;
  let bouncer: StartedPgbouncer;
  const viaPool = () => `postgres://app:app@${bouncer.host}:${bouncer.port}/app`;

  beforeAll(async () => {
    pair = await startPair(11, 17);
    for (const url of [pair.old.url, pair.new.url]) {
      await sql(url, `create role app login password 'app'`);
      await sql(url, `create table public.orders (id bigserial primary key, at timestamptz default now())`);
      await sql(url, `grant select, insert on public.orders to app; grant usage on all sequences in schema public to app`);
    }
    await sql(pair.old.url, `insert into public.orders default values`);
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
    dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
    // pgbouncer runs as the clusters' unprivileged user: it must reach its directory
    chmodSync(dir, 0o755);
    ensureTraversable(dir, serverUser());
    bouncer = await startPgbouncer({ dir: join(dir, 'pgbouncer'), alias: 'app', upstream: { host: pair.old.record.host, port: pair.old.record.port, dbname: 'app' }, users: { app: 'app' } });
    await sql(viaPool(), 'select 1');
  });

  afterAll(async () => {
    await bouncer?.stop();
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ctxOf = () => ({ runId: 'x', phase: 'probe', direction: 'forward' as const, old: { host: pair.old.record.host, port: pair.old.record.port, database: 'app' }, new: { host: pair.new.record.host, port: pair.new.record.port, database: 'app' } });
  const paused = async (sw: PgbouncerSwitch) => Number((await sw.admin(['SHOW DATABASES'])).find((r) => r.name === 'app')?.paused);
  const waitTimeout = async (sw: PgbouncerSwitch) => String((await sw.admin(['SHOW CONFIG'])).find((r) => r.key === 'query_wait_timeout')?.value);

  it('a failed rewrite or RELOAD never leaves pgbouncer PAUSED (its own pause, and a pause fence\'s)', async () => {
    // an ini without the alias: the rewrite fails while the pool is paused
    const broken = join(dir, 'broken.ini');
    writeFileSync(broken, readFileSync(bouncer.iniFile, 'utf8').replace(/^app\s*=.*$/m, ''));
    const sw = new PgbouncerSwitch({ adminUrl: bouncer.adminUrl, iniFile: broken });
    await expect(sw.switchTo('new', ctxOf())).rejects.toMatchObject({ code: 'CONFIG', detail: expect.stringMatching(/pgbouncer was resumed/) });
    expect(await paused(sw)).toBe(0);
    await sw.pause(ctxOf());
    expect(await paused(sw)).toBe(1);
    await expect(sw.switchTo('new', ctxOf())).rejects.toMatchObject({ code: 'CONFIG' });
    expect(await paused(sw)).toBe(0);
    expect(await sql(viaPool(), 'select 1 as ok')).toEqual([{ ok: 1 }]);
    expect(await sw.current(ctxOf())).toBe('old');
  });

  it('a query held longer than maxHoldMs is released with an error, not held forever; query_wait_timeout is restored', async () => {
    const sw = new PgbouncerSwitch({ adminUrl: bouncer.adminUrl, iniFile: bouncer.iniFile, maxHoldMs: 1500 });
    const before = await waitTimeout(sw);
    await sw.pause(ctxOf());
    try {
      expect(Number(await waitTimeout(sw))).toBeCloseTo(1.5, 1);
      const held = await sql(viaPool(), 'select 1').then(
        () => 'ran',
        (e) => String(e.message),
      );
      expect(held).toMatch(/query_wait_timeout/);
    } finally {
      await sw.resume(ctxOf());
    }
    expect(await waitTimeout(sw)).toBe(before);
    expect(await sql(viaPool(), 'select 1 as ok')).toEqual([{ ok: 1 }]);
  });

  it('holds queries instead of failing them, repoints to new, loses nothing; ends sessions that bypass the pooler; keeps the ini 0600', async () => {
    chmodSync(bouncer.iniFile, 0o600);
    // an app session straight to the old primary: PAUSE does not hold it, the fence must end it
    const direct = new pg.Client({ connectionString: `postgres://app:app@${pair.old.record.host}:${pair.old.record.port}/app` });
    const directGone = new Promise<string>((res) => direct.on('error', (e) => res(e.message)));
    await direct.connect();
    const acked: Array<{ id: number }> = [];
    const errors: string[] = [];
    let stop = false;
    const writer = (async () => {
      const c = new pg.Client({ connectionString: viaPool() });
      c.on('error', () => {});
      await c.connect();
      while (!stop) {
        try {
          const r = await c.query(`insert into public.orders default values returning id`);
          acked.push({ id: Number(r.rows[0].id) });
        } catch (e: any) {
          errors.push(e.message);
        }
        await new Promise((res) => setTimeout(res, 10));
      }
      await c.end().catch(() => {});
    })();
    // the order of what happened: phase starts, and the held query's send and completion
    const seen: string[] = [];
    let held: Promise<number> | undefined;
    const sw = new PgbouncerSwitch({ adminUrl: bouncer.adminUrl, iniFile: bouncer.iniFile });
    const ctx = { runId: 'x', phase: 'probe', direction: 'forward' as const, old: { host: pair.old.record.host, port: pair.old.record.port, database: 'app' }, new: { host: pair.new.record.host, port: pair.new.record.port, database: 'app' } };
    expect(await sw.current(ctx)).toBe('old');
    await new Promise((r) => setTimeout(r, 800));
    const res = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      appRoles: ['app'],
      fence: 'pause',
      switch: sw,
      stateFile: join(dir, 'state.json'),
      onEvent: (e) => void (e.type === 'phase-start' && seen.push(`start ${e.phase}`)),
      hooks: {
        onPhase: (name, event) => {
          if (name !== 'sentinel' || event !== 'start') return;
          // the pool is paused since the fence: this query must wait for the resume phase
          seen.push('held query sent');
          held = sql(viaPool(), `insert into public.orders default values returning id`).then((rows) => {
            seen.push('held query done');
            return Number(rows[0].id);
          });
        },
      },
    });
    const heldId = await held!;
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await writer;
    expect(res.outcome, JSON.stringify(res.error)).toBe('completed');
    expect(res.fence.terminated).toBeGreaterThanOrEqual(1);
    expect(await directGone).toMatch(/terminat/);
    expect(statSync(bouncer.iniFile).mode & 0o777).toBe(0o600);
    expect(seen.indexOf('held query sent')).toBeGreaterThan(seen.indexOf('start fence'));
    expect(seen.indexOf('held query done')).toBeGreaterThan(seen.indexOf('start resume'));
    expect(readFileSync(bouncer.iniFile, 'utf8')).toContain(`app = host=${pair.new.record.host} port=${pair.new.record.port} dbname=app`);
    expect(await sw.current(ctx)).toBe('new');
    expect(errors).toEqual([]);
    // the held query ran on new: the old primary never saw it
    expect(await sql(pair.new.url, `select 1 as ok from public.orders where id = $1`, [heldId])).toEqual([{ ok: 1 }]);
    expect(await sql(pair.old.url, `select 1 from public.orders where id = $1`, [heldId])).toEqual([]);
    const ids = new Set((await sql(pair.new.url, `select id from public.orders`)).map((r) => Number(r.id)));
    expect(acked.filter((a) => !ids.has(a.id))).toEqual([]);
    // the same client connection, through the pooler, now writes on new: rows the old primary never saw
    const oldIds = new Set((await sql(pair.old.url, `select id from public.orders`)).map((r) => Number(r.id)));
    expect(acked.filter((a) => !oldIds.has(a.id)).length).toBeGreaterThan(0);
  });
});
