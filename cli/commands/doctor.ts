import type { Command } from 'commander';
import { doctor, formatDoctor } from '../../lab/doctor.ts';
import { ensureBinaries, ensureClientTools } from '../../lab/binaries.ts';
import { CutoverError } from '../../migration/errors.ts';
import { emit, ExitCode, note } from '../output.ts';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check the tools the lab needs and say how to fix what is missing')
    .option('--json', 'print a JSON object')
    .option('--fetch <what>', 'download and cache Postgres server binaries for these majors and/or the client tools (comma-separated, e.g. 16,18,client)')
    .action(async (opts) => {
      if (opts.fetch) {
        const items = String(opts.fetch).split(',').map((s) => s.trim()).filter(Boolean);
        const bad = items.filter((i) => i !== 'client' && !/^\d+$/.test(i));
        if (bad.length) throw new CutoverError('USAGE', `--fetch ${opts.fetch}: ${bad.join(', ')} is neither a major nor "client"`, { hint: 'e.g. --fetch 16,18,client' });
        for (const i of items) {
          if (i === 'client') await ensureClientTools(note);
          else await ensureBinaries(Number(i), note);
        }
      }
      const r = await doctor();
      emit(opts.json, r, () => formatDoctor(r));
      if (!r.ok) throw new ExitCode(1);
    });
}
