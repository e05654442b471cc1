import type { Command } from 'commander';
import { doctor, formatDoctor } from '../../lab/doctor.ts';
import { ensureBinaries } from '../../lab/binaries.ts';
import { emit, ExitCode, note } from '../output.ts';
import { flag, integer, parseOptions } from '../options.ts';

const major = integer('--fetch', { min: 10, max: 99 });
export const doctorSchema = {
  json: flag(),
  fetch: (raw: unknown, env: NodeJS.ProcessEnv): number[] => {
    if (raw === undefined) return [];
    const items = String(raw).split(',').map((s) => s.trim()).filter(Boolean);
    if (!items.length) return major('', env) as never;
    return items.map((m) => major(m, env));
  },
};

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the tools the lab needs and say how to fix what is missing')
    .option('--json', 'print a JSON object')
    .option('--fetch <majors>', 'download and cache Postgres binaries for these majors (comma-separated)')
    .action(async (raw) => {
      const opts = parseOptions(doctorSchema, raw);
      for (const m of opts.fetch) await ensureBinaries(m, note);
      const r = await doctor();
      emit(opts.json, r, () => formatDoctor(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
