import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadScenario } from '../../scenarios/load.ts';
import { emit } from '../output.ts';

export function register(program: Command): void {
  const scenario = program.command('scenario').description('rehearsal scenario files');
  scenario
    .command('check <file>')
    .description('validate a scenario file and print it normalised (defaults filled, durations in ms); exit 2 listing every problem')
    .option('--json', 'print the normalised scenario as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const s = await loadScenario(file);
      emit(opts.json, { ok: true, scenario: s }, () => `# scenario ${s.name}: OK (${file})\n${stringify({ ...s, file: undefined })}`.trimEnd());
    });
}
