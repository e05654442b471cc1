/**
 * The real Toxiproxy server, started on a free loopback port and driven through
 * toxiproxy-node-client. Proxies can sit on every hop: app→old, app→new and new→old (the
 * replication link: the subscription's connection string points at the proxy).
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { Toxiproxy, type Proxy } from 'toxiproxy-node-client';
import { requireTool } from './tools.ts';
import { killWithUs } from './children.ts';
import { freePort, pidAlive, sleep } from './net.ts';
import { CutoverError } from '../migration/errors.ts';
import { tailFile } from './providers/embedded.ts';

export type Hop = 'app-old' | 'app-new' | 'replication';

export interface ToxiproxyRecord {
  apiUrl: string;
  host: string;
  port: number;
  pid?: number;
  logFile?: string;
}

export interface StartedToxiproxy {
  record: ToxiproxyRecord;
  client: Toxiproxy;
  /** Create (or replace) a proxy listening on host:free port in front of upstream "host:port". */
  proxy(name: string, upstream: string, listenHost?: string, listenPort?: number): Promise<{ name: string; listen: string; host: string; port: number }>;
  stop(): Promise<void>;
}

export async function startToxiproxy(opts: { host?: string; port?: number; logFile: string; detached?: boolean }): Promise<StartedToxiproxy> {
  const bin = requireTool('toxiproxy-server');
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(bin, ['-host', host, '-port', String(port)], { detached: opts.detached ?? false, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => {});
  if (opts.detached) child.unref();
  else killWithUs(child);
  const record: ToxiproxyRecord = { apiUrl: `http://${host}:${port}`, host, port, pid: child.pid, logFile: opts.logFile };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new CutoverError('POSTMASTER_DIED', `toxiproxy-server exited during start`, { detail: tailFile(opts.logFile), hint: `see ${opts.logFile}` });
    try {
      const res = await fetch(`${record.apiUrl}/version`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new CutoverError('TIMEOUT', `toxiproxy-server did not answer on ${record.apiUrl} within 15 s`, { detail: tailFile(opts.logFile) });
    await sleep(50);
  }
  return attachToxiproxy(record);
}

export function attachToxiproxy(record: ToxiproxyRecord): StartedToxiproxy {
  const client = new Toxiproxy(record.apiUrl);
  return {
    record,
    client,
    async proxy(name, upstream, listenHost = record.host, listenPort) {
      const port = listenPort ?? (await freePort(listenHost));
      try {
        const existing = await client.get(name);
        await existing.remove();
      } catch {}
      const p: Proxy = await client.createProxy({ name, listen: `${listenHost}:${port}`, upstream });
      return { name, listen: p.listen, host: listenHost, port };
    },
    async stop() {
      const pid = record.pid;
      if (!pid) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
      const deadline = Date.now() + 5000;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(20);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
      while (pidAlive(pid)) await sleep(20);
    },
  };
}

/** Toxic kinds as the scenario names them, mapped to Toxiproxy's types. `partition` disables the proxy. */
export type ToxicKind = 'latency' | 'bandwidth' | 'timeout' | 'reset_peer' | 'slicer' | 'limit_data' | 'slow_close' | 'partition';

/** Add a toxic (or, for `partition`, disable the proxy). Returns a function that removes it. */
export async function addToxic(tp: StartedToxiproxy, proxyName: string, kind: ToxicKind, attributes: Record<string, number> = {}, stream: 'upstream' | 'downstream' = 'downstream'): Promise<() => Promise<void>> {
  const proxy = await tp.client.get(proxyName);
  if (kind === 'partition') {
    await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
    return async () => {
      const p = await tp.client.get(proxyName);
      await p.update({ enabled: true, listen: p.listen, upstream: p.upstream });
    };
  }
  const defaults: Record<string, Record<string, number>> = {
    latency: { latency: 100, jitter: 0 },
    bandwidth: { rate: 100 },
    timeout: { timeout: 0 },
    reset_peer: { timeout: 0 },
    slicer: { average_size: 64, size_variation: 32, delay: 10 },
    limit_data: { bytes: 1024 },
    slow_close: { delay: 1000 },
  };
  const name = `${kind}_${stream}_${Date.now().toString(36)}`;
  const toxic = await proxy.addToxic({ name, type: kind as any, stream, toxicity: 1, attributes: { ...defaults[kind], ...attributes } as any });
  return async () => {
    await toxic.remove().catch(() => {});
  };
}
