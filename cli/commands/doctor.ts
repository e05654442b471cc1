import type { Command } from 'commander';
import { doctor, formatDoctor } from '../../lab/doctor.ts';
import { ensureBinaries } from '../../lab/binaries.ts';
import { emit, ExitCode, note } from '../output.ts';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the tools the lab needs and say how to fix what is missing')
    .option('--json', 'print a JSON object')
    .option('--fetch <majors>', 'download and cache Postgres binaries for these majors (comma-separated)')
    .action(async (opts) => {
      if (opts.fetch) for (const m of String(opts.fetch).split(',')) await ensureBinaries(Number(m), note);
      const r = await doctor();
      emit(opts.json, r, () => formatDoctor(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
