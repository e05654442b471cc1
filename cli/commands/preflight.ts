import type { Command } from 'commander';
import { preflight, type Finding } from '../../migration/preflight.ts';
import { emit, ExitCode } from '../output.ts';

export function formatFindings(findings: Finding[]): string {
  const mark = { error: 'ERROR  ', warning: 'WARN   ', info: 'info   ' } as const;
  return findings.map((f) => `${mark[f.severity]}${f.id}${f.object ? ` [${f.object}]` : ''}: ${f.message}${f.hint ? `\n         → ${f.hint}` : ''}`).join('\n');
}

export function register(program: Command): void {
  program
    .command('preflight')
    .description('check that source and target can run a logical-replication cutover (exit 0 ok, 1 errors found, 2 usage/connection)')
    .requiredOption('--source <url>', 'old primary (postgres://…)')
    .requiredOption('--target <url>', 'new primary (postgres://…)')
    .option('--json', 'print { ok, findings } as JSON')
    .action(async (opts) => {
      const r = await preflight({ source: opts.source, target: opts.target });
      emit(opts.json, { ok: r.ok, source: r.source, target: r.target, findings: r.findings }, () => {
        const counts = ['error', 'warning', 'info'].map((s) => `${r.findings.filter((f) => f.severity === s).length} ${s}(s)`).join(', ');
        return `${formatFindings(r.findings)}\n\npreflight PostgreSQL ${r.source.major} → ${r.target.major}: ${r.ok ? 'OK' : 'FAILED'} (${counts})`;
      });
      if (!r.ok) throw new ExitCode(1);
    });
}
