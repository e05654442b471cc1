/**
 * Migration core figures on ≥ 1M rows, same two clusters (11 → 17), same run:
 * - `replicate start` (pre-data, publication/subscription, initial sync to all `r`, post-data)
 *   beside `pg_dump -Fc | pg_restore` of the same database (goal: ratio ≤ 1.0);
 * - `verify` (counts + checksums on both sides) beside a plain count(*) of the same tables
 *   on both sides at once (goal: within 2×), and beside one full-row hash scan of both sides
 *   (goal: within 1.2×); BENCH_VERIFY_ONLY=1 measures only these, on one replicated copy;
 * - keys before the copy (shipped order) beside every key after it (the old order): the copy
 *   phase (subscription created → all `r`) and the whole start, at BENCH_KEYS_ROWS rows
 *   (default BENCH_ROWS; "1000000,10000000" adds the 10M figure, several minutes per order;
 *   BENCH_KEYS_ONLY=1 BENCH_ROWS=10000000 measures only that);
 * Each figure is the median of BENCH_RUNS runs (default 3); every run uses a fresh target database.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedProvider } from '../lab/providers/embedded.ts';
import { withClient, withDatabase, quoteIdent } from '../migration/pg.ts';
import { copySchema, dumpTool, libpqEnv } from '../migration/schema-copy.ts';
import { startReplication, stopReplication, waitForSync } from '../migration/replication.ts';
import { verify } from '../migration/verify.ts';
import { median, timeIt, type BenchResult } from './types.ts';

const OLD = 11;
const NEW = 17;
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

// Keys before the copy, beside the old order (every key after the copy): the copy phase and the
// whole start, per size. 10M rows takes several minutes per order here: BENCH_KEYS_ROWS=1000000,10000000.
const KEYS_ROWS = (process.env.BENCH_KEYS_ROWS ?? String(ROWS)).split(',').map(Number).filter((n) => n > 0);

/** orders (60 %) and events (40 %) with two indexes and an FK: the replicate and clone benches' dataset. */
export async function seed(url: string, rows = ROWS): Promise<void> {
  const orders = Math.round(rows * 0.6);
  const events = rows - orders;
  await withClient(url, async (c) => {
    await c.query(`create table orders (id bigint primary key, customer_id int not null, amount numeric(12,2), status text, created_at timestamptz not null, note text)`);
    await c.query(`create table events (id bigserial primary key, order_id bigint not null, kind text not null, payload jsonb, at timestamptz not null default now())`);
    await c.query(`insert into orders select g, g % 5000, (g % 100000) / 100.0, (array['new','paid','shipped','refunded'])[1 + g % 4], now() - make_interval(secs => g), case when g % 5 = 0 then null else md5(g::text) end from generate_series(1, ${orders}) g`);
    await c.query(`insert into events (order_id, kind, payload, at) select 1 + g % ${orders}, 'k' || (g % 7), jsonb_build_object('n', g, 'ok', g % 2 = 0), now() - make_interval(secs => g) from generate_series(1, ${events}) g`);
    await c.query(`create index orders_customer on orders (customer_id); create index events_order on events (order_id); alter table events add constraint events_order_fk foreign key (order_id) references orders (id); analyze`);
  });
}

function dumpRestore(sourceUrl: string, targetUrl: string, dumpPath: string): Promise<void> {
  const restorePath = join(dumpPath, '..', 'pg_restore');
  return new Promise((resolve, reject) => {
    const dump = spawn(dumpPath, ['-Fc', '--no-owner', '--no-privileges'], { env: libpqEnv(sourceUrl), stdio: ['ignore', 'pipe', 'pipe'] });
    const restore = spawn(restorePath, ['--no-owner', '--no-privileges', '-d', new URL(targetUrl).pathname.slice(1)], { env: libpqEnv(targetUrl), stdio: ['pipe', 'ignore', 'pipe'] });
    dump.stdout.pipe(restore.stdin);
    let err = '';
    dump.stderr.on('data', (d) => (err += d));
    restore.stderr.on('data', (d) => (err += d));
    restore.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`pg_dump | pg_restore failed: ${err.slice(-500)}`))));
  });
}

type VerifyTimes = { verify: number[]; count: number[]; scan: number[]; mismatch: number[] };

/**
 * `verify` (no samples) on a synced copy, beside a plain count(*) of the same tables and one
 * full-row hash scan, each on both sides at once; the order alternates per run so that cache
 * warmth (and hint bits set by the first reader) favours neither.
 */
