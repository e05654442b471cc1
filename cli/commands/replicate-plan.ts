/** `cutover replicate plan`: class the source's tables and propose the order to replicate them in. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { DEFAULT_THRESHOLDS, formatTablePlan, planReplication } from '../../migration/table-plan.ts';
import { emit } from '../output.ts';
import { flag, integer, parseOptions, SOURCE, type Parser } from '../options.ts';

function ratio(flagName: string, def: number): Parser<number> {
  return (raw) => {
    if (raw === undefined || raw === '') return def;
    const s = String(raw).trim();
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
    if (!(n >= 0 && n <= 1)) throw new CutoverError('USAGE', `${flagName} must be a fraction from 0 to 1 (got "${s}")`, { hint: `e.g. ${flagName} 0.01 (updates + deletes at most 1% of inserts)` });
    return n;
  };
}

export const planSchema = {
  source: SOURCE,
  smallMb: integer('--small-mb', { min: 0, max: 100_000_000, default: DEFAULT_THRESHOLDS.smallBytes / 1024 / 1024, unit: 'MiB' }),
  appendOnlyRatio: ratio('--append-only-ratio', DEFAULT_THRESHOLDS.appendOnlyRatio),
  json: flag(),
};

export function registerPlan(rep: Command): void {
  rep
    .command('plan')
    .description('class the source tables small / append-only / large-and-updated from their size and write statistics, and propose the order to replicate them (read-only)')
    .addOption(new Option('--source <url>', 'old primary (postgres:// URL or key=value conninfo; env CUTOVER_SOURCE_URL)'))
    .option('--small-mb <n>', `tables below this size (heap + TOAST) are small (default ${DEFAULT_THRESHOLDS.smallBytes / 1024 / 1024})`)
    .option('--append-only-ratio <f>', `(updates + deletes) / inserts at or below which a table is append-only (default ${DEFAULT_THRESHOLDS.appendOnlyRatio})`)
    .option('--json', 'print the plan as JSON')
    .action(async (raw) => {
      const opts = parseOptions(planSchema, raw);
      const p = await planReplication({ source: opts.source, thresholds: { smallBytes: opts.smallMb * 1024 * 1024, appendOnlyRatio: opts.appendOnlyRatio } });
      emit(opts.json, p, () => formatTablePlan(p));
    });
}
