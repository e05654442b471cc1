/**
 * The reverse replication prepared ahead (startReplication prepareOnly + enablePrepared), as the
 * switchover uses it: made while the forward replication still applies, started from the new
 * side's WAL position once the forward one stopped. Nothing the forward replication applied in
 * between may come back (it would collide on the old side's keys and stop apply); everything
 * committed on the new side after that position must. Real 13 → 17 pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';
import { enablePrepared, startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { CutoverError } from '../../migration/errors.ts';
import { until } from '../helpers/until.ts';

const count = async (url: string) => Number((await sql(url, `select count(*)::int as n from public."Order Items"`))[0].n);

describe('prepared reverse replication 13 → 17', () => {
  let pair: Pair;

  beforeAll(async () => {
    pair = await startPair(13, 17);
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create table public."Order Items" (id bigint primary key, note text not null)`);
    await sql(pair.old.url, `insert into public."Order Items" select g, 'seed' from generate_series(1, 50) g`);
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await pair?.destroy();
  });

  it('carries what new commits after it is enabled, and none of the rows the forward replication applied before', async () => {
    const rev = { source: pair.new.url, target: pair.old.url, name: 'rev', tables: ['public."Order Items"'], copyData: false, allowNonEmptyTarget: true, allowDowngrade: true };
    const prepared = await startReplication({ ...rev, prepareOnly: true });
    expect(prepared.tables.map((t) => t.table)).toEqual(['public."Order Items"']);
    // made, not running: the subscription on old is disabled and nothing reads the slot on new
    expect(await sql(pair.old.url, `select subname, subenabled from pg_subscription where subname = 'cutover_rev'`)).toEqual([{ subname: 'cutover_rev', subenabled: false }]);
    expect(await sql(pair.new.url, `select active from pg_replication_slots where slot_name = 'cutover_rev'`)).toEqual([{ active: false }]);

    // the forward replication goes on applying on new meanwhile: these rows are in new's WAL after the slot
    await sql(pair.old.url, `insert into public."Order Items" select g, 'forward' from generate_series(51, 150) g`);
    await until(async () => (await count(pair.new.url)) === 150 || undefined, 30_000, 'forward rows on new');
    const stopped = await stopReplication({ source: pair.old.url, target: pair.new.url });
    expect(stopped.complete).toBe(true);

    const started = await enablePrepared({ source: pair.new.url, target: pair.old.url, name: 'rev' });
    expect(started.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    await sql(pair.new.url, `insert into public."Order Items" values (1001, 'written on new')`);
    await sql(pair.new.url, `update public."Order Items" set note = 'updated on new' where id = 60`);
    await until(async () => (await sql(pair.old.url, `select 1 from public."Order Items" where id = 60 and note = 'updated on new'`)).length > 0 || undefined, 30_000, 'the update on old');
    expect(await sql(pair.old.url, `select note from public."Order Items" where id = 1001`)).toEqual([{ note: 'written on new' }]);
    // no forward row came back (they would have collided with old's keys and stopped apply)
    expect(await count(pair.old.url)).toBe(151);
    const sub = await sql(pair.old.url, `select s.subenabled as enabled, w.pid is not null as running from pg_subscription s left join pg_stat_subscription w on w.subid = s.oid and w.relid is null where s.subname = 'cutover_rev'`);
    expect(sub).toEqual([{ enabled: true, running: true }]);

    // enabling twice is refused with the reason
    await expect(enablePrepared({ source: pair.new.url, target: pair.old.url, name: 'rev' })).rejects.toThrow(CutoverError);
    await expect(enablePrepared({ source: pair.new.url, target: pair.old.url, name: 'rev' })).rejects.toThrow(/already enabled/);
    expect((await stopReplication({ source: pair.new.url, target: pair.old.url, name: 'rev' })).complete).toBe(true);
    expect(await sql(pair.new.url, `select slot_name from pg_replication_slots`)).toEqual([]);
  }, 120_000);

  it('refuses to prepare anything that copies, and enabling what was never prepared names what is missing', async () => {
    await expect(startReplication({ source: pair.new.url, target: pair.old.url, name: 'rev2', copyData: true, allowNonEmptyTarget: true, allowDowngrade: true, prepareOnly: true })).rejects.toThrow(/copies no table/);
    await expect(enablePrepared({ source: pair.new.url, target: pair.old.url, name: 'nothing' })).rejects.toThrow(/subscription cutover_nothing does not exist/);
    expect(await sql(pair.new.url, `select slot_name from pg_replication_slots`)).toEqual([]);
    expect(await sql(pair.new.url, `select pubname from pg_publication`)).toEqual([]);
  }, 60_000);
});
