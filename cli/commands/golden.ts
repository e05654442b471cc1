import type { Command } from 'commander';
import { listGolden, removeGolden } from '../../lab/golden.ts';
import { emit } from '../output.ts';

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
    .action((opts) => {
      const gone = removeGolden(opts.scenario);
      emit(opts.json, gone, () => (gone.length ? gone.map((d) => `removed ${d}`).join('\n') : 'nothing to remove'));
    });
}
