/** What lab/compose/config.ts writes for docker-compose.yml's Toxiproxy and pgbouncer (pure parts + files). */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressesFromEnv, toxiproxyConfig, writeComposeConfig, COMPOSE_DEFAULTS } from '../../lab/compose/config.ts';

const a = { old: '127.0.10.1', new: '127.0.10.2', lab: '127.0.10.3', password: 'pw"x' };

describe('compose config', () => {
  it("takes the compose file's defaults, and refuses an address that is not IPv4 with the variable named", () => {
    expect(addressesFromEnv({})).toEqual({ old: COMPOSE_DEFAULTS.CUTOVER_OLD_HOST, new: COMPOSE_DEFAULTS.CUTOVER_NEW_HOST, lab: COMPOSE_DEFAULTS.CUTOVER_LAB_HOST, password: 'lab' });
    expect(() => addressesFromEnv({ CUTOVER_NEW_HOST: 'new' })).toThrow(/CUTOVER_NEW_HOST must be an IPv4 address.*"new"/);
  });

  it('puts the three hops on the lab address, replication and app-old in front of old', () => {
    expect(JSON.parse(toxiproxyConfig(a))).toEqual([
      { name: 'app-old', listen: '127.0.10.3:15432', upstream: '127.0.10.1:5432', enabled: true },
      { name: 'app-new', listen: '127.0.10.3:15433', upstream: '127.0.10.2:5432', enabled: true },
      { name: 'replication', listen: '127.0.10.3:15434', upstream: '127.0.10.1:5432', enabled: true },
    ]);
  });

  it('writes pgbouncer.ini pointing at the app-old proxy, logging to stderr, its userlist private', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-config-'));
    writeComposeConfig(dir, a);
    const ini = readFileSync(join(dir, 'pgbouncer.ini'), 'utf8');
    expect(ini).toContain('app = host=127.0.10.3 port=15432 dbname=app');
    expect(ini).toContain('listen_addr = 127.0.10.3');
    expect(ini).toContain(`auth_file = ${join(dir, 'userlist.txt')}`);
    expect(ini).not.toMatch(/logfile|pidfile/);
    expect(readFileSync(join(dir, 'userlist.txt'), 'utf8')).toBe('"postgres" "pw""x"\n');
    expect(statSync(join(dir, 'userlist.txt')).mode & 0o077).toBe(0);
  });
});
