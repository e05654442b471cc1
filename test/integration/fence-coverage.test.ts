/**
 * Fence coverage on a real PostgreSQL 17 (issue 20): group roles fence their members, writers the
 * fence cannot reach are refused by name, an empty list is refused, the read-only fence cuts
 * sessions that logged in during its ALTER ROLE loop, discovery keeps to this database, and a
 * database-scope fence can be lifted for a rollback.
 */
import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, startCluster } from '../helpers/clusters.ts';
import { assertFenceCoverage, closeDatabase, discoverDatabaseAppRoles, expandRoles, fence, fenceCoverage, openDatabase, unfence } from '../../migration/fence.ts';
import { connect } from '../../migration/pg.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

let cluster: StartedCluster & { tmp: string };
let url: string;
const as = (role: string, db = 'app', app = 'orders-service') => {
  const u = new URL(url);
  u.username = role;
  u.password = 'pw';
  u.pathname = '/' + db;
  u.searchParams.set('application_name', app);
  return u.toString();
};
async function session(role: string, db = 'app', app?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: as(role, db, app) });
  c.on('error', () => {});
  await c.connect();
  return c;
}
const alive = async (c: pg.Client) => c.query('select 1').then(() => true, () => false);

beforeAll(async () => {
  cluster = await startCluster({ major: 17 });
  url = cluster.url;
  await sql(url, `create role writers nologin;
    create role w1 login password 'pw' in role writers; create role w2 login password 'pw' in role writers;
    create role a login password 'pw'; create role b login password 'pw';
    create role other_app login password 'pw'; create role shared login password 'pw';
    create role dba login superuser password 'pw';
    create table t (id int); grant insert, select on t to writers, a, b, shared`);
  await sql(url, `create database other`);
});
afterAll(async () => {
  await cluster?.destroy();
  if (cluster?.tmp) rmSync(cluster.tmp, { recursive: true, force: true });
});

describe('fence coverage', () => {
  it('a NOLOGIN group role is expanded to its login members, and they are fenced and unfenced', async () => {
    const admin = await connect(url);
    const s1 = await session('w1');
    const changes: any[] = [];
    try {
      expect((await expandRoles(admin, ['writers'])).roles).toEqual(['w1', 'w2']);
      const f = await fence(admin, 'terminate', { roles: ['writers'], record: async (c) => void changes.push(c), timeoutMs: 5000 });
      expect(f.roles).toEqual(['w1', 'w2']);
      expect(f.remaining).toBe(0);
      expect(await alive(s1)).toBe(false);
      await expect(session('w2')).rejects.toThrow(/not permitted to log in/);
      expect((await unfence(admin, changes)).every((u) => u.outcome === 'ok')).toBe(true);
      await (await session('w2')).end();
    } finally {
      await s1.end().catch(() => {});
      await admin.end();
    }
  });

  it('an empty role list and sessions of roles the fence cannot reach are refused by name', async () => {
    const admin = await connect(url);
    const dba = await session('dba', 'app', 'psql');
    const b = await session('b');
    try {
      await expect(assertFenceCoverage(admin, [])).rejects.toThrow(/fence nothing/);
      const err = await assertFenceCoverage(admin, ['a']).catch((e) => e);
      expect(err.code).toBe('PRECONDITION');
      expect(err.message).toContain('dba (superuser; 1 session(s): psql)');
      expect(err.message).toContain('b (not in the fenced roles; 1 session(s): orders-service)');
      expect(err.hint).toContain('--allow-unfenced b --allow-unfenced dba');
      // our own session (application_name cutover-lab) is not a writer
      expect(err.message).not.toContain('postgres');
      await expect(assertFenceCoverage(admin, ['a', 'b'], { allowUnfenced: ['dba'] })).resolves.toMatchObject({ roles: ['a', 'b'] });
    } finally {
      await dba.end();
      await b.end();
      await admin.end();
    }
  });

  it('read-only: a session that logs in during the ALTER ROLE loop is cut too', async () => {
    const admin = await connect(url);
    const changes: any[] = [];
    let late: pg.Client | undefined;
    try {
      await fence(admin, 'read-only', {
        roles: ['a', 'b'],
        timeoutMs: 5000,
        record: async (c) => {
          changes.push(c);
          // just before b is altered: b logs in read-write (the old code took fencedAt before the loop and spared it)
          if (c.kind === 'role-setting' && c.role === 'b') late = await session('b');
        },
      });
      expect(late).toBeDefined();
      expect(await alive(late!)).toBe(false);
      const fresh = await session('b');
      await expect(fresh.query('insert into t values (1)')).rejects.toThrow(/read-only transaction/);
      await fresh.end();
    } finally {
      await late?.end().catch(() => {});
      await unfence(admin, changes);
      await admin.end();
    }
  });

  it('discovery keeps to the roles of this database and warns about roles that also use another', async () => {
    const inOther = await session('other_app', 'other');
    const sharedOther = await session('shared', 'other');
    const admin = await connect(url);
    try {
      const d = await discoverDatabaseAppRoles(admin);
      expect(d.roles).toContain('shared');
      expect(d.roles).toContain('w1');
      expect(d.roles).not.toContain('other_app');
      expect(d.roles).not.toContain('dba');
      expect(d.alsoElsewhere).toEqual([{ role: 'shared', databases: ['other'] }]);
      const cov = await assertFenceCoverage(admin, d.roles);
      expect(cov.warnings.join('\n')).toMatch(/role shared also uses database\(s\) other/);
      expect((await fenceCoverage(admin, d.roles)).unfenced).toEqual([]);
    } finally {
      await inOther.end();
      await sharedOther.end();
      await admin.end();
    }
  });

  it('a database-scope read-only fence is lifted for a rollback and re-applied on its abort', async () => {
    const admin = await connect(url);
    const fenceChanges: any[] = [];
    try {
      await fence(admin, 'read-only', { roles: ['a'], scope: 'database', timeoutMs: 5000, record: async (c) => void fenceChanges.push(c) });
      const ro = await session('a');
      await expect(ro.query('insert into t values (1)')).rejects.toThrow(/read-only/);
      await ro.end();
      // rollback: traffic goes back to the old primary; the rollback's session is a new one, which
      // the database default made read-only too
      const rollback = await connect(url);
      const opened: any[] = [];
      expect(await openDatabase(rollback, async (c) => void opened.push(c))).toEqual({ database: 'app', setting: 'default_transaction_read_only', previous: 'on' });
      await rollback.end();
      const rw = await session('a');
      await rw.query('insert into t values (2)');
      await rw.end();
      // the rollback aborts: closeDatabase of what openDatabase recorded puts read-only back
      await closeDatabase(admin, opened[0]);
      const again = await session('a');
      await expect(again.query('insert into t values (3)')).rejects.toThrow(/read-only/);
      await again.end();
    } finally {
      const c = await connect(url);
      await c.query(`set default_transaction_read_only = off`);
      await c.query(`alter database app reset default_transaction_read_only`);
      await c.end();
      await admin.end();
    }
  });
});
