/**
 * The sequences phase of the switchover (it runs while clients cannot write): 500 sequences, each
 * feeding a bigint column with rows in it, 13 → 17. The batched `syncSequences` (one query on the
 * source, one read and one setval round trip on the target) beside the per-sequence loop it
 * replaced (listSequences, then per sequence: its fed columns, max of each, setval), same run,
 * same clusters; the target's sequences are reset before every measured run so both do the full
 * work. Goal: < 100 ms. BENCH_SEQUENCES and BENCH_RUNS change the size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { EmbeddedProvider } from '../lab/providers/embedded.ts';
import { connect, qualified, quoteIdent } from '../migration/pg.ts';
import { fedColumns, listSequences, syncSequences, verifySequences } from '../migration/sequences.ts';
import { median, timeIt, type BenchResult } from './types.ts';

const N = Number(process.env.BENCH_SEQUENCES ?? 500);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const BUFFER = 1000;

/** The pre-batching implementation, kept verbatim in spirit as the baseline. */
async function perSequenceLoop(source: pg.Client, target: pg.Client): Promise<number> {
  const src = await listSequences(source);
  const tgt = new Map((await listSequences(target)).map((s) => [`${s.schema}.${s.name}`, s]));
  let moved = 0;
  for (const s of src) {
    const t = tgt.get(`${s.schema}.${s.name}`);
    if (!t || s.increment < 0) continue;
    let columnMax: number | null = null;
    for (const col of await fedColumns(target, s.schema, s.name)) {
      const m = await target.query<{ m: number | null }>(`select max(${quoteIdent(col.column)})::int8 as m from ${qualified(col.schema, col.table)}`);
      const v = m.rows[0].m;
      if (v !== null && (columnMax === null || v > columnMax)) columnMax = Number(v);
    }
    const candidates = [s.lastValue === null ? null : s.lastValue + BUFFER, columnMax === null ? null : columnMax + 1, t.lastValue].filter((x): x is number => x !== null);
    if (!candidates.length) continue;
    const value = Math.min(Math.max(...candidates), t.maxValue);
    if (value !== t.lastValue) {
      await target.query(`select setval($1::regclass, $2::int8, true)`, [qualified(s.schema, s.name), value]);
      moved++;
    }
  }
  return moved;
}

const DDL = `do $$ begin
  for i in 1..${N} loop
    execute format('create table %I (id bigserial primary key, v int)', 'seq_t' || i);
  end loop; end $$`;
const ROWS = `do $$ begin
  for i in 1..${N} loop
    execute format('insert into %I (v) select g from generate_series(1, 1 + %s %% 20) g', 'seq_t' || i, i);
  end loop; end $$`;
const RESET = `select count(setval(c.oid, 1, false)) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'S' and n.nspname = 'public'`;

export async function bench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-bench-seq-'));
  const p = new EmbeddedProvider();
  const [o, n] = await Promise.all([p.start({ name: 'old', major: 13 }, { dir: join(dir, 'old') }), p.start({ name: 'new', major: 17 }, { dir: join(dir, 'new') })]);
  const src = await connect(o.url);
  const tgt = await connect(n.url);
  try {
    // Same schema and rows on both sides (as replication leaves them); the target's sequences untouched.
    for (const c of [src, tgt]) await c.query(DDL);
    for (const c of [src, tgt]) await c.query(ROWS);
    await src.query('analyze');
    await tgt.query('analyze');
    const batched: number[] = [];
    const loop: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const runBatched = async () => {
        await tgt.query(RESET);
        let moved = 0;
        batched.push(await timeIt(async () => (moved = (await syncSequences(src, tgt, { buffer: BUFFER })).filter((m) => m.changed).length)));
        if (moved !== N) throw new Error(`batched: moved ${moved} of ${N} sequences`);
        const v = await verifySequences(src, tgt);
        if (!v.ok) throw new Error('batched: sequences behind after the move');
      };
      const runLoop = async () => {
        await tgt.query(RESET);
        let moved = 0;
        loop.push(await timeIt(async () => (moved = await perSequenceLoop(src, tgt))));
        if (moved !== N) throw new Error(`loop: moved ${moved} of ${N} sequences`);
      };
      // alternate the order so cache warmth favours neither
      if (i % 2 === 0) (await runBatched(), await runLoop());
      else (await runLoop(), await runBatched());
    }
    const b = median(batched);
    const l = median(loop);
    return [{ name: `sequences phase, ${N} sequences (13→17)`, value: b, unit: 'ms', baseline: { name: 'per-sequence loop', value: l }, ratio: b / l, goal: '< 100 ms' }];
  } finally {
    await src.end().catch(() => {});
    await tgt.end().catch(() => {});
    await Promise.allSettled([o.destroy(), n.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
