import type { Command } from 'commander';
import { stringify } from 'yaml';
import { loadScenario } from '../../scenarios/load.ts';
import { emit } from '../output.ts';
import { redactUrl } from '../../migration/pg.ts';
import type { Scenario } from '../../scenarios/schema.ts';

/** The scenario as printed: a literal cluster URL shown without its password. */
function printable(s: Scenario): Scenario {
  const side = (c: Scenario['clusters']['old']) => (c.url && /^postgres/.test(c.url) ? { ...c, url: redactUrl(c.url) } : c);
  return { ...s, clusters: { ...s.clusters, old: side(s.clusters.old), new: side(s.clusters.new) } };
}

export function register(program: Command): void {
  const scenario = program.command('scenario').description('rehearsal scenario files');
  scenario
    .command('check <file>')
    .description('validate a scenario file and print it normalised (defaults filled, durations in ms); exit 2 listing every problem')
    .option('--json', 'print the normalised scenario as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const s = printable(await loadScenario(file));
      emit(opts.json, { ok: true, scenario: s }, () => `# scenario ${s.name}: OK (${file})\n${stringify({ ...s, file: undefined })}`.trimEnd());
    });
}
