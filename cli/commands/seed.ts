import type { Command } from 'commander';
import { seed, type SeedResult } from '../../lab/seed.ts';
import { CutoverError } from '../../migration/errors.ts';
import { describeTarget } from '../../migration/pg.ts';
import { formatCount } from '../../migration/progress.ts';
import { emit } from '../output.ts';

function intOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new CutoverError('USAGE', `--${name} must be a whole number (got "${v}")`, { exitCode: 2 });
    return n;
  };
}

export function formatSeed(r: SeedResult, url: string): string {
  const w = Math.max(5, ...r.tables.map((t) => t.table.length));
  const lines = r.tables.map((t) => `  ${t.table.padEnd(w)}  ${String(t.rows).padStart(10)} rows  ${(t.bytes / 1048576).toFixed(1).padStart(8)} MB`);
  return [
    `seeded ${describeTarget(url)} with preset ${r.preset} (scale ${r.scale}, seed ${r.seed})`,
    ...lines,
    `  ${'total'.padEnd(w)}  ${String(r.rows).padStart(10)} rows  ${(r.bytes / 1048576).toFixed(1).padStart(8)} MB`,
    `in ${(r.elapsedMs / 1000).toFixed(1)} s (COPY ${(r.loadMs / 1000).toFixed(1)} s): ${formatCount(r.rowsPerSec)} rows/s, ${r.mbPerSec} MB/s`,
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('seed')
    .description('fill a database with a dataset preset (or your own DDL) by COPY; deterministic for a seed')
    .requiredOption('--url <url>', 'database to seed (postgres://…)')
    .option('--preset <name>', 'payments | notifications | edge | custom', 'payments')
    .requiredOption('--scale <n>', 'roughly the total number of rows', intOption('scale'))
    .option('--seed <n>', 'random seed (same seed → same rows)', intOption('seed'), 42)
    .option('--ddl <file>', 'your own DDL file (implies --preset custom)')
    .option('--from-url <url>', 'copy the schema of this database (pg_dump --schema-only), then seed it (implies --preset custom)')
    .option('--generator <table.column=spec...>', 'override a column: faker.<module>.<method> or null (repeatable)')
    .option('--parallel <n>', 'connections loading at once', intOption('parallel'))
    .option('--json', 'print the result as JSON (progress as JSON lines on stderr)')
    .action(async (opts) => {
      const generators: Record<string, string> = {};
      for (const g of (opts.generator ?? []) as string[]) {
        const k = g.indexOf('=');
        if (k < 1) throw new CutoverError('USAGE', `--generator must look like table.column=faker.module.method (got "${g}")`, { exitCode: 2 });
        generators[g.slice(0, k)] = g.slice(k + 1);
      }
      const preset = (opts.ddl || opts.fromUrl) && opts.preset === 'payments' ? 'custom' : opts.preset;
      const r = await seed({ url: opts.url, preset, ddl: opts.ddl, fromUrl: opts.fromUrl, scale: opts.scale, seed: opts.seed, generators, parallel: opts.parallel, json: opts.json });
      emit(opts.json, { ok: true, ...r }, () => formatSeed(r, opts.url));
    });
}
