/**
 * A user's own application under rehearsal (scenario `app: { command, cwd, env, healthPath,
 * readyTimeout }`): started by the lab, reached by k6 at APP_URL, connected to the database through
 * whatever the scenario's switch moves, stopped at teardown whatever happened.
 *
 * The app gets, besides its own `env`:
 *   PORT          it must listen on 127.0.0.1:$PORT
 *   APP_URL       http://127.0.0.1:$PORT (what k6 gets too)
 *   DATABASE_URL  postgres://user:password@host:port/db for the application role
 *   PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE   the same, as libpq variables
 * where the host is the DNS name for a `dns` switch, the proxy for `proxy`, pgbouncer for
 * `pgbouncer`.
 *
 * DNS: for a `dns` switch the app must resolve the name with its own resolver (libc's, the JVM's)
 * so that its real caching shows in the figures. The libc resolver only asks port 53, and only the
 * servers in /etc/resolv.conf: the lab runs its DNS server on port 53 of a loopback address and
 * starts the app in a private mount namespace (`unshare --mount`) in which /etc/resolv.conf names
 * that server. That needs root (binding port 53, mounting); without root the lab refuses a user app
 * with a dns switch and says so (use `switch: proxy` or `pgbouncer`, which need no name resolution).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { request } from 'node:http';
import { CutoverError, redactSecrets } from '../migration/errors.ts';
import { sleep } from './net.ts';

export interface UserAppSpec {
  /** Shell command that starts the app (run with /bin/sh -c). */
  command: string;
  /** Working directory, relative to the scenario file (default: the scenario's folder). */
  cwd?: string;
  env?: Record<string, string>;
  /** Path answered with 2xx once the app is ready (default /). */
  healthPath?: string;
  /** How long the app may take to become healthy (ms, default 60 s). */
  readyTimeoutMs?: number;
}

export interface AppDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface StartUserAppOptions {
  spec: UserAppSpec;
  /** Folder of the scenario file: `cwd` is relative to it. */
  baseDir: string;
  port: number;
  db: AppDatabase;
  /** The lab DNS server on port 53 of this loopback address; the app's resolv.conf names it. */
  resolver?: string;
  /** Where the app's stdout and stderr go (kept in the run folder). */
  logFile: string;
  log?: (line: string) => void;
}

export interface StartedUserApp {
  readonly child: ChildProcess;
  readonly url: string;
  /** SIGTERM to the app's process group, SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** kill -9 of the whole process group (fault injection). */
  kill(): Promise<void>;
  /** Exit code or signal once exited, else undefined. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The last lines the app printed. */
  tail(n?: number): string;
}

/** The environment the app gets (exported for `scenario check` and tests). */
export function appEnvironment(opts: Pick<StartUserAppOptions, 'port' | 'db' | 'spec'>): Record<string, string> {
  const { db } = opts;
  const host = db.host.includes(':') ? `[${db.host}]` : db.host;
  return {
    ...(opts.spec.env ?? {}),
    PORT: String(opts.port),
    APP_URL: `http://127.0.0.1:${opts.port}`,
    DATABASE_URL: `postgres://${encodeURIComponent(db.user)}:${encodeURIComponent(db.password)}@${host}:${db.port}/${encodeURIComponent(db.database)}`,
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGUSER: db.user,
    PGPASSWORD: db.password,
    PGDATABASE: db.database,
  };
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolveP) => {
    const req = request(url, { method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolveP((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveP(false));
    req.end();
  });
}

export async function startUserApp(opts: StartUserAppOptions): Promise<StartedUserApp> {
  const { spec } = opts;
  const cwd = resolve(opts.baseDir, spec.cwd ?? '.');
  if (!existsSync(cwd)) throw new CutoverError('CONFIG', `app.cwd ${cwd} does not exist`, { hint: 'app.cwd is relative to the scenario file' });
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const out = createWriteStream(opts.logFile, { flags: 'a' });
  const env: NodeJS.ProcessEnv = { ...process.env, ...appEnvironment(opts) };
  // The lab's own secrets (source/target URLs of the switchover) never reach the user's app.
  for (const k of Object.keys(env)) if (/^CUTOVER_.*URL$/.test(k)) delete env[k];
  let argv: string[];
  if (opts.resolver) {
    const resolv = join(dirname(opts.logFile), 'app-resolv.conf');
    // One attempt per second: a resolver timeout must not look like a database outage of its own.
    writeFileSync(resolv, `# written by cutover-lab: the app resolves names through the lab DNS\nnameserver ${opts.resolver}\noptions timeout:1 attempts:2\n`);
    env.CUTOVER_APP_RESOLV = resolv;
    env.CUTOVER_APP_COMMAND = spec.command;
    argv = ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', 'mount --bind "$CUTOVER_APP_RESOLV" /etc/resolv.conf && exec /bin/sh -c "$CUTOVER_APP_COMMAND"'];
  } else {
    argv = ['/bin/sh', '-c', spec.command];
  }
  const lines: string[] = [];
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  child.on('exit', (code, signal) => (exit = { code, signal }));
  const onData = (d: Buffer) => {
    out.write(d);
    for (const l of d.toString('utf8').split('\n')) if (l.trim()) lines.push(redactSecrets(l));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const tail = (n = 10) => lines.slice(-n).join('\n');
  const group = (sig: NodeJS.Signals) => {
    if (!child.pid || exit) return;
    try {
      process.kill(-child.pid, sig);
    } catch {}
  };
  const app: StartedUserApp = {
    child,
    url: `http://127.0.0.1:${opts.port}`,
    exited: () => exit,
    tail,
    async stop() {
      group('SIGTERM');
      for (let i = 0; i < 50 && !exit; i++) await sleep(100);
      group('SIGKILL');
      for (let i = 0; i < 20 && !exit; i++) await sleep(50);
      out.end();
    },
    async kill() {
      group('SIGKILL');
      for (let i = 0; i < 40 && !exit; i++) await sleep(25);
    },
  };
  const timeout = spec.readyTimeoutMs ?? 60_000;
  const health = `${app.url}${spec.healthPath ?? '/'}`;
  const deadline = Date.now() + timeout;
  for (;;) {
    if (spawnError) throw new CutoverError('TOOL_MISSING', `could not start the app (${argv[0]}): ${spawnError.message}`, { hint: opts.resolver ? 'unshare (util-linux) is needed for a user app behind the dns switch' : 'check app.command' });
    if (exit) {
      out.end();
      throw new CutoverError('CONFIG', `the app exited before it became healthy (code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}): ${spec.command}`, {
        detail: tail(),
        hint: `its last lines are above; its whole output is in ${opts.logFile}`,
      });
    }
    if (await healthy(health)) return app;
    if (Date.now() > deadline) {
      await app.stop();
      throw new CutoverError('TIMEOUT', `the app did not answer 2xx on ${health} within ${timeout} ms`, {
        detail: tail(),
        hint: `it must listen on 127.0.0.1:$PORT and answer app.healthPath (default /); its output is in ${opts.logFile}`,
      });
    }
    await sleep(200);
  }
}
