import type { Command } from 'commander';
import { doctor, formatDoctor } from '../../lab/doctor.ts';
import { ensureBinaries, ensureClientTools } from '../../lab/binaries.ts';
import { emit, ExitCode, note } from '../output.ts';
import { flag, integer, parseOptions } from '../options.ts';

const major = integer('--fetch', { min: 10, max: 99 });
export const doctorSchema = {
  json: flag(),
  fetch: (raw: unknown, env: NodeJS.ProcessEnv): Array<number | 'client'> => {
    if (raw === undefined) return [];
    const items = String(raw).split(',').map((s) => s.trim()).filter(Boolean);
    if (!items.length) return major('', env) as never;
    return items.map((m) => (m === 'client' ? 'client' : major(m, env)));
  },
};

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the tools the lab needs and say how to fix what is missing')
    .option('--json', 'print a JSON object')
    .option('--fetch <what>', 'download and cache Postgres server binaries for these majors and/or the client tools (comma-separated, e.g. 16,18,client)')
    .action(async (raw) => {
      const opts = parseOptions(doctorSchema, raw);
      for (const i of opts.fetch) {
        if (i === 'client') await ensureClientTools(note);
        else await ensureBinaries(i, note);
      }
      const r = await doctor();
      emit(opts.json, r, () => formatDoctor(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
