/**
 * The default provider: Postgres server binaries from the npm registry, run as local processes.
 *
 * Each cluster listens on its own loopback address (127.0.0.2, 127.0.0.3, …) on the same port,
 * which is what a DNS switch between two hosts looks like. When we run as root the server runs as
 * an unprivileged user (Postgres refuses root). The postmaster is our child process: if it dies
 * while we wait for it, we say so with the tail of its log instead of waiting forever.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBinaries, checkMajor, type Binaries } from '../binaries.ts';
import { serverUser, mkdirFor, ensureTraversable, type OsUser } from '../osuser.ts';
import { freeLoopbackAddress, releaseLoopbackAddress, pidAlive, sleep } from '../net.ts';
import { CutoverError } from '../../migration/errors.ts';
import { connect, quoteIdent, serverVersionNum } from '../../migration/pg.ts';
import type { ClusterProvider, ClusterRecord, ClusterSpec, StartOptions, StartedCluster } from './types.ts';

const execFileP = promisify(execFile);

/** Children we own: stopped hard if this process exits without stopping them (Ctrl-C, crash). */
const owned = new Map<number, ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const [pid] of owned) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {}
    }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      // Someone else handles the signal (the rehearsal tears its lab down in order, then exits):
      // leave it to them; the 'exit' hook above still stops whatever is left.
      if (process.listenerCount(sig) > 0) return;
      killAll();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

export function tailFile(file: string | undefined, lines = 15): string {
  if (!file || !existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text.split('\n').filter(Boolean).slice(-lines).join('\n');
}

function confValue(v: string | number | boolean): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return `'${v.replace(/'/g, "''")}'`;
}

/** Settings every lab cluster gets; the scenario's GUCs override them. */
export function baseSettings(spec: ClusterSpec): Record<string, string | number | boolean> {
  const s: Record<string, string | number | boolean> = {
    max_connections: 200,
    shared_buffers: '64MB',
    // The lab's data is synthetic and recreated per run; fsync only costs rehearsal time.
    fsync: false,
    max_replication_slots: 16,
    max_wal_senders: 16,
    max_worker_processes: 16,
    max_logical_replication_workers: 8,
    max_sync_workers_per_subscription: 4,
    log_line_prefix: '%m [%p] %q%u@%d ',
    log_min_messages: 'warning',
    unix_socket_directories: '',
  };
  if (spec.publisher !== false) s.wal_level = 'logical';
  if (spec.timezone) {
    s.timezone = spec.timezone;
    s.log_timezone = spec.timezone;
  }
  return { ...s, ...(spec.gucs ?? {}) };
}

export function initdbArgs(spec: ClusterSpec, dataDir: string, pwfile: string): string[] {
  const major = spec.major;
  const args = ['-D', dataDir, '-U', spec.user ?? 'postgres', `--pwfile=${pwfile}`, '--auth-local=trust', '--auth-host=md5', '--no-sync'];
  args.push(`--encoding=${spec.encoding ?? 'UTF8'}`);
  args.push(`--locale=${spec.locale ?? 'C.UTF-8'}`);
  const provider = spec.localeProvider ?? 'libc';
  if (provider === 'icu') {
    if (major < 15) throw new CutoverError('CONFIG', `cluster "${spec.name}": an ICU default collation needs PostgreSQL 15 or newer (major ${major})`, { hint: 'use localeProvider libc on this major (column-level ICU collations still work), or pick major ≥ 15' });
    args.push('--locale-provider=icu', `--icu-locale=${spec.icuLocale ?? 'und'}`);
  } else if (provider === 'builtin') {
    if (major < 17) throw new CutoverError('CONFIG', `cluster "${spec.name}": the builtin locale provider needs PostgreSQL 17 or newer (major ${major})`, { hint: 'use libc or icu on this major' });
    args.push('--locale-provider=builtin', `--builtin-locale=${spec.icuLocale ?? 'C.UTF-8'}`);
  }
  if (spec.dataChecksums === true) args.push('--data-checksums');
  if (spec.dataChecksums === false && major >= 18) args.push('--no-data-checksums');
  return args;
}

export function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: process.env.TZ ?? 'UTC' };
}

class EmbeddedCluster implements StartedCluster {
  constructor(
    public record: ClusterRecord,
    private readonly bins: Pick<Binaries, 'postgres'>,
    private readonly user: OsUser | undefined,
    private readonly detached: boolean,
  ) {}
  get url() {
    return this.record.url;
  }
  get major() {
    return this.record.major;
  }

