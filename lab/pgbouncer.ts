/**
 * Debian's pgbouncer in front of the lab's clusters, for the pause-style switch: PAUSE holds new
 * queries while the [databases] entry is repointed, RESUME lets them through to the new primary.
 * pgbouncer refuses to run as root, so it runs as the same unprivileged user as Postgres.
 */
import { spawn } from 'node:child_process';
import { writeFileSync, openSync, closeSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool } from './tools.ts';
import { killWithUs } from './children.ts';
import { serverUser, mkdirFor } from './osuser.ts';
import { freeLoopbackAddress, pidAlive, sleep } from './net.ts';
import { tailFile } from './providers/embedded.ts';
import { CutoverError } from '../migration/errors.ts';
import { connect } from '../migration/pg.ts';

export interface PgbouncerSpec {
  dir: string;
  /** Database alias clients connect to, and where it points initially. */
  alias: string;
  upstream: { host: string; port: number; dbname: string };
  /** Users clients log in as (also used by pgbouncer to log into the server). */
  users: Record<string, string>;
  port?: number;
  host?: string;
  poolMode?: 'session' | 'transaction';
}

export interface StartedPgbouncer {
  host: string;
  port: number;
  iniFile: string;
  adminUrl: string;
  pid: number;
  stop(): Promise<void>;
}

export const PGBOUNCER_ADMIN = 'cutover_admin';

/** The auth_file text: one `"user" "password"` line per user. */
export function pgbouncerUserlist(users: Record<string, string>): string {
  return Object.entries(users).map(([u, p]) => `"${u.replace(/"/g, '""')}" "${p.replace(/"/g, '""')}"`).join('\n') + '\n';
}

/** The lab's pgbouncer.ini (also written for docker-compose.yml by lab/compose/config.ts). No logfile: stderr. */
export function pgbouncerIni(o: Pick<PgbouncerSpec, 'alias' | 'upstream' | 'poolMode'> & { host: string; port: number; authFile: string; logFile?: string; pidFile?: string }): string {
  return [
    '[databases]',
    `${o.alias} = host=${o.upstream.host} port=${o.upstream.port} dbname=${o.upstream.dbname}`,
    '',
    '[pgbouncer]',
    `listen_addr = ${o.host}`,
    `listen_port = ${o.port}`,
    'unix_socket_dir =',
    'auth_type = md5',
    `auth_file = ${o.authFile}`,
    `admin_users = ${PGBOUNCER_ADMIN}`,
    `pool_mode = ${o.poolMode ?? 'transaction'}`,
    'max_client_conn = 2000',
    'default_pool_size = 40',
    // node-postgres sends statement_timeout as a startup parameter, which pgbouncer refuses unless told to ignore it
    'ignore_startup_parameters = extra_float_digits,options,application_name,statement_timeout,idle_in_transaction_session_timeout',
    // A server connection that pgbouncer opens right after RELOAD, while the pool is still paused,
    // is closed "because: pause mode" and counts as a failed login: after RESUME no new server
    // connection is tried for server_login_retry (default 15 s), and every client waits that long.
    // Seen in rehearsals as a 1.0 s hold with the value 1; 0.1 s keeps a retry storm impossible.
    'server_login_retry = 0.1',
    ...(o.logFile ? [`logfile = ${o.logFile}`] : []),
    ...(o.pidFile ? [`pidfile = ${o.pidFile}`] : []),
    '',
  ].join('\n');
}

export async function startPgbouncer(spec: PgbouncerSpec): Promise<StartedPgbouncer> {
  const bin = requireTool('pgbouncer');
  const user = serverUser();
  mkdirFor(spec.dir, user, 0o700);
  const port = spec.port ?? 6432;
  const host = spec.host ?? (await freeLoopbackAddress(port));
  const adminPassword = Math.random().toString(36).slice(2);
  const users = { ...spec.users, [PGBOUNCER_ADMIN]: adminPassword };
  const authFile = join(spec.dir, 'userlist.txt');
  writeFileSync(authFile, pgbouncerUserlist(users), { mode: 0o600 });
  const iniFile = join(spec.dir, 'pgbouncer.ini');
  const logFile = join(spec.dir, 'pgbouncer.log');
  const ini = pgbouncerIni({ ...spec, host, port, authFile, logFile, pidFile: join(spec.dir, 'pgbouncer.pid') });
  writeFileSync(iniFile, ini, { mode: 0o600 });
  writeFileSync(logFile, '');
  if (user) for (const f of [authFile, iniFile, logFile]) chownSync(f, user.uid, user.gid);
  const outFd = openSync(join(spec.dir, 'stdout.log'), 'a');
  const child = spawn(bin, [iniFile], { uid: user?.uid, gid: user?.gid, stdio: ['ignore', outFd, outFd] });
  closeSync(outFd);
  let exited = false;
  child.on('exit', () => (exited = true));
  child.on('error', () => {});
  killWithUs(child);
  const adminUrl = `postgres://${PGBOUNCER_ADMIN}:${adminPassword}@${host}:${port}/pgbouncer`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) throw new CutoverError('POSTMASTER_DIED', 'pgbouncer exited during start', { detail: tailFile(logFile) + '\n' + tailFile(join(spec.dir, 'stdout.log')), hint: `see ${logFile}` });
    try {
      const c = await connect(adminUrl, { connectTimeoutMs: 1000, role: 'pgbouncer admin console' });
      await c.end();
      break;
    } catch {
      if (Date.now() > deadline) throw new CutoverError('TIMEOUT', `pgbouncer did not answer on ${host}:${port} within 10 s`, { detail: tailFile(logFile) });
      await sleep(50);
    }
  }
  return {
    host,
    port,
    iniFile,
    adminUrl,
    pid: child.pid!,
    async stop() {
      if (!child.pid || !pidAlive(child.pid)) return;
      child.kill('SIGINT');
      const until = Date.now() + 5000;
      while (pidAlive(child.pid) && Date.now() < until) await sleep(20);
      if (pidAlive(child.pid)) child.kill('SIGKILL');
    },
  };
}
