/**
 * disable_on_error (15+) stops a subscription on any error of its apply worker, a broken replication
 * link included. The sentinel wait (and the catch-up) tell that case from an apply error by the
 * target's log and enable the subscription again — lossless, apply resumes from its origin — at most
 * MAX_LINK_REENABLES times; an apply error is still refused with its message. Real 13 → 17 pair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startPair, type Pair, sql } from '../helpers/clusters.ts';
import { startReplication, stopReplication, waitForSync } from '../../migration/replication.ts';
import { ensureSentinel, sentinelRoundTrip } from '../../migration/sentinel.ts';
import { until } from '../helpers/until.ts';

const enabled = async (url: string) => (await sql(url, `select subenabled from pg_subscription where subname = 'cutover_main'`))[0]?.subenabled;

describe('a subscription disabled by a lost link is enabled again; one disabled by an apply error is not (13 → 17)', () => {
  let pair: Pair;
  let source: pg.Client;
  let target: pg.Client;

  beforeAll(async () => {
    pair = await startPair(13, 17);
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create table public.items (id bigint primary key, note text not null)`);
    await sql(pair.old.url, `insert into public.items select g, 'seed' from generate_series(1, 20) g`);
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 60_000 });
    source = new pg.Client({ connectionString: pair.old.url });
    target = new pg.Client({ connectionString: pair.new.url });
    await Promise.all([source.connect(), target.connect()]);
    await ensureSentinel(source, target, { publication: 'cutover_main', subscription: 'cutover_main', timeoutMs: 60_000 });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([source?.end().catch(() => {}), target?.end().catch(() => {})]);
    if (pair) await stopReplication({ source: pair.old.url, target: pair.new.url }).catch(() => {});
    await pair?.destroy();
  });

  it('a broken link (the walsender terminated): the sentinel arrives, the subscription was enabled again, nothing lost', async () => {
    // break the stream: the apply worker's next receive fails, and disable_on_error disables it
    await sql(pair.old.url, `insert into public.items values (100, 'before the break')`);
    await sql(pair.old.url, `select pg_terminate_backend(pid) from pg_stat_replication where application_name = 'cutover_main'`);
    await until(async () => (await enabled(pair.new.url)) === false || undefined, 30_000, 'the subscription disabled by the broken link');
    await sql(pair.old.url, `insert into public.items values (101, 'after the break')`);
    const log: string[] = [];
    const rt = await sentinelRoundTrip(source, target, 'lost-link:1', { timeoutMs: 60_000, log: (m) => log.push(m) });
    expect(rt.latencyMs).toBeGreaterThan(0);
    expect(rt.linkReenables).toBe(1);
    expect(log.join('\n')).toMatch(/subscription cutover_main was disabled by a lost link to the old primary \(disable_on_error\), not by an apply error: enabled again \(1 of at most 3\)/);
    expect(await enabled(pair.new.url)).toBe(true);
    expect(await sql(pair.new.url, `select id, note from public.items where id >= 100 order by id`)).toEqual([
      { id: 100, note: 'before the break' },
      { id: 101, note: 'after the break' },
    ]);
  }, 120_000);

  it('an apply error (a row the target already has): refused with the logged message, not re-enabled', async () => {
    await sql(pair.new.url, `insert into public.items values (200, 'only on the target')`);
    await sql(pair.old.url, `insert into public.items values (200, 'collides')`);
    await until(async () => (await enabled(pair.new.url)) === false || undefined, 30_000, 'the subscription disabled by the conflict');
    const log: string[] = [];
    await expect(sentinelRoundTrip(source, target, 'lost-link:2', { timeoutMs: 30_000, log: (m) => log.push(m) })).rejects.toThrow(/the sentinel row cannot arrive: subscription cutover_main is disabled on the new primary \(apply stopped: duplicate key value violates unique constraint/);
    expect(log).toEqual([]);
    expect(await enabled(pair.new.url)).toBe(false);
  }, 120_000);
});
