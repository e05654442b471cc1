/**
 * The whole version matrix (CUTOVER_HEAVY=1): every source major 11–17 onto the newest target 18,
 * 16 → 17, and two targets older than the pg_dump 18 that copies the schema (11 → 15, 13 → 16),
 * each replicate → verify → switchover (dns, reverse replication) on real embedded
 * servers with the payments preset. Pairs run one after the other (two cores). The preflight
 * findings and the timings of every pair are written to out/version-matrix.{json,md}: the README's
 * version table is that file (timings are reported, never asserted).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rehearsePair, tableRow, TABLE_HEADER, type PairOutcome } from '../helpers/version-matrix.ts';

// 11 → 15 and 13 → 16: targets older than the pg_dump 18 that copies their schema (its session SETs).
const PAIRS: Array<[number, number]> = [[11, 18], [12, 18], [13, 18], [14, 18], [15, 18], [16, 18], [17, 18], [16, 17], [11, 15], [13, 16]];
const SCALE = Number(process.env.MATRIX_SCALE ?? 20_000);
const OUT = join(import.meta.dirname, '..', '..', 'out');

describe('version matrix (every pair)', () => {
  const outcomes: PairOutcome[] = [];

  afterAll(() => {
    if (!outcomes.length) return;
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'version-matrix.json'), JSON.stringify({ scale: SCALE, at: new Date().toISOString(), outcomes }, null, 2) + '\n');
    const md = [`payments preset, scale ${SCALE} (${outcomes[0].rows} rows); wall clock on this machine`, '', ...TABLE_HEADER, ...outcomes.map(tableRow)].join('\n');
    writeFileSync(join(OUT, 'version-matrix.md'), md + '\n');
    console.log(md);
  });

  it.each(PAIRS)('%i → %i: no preflight error, verify clean, switchover completed, reverse replication carries writes back', async (oldMajor, newMajor) => {
    const o = await rehearsePair(oldMajor, newMajor, { scale: SCALE });
    outcomes.push(o);
    expect(o.findings.error).toEqual([]);
    // pg_dump at least as new as the source: the lab's 18 unless CUTOVER_PG_DUMP names another.
    expect(Number(o.pgDump.split('.')[0])).toBeGreaterThanOrEqual(oldMajor);
    expect(o.verifyOk).toBe(true);
    expect(o.mismatchedTables).toEqual([]);
    expect(o.switchover.error).toBeUndefined();
    expect(o.switchover.outcome).toBe('completed');
    expect(o.dnsOnNew).toBe(true);
    expect(o.countsMatch).toBe(true);
    expect(o.reverseCarried).toBe(true);
  });
});
