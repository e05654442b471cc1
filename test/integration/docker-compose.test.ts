/**
 * docker-compose.yml on a real engine, as README "Rehearse on containers" shows it: every service on
 * host networking at its own loopback address, health waited for, logical replication set up
 * through the Toxiproxy hop (and cut by it), pgbouncer in front of old through its proxy, the k6
 * profile against the sample app with acknowledged writes found in the database, the name resolved
 * by the lab DNS, and `down --volumes` leaving nothing behind. The images are the lab's local ones
 * when the suite says so (CUTOVER_DOCKER_IMAGE=lab, set by the global setup: no registry needed),
 * else the public defaults. Skips with the reason where there is no engine or no compose client.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Resolver } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { dockerEngine, composeClient } from '../../lab/tools.ts';
import { PROXY_PORTS } from '../../lab/compose/config.ts';
import { canBind, sleep } from '../../lab/net.ts';
import { withClient } from '../../migration/pg.ts';
import { PROJECT_ROOT } from '../../lab/paths.ts';

const run = promisify(execFile);

const engine = await dockerEngine();
const compose = engine.available ? await composeClient() : { reason: engine.reason };
const runs = engine.available && !!compose.cmd;
if (!runs) console.warn(`[skip] docker-compose tests: ${compose.reason}`);

describe.skipIf(!runs)(`docker-compose.yml on the engine (${compose.reason})`, () => {
  const project = `cutover-compose-${process.pid}`;
  // The variables go in an env file, as README "Rehearse on containers" has them.
  const envFile = join(mkdtempSync(join(tmpdir(), 'compose-')), 'compose.env');
  let old = '';
  let neu = '';
  let lab = '';
  let upError = '';
  const pg = (host: string, port = 5432) => `postgres://postgres:lab@${host}:${port}/app`;
  const dc = (...args: string[]) => run(compose.cmd![0]!, [...compose.cmd!.slice(1), '--env-file', envFile, '-p', project, ...args], { cwd: PROJECT_ROOT, maxBuffer: 16 << 20 });
  const containers = async () => (await run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).stdout.split('\n').filter(Boolean);
  const volumes = async () => (await run('docker', ['volume', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).stdout.split('\n').filter(Boolean);
  /** State of each service's container: running/exited, health where it has a healthcheck. */
  const states = async () => {
    const ids = await containers();
    if (!ids.length) return {};
    const { stdout } = await run('docker', ['inspect', '--format', '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}}', ...ids]);
    return Object.fromEntries(stdout.trim().split('\n').map((l) => { const [svc, status, code, health] = l.split(' '); return [svc!, { status: status!, code: Number(code), health: health! }]; }));
  };

  beforeAll(async () => {
    // Old and new on their own addresses at 5432; the other services share a third one, on ports
    // the compose file fixes. Taken from a 127.<n>.<pid>.x block, away from the 127.0.0.x that
    // every other lab on this machine probes: a container binds its address later than our probe.
    const block = `127.${100 + (process.pid % 100)}.${process.pid % 250}`;
    const free = async (ports: number[], from: number) => {
      for (let x = from; x < 255; x++) if ((await Promise.all(ports.map((p) => canBind(`${block}.${x}`, p)))).every(Boolean)) return `${block}.${x}`;
      throw new Error(`no free address in ${block}.0/24 for ports ${ports.join(', ')}`);
    };
    old = await free([5432], 1);
    neu = await free([5432], Number(old.split('.')[3]) + 1);
    lab = await free([8474, ...Object.values(PROXY_PORTS), 6432, 53, 8053, 3000], Number(neu.split('.')[3]) + 1);
    // Local images (no registry) when the suite uses them, through the README's command.
    const images = process.env.CUTOVER_DOCKER_IMAGE === 'lab' ? (await run(process.execPath, ['bin/run-ts.mjs', 'lab/docker-images.ts', '--compose'], { cwd: PROJECT_ROOT, maxBuffer: 16 << 20 })).stdout : '';
    writeFileSync(envFile, `${images}CUTOVER_OLD_HOST=${old}\nCUTOVER_NEW_HOST=${neu}\nCUTOVER_LAB_HOST=${lab}\nCUTOVER_K6_DURATION=3s\n`);
    // A service that never gets healthy fails `up`: the first test reports it with the logs.
    upError = await dc('up', '-d').then(() => '', (e) => String(e.stderr ?? e.message));
  }, 900_000);

  afterAll(async () => {
    if (compose.cmd) await dc('down', '--volumes', '--remove-orphans').catch(() => {});
    rmSync(dirname(envFile), { recursive: true, force: true });
  });

  it('brings every service up healthy (the config job done, its files in place)', async () => {
    const deadline = Date.now() + 120_000;
    let s: Awaited<ReturnType<typeof states>> = {};
    for (; Date.now() < deadline; await sleep(500)) {
      s = await states();
      if (['old', 'new', 'dns', 'app'].every((k) => s[k]?.health === 'healthy')) break;
      if (upError || Object.entries(s).some(([k, v]) => k !== 'config' && v.status === 'exited')) break;
    }
    const bad = Object.entries(s).filter(([k, v]) => (k === 'config' ? v.code !== 0 : v.status !== 'running' || !['healthy', '-'].includes(v.health)));
    const logs = await Promise.all(bad.map(async ([k]) => `--- ${k}:\n${(await dc('logs', '--tail', '8', k).catch((e) => e)).stdout}`));
    expect(bad.map(([k]) => k), `${upError}\n${logs.join('\n')}`).toEqual([]);
    expect(s.config).toEqual({ status: 'exited', code: 0, health: '-' });
    for (const k of ['old', 'new', 'dns', 'app']) expect(s[k], k).toMatchObject({ status: 'running', health: 'healthy' });
    for (const k of ['toxiproxy', 'pgbouncer']) expect(s[k]?.status, k).toBe('running');
    const proxies = await (await fetch(`http://${lab}:8474/proxies`)).json();
    expect(Object.fromEntries(Object.values<any>(proxies).map((p) => [p.name, `${p.listen} → ${p.upstream}`]))).toEqual({
      'app-old': `${lab}:${PROXY_PORTS['app-old']} → ${old}:5432`,
      'app-new': `${lab}:${PROXY_PORTS['app-new']} → ${neu}:5432`,
      replication: `${lab}:${PROXY_PORTS.replication} → ${old}:5432`,
    });
    expect(await withClient(pg(old), async (c) => (await c.query('show wal_level')).rows[0].wal_level)).toBe('logical');
    expect(await withClient(pg(neu), async (c) => (await c.query('show server_version_num')).rows[0].server_version_num)).toMatch(/^17/);
  }, 180_000);

  it('resolves db.lab.internal through the lab DNS to old, as the app does', async () => {
    const r = new Resolver();
    r.setServers([`${lab}:53`]);
    expect(await r.resolve4('db.lab.internal')).toEqual([old]);
    const health = await (await fetch(`http://${lab}:3000/healthz`)).json();
    expect(health.dbAddress).toBe(old);
  });

  it('sets up logical replication through the Toxiproxy hop, and the hop really carries it', async () => {
    await withClient(pg(old), (c) => c.query(`create table t (id int primary key, v text); insert into t select g, 'v' || g from generate_series(1, 200) g; create publication p for table t`));
    await withClient(pg(neu), (c) => c.query(`create table t (id int primary key, v text)`));
    await withClient(pg(neu), (c) => c.query(`create subscription s connection 'host=${lab} port=${PROXY_PORTS.replication} user=postgres password=lab dbname=app' publication p`));
    const count = () => withClient(pg(neu), async (c) => Number((await c.query('select count(*) from t')).rows[0].count));
    const until = async (n: number, ms: number) => {
      let got = 0;
      for (const end = Date.now() + ms; Date.now() < end && (got = await count()) < n; ) await sleep(200);
      return got;
    };
    expect(await until(200, 60_000)).toBe(200);
    // Disable the replication proxy (Toxiproxy cuts its connections): new rows stop arriving…
    const setHop = (enabled: boolean) => fetch(`http://${lab}:8474/proxies/replication`, { method: 'POST', body: JSON.stringify({ enabled }) }).then((r) => expect(r.ok).toBe(true));
    await setHop(false);
    await withClient(pg(old), (c) => c.query(`insert into t select g, 'v' || g from generate_series(201, 300) g`));
    await sleep(2000);
    expect(await count()).toBe(200);
    // …and arrive once it is back.
    await setHop(true);
    expect(await until(300, 60_000)).toBe(300);
    await withClient(pg(neu), (c) => c.query('drop subscription s'));
  }, 180_000);

  it('reaches old through pgbouncer and its Toxiproxy hop', async () => {
    const addr = await withClient(pg(lab, 6432), async (c) => (await c.query('select host(inet_server_addr()) as a')).rows[0].a);
    expect(addr).toBe(old);
  });

  it('runs the k6 profile against the app: acknowledged writes, every one in the database', async () => {
    const { stdout } = await dc('--profile', 'load', 'run', '--rm', 'k6');
    // the sample workload records each write as one op_duration point (load/lib/ops.js), not as a
    // cutover_ack counter: the acknowledged writes are the requests that did not fail
    const failed = /http_req_failed\.*:\s*[\d.]+%\s+(\d+) out of (\d+)/.exec(stdout);
    const acks = failed ? Number(failed[2]) - Number(failed[1]) : 0;
    expect(acks, stdout.slice(-1500)).toBeGreaterThan(20);
    const rows = await withClient(pg(old), async (c) => Number((await c.query(`select count(*) from cutover_app_writes where request_id like 'compose-%'`)).rows[0].count));
    expect(rows).toBeGreaterThanOrEqual(acks);
  }, 120_000);

  it('brings everything down: no container, no volume left', async () => {
    await dc('down', '--volumes', '--remove-orphans');
    expect(await containers()).toEqual([]);
    expect(await volumes()).toEqual([]);
    expect(await canBind(lab, 8474)).toBe(true);
  }, 120_000);
});

