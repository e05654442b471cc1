import type { Command } from 'commander';
import { loadReport, writeReports, parseFormats } from '../../reports/index.ts';
import { CutoverError } from '../../migration/errors.ts';
import { emit } from '../output.ts';

/** Errors from reports/ are plain (it imports nothing of ours); give them our code and exit status. */
function asCutoverError(e: any): CutoverError {
  if (e instanceof CutoverError) return e;
  const code = e?.code === 'TOOL_MISSING' ? 'TOOL_MISSING' : e?.name === 'ReportValidationError' ? 'CONFIG' : 'USAGE';
  return new CutoverError(code, e?.message ?? String(e), { hint: e?.hint, exitCode: 2 });
}

export function register(program: Command): void {
  program
    .command('report <dirOrFile>')
    .description('re-render the reports (html, pdf, md, junit) from a saved report.json')
    .option('--format <list>', 'formats: html,pdf,md,junit,json (default html,pdf,md,junit)')
    .option('--out <dir>', 'where to write (default: beside report.json)')
    .option('--json', 'print the list of files written')
    .action(async (dirOrFile, opts) => {
      try {
        const { report, dir } = loadReport(dirOrFile);
        const formats = parseFormats(opts.format ?? 'html,pdf,md,junit');
        const files = await writeReports(report, opts.out ?? dir, formats);
        emit(opts.json, { ok: true, files }, () => files.map((f) => `wrote ${f}`).join('\n'));
      } catch (e) {
        throw asCutoverError(e);
      }
    });
}