  async alive(): Promise<boolean> {
    return pidAlive(this.record.pid);
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const r = this.record;
    const logFd = openSync(r.logFile!, 'a');
    const child = spawn(this.bins.postgres, ['-D', r.dataDir!, '-c', `listen_addresses=${r.host}`, '-c', `port=${r.port}`], {
      uid: this.user?.uid,
      gid: this.user?.gid,
      env: serverEnv(),
      detached: this.detached,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    let exited: { code: number | null; signal: string | null } | undefined;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      owned.delete(child.pid!);
    });
    child.on('error', () => {});
    if (!child.pid) throw new CutoverError('POSTMASTER_DIED', `could not start ${this.bins.postgres}`);
    r.pid = child.pid;
    if (this.detached) child.unref();
    else {
      owned.set(child.pid, child);
      installExitHook();
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited) {
        const tail = tailFile(r.logFile);
        if (/Address already in use|could not create any TCP\/IP sockets/.test(tail))
          throw new CutoverError('PORT_IN_USE', `cluster "${r.name}" could not listen on ${r.host}:${r.port}: address already in use`, { detail: tail, hint: 'another server holds that address and port; pick another --port or stop it' });
        throw new CutoverError('POSTMASTER_DIED', `postmaster of cluster "${r.name}" (PostgreSQL ${r.major}) exited during start (code ${exited.code}, signal ${exited.signal})`, {
          detail: tail,
          hint: `see the server log ${r.logFile}`,
        });
      }
      try {
        const c = await connect(r.url, { connectTimeoutMs: 2000, role: `cluster "${r.name}"` });
        r.versionNum = await serverVersionNum(c);
        await c.end();
        return;
      } catch (e: any) {
        // 57P03: the database system is starting up
        if (Date.now() > deadline) {
          throw new CutoverError('TIMEOUT', `cluster "${r.name}" did not accept connections on ${r.host}:${r.port} within ${timeoutMs} ms`, { detail: tailFile(r.logFile), hint: `see ${r.logFile}` });
        }
        await sleep(100);
      }
    }
  }

  async stop(timeoutMs = 30_000): Promise<void> {
    const pid = this.record.pid;
    if (!pid || !pidAlive(pid)) return;
    // SIGINT = fast shutdown: disconnect clients, checkpoint, exit.
    try {
      process.kill(pid, 'SIGINT');
    } catch {}
    const deadline = Date.now() + timeoutMs;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {}
      await sleep(500);
    }
    if (pidAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    while (pidAlive(pid)) await sleep(20);
    owned.delete(pid);
    releaseLoopbackAddress(this.record.host);
  }

  async kill(): Promise<void> {
    const pid = this.record.pid;
    if (!pid) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    while (pidAlive(pid)) await sleep(20);
    owned.delete(pid);
  }

  async restart(): Promise<void> {
    await this.stop();
    // After a SIGKILL the backends notice the postmaster is gone and exit; until they have, the
    // old shared memory segment is in use and the new postmaster refuses to start.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start();
        return;
      } catch (e) {
        if (attempt >= 20 || !(e instanceof CutoverError) || e.code !== 'POSTMASTER_DIED') throw e;
        await sleep(250);
      }
    }
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.record.dataDir) rmSync(join(this.record.dataDir, '..'), { recursive: true, force: true });
  }

  async [Symbol.asyncDispose]() {
    await this.destroy();
  }
}

export class EmbeddedProvider implements ClusterProvider {
  readonly kind = 'embedded' as const;

  async start(spec: ClusterSpec, opts: StartOptions): Promise<StartedCluster> {
    const log = opts.log ?? (() => {});
    const major = checkMajor(spec.major);
    const bins = await ensureBinaries(major, log);
    const user = serverUser();
    mkdirFor(opts.dir, user, 0o755);
    ensureTraversable(opts.dir, user);
    const dataDir = join(opts.dir, 'data');
    const logFile = join(opts.dir, 'server.log');
    writeFileSync(logFile, '');
    if (user) chownSync(logFile, user.uid, user.gid);
    const password = spec.password ?? randomBytes(12).toString('hex');
    const database = spec.database ?? 'app';
    const superuser = spec.user ?? 'postgres';

    let fresh = false;
    if (opts.fromDataDir) {
      await cloneDataDir(opts.fromDataDir, dataDir, user);
    } else if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      fresh = true;
      await initdb(bins, spec, opts.dir, dataDir, password, user, logFile);
    }

