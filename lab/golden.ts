/**
 * Golden snapshots: seed the old cluster once per (dataset, old-cluster settings, seed, scale),
 * keep its STOPPED data directory, and start every later run from a copy of it (reflink where the
 * filesystem can). Copying a data directory is far faster than generating and loading the rows again.
 *
 * The key is a hash of everything that changes the seeded data directory: the dataset settings (and
 * the DDL file's content for custom), the old cluster's initdb/server settings, the seed, and the
 * source of the generators themselves — so editing a preset rebuilds its golden copies too.
 * A golden copy for the same scenario name with another hash is removed when the new one is built.
 *
 * A clone keeps the superuser password of the golden cluster, so it is stored beside the copy
 * (mode 600) and passed as `spec.password` when starting a clone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CutoverError } from '../migration/errors.ts';
import { withClient } from '../migration/pg.ts';
import type { ClusterSettings, Scenario } from '../scenarios/schema.ts';
import { paths } from './paths.ts';
import { EmbeddedProvider } from './providers/embedded.ts';
import type { ClusterSpec, StartedCluster } from './providers/types.ts';
import { seed, seedOptionsFor, type SeedResult } from './seed.ts';
import type { ProgressMode } from '../migration/progress.ts';

/** Bump when the layout of a golden directory changes. */
const GOLDEN_FORMAT = 1;

/** Source files whose content changes the seeded data. */
const GENERATOR_SOURCES = ['../scenarios/datasets/gen.ts', '../scenarios/datasets/payments.ts', '../scenarios/datasets/notifications.ts', '../scenarios/datasets/edge.ts', '../scenarios/datasets/custom.ts', '../scenarios/datasets/check-expr.ts', '../scenarios/datasets/regex-gen.ts', './seed.ts', './seed-copy.ts'];

export interface GoldenMeta {
  format: number;
  hash: string;
  scenario: string;
  createdAt: string;
  major: number;
  versionNum?: number;
  seed: SeedResult;
  inputs: unknown;
}

export interface Golden {
  hash: string;
  dir: string;
  /** The stopped data directory to clone. */
  dataDir: string;
  /** The superuser password of the golden cluster (clones keep it). */
  password: string;
  meta: GoldenMeta;
  /** True when this call built it (false: reused). */
  built: boolean;
  buildMs: number;
}

/** The old cluster's settings as a provider spec. */
export function clusterSpec(name: string, c: ClusterSettings): ClusterSpec {
  return {
    name,
    major: c.major,
    locale: c.locale,
    encoding: c.encoding,
    localeProvider: c.localeProvider,
    icuLocale: c.icuLocale ?? undefined,
    timezone: c.timezone,
    gucs: c.gucs,
    dataChecksums: c.dataChecksums ?? undefined,
    image: c.image ?? undefined,
  };
}

