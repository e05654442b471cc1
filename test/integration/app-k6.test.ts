/**
 * The real chain: k6 (real binary) → sample app (in process) → pg pool resolving db.lab.internal
 * through the lab DNS server (lab/dns.ts) → real Postgres. Checks that per-request outcomes come
 * back from k6's JSON output, that the counts add up, that every acknowledged id is in the database,
 * and that a DNS weight flip moves the app's connections to the other server within the TTL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startPair, type Pair } from '../helpers/clusters.ts';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';
import { ensureAppSchema, startApp, type RunningApp } from '../../load/app/server.ts';
import { parseK6Json, countOutcomes } from '../../load/outcomes.ts';
import { checkRun, readPresence } from '../../load/check.ts';
import { checkAcknowledged, errorWindow, stallWindow } from '../../load/measure.ts';
import { withClient } from '../../migration/pg.ts';

const K6 = process.env.CUTOVER_K6 ?? [resolve('.tools/bin/k6'), '/tmp/warm/bin/k6'].find((p) => existsSync(p)) ?? 'k6';
const NAME = 'db.lab.internal';

function runK6(env: Record<string, string | number>, out: string): Promise<number> {
  const args = ['run', '--quiet', '--no-color', '--no-usage-report', '--out', `json=${out}`];
  for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
  args.push(resolve('load/writes.js'));
  return new Promise((res, rej) => {
    const child = spawn(K6, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res(0) : rej(new Error(`k6 exited ${code}: ${err}`))));
  });
}

describe('sample app under k6 load through the lab DNS', () => {
  let pair: Pair;
  let dns: StartedDnsServer;
  let app: RunningApp;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'app-k6-'));
    // Same credentials on both, as an app that follows a DNS name to another server needs.
    pair = await startPair(17, 17, { old: { password: 'app-pw' }, new: { password: 'app-pw' } });
    await withClient(pair.new.url, (c) => ensureAppSchema(c));
    dns = await startDnsServer({ host: '127.0.0.1', records: { [NAME]: { targets: [{ address: pair.old.record.host, weight: 100 }], ttl: 1 } } });
    const u = new URL(pair.old.url);
    u.hostname = NAME;
    app = await startApp({ dbUrl: u.toString(), dnsServer: `127.0.0.1:${dns.dnsPort}`, retry: 'bounded' });
  });

  afterAll(async () => {
    await app?.close();
    await dns?.close();
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records one outcome per request and every acknowledged write is in the database', async () => {
    expect(app.currentAddress()).toBe(pair.old.record.host);
    const out = join(dir, 'steady.json');
    await runK6({ APP_URL: app.url, RATE: 50, DURATION: '5s', READ_RATIO: 0.1, RUN_ID: 'steady' }, out);
    const r = await parseK6Json(out);
    // constant-arrival-rate starts RATE × DURATION iterations, or drops them
    expect(r.ops.length + r.droppedIterations.count).toBeGreaterThanOrEqual(248);
    expect(r.ops.length + r.droppedIterations.count).toBeLessThanOrEqual(252);
    const counts = countOutcomes(r.ops);
    expect(counts.write.fail + counts.write.indeterminate + counts.read.fail + counts.read.indeterminate).toBe(0);
    expect(new Set(r.ops.map((o) => o.id)).size).toBe(r.ops.length);

    const check = await checkRun({ ops: r.ops, newUrl: pair.old.url, runId: 'steady' });
    expect(check.lost).toEqual([]);
    expect(check.unexpected).toEqual([]);
    expect(check.duplicates).toEqual([]);
    expect(check.acknowledged).toBe(counts.write.ok);
    expect(check.attempted).toBe(counts.write.ok);
    expect(errorWindow(r.ops).ms).toBe(0);
    expect(stallWindow(r.ops).ms).toBeLessThan(1000);
  });

  it('follows a DNS weight flip to the other server within the TTL', async () => {
    const out = join(dir, 'flip.json');
    const run = runK6({ APP_URL: app.url, RATE: 50, DURATION: '5s', RUN_ID: 'flip' }, out);
    await new Promise((r) => setTimeout(r, 2000));
    const flippedAt = Date.now();
    dns.setRecord(NAME, { targets: [{ address: pair.old.record.host, weight: 0 }, { address: pair.new.record.host, weight: 100 }], ttl: 1 });
    await run;
    expect(app.currentAddress()).toBe(pair.new.record.host);
    expect(app.stats().addressChanges).toBeGreaterThanOrEqual(1);

    const r = await parseK6Json(out);
    const oldIds = (await readPresence(pair.old.url, { runId: 'flip', role: 'old primary' })).presentIds;
    const newIds = (await readPresence(pair.new.url, { runId: 'flip' })).presentIds;
    expect(oldIds.size).toBeGreaterThan(0);
    expect(newIds.size).toBeGreaterThan(0);
    // no replication here: the writes are split between the two servers, none lost, none twice
    for (const id of newIds) expect(oldIds.has(id)).toBe(false);
    const check = checkAcknowledged({ ops: r.ops, presentIds: new Set([...oldIds, ...newIds]) });
    expect(check.lost).toEqual([]);
    expect(check.unexpected).toEqual([]);
    // acknowledged on the new server only after the flip (+ the TTL the app may still cache)
    const firstOnNew = Math.min(...r.ops.filter((o) => newIds.has(o.id)).map((o) => o.endMs));
    expect(firstOnNew).toBeGreaterThanOrEqual(flippedAt);
    expect(firstOnNew - flippedAt).toBeLessThan(2500);
  });

  it('answers only after COMMIT, replays a repeated request id, and says when nothing was committed', async () => {
    const direct = await startApp({ dbUrl: pair.new.url, retry: 'none' });
    try {
      const post = (path: string, id: string, body: object = {}) =>
        fetch(direct.url + path, { method: 'POST', headers: { 'x-request-id': id, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const a = await post('/payments', 'idem-1', { amount_cents: 500 });
      expect(a.status).toBe(201);
      const first = await a.json();
      const b = await post('/payments', 'idem-1', { amount_cents: 999 });
      expect(b.status).toBe(201);
      expect(await b.json()).toMatchObject({ id: 'idem-1', resultId: first.resultId, replay: true });
      const p = await readPresence(pair.new.url, { runId: 'idem' });
      expect([...p.presentIds]).toEqual(['idem-1']);
      expect(p.duplicateCounts.size).toBe(0);

      const missing = await post('/payments/nope/status', 'idem-2', { status: 'x' });
      expect(missing.status).toBe(404);
      expect(missing.headers.get('x-cutover-committed')).toBe('false');
      const noId = await fetch(direct.url + '/ledger', { method: 'POST', body: '{}' });
      expect(noId.status).toBe(400);
    } finally {
      await direct.close();
    }
  });

  it("retries per policy: 'none' fails at once on a fenced server, 'bounded' rides out a short fence", async () => {
    const none = await startApp({ dbUrl: pair.new.url, retry: 'none' });
    const bounded = await startApp({ dbUrl: pair.new.url, retry: 'bounded', retries: 4, retryBackoffMs: 100 });
    const fence = (on: boolean) => withClient(pair.new.url, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query(`alter database app set default_transaction_read_only = ${on ? 'on' : 'off'}`);
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'cutover-sample-app'`);
    });
    try {
      const post = (app: RunningApp, id: string) => fetch(app.url + '/ledger', { method: 'POST', headers: { 'x-request-id': id }, body: '{}' });
      await fence(true);
      const r1 = await post(none, 'fence-none');
      expect(r1.status).toBe(503);
      expect(r1.headers.get('x-cutover-committed')).toBe('false');
      expect((await r1.json()).code).toBe('25006');
      const lift = new Promise((r) => setTimeout(r, 300)).then(() => fence(false));
      const t0 = Date.now();
      const r2 = await post(bounded, 'fence-bounded');
      await lift;
      expect(r2.status).toBe(201);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      expect(bounded.stats().retries).toBeGreaterThanOrEqual(1);
      const p = await readPresence(pair.new.url, { runId: 'fence' });
      expect([...p.presentIds]).toEqual(['fence-bounded']);
    } finally {
      await fence(false).catch(() => {});
      await none.close();
      await bounded.close();
    }
  });

  it('after an error from a fenced server it re-resolves within 100 ms instead of waiting out the TTL (and not with reResolveOnErrorMs 0)', async () => {
    const name = 'reresolve.lab.internal';
    dns.setRecord(name, { targets: [{ address: pair.old.record.host, weight: 100 }], ttl: 5 });
    const u = new URL(pair.old.url);
    u.hostname = name;
    const quick = await startApp({ dbUrl: u.toString(), dnsServer: `127.0.0.1:${dns.dnsPort}`, retry: 'none' });
    const ttlOnly = await startApp({ dbUrl: u.toString(), dnsServer: `127.0.0.1:${dns.dnsPort}`, retry: 'none', reResolveOnErrorMs: 0 });
    const fence = (on: boolean) => withClient(pair.old.url, async (c) => {
      await c.query('set default_transaction_read_only = off');
      await c.query(`alter database app set default_transaction_read_only = ${on ? 'on' : 'off'}`);
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'cutover-sample-app' and pid <> pg_backend_pid()`);
    });
    const post = (a: RunningApp, id: string) => fetch(a.url + '/ledger', { method: 'POST', headers: { 'x-request-id': id }, body: '{}' });
    try {
      for (const a of [quick, ttlOnly]) expect((await post(a, `rr-warm-${a.port}`)).status).toBe(201);
      await fence(true);
      dns.setRecord(name, { targets: [{ address: pair.old.record.host, weight: 0 }, { address: pair.new.record.host, weight: 100 }], ttl: 5 });
      const t0 = Date.now();
      const firstOk = async (a: RunningApp) => {
        for (let i = 0; Date.now() - t0 < 2000; i++) {
          if ((await post(a, `rr-${a.port}-${i}`)).status === 201) return Date.now() - t0;
          await new Promise((r) => setTimeout(r, 20));
        }
        return undefined;
      };
      const [q, t] = await Promise.all([firstOk(quick), firstOk(ttlOnly)]);
      expect(q).toBeDefined();
      expect(q!).toBeLessThan(1000);
      expect(quick.currentAddress()).toBe(pair.new.record.host);
      // the TTL-only app still holds the 5 s answer: every write in those 2 s hit the fenced server
      expect(t).toBeUndefined();
      expect(ttlOnly.currentAddress()).toBe(pair.old.record.host);
    } finally {
      await fence(false).catch(() => {});
      await quick.close();
      await ttlOnly.close();
    }
  });
});