async function measureVerify(source: string, target: string, run: number, into: VerifyTimes): Promise<void> {
  const both = (sql: (t: string) => string) => Promise.all([source, target].map((u) => withClient(u, async (c) => { for (const t of ['orders', 'events']) await c.query(sql(t)); })));
  const steps = [
    async () => into.verify.push(await timeIt(async () => {
      const r = await verify({ source, target, sampleRows: 0 });
      if (!r.ok) throw new Error(`bench verify found mismatches: ${r.tables.filter((t) => !t.ok).map((t) => t.table).join(', ')}`);
    })),
    async () => into.count.push(await timeIt(() => both((t) => `select count(*) from ${t}`))),
    // The floor for any content checksum: read every row as text and hash it once, no chunks; the
    // tables at once on each side, as verify's two session pairs do (on a busy machine more
    // backends get more of it: a sequential baseline would flatter verify).
    async () => into.scan.push(await timeIt(() => Promise.all([source, target].flatMap((u) => ['orders', 'events'].map((t) => withClient(u, (c) => c.query(`select sum(hashtextextended(${t}::text, 0)) from ${t}`))))))),
  ];
  for (const step of run % 2 === 0 ? steps : [...steps].reverse()) await step();
}

/** `verify` with one row changed on the target: the whole-table pass, the chunk pass of that table, one chunk narrowed. */
async function measureMismatch(source: string, target: string, into: VerifyTimes): Promise<void> {
  const id = Math.round(ROWS * 0.3);
  await withClient(target, (c) => c.query(`update orders set note = 'bench: changed' where id = $1`, [id]));
  try {
    into.mismatch.push(await timeIt(async () => {
      const r = await verify({ source, target, sampleRows: 0 });
      const found = r.tables.flatMap((t) => t.differingRows.map((d) => `${t.name} ${JSON.stringify(d.key)}`));
      if (found.join() !== `orders {"id":${id}}`) throw new Error(`bench verify: expected orders {"id":${id}} to differ, found ${found.join(', ') || 'nothing'}`);
    }));
  } finally {
    await withClient(target, (c) => c.query(`update orders o set note = s.note from (select case when $1::int8 % 5 = 0 then null else md5($1::text) end as note) s where o.id = $1`, [id]));
  }
}

function verifyResults(t: VerifyTimes): BenchResult[] {
  const [ver, cnt, scan, mis] = [median(t.verify), median(t.count), median(t.scan), median(t.mismatch)];
  return [
    { name: `verify counts + checksums (${ROWS} rows)`, value: ver / 1000, unit: 's', baseline: { name: 'count(*) on both sides', value: cnt / 1000 }, ratio: ver / cnt, goal: 'ratio ≤ 2.0' },
    // count(*) never reads a column; a checksum must turn every row into text. This baseline shows
    // how much of verify's time is that unavoidable work and how much is planning and bookkeeping.
    { name: `verify, beside one full-row hash scan`, value: ver / 1000, unit: 's', baseline: { name: 'sum(hashtextextended(row::text)), all tables at once, both sides', value: scan / 1000 }, ratio: ver / scan, goal: 'ratio ≤ 1.2' },
    { name: `verify with one row changed: located and narrowed`, value: mis / 1000, unit: 's', baseline: { name: 'one full-row hash scan', value: scan / 1000 }, ratio: mis / scan },
  ];
}

