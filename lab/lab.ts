/**
 * A lab: an old and a new cluster, a Toxiproxy server with a proxy on every hop
 * (app→old, app→new, and new→old for the replication link).
 *
 * `startLab` is the in-process form the rehearsal runner uses (everything stopped by `down()`);
 * `labUp`/`labStatus`/`labDown` are the CLI's persistent form: servers keep running after the
 * command returns, and lab.json (mode 600: it holds the lab passwords) lets a later process find
 * and stop them. A failed start stops whatever it had started.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, openSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { paths, PROJECT_ROOT } from './paths.ts';
import { provider, type ClusterSpec, type ClusterRecord, type StartedCluster, type ProviderKind } from './providers/index.ts';
import { startToxiproxy, attachToxiproxy, type StartedToxiproxy, type ToxiproxyRecord } from './toxiproxy.ts';
import { pidAlive, freeLoopbackAddress } from './net.ts';
import { requireTool } from './tools.ts';
import { CutoverError } from '../migration/errors.ts';
import { redactUrl } from '../migration/pg.ts';

export interface ProxyRecord {
  name: string;
  host: string;
  port: number;
  upstream: string;
}

export interface LabRecord {
  name: string;
  createdAt: string;
  provider: ProviderKind;
  dir: string;
  old: ClusterRecord;
  new: ClusterRecord;
  toxiproxy?: ToxiproxyRecord;
  /** The lab DNS server (persistent labs): `name` resolves to old (weight 100) or new. */
  dns?: { pid: number; dnsServer: string; adminUrl: string; name: string; ttl: number };
  proxies: Record<'app-old' | 'app-new' | 'replication', ProxyRecord> | Record<string, never>;
}

export interface LabSpec {
  name: string;
  provider?: ProviderKind;
  old: ClusterSpec & { url?: string };
  new: ClusterSpec & { url?: string };
  /** Start Toxiproxy and the three proxies (default true). */
  toxiproxy?: boolean;
  /** Start the old cluster from a copy of this stopped data directory (golden snapshot). */
  oldFromDataDir?: string;
  detached?: boolean;
  log?: (line: string) => void;
  dir?: string;
}

export interface Lab {
  record: LabRecord;
  old: StartedCluster;
  new: StartedCluster;
  toxiproxy?: StartedToxiproxy;
  /** URL for the app/old hop, through its proxy when there is one. */
  proxiedUrl(hop: 'app-old' | 'app-new' | 'replication'): string;
  down(): Promise<void>;
}

function replaceHostPort(url: string, host: string, port: number): string {
  const u = new URL(url);
  u.hostname = host;
  u.port = String(port);
  return u.toString();
}

function makeLab(record: LabRecord, old: StartedCluster, neu: StartedCluster, tp?: StartedToxiproxy): Lab {
  return {
    record,
    old,
    new: neu,
    toxiproxy: tp,
    proxiedUrl(hop) {
      const p = (record.proxies as Record<string, ProxyRecord>)[hop];
      const base = hop === 'app-new' ? neu.url : old.url;
      return p ? replaceHostPort(base, p.host, p.port) : base;
    },
    async down() {
      if (record.dns && pidAlive(record.dns.pid)) process.kill(record.dns.pid, 'SIGTERM');
      const results = await Promise.allSettled([old.destroy(), neu.destroy(), tp?.stop()]);
      if (record.dir) rmSync(record.dir, { recursive: true, force: true });
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) throw failed.reason;
    },
  };
}

