import type { Command } from 'commander';
import { listGolden, removeGolden } from '../../lab/golden.ts';
import { CutoverError } from '../../migration/errors.ts';
import { emit } from '../output.ts';
import { flag, parseOptions, type Parser } from '../options.ts';

/** --scenario: a scenario name; "" would have matched nothing as a filter and removed every copy. */
const scenarioName: Parser<string | undefined> = (raw) => {
  if (raw === undefined) return undefined;
  const v = String(raw).trim();
  if (!v) throw new CutoverError('USAGE', '--scenario is empty (it would remove every golden copy)', { hint: 'name the scenario (cutover golden list shows them), or leave --scenario out to remove all' });
  if (!/^[A-Za-z0-9_.-]+$/.test(v)) throw new CutoverError('USAGE', `--scenario "${v}" is not a scenario name`, { hint: 'cutover golden list shows the names' });
  return v;
};
export const goldenRemoveSchema = { scenario: scenarioName, json: flag() };

export function register(program: Command): void {
  const golden = program.command('golden').description('the seeded golden copies rehearsals clone from (one per scenario dataset and cluster settings)');
  golden
    .command('list')
    .description('list golden copies')
    .option('--json', 'print a JSON array')
    .action((opts) => {
      const all = listGolden();
      emit(opts.json, all, () => (all.length ? all.map((g) => `${g.scenario.padEnd(28)} PostgreSQL ${g.major}  ${String(g.rows).padStart(9)} rows  ${g.createdAt}  ${g.dir}`).join('\n') : 'no golden copies'));
    });
  golden
    .command('remove')
    .description('remove golden copies (all, or one scenario\'s); the next rehearsal seeds again')
    .option('--scenario <name>', 'only this scenario\'s copies')
    .option('--json', 'print the folders removed')
    .action((raw) => {
      const opts = parseOptions(goldenRemoveSchema, raw);
      const gone = removeGolden(opts.scenario);
      emit(opts.json, gone, () => (gone.length ? gone.map((d) => `removed ${d}`).join('\n') : 'nothing to remove'));
    });
}
