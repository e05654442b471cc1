/**
 * `cutover replicate start --initial-sync clone` in its production form: --slot-only (publication
 * and slot, the LSN printed), the copy made by someone else (here the lab's builder stands in for a
 * snapshot restore + pg_upgrade), then --from-lsn. A copy older than the slot is refused and the
 * slot kept (the copy can be retaken); a clone that fails half-way leaves no slot behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, startPair, sql, type Pair } from '../helpers/clusters.ts';
import { seed } from '../../lab/seed.ts';
import { labCloneBuilder } from '../../lab/clone.ts';
import { objectNames, startCloneReplication, stopReplication } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';

describe('replicate start --initial-sync clone (13 → 18)', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair(13, 18);
    await seed({ url: pair.old.url, preset: 'payments', scale: 5_000 });
    await sql(pair.old.url, `create table marks (id int primary key, v int)`);
  }, 120_000);
  afterAll(async () => {
    await pair?.destroy();
  });
  const slots = () => sql(pair.old.url, `select slot_name, slot_type from pg_replication_slots order by 1`);

  it('refuses a clone without saying who makes the copy, and the clone flags without clone', async () => {
    const a = await cli(['replicate', 'start', '--initial-sync', 'clone', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--initial-sync clone needs to know who makes the copy');
    expect(a.stderr).toContain('--slot-only');
    const b = await cli(['replicate', 'start', '--from-lsn', '0/1', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('belong(s) to --initial-sync clone');
    expect(await slots()).toEqual([]);
  });

  it('a clone that fails after the slot exists leaves no slot, publication or physical slot', async () => {
    const real = labCloneBuilder({ old: pair.old, target: pair.new, slot: objectNames().slot });
    const broken = { ...real, finish: async () => Promise.reject(new Error('the copy did not recover (simulated)')) };
    const e = await startCloneReplication({ source: pair.old.url, target: pair.new.url, clone: broken }).catch((x) => x);
    expect(e.message).toContain('simulated');
    expect(e.detail).toMatch(/cleaned up: .*replication slot cutover_main/);
    expect(await slots()).toEqual([]);
    expect(await sql(pair.old.url, `select pubname from pg_publication`)).toEqual([]);
  });

  it('a clone killed after its copy (no cleanup ran): replicate stop drops its physical slot as well', async () => {
    const builder = labCloneBuilder({ old: pair.old, target: pair.new, slot: objectNames().slot });
    await builder.backup();
    expect((await slots()).map((r) => `${r.slot_name} ${r.slot_type}`)).toEqual(['cutover_main_phys physical']);
    const r = await cli(['replicate', 'stop', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('dropped replication slot cutover_main_phys');
    expect(await slots()).toEqual([]);
    await builder.cleanup();
  });

  it('--slot-only, a copy made elsewhere, --from-lsn: follows with nothing lost; an older copy is refused and the slot kept', async () => {
    const builder = labCloneBuilder({ old: pair.old, target: pair.new, slot: objectNames().slot });
    let lsn = '';
    try {
      await builder.backup(); // the copy is started before the slot, as the README says
      const s = await cli(['replicate', 'start', '--initial-sync', 'clone', '--slot-only', '--source', pair.old.url, '--target', pair.new.url, '--json']).done;
      expect(s.code, s.out).toBe(0);
      lsn = JSON.parse(s.stdout).lsn;
      expect(lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      await sql(pair.old.url, `insert into marks values (1, 7)`); // after the slot: must arrive by replication
      await builder.finish(lsn);
    } finally {
      await builder.cleanup();
    }
    const early = await cli(['replicate', 'start', '--initial-sync', 'clone', '--from-lsn', '0/100', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`is before the slot's consistent point`);
    expect((await slots()).map((r) => r.slot_name)).toEqual(['cutover_main']);
    const f = await cli(['replicate', 'start', '--initial-sync', 'clone', '--from-lsn', lsn, '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(f.code, f.out).toBe(0);
    expect(f.stdout).toContain(`started by clone-then-follow at ${lsn}`);
    for (let i = 0; i < 50 && !(await sql(pair.new.url, `select 1 from marks`)).length; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await sql(pair.new.url, `select id, v from marks`)).toEqual([{ id: 1, v: 7 }]);
    expect((await verify({ source: pair.old.url, target: pair.new.url, sampleRows: 0 })).ok).toBe(true);
    expect((await stopReplication({ source: pair.old.url, target: pair.new.url })).complete).toBe(true);
    expect(await slots()).toEqual([]);
  }, 180_000);
});
