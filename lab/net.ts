/** Loopback addresses and ports for lab servers. */
import { createServer } from 'node:net';

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
    if (skip.has(host)) continue;
    if (await canBind(host, port)) {
      taken.add(host);
      return host;
    }
  }
  throw new Error(`no free loopback address 127.0.0.2–254 on port ${port}`);
}

export function releaseLoopbackAddress(host: string): void {
  taken.delete(host);
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
