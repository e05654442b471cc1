/**
 * The pgbouncer switch's two hazards (issue 20), on Debian's pgbouncer in front of a real 17:
 * the ini keeps its mode and owner when rewritten, and an abort between PAUSE and RESUME leaves
 * pgbouncer resumed (RELOAD failing is the real-world case: a broken ini).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster } from '../helpers/clusters.ts';
import { startPgbouncer, type StartedPgbouncer } from '../../lab/pgbouncer.ts';
import { pgbouncerServerPids, replaceFileKeepingMode, whilePaused } from '../../migration/pgbouncer-safety.ts';
import { fence, terminateBypassingSessions } from '../../migration/fence.ts';
import { connect } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

async function admin(url: string, cmd: string): Promise<any[]> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query(cmd)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

describe.skipIf(!existsSync('/usr/sbin/pgbouncer'))('pgbouncer switch safety', () => {
  let tmp: string;
  let cluster: StartedCluster;
  let bouncer: StartedPgbouncer;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cutover-pgb-safety-'));
    cluster = await startCluster({ major: 17, password: 'pw' }, tmp);
    const u = new URL(cluster.url);
    bouncer = await startPgbouncer({ dir: join(tmp, 'pgb'), alias: 'app', upstream: { host: u.hostname, port: Number(u.port), dbname: 'app' }, users: { postgres: 'pw' } });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await cluster?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the rewritten ini keeps mode 0600 and its owner', () => {
    const before = statSync(bouncer.iniFile);
    expect(before.mode & 0o777).toBe(0o600);
    replaceFileKeepingMode(bouncer.iniFile, readFileSync(bouncer.iniFile, 'utf8').replace('default_pool_size = 40', 'default_pool_size = 41'));
    const after = statSync(bouncer.iniFile);
    expect(after.mode & 0o777).toBe(0o600);
    expect([after.uid, after.gid]).toEqual([before.uid, before.gid]);
    expect(readFileSync(bouncer.iniFile, 'utf8')).toContain('default_pool_size = 41');
    expect(existsSync(`${bouncer.iniFile}.cutover.tmp`)).toBe(false);
  });

  it('a failing step between PAUSE and RESUME leaves the database resumed, and says so', async () => {
    const paused = async () => (await admin(bouncer.adminUrl, 'SHOW DATABASES')).find((d) => d.name === 'app').paused;
    const err = await whilePaused(
      () => admin(bouncer.adminUrl, 'PAUSE app').then(() => {}),
      () => admin(bouncer.adminUrl, 'RESUME app').then(() => {}),
      async () => {
        expect(Number(await paused())).toBe(1);
        throw new Error('RELOAD failed: syntax error in pgbouncer.ini');
      },
    ).catch((e) => e);
    expect(err.message).toContain('RELOAD failed');
    expect(err.detail).toContain('pgbouncer was resumed');
    expect(Number(await paused())).toBe(0);
    // and a client gets through
    const c = new pg.Client({ connectionString: `postgres://postgres:pw@${bouncer.host}:${bouncer.port}/app` });
    await c.connect();
    expect((await c.query('select 1 as x')).rows[0].x).toBe(1);
    await c.end();
  });

  it('when RESUME itself keeps failing, the error says pgbouncer is still PAUSED', async () => {
    let tries = 0;
    const err = await whilePaused(
      async () => {},
      async () => {
        tries++;
        throw new Error('admin console unreachable');
      },
      async () => 'switched',
      { attempts: 3 },
    ).catch((e) => e);
    expect(tries).toBe(3);
    expect(err.message).toMatch(/still PAUSED/);
  });

  it('pause fence: a session that bypasses the pooler is ended, the pooler\'s own are kept', async () => {
    const u = new URL(cluster.url);
    await admin(cluster.url.replace(/\/app$/, '/app'), `create role appw login password 'pw'`).catch(() => {});
    // pgbouncer's userlist knows postgres only: the app through the pooler logs in as postgres here,
    // so the role list names postgres for the pooled client and appw for the direct one
    const pooled = new pg.Client({ connectionString: `postgres://postgres:pw@${bouncer.host}:${bouncer.port}/app` });
    await pooled.connect();
    await pooled.query('select 1');
    const direct = new pg.Client({ connectionString: `postgres://appw:pw@${u.hostname}:${u.port}/app` });
    direct.on('error', () => {});
    await direct.connect();
    const pooledDirect = new pg.Client({ connectionString: `postgres://postgres:pw@${u.hostname}:${u.port}/app`, application_name: 'orders' });
    pooledDirect.on('error', () => {});
    await pooledDirect.connect();
    const c = await connect(cluster.url);
    try {
      const pids = await pgbouncerServerPids(bouncer.adminUrl);
      expect(pids.length).toBeGreaterThan(0);
      void terminateBypassingSessions; // fence('pause', { poolerPids }) is the way the engine calls it
      const recorded: any[] = [];
      const r = await fence(c, 'pause', { roles: ['appw', 'postgres'], poolerPids: pids, timeoutMs: 5000, record: async (x) => void recorded.push(x) });
      expect(recorded.flatMap((x) => x.pids)).toHaveLength(2);
      expect(r.remaining).toBe(0);
      expect(r.terminated).toBe(2); // appw direct, and postgres connected directly (not through the pooler)
      expect(await direct.query('select 1').then(() => 'alive', () => 'ended')).toBe('ended');
      expect(await pooledDirect.query('select 1').then(() => 'alive', () => 'ended')).toBe('ended');
      expect((await pooled.query('select 2 as x')).rows[0].x).toBe(2);
    } finally {
      await Promise.all([pooled.end(), direct.end().catch(() => {}), pooledDirect.end().catch(() => {}), c.end()]);
    }
  });
});
