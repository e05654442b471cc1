/** Loopback address claims across processes (lab/net.ts): a down server's address stays its lab's. */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimedElsewhere, freeLoopbackAddress, freePort, releaseLoopbackAddress } from '../../lab/net.ts';

describe('loopback address claims', () => {
  let home: string;
  const before = process.env.CUTOVER_HOME;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'cutover-claims-'));
    process.env.CUTOVER_HOME = home;
    mkdirSync(join(home, 'addresses'), { recursive: true });
  });
  afterAll(() => {
    if (before === undefined) delete process.env.CUTOVER_HOME;
    else process.env.CUTOVER_HOME = before;
    rmSync(home, { recursive: true, force: true });
  });

  it('skips an address another live process claimed (its server may be down, killed by a fault), takes a stale one, releases its own', async () => {
    const port = await freePort('127.0.0.1');
    // the parent (vitest) is alive and is not us: its claim holds even though nothing listens there
    writeFileSync(join(home, 'addresses', '127.0.0.240'), String(process.ppid));
    expect(claimedElsewhere('127.0.0.240')).toBe(true);
    const a = await freeLoopbackAddress(port, 240);
    expect(a).not.toBe('127.0.0.240');
    expect(readFileSync(join(home, 'addresses', a), 'utf8')).toBe(String(process.pid));
    releaseLoopbackAddress(a);
    expect(existsSync(join(home, 'addresses', a))).toBe(false);
    // a claim of a process that is gone is stale
    writeFileSync(join(home, 'addresses', '127.0.0.240'), String(2 ** 22 + 11));
    expect(claimedElsewhere('127.0.0.240')).toBe(false);
    const b = await freeLoopbackAddress(port, 240);
    expect(b).toBe('127.0.0.240');
    releaseLoopbackAddress(b);
  });
});
