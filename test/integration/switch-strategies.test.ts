/**
 * Switch strategies against the real servers they drive, without Postgres: the lab DNS server
 * (resolved through node's dns.Resolver), Toxiproxy's HTTP API, and a user command. Each honours
 * an abort: the command is killed with its process group (a child ignoring SIGTERM included), an
 * HTTP call stops, and `current()` tells where traffic is afterwards.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';
import { addToxic, startToxiproxy, type StartedToxiproxy } from '../../lab/toxiproxy.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { DnsSwitch } from '../../migration/switch/dns.ts';
import { ProxySwitch } from '../../migration/switch/proxy.ts';
import type { SwitchContext } from '../../migration/switch/types.ts';

const ctx: SwitchContext = {
  runId: 'r1',
  phase: 'switch',
  direction: 'forward',
  old: { host: '127.0.0.2', port: 5432, database: 'app' },
  new: { host: '127.0.0.3', port: 5432, database: 'app' },
};

describe('switch strategies', () => {
  let dns: StartedDnsServer;
  let tp: StartedToxiproxy | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switch-'));
    dns = await startDnsServer({ host: '127.0.0.1', records: { 'db.lab.internal': { targets: [{ address: '127.0.0.2', weight: 100 }, { address: '127.0.0.3', weight: 0 }], ttl: 1 } } });
    tp = await startToxiproxy({ logFile: join(dir, 'toxiproxy.log') }).catch(() => undefined);
  });
  afterAll(async () => {
    await dns?.close();
    await tp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dns: weights move 100/0 → 0/100, resolvers see the new address, the switch waits one TTL', async () => {
    const r = new Resolver();
    r.setServers([`127.0.0.1:${dns.dnsPort}`]);
    expect(await r.resolve4('db.lab.internal')).toEqual(['127.0.0.2']);
    const sw = new DnsSwitch({ adminUrl: dns.adminUrl, name: 'db.lab.internal' });
    expect(await sw.current(ctx)).toBe('old');
    const out = await sw.switchTo('new', ctx);
    expect(out.waitedMs).toBeGreaterThanOrEqual(1000);
    expect(await r.resolve4('db.lab.internal', { ttl: true })).toEqual([{ address: '127.0.0.3', ttl: 1 }]);
    expect(await sw.current(ctx)).toBe('new');
    await sw.switchTo('old', ctx);
    expect(await r.resolve4('db.lab.internal')).toEqual(['127.0.0.2']);
  });

  it('proxy: the Toxiproxy upstream moves old → new', async (t) => {
    if (!tp) return t.skip();
    await tp.proxy('app-db', '127.0.0.2:5432');
    const sw = new ProxySwitch({ apiUrl: tp.record.apiUrl, name: 'app-db' });
    expect(await sw.current(ctx)).toBe('old');
    const out = await sw.switchTo('new', ctx);
    expect(out).toMatchObject({ from: '127.0.0.2:5432', upstream: '127.0.0.3:5432' });
    expect(await sw.current(ctx)).toBe('new');
  });

  it('command: phase context in env, output recorded, non-zero exit is a failed switch', async () => {
    const ok = new CommandSwitch({ command: 'echo "$CUTOVER_PHASE $CUTOVER_SIDE $CUTOVER_TO_HOST"' });
    expect(await ok.switchTo('new', ctx)).toMatchObject({ exitCode: 0, stdout: 'switch new 127.0.0.3\n' });
    const bad = new CommandSwitch({ command: 'echo boom >&2; exit 7' });
    await expect(bad.switchTo('new', ctx)).rejects.toMatchObject({ message: expect.stringMatching(/exited with 7/), detail: expect.stringMatching(/boom/) });
    expect(bad.runs[0]).toMatchObject({ exitCode: 7, stderr: 'boom\n' });
  });

  it('command: an abort kills the whole process group, even a child that ignores SIGTERM; nothing lands later', async () => {
    const late = join(dir, 'late');
    const sw = new CommandSwitch({ command: `trap '' TERM; (trap '' TERM; sleep 2; echo late > ${late}) & wait`, killGraceMs: 300 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('phase timeout')), 300);
    await expect(sw.switchTo('new', { ...ctx, signal: ac.signal })).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringMatching(/stopped .*process group was killed/) });
    expect(sw.runs[0].stopped).toMatch(/aborted: phase timeout/);
    await new Promise((r) => setTimeout(r, 2500));
    expect(existsSync(late)).toBe(false);
    // stopped by us: where traffic is cannot be known without a check command
    expect(await sw.current(ctx)).toBe('unknown');
  });

  it('command: where traffic is — the check command, else what the last call proved', async () => {
    const pointer = join(dir, 'pointer');
    writeFileSync(pointer, 'old\n');
    const checked = new CommandSwitch({ command: `echo "$CUTOVER_SIDE" > ${pointer}`, checkCommand: `cat ${pointer}` });
    expect(await checked.current(ctx)).toBe('old');
    await checked.switchTo('new', ctx);
    expect(await checked.current(ctx)).toBe('new');
    writeFileSync(pointer, 'somewhere else\n');
    expect(await checked.current(ctx)).toBe('unknown');
    const plain = new CommandSwitch({ command: '[ "$CUTOVER_SIDE" = old ] || exit 4' });
    expect(await plain.current(ctx)).toBe('unknown');
    await expect(plain.switchTo('new', ctx)).rejects.toThrow(/exited with 4/);
    expect(await plain.current(ctx)).toBe('old'); // it failed by itself: traffic did not move
    await plain.switchTo('old', ctx);
    expect(await plain.current(ctx)).toBe('old');
  });

  it('dns: aborted while waiting out the TTL, the record has moved and current() says so', async () => {
    const sw = new DnsSwitch({ adminUrl: dns.adminUrl, name: 'db.lab.internal', ttl: 5 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('phase timeout')), 300);
    await expect(sw.switchTo('new', { ...ctx, signal: ac.signal })).rejects.toThrow(/phase timeout/);
    expect(await sw.current(ctx)).toBe('new');
    await new DnsSwitch({ adminUrl: dns.adminUrl, name: 'db.lab.internal', waitTtl: false }).switchTo('old', ctx);
  });

  it('proxy: an API slowed past the deadline by a latency toxic is given up; current() reads the truth from the API', async (t) => {
    if (!tp) return t.skip();
    await tp.proxy('app-db', '127.0.0.2:5432');
    // Toxiproxy in front of its own API, 1.5 s late
    const slow = await tp.proxy('slow-api', `${tp.record.host}:${tp.record.port}`);
    await addToxic(tp, 'slow-api', 'latency', { latency: 1500 }, 'upstream');
    const sw = new ProxySwitch({ apiUrl: `http://${slow.host}:${slow.port}`, name: 'app-db' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('phase timeout')), 300);
    await expect(sw.switchTo('new', { ...ctx, signal: ac.signal })).rejects.toMatchObject({ message: expect.stringMatching(/was stopped: phase timeout/) });
    const direct = new ProxySwitch({ apiUrl: tp.record.apiUrl, name: 'app-db' });
    expect(await direct.current(ctx)).toBe('old'); // the POST was never sent
    expect(await sw.current(ctx)).toBe('old'); // slow, but it answers
  });
});
