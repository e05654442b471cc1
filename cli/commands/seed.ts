import type { Command } from 'commander';
import { seed, type SeedResult } from '../../lab/seed.ts';
import { CutoverError } from '../../migration/errors.ts';
import { describeTarget } from '../../migration/pg.ts';
import { formatCount } from '../../migration/progress.ts';
import { emit } from '../output.ts';
import { connection, flag, integer, oneOf, optionalConnection, parseOptions, readableFile } from '../options.ts';

export const seedSchema = {
  url: connection('--url', 'CUTOVER_SEED_URL'),
  preset: oneOf('--preset', ['payments', 'notifications', 'edge', 'custom'] as const, 'payments'),
  scale: integer('--scale', { min: 1, max: 10_000_000_000 }),
  seed: integer('--seed', { default: 42 }),
  ddl: readableFile('--ddl'),
  fromUrl: optionalConnection('--from-url', 'CUTOVER_SEED_FROM_URL'),
  generator: (raw: unknown) => (raw === undefined ? [] : (raw as string[])),
  parallel: (raw: unknown, env: NodeJS.ProcessEnv) => (raw === undefined ? undefined : integer('--parallel', { min: 1, max: 64 })(raw, env)),
  json: flag(),
};

export function formatSeed(r: SeedResult, url: string): string {
  const w = Math.max(5, ...r.tables.map((t) => t.table.length));
  const lines = r.tables.map((t) => `  ${t.table.padEnd(w)}  ${String(t.rows).padStart(10)} rows  ${(t.bytes / 1048576).toFixed(1).padStart(8)} MB  COPY ${t.format}`);
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
    .option('--url <url>', 'database to seed (postgres://… or conninfo; env CUTOVER_SEED_URL)')
    .option('--preset <name>', 'payments | notifications | edge | custom (default payments)')
    .option('--scale <n>', 'roughly the total number of rows (required)')
    .option('--seed <n>', 'random seed (same seed → same rows; default 42)')
    .option('--ddl <file>', 'your own DDL file (implies --preset custom)')
    .option('--from-url <url>', 'copy the schema of this database (pg_dump --schema-only), then seed it (implies --preset custom)')
    .option('--generator <table.column=spec...>', 'override a column: faker.<module>.<method> or null (repeatable)')
    .option('--parallel <n>', 'connections loading at once')
    .option('--json', 'print the result as JSON (progress as JSON lines on stderr)')
    .action(async (raw) => {
      const opts = parseOptions(seedSchema, raw);
      const generators: Record<string, string> = {};
      for (const g of opts.generator) {
        const k = g.indexOf('=');
        if (k < 1) throw new CutoverError('USAGE', `--generator must look like table.column=faker.module.method (got "${g}")`, { exitCode: 2 });
        generators[g.slice(0, k)] = g.slice(k + 1);
      }
      const preset = (opts.ddl || opts.fromUrl) && opts.preset === 'payments' ? 'custom' : opts.preset;
      const r = await seed({ url: opts.url, preset, ddl: opts.ddl, fromUrl: opts.fromUrl, scale: opts.scale, seed: opts.seed, generators, parallel: opts.parallel, json: opts.json });
      emit(opts.json, { ok: true, ...r }, () => formatSeed(r, opts.url));
    });
}
