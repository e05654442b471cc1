/**
 * A user's own application, workload and tables, without the sample app: a Python order service
 * (psycopg2) started by the lab in a private mount namespace whose resolv.conf names the lab DNS
 * (port 53 on a loopback address), driven by its own k6 script written only against the
 * cutover_op/cutover_ack contract, and judged by an `ack.query` on its own table.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startCluster, sql } from '../helpers/clusters.ts';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';
import { startUserApp } from '../../lab/app.ts';
import { runK6 } from '../../lab/k6.ts';
import { parseK6Json, CONTRACT, assertAcknowledgedWrites } from '../../load/outcomes.ts';
import { checkRunWithAckQuery } from '../../load/check.ts';
import { freeLoopbackAddress, freePort } from '../../lab/net.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

const REPO = join(import.meta.dirname, '..', '..');
const PY = join(REPO, 'examples', 'apps', 'python');
const JVM = join(REPO, 'examples', 'apps', 'jvm');
const haveMaven = spawnSync('mvn', ['-v']).status === 0 && spawnSync('java', ['-version']).status === 0;
const root = process.getuid?.() === 0;
const havePsycopg = existsSync('/usr/lib/python3/dist-packages/psycopg2');
const why = !root ? 'needs root (lab DNS on port 53, private mount namespace)' : !havePsycopg ? 'python3-psycopg2 is not installed (npm run setup installs it)' : '';
if (why) console.warn(`[skip] own-app tests: ${why}`);

describe.skipIf(!!why)('a user app (Python, psycopg2) under the contract', () => {
  let pg: StartedCluster & { tmp: string };
  let dns: StartedDnsServer;
  const dir = mkdtempSync(join(tmpdir(), 'own-app-'));
  beforeAll(async () => {
    pg = await startCluster({ major: 16 });
    await sql(pg.url, readFileSync(join(PY, '..', 'schema.sql'), 'utf8'));
    await sql(pg.url, `create role orders_app login password 'app-secret'; grant select, insert on orders to orders_app; grant usage on sequence orders_id_seq to orders_app`);
    dns = await startDnsServer({ host: await freeLoopbackAddress(53), port: 53 });
    dns.setRecord('db.lab.internal', { targets: [{ address: pg.record.host, weight: 100 }], ttl: 1 });
  });
  afterAll(async () => {
    await dns?.close();
    await pg?.destroy();
  });

  const apps = [
    { name: 'Python (psycopg2)', dir: PY, command: '/usr/bin/python3 app.py' },
    { name: 'JVM (PgJDBC + HikariCP)', dir: JVM, command: 'java -jar target/orders-jvm.jar', build: true },
  ];
  for (const a of apps) {
    it.skipIf(a.build && !haveMaven)(`${a.name}: resolves the database name through the lab DNS, and every acknowledged order is found by the ack query`, async () => {
      if (a.build) execFileSync(join(a.dir, 'build.sh'), { stdio: 'inherit' });
      const port = await freePort();
      const before = dns.stats()['db.lab.internal']?.[pg.record.host] ?? 0;
      const app = await startUserApp({
        spec: { command: a.command, healthPath: '/health', readyTimeoutMs: 60_000 },
        baseDir: a.dir,
        port,
        db: { host: 'db.lab.internal', port: pg.record.port, user: 'orders_app', password: 'app-secret', database: pg.record.database },
        resolver: dns.host,
        logFile: join(dir, `${a.name.split(' ')[0]}.log`),
      });
      try {
        const k6 = await runK6({ script: join(a.dir, '..', 'orders.js'), env: { APP_URL: app.url, RATE: 40, DURATION: '3s', RUN_ID: `own-${a.name[0]}` }, outDir: join(dir, `k6-${a.name[0]}`) });
        expect(k6.exitCode).toBe(0);
        const out = await parseK6Json(k6.pointsFile);
        expect(out.format).toBe('contract');
        const acked = out.ops.filter((o) => o.status === 'ok');
        expect(acked.length).toBeGreaterThan(80);
        expect(acked.every((o) => /^\d+$/.test(o.key!))).toBe(true);
        // The app really asked the lab DNS (its own resolver, not ours).
        expect((dns.stats()['db.lab.internal']?.[pg.record.host] ?? 0) - before).toBeGreaterThan(0);
        const check = await checkRunWithAckQuery({ ops: out.ops, query: 'select id::text from orders where id::text = any($1)', newUrl: pg.url });
        expect(check.acknowledged).toBe(acked.length);
        expect(check.lost).toEqual([]);
        expect(check.duplicates).toEqual([]);
        // A key the table does not hold is lost: the check can fail.
        const forged = [...out.ops, { id: 'forged', kind: 'write' as const, startMs: 0, endMs: 1, status: 'ok' as const, key: '999999999' }];
        expect((await checkRunWithAckQuery({ ops: forged, query: 'select id::text from orders where id::text = any($1)', newUrl: pg.url })).lost).toEqual(['forged']);
      } finally {
        await app.stop();
      }
      expect(app.exited()).toBeDefined();
    }, 300_000);
  }

  it('an app that never becomes healthy is named with its last output lines', async () => {
    const err = await startUserApp({
      spec: { command: 'echo "booting"; echo "fatal: no config" >&2; sleep 30', healthPath: '/health', readyTimeoutMs: 1500 },
      baseDir: PY,
      port: await freePort(),
      db: { host: '127.0.0.1', port: 1, user: 'x', password: 'x', database: 'x' },
      logFile: join(dir, 'bad.log'),
    }).catch((e) => e);
    expect(err.code).toBe('TIMEOUT');
    expect(err.detail).toMatch(/fatal: no config/);
  });

  it('an app that exits during start says so, with its exit code', async () => {
    const err = await startUserApp({ spec: { command: 'echo "cannot bind" >&2; exit 3' }, baseDir: PY, port: await freePort(), db: { host: '127.0.0.1', port: 1, user: 'x', password: 'x', database: 'x' }, logFile: join(dir, 'exit.log') }).catch((e) => e);
    expect(err.message).toMatch(/exited before it became healthy \(code 3/);
    expect(err.detail).toMatch(/cannot bind/);
  });

  it('a script that never tags cutover_ack is refused with the contract quoted', async () => {
    const port = await freePort();
    const app = await startUserApp({
      spec: { command: '/usr/bin/python3 app.py', healthPath: '/health' },
      baseDir: PY,
      port,
      db: { host: pg.record.host, port: pg.record.port, user: 'orders_app', password: 'app-secret', database: pg.record.database },
      logFile: join(dir, 'app2.log'),
    });
    try {
      const script = join(dir, 'untagged.js');
      writeFileSync(script, `import http from 'k6/http';\nexport const options = { iterations: 5, vus: 1 };\nexport default function () { http.post(__ENV.APP_URL + '/orders', JSON.stringify({ ref: 'x' }), { headers: { 'content-type': 'application/json' } }); }\n`);
      const k6 = await runK6({ script, env: { APP_URL: app.url }, outDir: join(dir, 'k6-untagged') });
      const out = await parseK6Json(k6.pointsFile);
      expect(out.format).toBe('none');
      let err: any;
      try {
        assertAcknowledgedWrites(out, 'untagged.js');
      } catch (e) {
        err = e;
      }
      expect(err?.message).toMatch(/no acknowledged writes seen/);
      expect(err?.hint).toContain(CONTRACT);
      // …while the orders did land: the app worked, only the script broke the contract.
      expect(Number((await sql(pg.url, `select count(*) from orders where ref = 'x'`))[0].count)).toBe(5);
    } finally {
      await app.stop();
    }
  });
});
