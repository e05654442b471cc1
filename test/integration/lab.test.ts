/**
 * The lab foundation on real servers: both clusters of a pair start with the right major, logical
 * replication old→new runs through a Toxiproxy proxy, and a latency toxic on that proxy measurably
 * delays apply.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../../lab/lab.ts';
import { addToxic } from '../../lab/toxiproxy.ts';
import { withClient, toConninfo } from '../../migration/pg.ts';

async function waitForRow(url: string, id: number, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  return withClient(url, async (c) => {
    for (;;) {
      const r = await c.query('select 1 from "Lab Items" where id = $1', [id]);
      if (r.rowCount) return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) throw new Error(`row ${id} did not arrive within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
}

describe.each([
  [11, 17],
  [13, 16],
])('lab pair %i → %i', (oldMajor, newMajor) => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ name: `t${oldMajor}-${newMajor}`, dir: mkdtempSync(join(tmpdir(), 'cutover-lab-')), old: { name: 'old', major: oldMajor }, new: { name: 'new', major: newMajor } });
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('starts both clusters with the right server_version_num', async () => {
    const vOld = await withClient(lab.old.url, async (c) => Number((await c.query('show server_version_num')).rows[0].server_version_num));
    const vNew = await withClient(lab.new.url, async (c) => Number((await c.query('show server_version_num')).rows[0].server_version_num));
    expect(Math.floor(vOld / 10000)).toBe(oldMajor);
    expect(Math.floor(vNew / 10000)).toBe(newMajor);
    expect(lab.old.record.host).not.toBe(lab.new.record.host);
    expect(lab.old.record.port).toBe(lab.new.record.port);
  });

  it('replicates old → new through the replication proxy, and a latency toxic delays apply', async () => {
    const ddl = 'create table "Lab Items" (id int primary key, note text)';
    await withClient(lab.old.url, async (c) => {
      await c.query(ddl);
      await c.query('create publication lab_pub for table "Lab Items"');
    });
    const viaProxy = toConninfo(lab.proxiedUrl('replication'));
    expect(viaProxy).toContain(`port='${lab.record.proxies['replication' as never]['port' as never]}'`);
    await withClient(lab.new.url, async (c) => {
      await c.query(ddl);
      await c.query(`create subscription lab_sub connection '${viaProxy.replace(/'/g, "''")}' publication lab_pub`);
    });
    try {
      await withClient(lab.old.url, (c) => c.query(`insert into "Lab Items" values (1, 'first')`));
      await waitForRow(lab.new.url, 1);
      // Baseline apply latency (median of a few), then the same with 1.5 s of latency on the link.
      const baseline: number[] = [];
      for (let i = 2; i < 5; i++) {
        await withClient(lab.old.url, (c) => c.query(`insert into "Lab Items" values ($1, 'calm')`, [i]));
        baseline.push(await waitForRow(lab.new.url, i));
      }
      const remove = await addToxic(lab.toxiproxy!, 'replication', 'latency', { latency: 1500, jitter: 0 });
      let delayed: number;
      try {
        await withClient(lab.old.url, (c) => c.query(`insert into "Lab Items" values (10, 'slow')`));
        delayed = await waitForRow(lab.new.url, 10);
      } finally {
        await remove();
      }
      baseline.sort((a, b) => a - b);
      expect(delayed).toBeGreaterThanOrEqual(1400);
      expect(delayed).toBeGreaterThan(baseline[1] + 1000);
    } finally {
      await withClient(lab.new.url, (c) => c.query('drop subscription lab_sub'));
    }
    const slots = await withClient(lab.old.url, async (c) => (await c.query('select slot_name from pg_replication_slots')).rowCount);
    expect(slots).toBe(0);
  });
});