    const port = spec.port ?? 5432;
    let lastErr: unknown;
    for (let attempt = 0; attempt < 8; attempt++) {
      const host = spec.host ?? (await freeLoopbackAddress(port));
      const url = `postgres://${encodeURIComponent(superuser)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(fresh ? 'postgres' : database)}`;
      const record: ClusterRecord = { provider: 'embedded', name: spec.name, major, url, host, port, database, user: superuser, dataDir, logFile, binRoot: bins.root, spec: { ...spec, password: undefined } };
      const cluster = new EmbeddedCluster(record, bins, user, opts.detached ?? false);
      try {
        await cluster.start();
      } catch (e) {
        lastErr = e;
        releaseLoopbackAddress(host);
        // Another process took this address between our probe and the bind: try the next one.
        if (e instanceof CutoverError && e.code === 'PORT_IN_USE' && !spec.host) continue;
        throw e;
      }
      if (fresh) {
        const c = await connect(url, { role: `cluster "${spec.name}"` });
        try {
          await c.query(`create database ${quoteIdent(database)}`);
        } finally {
          await c.end();
        }
        record.url = url.replace(/\/postgres$/, '/' + encodeURIComponent(database));
      }
      log(`cluster ${spec.name}: PostgreSQL ${record.versionNum} on ${host}:${port} (data ${dataDir})`);
      return cluster;
    }
    throw lastErr;
  }

  attach(record: ClusterRecord): StartedCluster {
    if (!record.binRoot) throw new CutoverError('STATE', `cluster "${record.name}" record has no binaries path`);
    return new EmbeddedCluster(record, { postgres: join(record.binRoot, 'bin', 'postgres') }, serverUser(), true);
  }
}

/** initdb as the server user, then the lab's settings and pg_hba (also the fresh new cluster pg_upgrade fills, lab/clone.ts). */
export async function initdb(bins: Pick<Binaries, 'initdb'>, spec: ClusterSpec, dir: string, dataDir: string, password: string, user: OsUser | undefined, logFile: string): Promise<void> {
  const pwfile = join(dir, '.pwfile');
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (user) chownSync(pwfile, user.uid, user.gid);
  try {
    await execFileP(bins.initdb, initdbArgs(spec, dataDir, pwfile), { uid: user?.uid, gid: user?.gid, env: serverEnv() });
  } catch (e: any) {
    const out = `${e?.stdout ?? ''}${e?.stderr ?? ''}`.trim();
    appendFileSync(logFile, out + '\n');
    if (/No space left/i.test(out)) throw new CutoverError('DISK', `no disk space for cluster "${spec.name}" in ${dataDir}`, { hint: 'free space or set CUTOVER_HOME to a larger disk' });
    if (/invalid locale|locale .* not available|could not create locale|ICU/i.test(out))
      throw new CutoverError('CONFIG', `initdb for cluster "${spec.name}" rejected the locale settings (locale=${spec.locale ?? 'C.UTF-8'}, encoding=${spec.encoding ?? 'UTF8'}, provider=${spec.localeProvider ?? 'libc'})`, {
        detail: out.split('\n').slice(-4).join('\n'),
        hint: 'check `locale -a` for available libc locales (Debian: apt-get install locales-all), and that the encoding matches the locale',
      });
    throw new CutoverError('INTERNAL', `initdb failed for cluster "${spec.name}"`, { detail: out.split('\n').slice(-6).join('\n') });
  } finally {
    rmSync(pwfile, { force: true });
  }
  const settings = baseSettings(spec);
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n# cutover-lab settings\n${lines.join('\n')}\n`);
  // Our own pg_hba: password auth on any loopback address (clusters live on 127.0.0.x), replication included.
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    ['local all all trust', 'host all all 127.0.0.0/8 md5', 'host replication all 127.0.0.0/8 md5', 'host all all ::1/128 md5', ''].join('\n'),
  );
}

/** Copy a stopped data directory (reflink where the filesystem can), owned by the server user. */
export async function cloneDataDir(from: string, to: string, user: OsUser | undefined): Promise<void> {
  if (!existsSync(join(from, 'PG_VERSION'))) throw new CutoverError('STATE', `${from} is not a Postgres data directory`);
  if (existsSync(join(from, 'postmaster.pid'))) throw new CutoverError('STATE', `${from} belongs to a running server; stop it before cloning`);
  rmSync(to, { recursive: true, force: true });
  mkdirFor(join(to, '..'), user, 0o755);
  await execFileP('cp', ['-a', '--reflink=auto', from, to]);
  if (user && statSync(to).uid !== user.uid) await execFileP('chown', ['-R', `${user.uid}:${user.gid}`, to]);
}