/** What the golden copy depends on (pure, apart from reading the DDL file and generator sources). */
export async function goldenInputs(s: Pick<Scenario, 'dataset' | 'seed' | 'clusters'>): Promise<Record<string, unknown>> {
  const sources = createHash('sha256');
  for (const f of GENERATOR_SOURCES) sources.update(await readFile(fileURLToPath(new URL(f, import.meta.url)), 'utf8').catch(() => ''));
  let ddl: string | null = null;
  if (s.dataset.ddl) {
    try {
      ddl = createHash('sha256').update(await readFile(s.dataset.ddl)).digest('hex');
    } catch (e: any) {
      throw new CutoverError('CONFIG', `cannot read the dataset DDL ${s.dataset.ddl}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, { exitCode: 2, cause: e });
    }
  }
  const o = s.clusters.old;
  return {
    format: GOLDEN_FORMAT,
    dataset: { preset: s.dataset.preset, scale: s.dataset.scale, generators: sortKeys(s.dataset.generators), ddl, fromUrl: s.dataset.fromUrl ? 'set' : null },
    seed: s.seed,
    cluster: { major: o.major, locale: o.locale, encoding: o.encoding, localeProvider: o.localeProvider, icuLocale: o.icuLocale, timezone: o.timezone, gucs: sortKeys(o.gucs), dataChecksums: o.dataChecksums },
    generators: sources.digest('hex').slice(0, 16),
  };
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function hashInputs(inputs: unknown): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
}

function readGolden(dir: string): Golden | undefined {
  const metaFile = join(dir, 'golden.json');
  const pwFile = join(dir, 'password');
  if (!existsSync(metaFile) || !existsSync(pwFile) || !existsSync(join(dir, 'data', 'PG_VERSION'))) return undefined;
  try {
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as GoldenMeta;
    return { hash: meta.hash, dir, dataDir: join(dir, 'data'), password: readFileSync(pwFile, 'utf8').trim(), meta, built: false, buildMs: 0 };
  } catch {
    return undefined;
  }
}

export interface EnsureGoldenOptions {
  log?: (line: string) => void;
  progress?: ProgressMode;
  /** Root folder (default paths.golden()). */
  root?: string;
  /** Rebuild even when a golden copy with this hash exists. */
  rebuild?: boolean;
}

/** The golden copy for a scenario: reused when its hash matches, otherwise seeded and stored. */
export async function ensureGolden(s: Scenario, opts: EnsureGoldenOptions = {}): Promise<Golden> {
  if (s.clusters.provider !== 'embedded')
    throw new CutoverError('PRECONDITION', `golden snapshots need the embedded provider (scenario ${s.name} uses ${s.clusters.provider})`, {
      hint: 'seed the old cluster directly with `cutover seed --url …`; docker and external clusters are not cloned',
    });
  const log = opts.log ?? (() => {});
  const root = opts.root ?? paths.golden();
  const inputs = await goldenInputs(s);
  const hash = hashInputs(inputs);
  const dir = join(root, `${s.name}-${hash}`);
  if (!opts.rebuild) {
    const have = readGolden(dir);
    if (have) {
      log(`golden ${s.name}: reusing ${dir}`);
      return have;
    }
  }
  const started = Date.now();
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const building = `${dir}.building-${process.pid}-${randomBytes(3).toString('hex')}`;
  const password = randomBytes(16).toString('hex');
  log(`golden ${s.name}: seeding ${s.dataset.preset} scale ${s.dataset.scale} on PostgreSQL ${s.clusters.old.major} (hash ${hash})`);
  let cluster: StartedCluster | undefined;
  try {
    cluster = await new EmbeddedProvider().start({ ...clusterSpec('golden', s.clusters.old), password }, { dir: building, log });
    const result = await seed(seedOptionsFor(s, cluster.url, { progress: opts.progress }));
    const walFile = await withClient(cluster.url, async (c) => {
      await c.query('checkpoint');
      return (await c.query<{ f: string }>('select pg_walfile_name(pg_current_wal_insert_lsn()) as f')).rows[0].f;
    });
    const versionNum = cluster.record.versionNum;
    await cluster.stop();
    dropSpareWal(join(building, 'data'), walFile);
    cluster = undefined;
    const meta: GoldenMeta = { format: GOLDEN_FORMAT, hash, scenario: s.name, createdAt: new Date().toISOString(), major: s.clusters.old.major, versionNum, seed: result, inputs };
    writeFileSync(join(building, 'password'), password + '\n', { mode: 0o600 });
    writeFileSync(join(building, 'golden.json'), JSON.stringify(meta, null, 2) + '\n');
    rmSync(dir, { recursive: true, force: true });
    renameSync(building, dir);
  } catch (e) {
    if (cluster) await cluster.stop().catch(() => {});
    rmSync(building, { recursive: true, force: true });
    throw e;
  }
  // Older golden copies of this scenario (another hash) are stale now.
  for (const name of readdirSync(root)) {
    if (name.startsWith(`${s.name}-`) && name !== `${s.name}-${hash}` && /^[0-9a-f]{16}$/.test(name.slice(s.name.length + 1))) rmSync(join(root, name), { recursive: true, force: true });
  }
  const g = readGolden(dir);
  if (!g) throw new CutoverError('INTERNAL', `golden copy ${dir} is incomplete after building it`);
  log(`golden ${s.name}: built in ${Date.now() - started} ms (${dir})`);
  return { ...g, built: true, buildMs: Date.now() - started };
}

/**
 * The seed leaves hundreds of MB of WAL behind (old segments and recycled ones named for the
 * future), which every clone would copy. After a clean shutdown only the segment holding the
 * shutdown checkpoint is needed: the one that was current before the stop, or the next one if the
 * checkpoint record spilled over. The others are removed (no archive, no slots in a golden cluster).
 */
export function dropSpareWal(dataDir: string, currentFile: string): void {
  const dir = join(dataDir, 'pg_wal');
  const tli = currentFile.slice(0, 8);
  const seg = BigInt('0x' + currentFile.slice(8, 16)) * 0x100000000n + BigInt('0x' + currentFile.slice(16, 24));
  for (const name of readdirSync(dir)) {
    if (!/^[0-9A-F]{24}$/.test(name) || name.slice(0, 8) !== tli) continue;
    const n = BigInt('0x' + name.slice(8, 16)) * 0x100000000n + BigInt('0x' + name.slice(16, 24));
    if (n < seg || n > seg + 1n) rmSync(join(dir, name), { force: true });
  }
}

export interface CloneOptions {
  /** Cluster name in the lab (default 'old'). */
  name?: string;
  /** Directory for the clone's data and log. */
  dir: string;
  host?: string;
  port?: number;
  detached?: boolean;
  log?: (line: string) => void;
}

/** Start a cluster from a copy of the golden data directory (the golden copy itself is never started). */
export async function startFromGolden(golden: Golden, s: Pick<Scenario, 'clusters'>, opts: CloneOptions): Promise<StartedCluster> {
  const spec: ClusterSpec = { ...clusterSpec(opts.name ?? 'old', s.clusters.old), password: golden.password, host: opts.host, port: opts.port };
  return new EmbeddedProvider().start(spec, { dir: opts.dir, fromDataDir: golden.dataDir, detached: opts.detached, log: opts.log });
}

/** Remove golden copies: all of them, or those of one scenario. Returns the folders removed. */
export function removeGolden(scenarioName?: string, root = paths.golden()): string[] {
  if (!existsSync(root)) return [];
  const gone: string[] = [];
  for (const name of readdirSync(root)) {
    // "<scenario>-<16 hex>": a plain prefix test would take drift-collation's copies for "drift"
    if (scenarioName && !(name.startsWith(`${scenarioName}-`) && /^[0-9a-f]{16}$/.test(name.slice(scenarioName.length + 1)))) continue;
    rmSync(join(root, name), { recursive: true, force: true });
    gone.push(join(root, name));
  }
  return gone;
}

/** The golden copies that exist (for `cutover golden list`). */
export function listGolden(root = paths.golden()): Array<{ dir: string; scenario: string; hash: string; major: number; rows: number; createdAt: string }> {
  if (!existsSync(root)) return [];
  const out = [];
  for (const name of readdirSync(root).sort()) {
    const g = readGolden(join(root, name));
    if (g) out.push({ dir: g.dir, scenario: g.meta.scenario, hash: g.hash, major: g.meta.major, rows: g.meta.seed?.rows ?? 0, createdAt: g.meta.createdAt });
  }
  return out;
}
