/**
 * `cutover replicate watch` on a real pair (13 → 16: the subscriber has pg_stat_subscription_stats
 * and disable_on_error): --once is 0 when healthy and 1 with the subscription disabled and writes
 * on the old side; the webhook gets "crossed" and then "cleared" on a local HTTP server.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { WatchSession, evaluate, type WatchSample } from '../../migration/watch.ts';
import { ClusterTimelineSampler, summariseTimeline } from '../../migration/timeline.ts';

async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`${what} not reached in time`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('replicate watch 13 → 16', () => {
  let pair: Pair;
  let env: NodeJS.ProcessEnv;
  let server: Server;
  let hookUrl: string;
  const alerts: any[] = [];
  const rawBodies: string[] = [];

  beforeAll(async () => {
    pair = await startPair(13, 16);
    env = { CUTOVER_SOURCE_URL: pair.old.url, CUTOVER_TARGET_URL: pair.new.url, CI: '1' };
    await sql(pair.old.url, `create table public.events (id bigserial primary key, body text not null); insert into public.events (body) select repeat('x', 100) from generate_series(1, 1000)`);
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'pre-data' });
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        rawBodies.push(body);
        alerts.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hookUrl = `http://127.0.0.1:${(server.address() as any).port}/hooks/cutover?token=s3cret-token`;
  }, 120_000);

  afterAll(async () => {
    server?.close();
    await pair?.destroy();
  });

  it('--once exits 0 on a healthy pair, with every figure sampled', async () => {
    // the apply worker may still be settling right after the sync
    await until(async () => (await sql(pair.new.url, `select count(*)::int as n from pg_stat_subscription where pid is not null and relid is null`))[0].n === 1);
    const r = await cli(['replicate', 'watch', '--once', '--json', '--max-lag-bytes', '16MB', '--max-wal-retained', '1GB'], { env }).done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout.trim().split('\n')[0]);
    expect(line.ok).toBe(true);
    expect(line.crossings).toEqual([]);
    expect(line.subscription.applyState).toBe('streaming');
    expect(line.subscription.applyErrorCount).toBe(0);
    expect(line.slot.exists).toBe(true);
    expect(typeof line.slot.walRetainedBytes).toBe('number');
    expect(typeof line.slot.catalogXminAge).toBe('number');
    expect(line.source.datfrozenxidAge).toBeGreaterThan(0);
    expect(line.source.connections).toBeGreaterThanOrEqual(0);
    expect(r.out).not.toContain(new URL(pair.old.url).password);

    // production: a pg_monitor role (no superuser, no replication) sees the same
    const asMonitor = (url: string) => {
      const u = new URL(url);
      u.username = 'watcher';
      u.password = 'watch-pw';
      return u.toString();
    };
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create role watcher login password 'watch-pw' in role pg_monitor`);
    const m = await cli(['replicate', 'watch', '--once', '--json', '--max-lag-bytes', '16MB', '--max-lag-seconds', '30'], { env: { ...env, CUTOVER_SOURCE_URL: asMonitor(pair.old.url), CUTOVER_TARGET_URL: asMonitor(pair.new.url) } }).done;
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    const ml = JSON.parse(m.stdout.trim());
    expect(ml.subscription.applyState).toBe('streaming');
    expect(ml.subscription.applyErrorCount).toBe(0);
    expect(ml.lagSeconds).not.toBeNull();
  });

  it('alerts on the webhook when the subscription is disabled and writes pile up, --once exits 1 naming them, and the alert clears', async () => {
    const w = cli(['replicate', 'watch', '--interval', '0.5', '--max-lag-bytes', '1MB', '--webhook', hookUrl], { env });
    try {
      let out = '';
      w.child.stdout.on('data', (d) => (out += d));
      // the watch's first sample is healthy: no alert yet
      await until(() => out.includes('"type":"sample"'), 30_000, 'first sample');
      expect(alerts).toEqual([]);
      await sql(pair.new.url, `alter subscription cutover_main disable`);
      await sql(pair.old.url, `insert into public.events (body) select repeat(md5(g::text), 20) from generate_series(1, 20000) g`);
      await until(() => alerts.some((a) => a.threshold === 'subscription-disabled' && a.event === 'crossed') && alerts.some((a) => a.threshold === 'lag-bytes' && a.event === 'crossed'), 30_000, 'crossed alerts');

      const once = await cli(['replicate', 'watch', '--once', '--max-lag-bytes', '1MB'], { env }).done;
      expect(once.code).toBe(1);
      expect(once.stdout).toContain('subscription-disabled');
      expect(once.stdout).toContain('lag-bytes');

      // the library's view of the same: lag in seconds comes from the watch's own history when the walsender is gone
      const session = new WatchSession({ source: pair.old.url, target: pair.new.url });
      try {
        const a = await session.sample();
        await sql(pair.old.url, `insert into public.events (body) values ('one more')`);
        await new Promise((r) => setTimeout(r, 300));
        const b = await session.sample();
        expect(b.subscription.applyState).toBe('disabled');
        expect(b.lagSecondsFrom).toBe('history-lower-bound');
        expect(b.lagSeconds).toBeGreaterThan(0);
        expect(evaluate(b, {}, a).map((c) => c.id)).toEqual(['subscription-disabled']);
      } finally {
        await session.close();
      }

      await sql(pair.new.url, `alter subscription cutover_main enable`);
      await until(() => alerts.some((a) => a.threshold === 'subscription-disabled' && a.event === 'cleared') && alerts.some((a) => a.threshold === 'lag-bytes' && a.event === 'cleared'), 60_000, 'cleared alerts');
      const crossed = alerts.find((a) => a.threshold === 'lag-bytes' && a.event === 'crossed');
      expect(crossed.kind).toBe('cutover.replication.alert');
      expect(crossed.value).toBeGreaterThan(crossed.limit);
      expect(crossed.source).toMatch(/^127\.0\.0\.\d+:\d+\//);
      expect(crossed.subscription).toBe('cutover_main');
      const everything = rawBodies.join('\n');
      expect(everything).not.toContain(new URL(pair.old.url).password);
      expect(everything).not.toContain(new URL(pair.new.url).password);
      expect(everything).not.toContain('postgres://');
    } finally {
      w.child.kill('SIGTERM');
    }
    const done = await w.done;
    expect(done.code).toBe(0);
    expect(done.stderr).toContain('alert crossed subscription-disabled sent to http://127.0.0.1');
    expect(done.stderr).not.toContain('s3cret-token');
    const lines = done.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'sample').length).toBeGreaterThan(2);
    expect(lines.some((l) => l.type === 'alert' && l.delivered)).toBe(true);
  });

  it('ClusterTimelineSampler records the clusters per interval, CPU of the embedded servers included', async () => {
    const sampler = new ClusterTimelineSampler({ source: pair.old.url, target: pair.new.url, intervalMs: 250 });
    sampler.start();
    // work on the old server (CPU, WAL) that replication carries to the new one
    await sql(pair.old.url, `insert into public.events (body) select repeat(md5(g::text), 4) from generate_series(1, 50000) g`);
    await sql(pair.old.url, `select count(*) from generate_series(1, 3000000)`);
    await new Promise((r) => setTimeout(r, 1200));
    const points = await sampler.stop();
    expect(sampler.errors).toEqual([]);
    expect(points.length).toBeGreaterThanOrEqual(3);
    expect(points.every((p, i) => i === 0 || p.tMs > points[i - 1].tMs)).toBe(true);
    const sum = summariseTimeline(points, 250);
    expect(sum.maxWalRetainedBytes).toBeGreaterThan(0);
    expect(sum.maxLagBytes).toBeGreaterThan(0);
    expect(sum.maxXminAge).not.toBeNull();
    expect(sum.maxCpu.old).toBeGreaterThan(0); // found from our backend's parent: the embedded postmaster
    expect(points.some((p) => p.cpu.new !== null)).toBe(true);
    expect(points.at(-1)!.applyState).toBe('streaming');
    expect(points.at(-1)!.connections.old).toBeGreaterThanOrEqual(0);
    // explicit pids (what the rehearsal passes: lab.old.record.pid) give the same kind of figure
    const s2 = new ClusterTimelineSampler({ source: pair.old.url, target: pair.new.url, intervalMs: 200, pids: { old: () => [pair.old.record.pid!], new: () => [pair.new.record.pid!] } });
    s2.start();
    await sql(pair.old.url, `select count(*) from generate_series(1, 3000000)`);
    await new Promise((r) => setTimeout(r, 500));
    const p2 = await s2.stop();
    expect(Math.max(...p2.map((p) => p.cpu.old ?? 0))).toBeGreaterThan(0);
  });

  it('--once names a schema change on the old side that will stop apply, before any row hits it', async () => {
    await sql(pair.old.url, `alter table public.events add column extra int`);
    const r = await cli(['replicate', 'watch', '--once', '--json'], { env }).done;
    expect(r.code).toBe(1);
    const line = JSON.parse(r.stdout.trim());
    expect(line.crossings.map((c: any) => c.id)).toEqual(['schema-breaks-apply']);
    expect(line.crossings[0].message).toContain('column extra (integer) exists on the source only: apply stops at the next change to public.events');
    expect(line.subscription.applyState).toBe('streaming'); // not broken yet: no row has carried the column
    await sql(pair.new.url, `alter table public.events add column extra int`);
    const ok = await cli(['replicate', 'watch', '--once', '--json'], { env }).done;
    expect(ok.code).toBe(0);
  });

  it('outlives a restart of the source; disable_on_error turns the lost connection into a disabled subscription, which it reports', async () => {
    const session = new WatchSession({ source: pair.old.url, target: pair.new.url });
    try {
      expect((await session.sample()).source.reachable).toBe(true);
      await pair.old.kill!();
      const down = await session.sample();
      expect(down.source.reachable).toBe(false);
      expect(down.source.error).not.toContain(new URL(pair.old.url).password);
      expect(evaluate(down, {}).map((c) => c.id)).toContain('source-unreachable');
      await pair.old.restart!();
      await until(async () => (await session.sample()).source.reachable, 30_000, 'source back');
      // A 15+ subscriber with disable_on_error (what `replicate start` sets) counts the lost
      // publisher connection as an apply error and disables itself: replication does not resume
      // on its own after a publisher restart. The watch says so; ENABLE resumes it.
      let after!: WatchSample;
      await until(async () => ['disabled', 'streaming'].includes((after = await session.sample()).subscription.applyState), 30_000, 'apply settled');
      if (after.subscription.applyState === 'disabled') expect(readFileSync(pair.new.record.logFile!, 'utf8')).toMatch(/could not receive data from WAL stream[\s\S]*has been disabled because of an error/);
      if (after.subscription.applyState === 'disabled') {
        expect(evaluate(after, {}).map((c) => c.id)).toContain('subscription-disabled');
        await sql(pair.new.url, `alter subscription cutover_main enable`);
      }
      await until(async () => (await session.sample()).subscription.applyState === 'streaming', 60_000, 'apply back');
    } finally {
      await session.close();
    }
  });

  it('says what is wrong with a bad threshold or webhook (exit 2)', async () => {
    const r = await cli(['replicate', 'watch', '--once', '--max-lag-bytes', 'lots'], { env }).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--max-lag-bytes must be a size');
    const w = await cli(['replicate', 'watch', '--once', '--webhook', 'ftp://x'], { env }).done;
    expect(w.code).toBe(2);
    expect(w.stderr).toContain('http:// or https://');
    // a side that does not answer at the start: nothing was checked (2), and no password in the message
    const nowhere = await cli(['replicate', 'watch', '--once'], { env: { ...env, CUTOVER_TARGET_URL: 'postgres://u:Secret-pw@127.0.0.1:1/app' } }).done;
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('cannot connect to the target at 127.0.0.1:1/app');
    expect(nowhere.out).not.toContain('Secret-pw');
  });
});
