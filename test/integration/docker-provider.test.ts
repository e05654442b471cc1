/**
 * The docker provider on a real engine: containers on host networking, each on its own loopback
 * address and the same port, logical replication between them, kill -9 through the runtime and a
 * restart, the server log kept. Runs where an engine answers (the suite's global setup starts one
 * as root when Debian's dockerd is installed); elsewhere it is skipped with the reason.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerEngine } from '../../lab/tools.ts';
import { DockerProvider } from '../../lab/providers/docker.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';
import { withClient, serverMajor } from '../../migration/pg.ts';
import { sleep } from '../../lab/net.ts';

const engine = await dockerEngine();
if (!engine.available) console.warn(`[skip] docker provider tests: ${engine.reason}`);

describe.skipIf(!engine.available)(`docker provider (${engine.reason})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'docker-provider-'));
  let old: StartedCluster;
  let neu: StartedCluster;
  beforeAll(async () => {
    const p = new DockerProvider();
    // Sequential: the first start may build the base image, which both share.
    old = await p.start({ name: 'old', major: 11, database: 'app' }, { dir: join(dir, 'old') });
    neu = await p.start({ name: 'new', major: 17, database: 'app', publisher: false }, { dir: join(dir, 'new') });
  }, 600_000);
  afterAll(async () => {
    await Promise.allSettled([old?.destroy(), neu?.destroy()]);
  });

  it('runs each major on its own loopback address and the same port, host networking, wal_level logical on the publisher', async () => {
    expect(await withClient(old.url, serverMajor)).toBe(11);
    expect(await withClient(neu.url, serverMajor)).toBe(17);
    expect(old.record.host).toMatch(/^127\.0\.0\.\d+$/);
    expect(neu.record.host).not.toBe(old.record.host);
    expect(neu.record.port).toBe(old.record.port);
    expect(await withClient(old.url, async (c) => (await c.query('show wal_level')).rows[0].wal_level)).toBe('logical');
  });

  it('replicates logically from one container to the other over loopback', async () => {
    await withClient(old.url, (c) => c.query(`create table t (id int primary key, v text); insert into t select g, 'v' || g from generate_series(1, 500) g; create publication p for table t`));
    await withClient(neu.url, (c) => c.query(`create table t (id int primary key, v text)`));
    const conn = old.url.replace(/^postgres:\/\//, '');
    const u = new URL(old.url);
    await withClient(neu.url, (c) =>
      c.query(`create subscription s connection 'host=${u.hostname} port=${u.port} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)} dbname=app' publication p`),
    );
    void conn;
    let n = 0;
    for (let i = 0; i < 200 && n < 500; i++) {
      n = await withClient(neu.url, async (c) => Number((await c.query('select count(*) from t')).rows[0].count));
      if (n < 500) await sleep(100);
    }
    expect(n).toBe(500);
    await withClient(neu.url, (c) => c.query('drop subscription s'));
  });

  it('kills the postmaster through the runtime, restarts it on the same address with its data', async () => {
    await old.kill!();
    expect(await old.alive()).toBe(false);
    await old.restart!();
    expect(await old.alive()).toBe(true);
    expect(await withClient(old.url, async (c) => Number((await c.query('select count(*) from t')).rows[0].count))).toBe(500);
  });

  it('rehearses the quickstart on containers (11 → 17, DNS switch): no acknowledged write lost, no container left', async () => {
    const { rehearse } = await import('../../lab/rehearse/run.ts');
    const { valueOf } = await import('../../reports/model.ts');
    const r = await rehearse(join(import.meta.dirname, '..', '..', 'scenarios', 'quickstart-docker.yaml'), { runs: 1, outDir: join(dir, 'rehearsal'), formats: ['json'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error ?? '').toBe('');
    expect(valueOf(run.lostWrites)).toBe(0);
    expect(valueOf(run.splitBrainWrites)).toBe(0);
    // both servers' logs came out of their containers into the run folder
    expect(existsSync(join(dir, 'rehearsal', 'run-1', 'old-server.log'))).toBe(true);
    const { execFileSync } = await import('node:child_process');
    const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=cutover-lab.cluster'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    // only this file's own two containers (old/new above) remain
    expect(left.length).toBe(2);
  }, 600_000);

  it('keeps the server log with the run', async () => {
    await neu.stop();
    expect(existsSync(join(dir, 'new', 'server.log'))).toBe(true);
    expect(readFileSync(join(dir, 'new', 'server.log'), 'utf8')).toMatch(/cutover-lab entrypoint: initialised|database system/);
  });
});
