import type { Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { verify, type VerifyResult } from '../../migration/verify.ts';
import { formatQuickVerify, quickVerify } from '../../migration/verify-quick.ts';
import { assertDistinctServers } from '../../migration/pg.ts';
import { emit, ExitCode } from '../output.ts';
import { connectionOptions, flag, integer, parseOptions, replicationName, SOURCE, tables, TARGET } from '../options.ts';

export function formatVerify(r: VerifyResult): string {
  const lines: string[] = [];
  for (const t of r.tables) {
    const compared = t.checksum === 'table' ? `one checksum of the whole table (${t.strategy})` : `${t.chunks} chunk(s) (${t.strategy}), ${t.mismatches.length} differing chunk(s)`;
    lines.push(`${t.ok ? 'ok      ' : 'MISMATCH'} ${t.table}: ${t.sourceRows} / ${t.targetRows} rows${t.rowFilter ? ` WHERE ${t.rowFilter.where}` : ''}, ${compared}, sample ${t.sample.rows} row(s)`);
    for (const p of t.problems) lines.push(`         ${p}`);
    for (const d of t.differingRows.slice(0, 20)) lines.push(`         ${d.kind} ${JSON.stringify(d.key)}${d.source !== undefined ? `\n           source: ${d.source}` : ''}${d.target !== undefined ? `\n           target: ${d.target}` : ''}`);
  }
  for (const s of r.sequences)
    lines.push(`sequence ${s.sequence}: source ${s.sourceValue ?? '-'}, target ${s.targetValue ?? '-'}${s.ownedBy ? `, max ${s.ownedBy} on source ${s.sourceMaxKey ?? '-'} → target ${s.targetAheadOfMaxKey ? 'ahead' : s.targetAheadOfMaxKey === false ? 'BEHIND' : 'n/a'}` : ''}`);
  lines.push(`verify: ${r.ok ? 'OK' : 'MISMATCH'} (${r.tables.length} table(s) in ${r.elapsedMs} ms${r.olderThanCutoff ? `, rows older than ${r.olderThanCutoff}` : ''})`);
  return lines.join('\n');
}

function olderThan(raw: unknown): { column: string; seconds: number } | undefined {
  if (raw === undefined) return undefined;
  const v = String(raw);
  const i = v.lastIndexOf(':');
  const secs = i < 0 ? NaN : Number(v.slice(i + 1));
  if (i < 1 || !/^\d+(\.\d+)?$/.test(v.slice(i + 1)) || !Number.isFinite(secs)) throw new CutoverError('USAGE', `--older-than expects column:seconds (got ${v})`, { hint: 'e.g. --older-than created_at:10' });
  return { column: v.slice(0, i), seconds: secs };
}

export const verifySchema = {
  source: SOURCE,
  target: TARGET,
  tables: tables('--tables'),
  olderThan,
  chunkRows: integer('--chunk-rows', { min: 1, max: 100_000_000, default: 50_000 }),
  parallel: integer('--parallel', { min: 1, max: 64, default: 2 }),
  sample: integer('--sample', { min: 0, max: 1_000_000, default: 20 }),
  checkSequences: flag(),
  quick: flag(),
  name: replicationName(),
  exactMb: integer('--exact-mb', { min: 0, max: 1_000_000, default: 10, unit: 'MiB' }),
  json: flag(),
};

/** Options of the full verify that a quick check does not take: refused rather than silently ignored. */
function quickConflicts(raw: Record<string, unknown>): void {
  const bad = [
    ['chunkRows', '--chunk-rows'],
    ['parallel', '--parallel'],
    ['checkSequences', '--check-sequences'],
  ].filter(([k]) => raw[k] !== undefined);
  if (bad.length) throw new CutoverError('USAGE', `--quick does not take ${bad.map((b) => b[1]).join(', ')} (no chunks, one session per side, no sequences)`, { hint: 'drop them, or run the full verify without --quick' });
  if (raw.exactMb !== undefined && !raw.quick) throw new CutoverError('USAGE', '--exact-mb applies to --quick only', { hint: 'add --quick or drop --exact-mb' });
}

export function register(program: Command): void {
  connectionOptions(program.command('verify').description('compare source and target data: counts, a checksum per table (per key chunk where it differs), differing rows, samples, sequences (exit 1 on mismatch)'), {
    source: 'old primary',
    target: 'new primary',
  })
    .option('--tables <list>', 'comma-separated tables (schema.table, quotes allowed)')
    .option('--older-than <column:seconds>', 'only rows whose timestamp column is older than N seconds (live tables)')
    .option('--chunk-rows <n>', 'rows per checksum chunk when a table differs (default 50000)')
    .option('--parallel <n>', 'connections per side (default 2)')
    .option('--sample <n>', 'rows sampled per table (default 20; 100 with --quick)')
    .option('--check-sequences', 'fail when a target sequence is behind the source max key (after cutover)')
    .option('--name <name>', 'the replication whose publication row filters apply: filtered tables compare only the rows inside the filter (default main)')
    .option('--quick', 'a quick check in seconds on any size: exact counts of small tables, estimates and key ranges of large ones, sampled rows by key (not a full comparison)')
    .option('--exact-mb <n>', '--quick: tables up to this size on disk are counted exactly (default 10)')
    .option('--json', 'print the result as JSON')
    .action(async (raw) => {
      if (raw.quick || raw.exactMb !== undefined) quickConflicts(raw);
      const opts = parseOptions(verifySchema, raw);
      await assertDistinctServers(opts.source, opts.target);
      if (opts.quick) {
        const r = await quickVerify({
          source: opts.source,
          target: opts.target,
          tables: opts.tables,
          olderThan: opts.olderThan,
          sampleRows: raw.sample === undefined ? 100 : opts.sample,
          exactPages: Math.floor((opts.exactMb * 1024 * 1024) / 8192),
          name: opts.name,
          progress: true,
        });
        emit(opts.json, r, () => formatQuickVerify(r));
        if (!r.ok) throw new ExitCode(1);
        return;
      }
      // Ctrl-C / SIGTERM cancels the checksums in flight on both servers before exiting (a whole-table
      // checksum would otherwise keep reading the production table after the client is gone)
      const ac = new AbortController();
      const onSig = () => ac.abort();
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      let r: VerifyResult;
      try {
        r = await verify({
          source: opts.source,
          target: opts.target,
          tables: opts.tables,
          olderThan: opts.olderThan,
          chunkRows: opts.chunkRows,
          parallel: opts.parallel,
          sampleRows: opts.sample,
          checkSequences: opts.checkSequences,
          name: opts.name,
          progress: true,
          signal: ac.signal,
        });
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
      emit(opts.json, r, () => formatVerify(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
