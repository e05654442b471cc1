/**
 * The pgbouncer switch with the pause fence, on a real 11 → 17 pair behind Debian's pgbouncer:
 * a writer connected through the pooler sees its queries held (a stall), not failing, while the
 * database entry is repointed from old to new; no acknowledged write is lost.
 * pgbouncer refuses to run as root: it runs as the same unprivileged user as the clusters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lab/net.ts';
import { ensureTraversable, serverUser } from '../../lab/osuser.ts';
import { connect } from '../../migration/pg.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { PgbouncerSwitch } from '../../migration/switch/pgbouncer.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';

const PGBOUNCER = '/usr/sbin/pgbouncer';

describe.skipIf(!existsSync(PGBOUNCER))('switchover with the pgbouncer switch (pause fence)', () => {
  let pair: Pair;
  let dir: string;
  let bouncer: ChildProcess | undefined;
  let port: number;
  let ini: string;
  let bouncerLog = '';

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

    const user = serverUser();
    dir = mkdtempSync(join(tmpdir(), 'pgbouncer-'));
    chmodSync(dir, 0o755);
    ensureTraversable(dir, user);
    port = await freePort('127.0.0.1');
    ini = join(dir, 'pgbouncer.ini');
    writeFileSync(join(dir, 'userlist.txt'), `"app" "app"\n"pgb_admin" ""\n`);
    writeFileSync(
      ini,
      [
        '[databases]',
        `app = host=${pair.old.record.host} port=${pair.old.record.port} dbname=app`,
        '',
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        `unix_socket_dir =`,
        'auth_type = trust',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        'admin_users = pgb_admin',
        'pool_mode = transaction',
        'server_login_retry = 1',
        'ignore_startup_parameters = extra_float_digits',
        '',
      ].join('\n'),
    );
    for (const f of ['userlist.txt', 'pgbouncer.ini']) if (user) chownSync(join(dir, f), user.uid, user.gid);
    bouncer = spawn(PGBOUNCER, [ini], { uid: user?.uid, gid: user?.gid, stdio: ['ignore', 'pipe', 'pipe'] });
    bouncer.stdout!.on('data', (d) => (bouncerLog += d));
    bouncer.stderr!.on('data', (d) => (bouncerLog += d));
    const t = Date.now();
    for (;;) {
      try {
        await sql(`postgres://app:app@127.0.0.1:${port}/app`, 'select 1');
        break;
      } catch (e) {
        if (Date.now() - t > 15_000) throw new Error(`pgbouncer did not start: ${bouncerLog}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  });

  afterAll(async () => {
    bouncer?.kill('SIGTERM');
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds queries instead of failing them, repoints to new, loses nothing', async () => {
    const acked: Array<{ id: number; ms: number }> = [];
    const errors: string[] = [];
    let stop = false;
    const writer = (async () => {
      const c = new pg.Client({ connectionString: `postgres://app:app@127.0.0.1:${port}/app` });
      c.on('error', () => {});
      await c.connect();
      while (!stop) {
        const t = Date.now();
        try {
          const r = await c.query(`insert into public.orders default values returning id`);
          acked.push({ id: Number(r.rows[0].id), ms: Date.now() - t });
        } catch (e: any) {
          errors.push(e.message);
        }
        await new Promise((res) => setTimeout(res, 10));
      }
      await c.end().catch(() => {});
    })();
    await new Promise((r) => setTimeout(r, 800));
    const res = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      fence: 'pause',
      switch: new PgbouncerSwitch({ adminUrl: `postgres://pgb_admin@127.0.0.1:${port}/pgbouncer`, iniFile: ini }),
      stateFile: join(dir, 'state.json'),
    });
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await writer;
    expect(res.outcome, JSON.stringify(res.error) + bouncerLog).toBe('completed');
    expect(readFileSync(ini, 'utf8')).toContain(`app = host=${pair.new.record.host} port=${pair.new.record.port} dbname=app`);
    expect(errors).toEqual([]);
    const ids = new Set((await sql(pair.new.url, `select id from public.orders`)).map((r) => Number(r.id)));
    expect(acked.filter((a) => !ids.has(a.id))).toEqual([]);
    // the same client connection, through the pooler, now writes on new: rows the old primary never saw
    const oldIds = new Set((await sql(pair.old.url, `select id from public.orders`)).map((r) => Number(r.id)));
    expect(acked.filter((a) => !oldIds.has(a.id)).length).toBeGreaterThan(0);
    const stall = Math.max(...acked.map((a) => a.ms));
    expect(stall).toBeGreaterThan(0);
  });
});
