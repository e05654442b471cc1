import type { Command } from 'commander';
import { preflight, type Finding } from '../../migration/preflight.ts';
import { assertDistinctServers } from '../../migration/pg.ts';
import { emit, ExitCode } from '../output.ts';
import { connectionOptions, flag, parseOptions, SOURCE, TARGET } from '../options.ts';

export const preflightSchema = { source: SOURCE, target: TARGET, json: flag() };

export function formatFindings(findings: Finding[]): string {
  const mark = { error: 'ERROR  ', warning: 'WARN   ', info: 'info   ' } as const;
  return findings.map((f) => `${mark[f.severity]}${f.id}${f.object ? ` [${f.object}]` : ''}: ${f.message}${f.hint ? `\n         → ${f.hint}` : ''}`).join('\n');
}

export function register(program: Command): void {
  connectionOptions(
    program.command('preflight').description('check that source and target can run a logical-replication cutover (exit 0 ok, 1 errors found, 2 usage/connection)'),
    { source: 'old primary', target: 'new primary' },
  )
    .option('--json', 'print { ok, findings } as JSON')
    .action(async (raw) => {
      const opts = parseOptions(preflightSchema, raw);
      await assertDistinctServers(opts.source, opts.target);
      const r = await preflight({ source: opts.source, target: opts.target });
      emit(opts.json, { ok: r.ok, source: r.source, target: r.target, findings: r.findings }, () => {
        const counts = ['error', 'warning', 'info'].map((s) => `${r.findings.filter((f) => f.severity === s).length} ${s}(s)`).join(', ');
        return `${formatFindings(r.findings)}\n\npreflight PostgreSQL ${r.source.major} → ${r.target.major}: ${r.ok ? 'OK' : 'FAILED'} (${counts})`;
      });
      if (!r.ok) throw new ExitCode(1);
    });
}
