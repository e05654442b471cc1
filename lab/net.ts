/** Loopback addresses and ports for lab servers. */
import { createServer } from 'node:net';
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labHome } from './paths.ts';

export function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** A free port on host chosen by the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The first loopback address 127.0.0.x (x from `from`) where `port` is free and that no other
 * caller in this process has taken. Two clusters on one port at different addresses is how a DNS
 * switch between two hosts looks.
 */
const taken = new Set<string>();
export async function freeLoopbackAddress(port: number, from = 2, avoid: Iterable<string> = []): Promise<string> {
  const skip = new Set([...taken, ...avoid]);
  for (let x = from; x < 255; x++) {
    const host = `127.0.0.${x}`;
    if (skip.has(host) || claimedElsewhere(host)) continue;
    if ((await canBind(host, port)) && claim(host)) {
      taken.add(host);
      return host;
    }
  }
  throw new Error(`no free loopback address 127.0.0.2–254 on port ${port}`);
}

export function releaseLoopbackAddress(host: string): void {
  taken.delete(host);
  unclaim(host);
}

/*
 * An address stays the lab's while its server is down: a server killed by a fault listens nowhere
 * until it is restarted, and another process (another rehearsal, another test file) probing for a
 * free address would take it — and the restarted server would find it in use, while the run's
 * URLs reached the other process's server. So each process claims its addresses in a file under
 * the lab home (holding its pid) until it releases them; a claim whose process is gone is stale.
 */
const claimDir = () => join(labHome(), 'addresses');
const claimFile = (host: string) => join(claimDir(), host);

function claimOwner(host: string): number | undefined {
  try {
    const pid = Number(readFileSync(claimFile(host), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Claimed by another process that is still running. */
export function claimedElsewhere(host: string): boolean {
  const pid = claimOwner(host);
  return pid !== undefined && pid !== process.pid && pidAlive(pid);
}

function claim(host: string): boolean {
  try {
    mkdirSync(claimDir(), { recursive: true, mode: 0o755 });
    writeFileSync(claimFile(host), String(process.pid), { flag: 'wx' });
    return true;
  } catch (e: any) {
    if (e?.code !== 'EEXIST') return true; // no lab home to write to: the bind probe alone decides, as before
    if (claimedElsewhere(host)) return false;
    writeFileSync(claimFile(host), String(process.pid)); // stale, or ours already
    return true;
  }
}

function unclaim(host: string): void {
  if (claimOwner(host) !== process.pid) return;
  try {
    unlinkSync(claimFile(host));
  } catch {
    /* gone */
  }
}

export function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: any) {
    return e?.code === 'EPERM';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