export async function bench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-repl-'));
  const p = new EmbeddedProvider();
  const [o, n] = await Promise.all([p.start({ name: 'old', major: OLD }, { dir: join(dir, 'old') }), p.start({ name: 'new', major: NEW }, { dir: join(dir, 'new') })]);
  try {
    await seed(o.url);
    const tool = await dumpTool(OLD);
    const newDb = async (name: string) => {
      await withClient(n.url, (c) => c.query(`drop database if exists ${quoteIdent(name)}`).then(() => c.query(`create database ${quoteIdent(name)}`)));
      return withDatabase(n.url, name);
    };
    const dropDb = (name: string) => withClient(n.url, (c) => c.query(`drop database if exists ${quoteIdent(name)}`));

    const replicate: number[] = [];
    const restore: number[] = [];
    const verifyTimes: VerifyTimes = { verify: [], count: [], scan: [], mismatch: [] };
    // BENCH_KEYS_ONLY=1: only the keys-first comparison (e.g. BENCH_ROWS=10000000 for the 10M figure)
    const keysOnly = process.env.BENCH_KEYS_ONLY === '1';
    // BENCH_VERIFY_ONLY=1: one replicated copy, verify beside its baselines BENCH_RUNS times
    if (process.env.BENCH_VERIFY_ONLY === '1') {
      const url = await newDb('verify_only');
      await copySchema({ source: o.url, target: url, section: 'pre-data' });
      await startReplication({ source: o.url, target: url, name: 'bench_verify' });
      await waitForSync({ source: o.url, target: url, name: 'bench_verify', pollMs: 250 });
      await copySchema({ source: o.url, target: url, section: 'post-data' });
      await stopReplication({ source: o.url, target: url, name: 'bench_verify' });
      for (let i = 0; i < RUNS; i++) await measureVerify(o.url, url, i, verifyTimes);
      for (let i = 0; i < RUNS; i++) await measureMismatch(o.url, url, verifyTimes);
      return verifyResults(verifyTimes);
    }
    for (let i = 0; i < (keysOnly ? 0 : RUNS); i++) {
      // alternate the order so cache warmth favours neither side
      const runRestore = async () => {
        const url = await newDb(`restore_${i}`);
        restore.push(await timeIt(() => dumpRestore(o.url, url, tool.path)));
        await dropDb(`restore_${i}`);
      };
      const runReplicate = async () => {
        const url = await newDb(`repl_${i}`);
        replicate.push(
          await timeIt(async () => {
            await copySchema({ source: o.url, target: url, section: 'pre-data' });
            await startReplication({ source: o.url, target: url, name: `bench_${i}` });
            await waitForSync({ source: o.url, target: url, name: `bench_${i}`, pollMs: 250 });
            await copySchema({ source: o.url, target: url, section: 'post-data' });
          }),
        );
        await stopReplication({ source: o.url, target: url, name: `bench_${i}` });
        await measureVerify(o.url, url, i, verifyTimes);
        await measureMismatch(o.url, url, verifyTimes);
        await dropDb(`repl_${i}`);
      };
      if (i % 2 === 0) (await runRestore(), await runReplicate());
      else (await runReplicate(), await runRestore());
    }
    const keyResults: BenchResult[] = [];
    for (const rows of KEYS_ROWS) {
      let srcUrl = o.url;
      if (rows !== ROWS) {
        await withClient(o.url, (c) => c.query(`drop database if exists keys_src`).then(() => c.query(`create database keys_src`)));
        srcUrl = withDatabase(o.url, 'keys_src');
        await seed(srcUrl, rows);
      }
      const copy = { first: [] as number[], after: [] as number[] };
      const total = { first: [] as number[], after: [] as number[] };
      for (let i = 0; i < RUNS; i++) {
        for (const order of i % 2 === 0 ? (['first', 'after'] as const) : (['after', 'first'] as const)) {
          const db = `keys_${order}_${i}`;
          const url = await newDb(db);
          const name = `keys_${order}_${i}`;
          let copyMs = 0;
          total[order].push(
            await timeIt(async () => {
              await copySchema({ source: srcUrl, target: url, section: 'pre-data', keys: order === 'first' });
              copyMs = await timeIt(async () => {
                await startReplication({ source: srcUrl, target: url, name, allowMissingTargetKeys: order === 'after' });
                await waitForSync({ source: srcUrl, target: url, name, pollMs: 250 });
              });
              await copySchema({ source: srcUrl, target: url, section: 'post-data' });
            }),
          );
          copy[order].push(copyMs);
          await stopReplication({ source: srcUrl, target: url, name });
          await dropDb(db);
        }
      }
      const [cf, ca, tf, ta] = [median(copy.first), median(copy.after), median(total.first), median(total.after)];
      keyResults.push(
        { name: `initial copy with keys built first (${rows} rows)`, value: cf / 1000, unit: 's', baseline: { name: 'copy into bare heaps (old order)', value: ca / 1000 }, ratio: cf / ca },
        { name: `replicate start, keys first: pre + copy + post (${rows} rows)`, value: tf / 1000, unit: 's', baseline: { name: 'old order: keys after the copy', value: ta / 1000 }, ratio: tf / ta },
      );
      if (rows !== ROWS) await withClient(o.url, (c) => c.query(`drop database if exists keys_src`));
    }
    if (keysOnly) return keyResults;
    const rep = median(replicate);
    const base = median(restore);
    return [
      { name: `replicate start → all r + post-data (${ROWS} rows, ${OLD}→${NEW})`, value: rep / 1000, unit: 's', baseline: { name: 'pg_dump -Fc | pg_restore', value: base / 1000 }, ratio: rep / base, goal: 'ratio ≤ 1.0' },
      ...verifyResults(verifyTimes),
      ...keyResults,
    ];
  } finally {
    await Promise.allSettled([o.destroy(), n.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
