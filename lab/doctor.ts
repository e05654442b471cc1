/**
 * `cutover doctor`: what is present, what is missing, and the exact command that fixes it.
 * `ok` is true when everything the embedded lab needs is present (Docker is optional).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, toolVersion, dockerEngine, FIX, PINNED_TOOLS, distroPgBinaries, type ToolName } from './tools.ts';
import { SUPPORTED_MAJORS, PINNED_VERSIONS, platformPackage, cachedBinaries } from './binaries.ts';
import { serverUser } from './osuser.ts';
import { isRoot, labHome, paths } from './paths.ts';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** Needed by the embedded lab (a missing one makes doctor fail). */
  required: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  home: string;
  checks: DoctorCheck[];
  postgres: { cached: number[]; installable: number[]; package: string; versions: Record<number, string> };
  pgDump: { path?: string; version?: string; maxSourceMajor?: number; all: Array<{ path: string; major: number }> };
}

async function tool(name: ToolName, required: boolean, versionArgs: string[] = ['--version'], want?: string): Promise<DoctorCheck> {
  const path = findTool(name);
  if (!path) return { name, ok: false, required, detail: 'not found', fix: FIX[name] };
  const version = await toolVersion(path, versionArgs);
  const note = want && version && !version.includes(want.replace(/^v/, '')) ? ` (pinned ${want}; this one is used as found)` : '';
  return { name, ok: true, required, detail: `${path} ${version ?? ''}${note}`.trim() };
}

export async function doctor(): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'node', ok: nodeMajor >= 20, required: true, detail: `v${process.versions.node}`, fix: nodeMajor >= 20 ? undefined : 'install Node.js 20 or newer' });

  if (isRoot()) {
    try {
      const u = serverUser();
      checks.push({ name: 'server user', ok: true, required: true, detail: `running as root: Postgres and pgbouncer run as "${u!.name}" (uid ${u!.uid})` });
    } catch (e: any) {
      checks.push({ name: 'server user', ok: false, required: true, detail: e.message, fix: 'useradd --system cutover (npm run setup does this)' });
    }
  }

  checks.push(await tool('k6', true, ['version'], PINNED_TOOLS.k6.version));
  checks.push(await tool('toxiproxy-server', true, ['-version'], PINNED_TOOLS.toxiproxy.version));

  // pg_dump: the schema copy needs a client at least as new as the source major.
  const dumps = [...new Set([findTool('pg_dump'), ...distroPgBinaries('pg_dump')].filter(Boolean) as string[])];
  const all: Array<{ path: string; major: number }> = [];
  for (const p of dumps) {
    const v = await toolVersion(p);
    if (v) all.push({ path: p, major: Number(v.replace(/^v/, '').split('.')[0]) });
  }
  all.sort((a, b) => b.major - a.major);
  const best = all[0];
  checks.push(
    best
      ? { name: 'pg_dump', ok: true, required: true, detail: `${best.path} (PostgreSQL ${best.major}): can dump sources up to major ${best.major}` }
      : { name: 'pg_dump', ok: false, required: true, detail: 'not found', fix: FIX.pg_dump },
  );
  checks.push(await tool('psql', false));
  checks.push(await tool('pgbouncer', false, ['--version']));
  checks.push(await tool('chromium', false, ['--version']));
  const docker = await dockerEngine();
  checks.push({ name: 'docker engine', ok: docker.available, required: false, detail: docker.reason, fix: docker.available ? undefined : 'optional: start a Docker engine to use the docker provider' });

  const cached = SUPPORTED_MAJORS.filter((m) => cachedBinaries(m));
  const pkgDir = join(paths.binaries());
  checks.push({
    name: 'postgres binaries',
    ok: true,
    required: false,
    detail: `${platformPackage()}: cached ${cached.length ? cached.join(', ') : 'none'} in ${existsSync(pkgDir) ? pkgDir : labHome()}; majors ${SUPPORTED_MAJORS.join(', ')} download on first use`,
  });

  return {
    ok: checks.every((c) => c.ok || !c.required),
    home: labHome(),
    checks,
    postgres: { cached: [...cached], installable: [...SUPPORTED_MAJORS], package: platformPackage(), versions: { ...PINNED_VERSIONS } },
    pgDump: { path: best?.path, version: best ? String(best.major) : undefined, maxSourceMajor: best?.major, all },
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = r.checks.map((c) => `${c.ok ? '✓' : c.required ? '✗' : '-'} ${c.name.padEnd(18)} ${c.detail}${!c.ok && c.fix ? `\n    fix: ${c.fix}` : ''}`);
  lines.push('', r.ok ? 'everything the embedded lab needs is present' : 'something the embedded lab needs is missing (see fix lines above)');
  return lines.join('\n');
}
