/**
 * Reverse replication onto an old major that cannot apply to partitioned tables (PG ≤ 12): the
 * forward set (leaf partitions, as PG 11 publishes them) is what flows back, so a write made on the
 * new primary through the partitioned root reaches the old one. Found by rehearsing the GOV.UK-shaped
 * scenario (notifications partitioned by month, 11 → 15, reverse replication on).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPair, sql, type Pair } from '../helpers/clusters.ts';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { startReplication, waitForSync, stopReplication } from '../../migration/replication.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { DnsSwitch } from '../../migration/switch/dns.ts';

const NAME = 'db.lab.internal';

describe('reverse replication 15 → 11 with a partitioned table', () => {
  let pair: Pair;
  let dns: StartedDnsServer;
  beforeAll(async () => {
    pair = await startPair(11, 15);
    dns = await startDnsServer({ host: '127.0.0.1', records: { [NAME]: { targets: [{ address: pair.old.record.host, weight: 100 }, { address: pair.new.record.host, weight: 0 }], ttl: 1 } } });
    for (const q of [
      `create table "Events" (id bigint not null, at date not null, note text, primary key (id, at)) partition by range (at)`,
      `create table "Events_2026_01" partition of "Events" for values from ('2026-01-01') to ('2026-02-01')`,
      `create table "Events_2026_02" partition of "Events" for values from ('2026-02-01') to ('2026-03-01')`,
      `insert into "Events" select g, date '2026-01-01' + (g % 50), 'seed' from generate_series(1, 500) g`,
    ])
      await sql(pair.old.url, q);
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'pre-data' });
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
    await copySchema({ source: pair.old.url, target: pair.new.url, section: 'post-data' });
  });
  afterAll(async () => {
    await dns?.close();
    await pair?.destroy();
  });

  it('switches over with --reverse and carries a write on the new root back to the old leaf', async () => {
    const r = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      switch: new DnsSwitch({ adminUrl: dns.adminUrl, name: NAME }),
      stateFile: join(mkdtempSync(join(tmpdir(), 'reverse-parts-')), 's.json'),
      reverse: true,
      // no application here: an empty role list is accepted explicitly (preflight refuses it otherwise)
      appRoles: [],
      allowUnfenced: ['*'],
    });
    expect(r.error?.message).toBeUndefined();
    expect(r.outcome).toBe('completed');
    await sql(pair.new.url, `insert into "Events" values (9001, '2026-02-14', 'written on new')`);
    const deadline = Date.now() + 30_000;
    let rows: any[] = [];
    while (Date.now() < deadline) {
      rows = await sql(pair.old.url, `select note from "Events_2026_02" where id = 9001`);
      if (rows.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(rows).toEqual([{ note: 'written on new' }]);
    const stop = await stopReplication({ source: pair.new.url, target: pair.old.url, name: 'main_reverse' });
    expect(stop.complete).toBe(true);
  });
});
