/**
 * Readiness before the switch, on real servers: statistics exist on the new side after it (they
 * are not replicated), and a query that needs them gets the plan it gets on the old side.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPair, sql, type Pair } from '../helpers/clusters.ts';
import { prepareTarget, describeReadiness } from '../../migration/readiness.ts';

describe('readiness (13 → 17)', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair(13, 17);
    const ddl = `create table events (id bigint primary key, kind int not null, note text);
                 create index events_kind on events (kind);`;
    await sql(pair.old.url, ddl);
    await sql(pair.new.url, ddl);
    // 200k rows, one kind in 1000 is rare: with statistics the planner picks the index for it.
    const fill = `insert into events select g, case when g % 1000 = 0 then 7 else 1 end, 'n' from generate_series(1, 200000) g`;
    await sql(pair.old.url, fill);
    await sql(pair.new.url, fill);
    await sql(pair.old.url, 'analyze events');
    // The new side as logical replication leaves it: rows, no statistics; autovacuum off so it stays so.
    await sql(pair.new.url, 'alter table events set (autovacuum_enabled = off)');
  });
  afterAll(async () => pair?.destroy());

  it('analyzes every table, so a selective query plans as on the old side', async () => {
    const stats = async (url: string) => Number((await sql(url, `select count(*) from pg_stats where tablename = 'events'`))[0].count);
    expect(await stats(pair.new.url)).toBe(0);
    const r = await prepareTarget(pair.new.url, pair.old.url, { prewarm: false });
    expect(r.steps.find((s) => s.step === 'analyze')).toMatchObject({ status: 'done', objects: 1 });
    // Same collation both sides and a logical copy: no reindex, and it says why.
    expect(r.steps.find((s) => s.step === 'reindex')).toMatchObject({ status: 'skipped' });
    expect(describeReadiness(r)).toMatch(/analyze done/);
    expect(await stats(pair.new.url)).toBeGreaterThan(0);
    const plan = async (url: string) => JSON.stringify(await sql(url, 'explain (format json) select * from events where kind = 7'));
    expect(await plan(pair.new.url)).toMatch(/Index|Bitmap/);
    expect(await plan(pair.old.url)).toMatch(/Index|Bitmap/);
  });

  it('warms up with pg_prewarm where it is installed, else replays the warm-up queries read-only', async () => {
    const r = await prepareTarget(pair.new.url, pair.old.url, { analyze: false, warmupSql: 'select count(*) from events; select * from events where kind = 7;' });
    expect(r.steps.find((s) => s.step === 'warmup' || s.step === 'prewarm')).toMatchObject({ status: 'done' });
    // A warm-up that writes is refused by the read-only transaction (never writes on the new side).
    const bad = await prepareTarget(pair.new.url, pair.old.url, { analyze: false, prewarm: false, warmupSql: "insert into events values (-1, 1, 'x')" });
    expect(bad.steps.find((s) => s.step === 'warmup')).toMatchObject({ status: 'failed' });
    expect(Number((await sql(pair.new.url, 'select count(*) from events where id = -1'))[0].count)).toBe(0);
  });
});