export async function startLab(spec: LabSpec): Promise<Lab> {
  const kind = spec.provider ?? 'embedded';
  const dir = spec.dir ?? paths.lab(spec.name);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const prov = provider(kind);
  const log = spec.log ?? (() => {});
  // Fail before starting anything when a tool we will need is missing.
  if (spec.toxiproxy !== false) requireTool('toxiproxy-server');
  const started: Array<{ destroy(): Promise<void> } | { stop(): Promise<void> }> = [];
  try {
    const [old, neu] = await Promise.all([
      prov.start({ ...spec.old, name: 'old', publisher: true }, { dir: join(dir, 'old'), detached: spec.detached, log, fromDataDir: spec.oldFromDataDir }).then((c) => (started.push(c), c)),
      prov.start({ ...spec.new, name: 'new', publisher: true }, { dir: join(dir, 'new'), detached: spec.detached, log }).then((c) => (started.push(c), c)),
    ]);
    const record: LabRecord = { name: spec.name, createdAt: new Date().toISOString(), provider: kind, dir, old: old.record, new: neu.record, proxies: {} };
    let tp: StartedToxiproxy | undefined;
    if (spec.toxiproxy !== false) {
      tp = await startToxiproxy({ logFile: join(dir, 'toxiproxy.log'), detached: spec.detached });
      started.push(tp);
      record.toxiproxy = tp.record;
      const up = (c: ClusterRecord) => `${c.host}:${c.port}`;
      // Proxies listen on their own loopback addresses at the clusters' port, so a DNS record can
      // point at "old through its proxy" or "new through its proxy" and only the address changes.
      const port = old.record.port;
      const used = [old.record.host, neu.record.host];
      const onFreeAddress = async (name: string, upstream: string) => {
        for (let attempt = 0; ; attempt++) {
          const host = await freeLoopbackAddress(port, 2, used);
          used.push(host);
          try {
            return await tp!.proxy(name, upstream, host, port);
          } catch (e) {
            // another process bound the address between our probe and Toxiproxy's listen
            if (attempt >= 5) throw e;
          }
        }
      };
      const ao = await onFreeAddress('app-old', up(old.record));
      const an = await onFreeAddress('app-new', up(neu.record));
      const rp = await onFreeAddress('replication', up(old.record));
      record.proxies = {
        'app-old': { name: ao.name, host: ao.host, port: ao.port, upstream: up(old.record) },
        'app-new': { name: an.name, host: an.host, port: an.port, upstream: up(neu.record) },
        replication: { name: rp.name, host: rp.host, port: rp.port, upstream: up(old.record) },
      };
    }
    return makeLab(record, old, neu, tp);
  } catch (e) {
    await Promise.allSettled(started.map((s) => ('destroy' in s ? s.destroy() : s.stop())));
    if (!spec.dir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

// ---------- persistent labs (CLI) -------------------------------------------------------------

function recordFile(name: string): string {
  return join(paths.lab(name), 'lab.json');
}

/**
 * A lab name is a folder name under the labs directory and is shown back as given: it must be that
 * folder and no other. "." and ".." (and any name starting with a dot or dash) would reach the
 * labs folder itself, its parent, a hidden file or look like an option; `lab down` removes the folder.
 * Upper case is refused because two names differing only in case are one folder on macOS.
 */
export function labNameProblem(name: string): string | null {
  if (!name) return 'it is empty';
  if (name.length > 64) return `it is ${name.length} characters (at most 64)`;
  if (/[^\x20-\x7e]/.test(name)) return 'it has non-ASCII characters';
  if (/[A-Z]/.test(name)) return `it has upper-case letters (on a case-insensitive file system it would be the same lab as "${name.toLowerCase()}")`;
  if (/[^a-z0-9_.-]/.test(name)) return 'it has characters other than a-z, 0-9, dot, dash and underscore';
  if (/^[.-]/.test(name)) return 'it starts with a dot or a dash';
  return null;
}

function checkName(name: string): void {
  const why = labNameProblem(name);
  if (why) throw new CutoverError('USAGE', `invalid lab name "${name}": ${why}`, { hint: 'use lower-case letters, digits, dot, dash and underscore, starting with a letter or digit (e.g. --name pg11-to-17)' });
}

export function readLab(name: string): LabRecord | undefined {
  checkName(name);
  const f = recordFile(name);
  if (!existsSync(f)) return undefined;
  return JSON.parse(readFileSync(f, 'utf8')) as LabRecord;
}

export function attachLab(record: LabRecord): Lab {
  const prov = provider(record.provider);
  const tp = record.toxiproxy ? attachToxiproxy(record.toxiproxy) : undefined;
  return makeLab(record, prov.attach(record.old), prov.attach(record.new), tp);
}

export async function labUp(spec: LabSpec): Promise<LabRecord> {
  checkName(spec.name);
  const existing = readLab(spec.name);
  if (existing) {
    const st = await labStatus(spec.name);
    if (st.old.running || st.new.running || st.toxiproxy.running || st.dns?.running)
      throw new CutoverError('STATE', `lab "${spec.name}" is already up`, { hint: `use it (cutover lab status --name ${spec.name}) or stop it first: cutover lab down --name ${spec.name}` });
    await attachLab(existing).down().catch(() => {});
  }
  const lab = await startLab({ ...spec, detached: true });
  try {
    lab.record.dns = await startDnsProcess(lab.record);
  } catch (e) {
    await lab.down().catch(() => {});
    throw e;
  }
  saveLab(lab.record);
  return lab.record;
}

/** Write lab.json (mode 600: it holds the lab passwords), e.g. after a cluster was restarted with a new pid. */
export function saveLab(record: LabRecord): void {
  writeFileSync(recordFile(record.name), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
}

export interface LabStatus {
  name: string;
  old: { major: number; url: string; running: boolean; pid?: number };
  new: { major: number; url: string; running: boolean; pid?: number };
  toxiproxy: { api?: string; running: boolean; pid?: number };
  dns?: { server: string; admin: string; name: string; running: boolean };
}

export async function labStatus(name: string): Promise<LabStatus> {
  const r = readLab(name);
  if (!r) throw new CutoverError('STATE', `no lab named "${name}"`, { hint: `start one: cutover lab up --old 11 --new 17 --name ${name}`, exitCode: 1 });
  const lab = attachLab(r);
  return {
    name,
    old: { major: r.old.major, url: redactUrl(r.old.url), running: await lab.old.alive(), pid: r.old.pid },
    new: { major: r.new.major, url: redactUrl(r.new.url), running: await lab.new.alive(), pid: r.new.pid },
    toxiproxy: { api: r.toxiproxy?.apiUrl, running: pidAlive(r.toxiproxy?.pid), pid: r.toxiproxy?.pid },
    ...(r.dns ? { dns: { server: r.dns.dnsServer, admin: r.dns.adminUrl, name: r.dns.name, running: pidAlive(r.dns.pid) } } : {}),
  };
}

export async function labDown(name: string): Promise<{ name: string; stopped: string[] }> {
  const r = readLab(name);
  if (!r) throw new CutoverError('STATE', `no lab named "${name}"`, { hint: 'cutover lab list shows the labs that exist', exitCode: 1 });
  await attachLab(r).down();
  rmSync(paths.lab(name), { recursive: true, force: true });
  return { name, stopped: ['old', 'new', ...(r.toxiproxy ? ['toxiproxy'] : []), ...(r.dns ? ['dns'] : [])] };
}

export function listLabs(): string[] {
  const d = paths.labs();
  return existsSync(d) ? readdirSync(d).filter((n) => existsSync(recordFile(n))) : [];
}

export const LAB_DNS_NAME = 'db.lab.internal';

/** A detached lab DNS server answering LAB_DNS_NAME with old (100) / new (0), TTL 1 s. */
async function startDnsProcess(r: LabRecord): Promise<NonNullable<LabRecord['dns']>> {
  const out = join(r.dir, 'dns.out');
  const fd = openSync(out, 'w');
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'run-ts.mjs'), join(PROJECT_ROOT, 'lab', 'dns-main.ts'), '--host', '127.0.0.1', '--ttl', '1', '--record', `${LAB_DNS_NAME}=${r.old.host}:100,${r.new.host}:0`], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const line = existsSync(out) ? readFileSync(out, 'utf8').split('\n').find((l) => l.includes('"listening"')) : undefined;
    if (line) {
      const e = JSON.parse(line);
      return { pid: child.pid!, dnsServer: `127.0.0.1:${e.dnsPort}`, adminUrl: e.adminUrl, name: LAB_DNS_NAME, ttl: 1 };
    }
    if (Date.now() > deadline || (child.exitCode !== null && child.exitCode !== undefined))
      throw new CutoverError('TIMEOUT', 'the lab DNS server did not start', { detail: existsSync(out) ? readFileSync(out, 'utf8').slice(-1000) : undefined });
    await new Promise((res) => setTimeout(res, 50));
  }
}
