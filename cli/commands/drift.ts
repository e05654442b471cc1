import type { Command } from 'commander';
import { drift, DRIFT_CATEGORIES, type DriftResult } from '../../migration/drift/index.ts';
import { assertDistinctServers } from '../../migration/pg.ts';
import { emit, ExitCode } from '../output.ts';
import { connectionOptions, flag, parseOptions, readableFile, SOURCE, TARGET, wordList } from '../options.ts';

export const driftSchema = {
  source: SOURCE,
  target: TARGET,
  queries: readableFile('--queries'),
  categories: wordList('--categories', DRIFT_CATEGORIES),
  installAmcheck: flag(),
  json: flag(),
};

export function register(program: Command): void {
  connectionOptions(program.command('drift').description('compare old and new: schema, collation, timezone, encoding, settings, data, release-note incompatibilities and shadow reads'), {
    source: 'the old database',
    target: 'the new database',
  })
    .option('--queries <file>', 'shadow-read queries, one ;-terminated SELECT each (-- comments allowed)')
    .option('--categories <list>', `only these categories (comma-separated: ${DRIFT_CATEGORIES.join(', ')})`)
    .option('--install-amcheck', 'CREATE EXTENSION IF NOT EXISTS amcheck where it is missing, to check text indexes')
    .option('--json', 'print the result as JSON')
    .action(async (raw) => {
      const opts = parseOptions(driftSchema, raw);
      await assertDistinctServers(opts.source, opts.target);
      const r = await drift({
        source: opts.source,
        target: opts.target,
        queries: opts.queries ? { file: opts.queries } : undefined,
        categories: opts.categories,
        installAmcheck: !!opts.installAmcheck,
        progress: true,
      });
      emit(opts.json, r, () => formatDrift(r));
      if (!r.ok) throw new ExitCode(1);
    });
}

export function formatDrift(r: DriftResult): string {
  const lines: string[] = [];
  lines.push(`drift ${r.source.url} (${r.source.version}) → ${r.target.url} (${r.target.version}): ${r.counts.error} errors, ${r.counts.warning} warnings, ${r.counts.info} info`);
  const order = { error: 0, warning: 1, info: 2 } as const;
  const sorted = [...r.findings].sort((a, b) => order[a.severity] - order[b.severity] || a.category.localeCompare(b.category));
  for (const f of sorted) {
    lines.push(`  ${f.severity.padEnd(7)} ${f.category.padEnd(15)} ${f.object}`);
    lines.push(`          ${f.message}`);
    // A grouped finding: one cause, many objects (all of them, so the list can be acted on).
    if (f.objects && f.objects.length > 1) for (const o of f.objects) lines.push(`            - ${o}`);
    if (f.severity !== 'info') lines.push(`          hint: ${f.hint}`);
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  lines.push(r.ok ? 'no error-severity drift' : 'drift found: see the errors above');
  return lines.join('\n');
}
