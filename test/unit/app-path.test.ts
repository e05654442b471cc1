/** Which hops go through Toxiproxy in a rehearsal (lab/rehearse/steps.ts viaProxy, appEndpoints). */
import { describe, it, expect } from 'vitest';
import { viaProxy, appEndpoints } from '../../lab/rehearse/steps.ts';
import { parseScenario } from '../../scenarios/load.ts';
import type { Lab } from '../../lab/lab.ts';

const scenario = (extra: string) => parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\n${extra}`, 't.yaml');
const proxy = (host: string, upstream: string) => ({ name: 'p', host, port: 5432, upstream });
const lab = (newPort = 5432) =>
  ({
    record: {
      old: { host: '127.0.0.2', port: 5432 },
      new: { host: '127.0.0.3', port: newPort },
      proxies: { 'app-old': proxy('127.0.0.4', '127.0.0.2:5432'), 'app-new': proxy('127.0.0.5', '127.0.0.3:5432'), replication: proxy('127.0.0.6', '127.0.0.2:5432') },
    },
  }) as unknown as Lab;

describe('Toxiproxy only where the scenario needs it', () => {
  it('a dns switch without faults on the app hops goes straight to the clusters', () => {
    const s = scenario('migration: { switch: dns }');
    expect(viaProxy(s, 'app')).toBe(false);
    expect(viaProxy(s, 'replication')).toBe(false);
    expect(appEndpoints(s, lab())).toEqual({ oldFront: { host: '127.0.0.2', port: 5432 }, newFront: { host: '127.0.0.3', port: 5432 } });
  });

  it('a fault on a hop, the proxy or command switch keep that hop behind its proxy', () => {
    const app = scenario('migration: { switch: dns }\nfaults: [{ kind: latency, hop: app-new, at: 1s, attributes: { latency: 100 } }]');
    expect(appEndpoints(app, lab()).newFront.host).toBe('127.0.0.5');
    expect(viaProxy(app, 'replication')).toBe(false);
    const repl = scenario('faults: [{ kind: latency, hop: replication, at: 1s, attributes: { latency: 100 } }]');
    expect(viaProxy(repl, 'replication')).toBe(true);
    expect(viaProxy(repl, 'app')).toBe(false);
    expect(viaProxy(scenario('migration: { switch: proxy }'), 'app')).toBe(true);
    expect(viaProxy(scenario('migration: { switch: command, switchCommand: "true" }'), 'app')).toBe(true);
  });

  it('clusters on different ports keep the proxies (a switch moves an address, never a port)', () => {
    expect(appEndpoints(scenario('migration: { switch: dns }'), lab(5433)).oldFront.host).toBe('127.0.0.4');
  });
});
