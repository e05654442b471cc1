import type { Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { verify, type VerifyResult } from '../../migration/verify.ts';
import { parseTableList } from '../../migration/replication.ts';
import { emit, ExitCode } from '../output.ts';

export function formatVerify(r: VerifyResult): string {
  const lines: string[] = [];
  for (const t of r.tables) {
    lines.push(`${t.ok ? 'ok      ' : 'MISMATCH'} ${t.table}: ${t.sourceRows} / ${t.targetRows} rows, ${t.chunks} chunk(s) (${t.strategy}), ${t.mismatches.length} differing chunk(s), sample ${t.sample.rows} row(s)`);
    for (const p of t.problems) lines.push(`         ${p}`);
    for (const d of t.differingRows.slice(0, 20)) lines.push(`         ${d.kind} ${JSON.stringify(d.key)}${d.source !== undefined ? `\n           source: ${d.source}` : ''}${d.target !== undefined ? `\n           target: ${d.target}` : ''}`);
  }
  for (const s of r.sequences)
    lines.push(`sequence ${s.sequence}: source ${s.sourceValue ?? '-'}, target ${s.targetValue ?? '-'}${s.ownedBy ? `, max ${s.ownedBy} on source ${s.sourceMaxKey ?? '-'} → target ${s.targetAheadOfMaxKey ? 'ahead' : s.targetAheadOfMaxKey === false ? 'BEHIND' : 'n/a'}` : ''}`);
  lines.push(`verify: ${r.ok ? 'OK' : 'MISMATCH'} (${r.tables.length} table(s) in ${r.elapsedMs} ms${r.olderThanCutoff ? `, rows older than ${r.olderThanCutoff}` : ''})`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('compare source and target data: counts, chunk checksums, differing rows, samples, sequences (exit 1 on mismatch)')
    .requiredOption('--source <url>', 'old primary')
    .requiredOption('--target <url>', 'new primary')
    .option('--tables <list>', 'comma-separated tables (schema.table, quotes allowed)')
    .option('--older-than <column:seconds>', 'only rows whose timestamp column is older than N seconds (live tables)')
    .option('--chunk-rows <n>', 'rows per checksum chunk', '50000')
    .option('--parallel <n>', 'connections per side', '2')
    .option('--sample <n>', 'rows sampled per table', '20')
    .option('--check-sequences', 'fail when a target sequence is behind the source max key (after cutover)')
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      let olderThan: { column: string; seconds: number } | undefined;
      if (opts.olderThan) {
        const i = String(opts.olderThan).lastIndexOf(':');
        const seconds = Number(String(opts.olderThan).slice(i + 1));
        if (i < 1 || !Number.isFinite(seconds)) throw new CutoverError('USAGE', `--older-than expects column:seconds (got ${opts.olderThan})`, { hint: 'e.g. --older-than created_at:10' });
        olderThan = { column: String(opts.olderThan).slice(0, i), seconds };
      }
      const r = await verify({
        source: opts.source,
        target: opts.target,
        tables: opts.tables ? parseTableList(opts.tables) : undefined,
        olderThan,
        chunkRows: Number(opts.chunkRows),
        parallel: Number(opts.parallel),
        sampleRows: Number(opts.sample),
        checkSequences: !!opts.checkSequences,
        progress: true,
      });
      emit(opts.json, r, () => formatVerify(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
