/**
 * Clone-then-follow in the lab: the new cluster is built from a physical copy of the old one at the
 * logical slot's consistent point, upgraded with PostgreSQL 18's pg_upgrade, instead of a fresh
 * cluster filled by the logical initial copy (migration/replication.ts: startCloneReplication).
 *
 *   backup():     a physical slot on old (keeps the WAL), pg_basebackup -X stream through it
 *   [the migration core creates the publication and the logical slot: its consistent point L]
 *   finish(L):    the copy recovers as a standby of old up to recovery_target_lsn = L and promotes,
 *                 shuts down cleanly, pg_upgrade --link into a fresh 18 cluster of the same locale,
 *                 checksums and superuser, and takes the place of the lab's new cluster's data
 *   cleanup():    drops the physical slot and the scratch folder (also after a failure)
 *
 * The order is forced by recovery: a copy can only stop at an LSN after its own end-of-backup
 * point, so the copy is taken before the slot, and the WAL between them comes from old through
 * the physical slot.
 *
 * pg_upgrade needs the old major's postgres, pg_ctl, pg_controldata and pg_resetwal. The npm
 * server packages have the first two; for the others a synthetic old bindir points at the old
 * major's own full install when one is on the machine (Debian: /usr/lib/postgresql/<major>/bin),
 * else at the lab's pg_control reader (lab/pg-control.ts) where it has a verified layout.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, rmSync, writeFileSync, appendFileSync, symlinkSync, renameSync, chownSync, readFileSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { ensureBinaries, ensureClientTools, CLIENT_TOOLS } from './binaries.ts';
import { CONTROL_LAYOUTS, readControlFile } from './pg-control.ts';
import { serverUser, mkdirFor, ensureTraversable, type OsUser } from './osuser.ts';
import { initdb, serverEnv, tailFile } from './providers/embedded.ts';
import type { StartedCluster } from './providers/types.ts';
import { PROJECT_ROOT } from './paths.ts';
import { sleep, pidAlive } from './net.ts';
import { CutoverError } from '../migration/errors.ts';
import { withClient, quoteIdent, quoteLiteral } from '../migration/pg.ts';
import { clonePhysicalSlot, type CloneBuilder } from '../migration/replication.ts';

const execFileP = promisify(execFile);

/** Where the old major's pg_controldata / pg_resetwal come from, or why clone-then-follow cannot run. */
export type OldControlTools = { kind: 'install'; bin: string } | { kind: 'reader'; controlVersion: number };

function distroBin(major: number): string | undefined {
  const bin = `/usr/lib/postgresql/${major}/bin`;
  return ['pg_controldata', 'pg_resetwal'].every((t) => existsSync(join(bin, t))) ? bin : undefined;
}

/** Which (old → new) pairs clone-then-follow supports here, and with which tools; refuses the others with the fix. */
export function cloneSupport(oldMajor: number, newMajor: number): OldControlTools {
  if (newMajor !== CLIENT_TOOLS.major)
    throw new CutoverError('PRECONDITION', `clone-then-follow to PostgreSQL ${newMajor} needs pg_upgrade ${newMajor}; the lab has only PostgreSQL ${CLIENT_TOOLS.major}'s (from the ${CLIENT_TOOLS.package} ${CLIENT_TOOLS.version} client install)`, {
      hint: `target PostgreSQL ${CLIENT_TOOLS.major}, or use initialSync: copy (the logical initial copy works for every pair)`,
    });
  if (oldMajor >= newMajor) throw new CutoverError('PRECONDITION', `clone-then-follow upgrades the copy: the old major (${oldMajor}) must be older than the new one (${newMajor})`, { hint: 'use initialSync: copy' });
  const bin = process.env.CUTOVER_OLD_BINDIR?.replace('%d', String(oldMajor)) ?? distroBin(oldMajor);
  if (bin && ['pg_controldata', 'pg_resetwal'].every((t) => existsSync(join(bin, t)))) return { kind: 'install', bin };
  const known = Object.entries(CONTROL_LAYOUTS).find(([, l]) => l.majors.includes(oldMajor));
  if (known) return { kind: 'reader', controlVersion: Number(known[0]) };
  throw new CutoverError('TOOL_MISSING', `clone-then-follow from PostgreSQL ${oldMajor}: pg_upgrade needs PostgreSQL ${oldMajor}'s pg_controldata and pg_resetwal, which the embedded server package does not ship, and the lab's pg_control reader has no verified layout for ${oldMajor}`, {
    hint: `install PostgreSQL ${oldMajor}'s server tools (Debian/Ubuntu with apt.postgresql.org: apt-get install postgresql-${oldMajor}, found in /usr/lib/postgresql/${oldMajor}/bin) or point CUTOVER_OLD_BINDIR at a bin folder that has them; or use initialSync: copy`,
  });
}

/** For `cutover doctor`: which old majors clone-then-follow to the lab's pg_upgrade major supports, and with what. */
export function cloneSupportSummary(oldMajors: readonly number[]): string {
  const by = new Map<string, number[]>();
  const refused: string[] = [];
  for (const m of oldMajors.filter((x) => x < CLIENT_TOOLS.major)) {
    try {
      const t = cloneSupport(m, CLIENT_TOOLS.major);
      const key = t.kind === 'install' ? t.bin : "the lab's pg_control reader";
      by.set(key, [...(by.get(key) ?? []), m]);
    } catch (e: any) {
      refused.push(`${m} (${e.hint ?? e.message})`);
    }
  }
  const ok = [...by].map(([how, ms]) => `${ms.join(', ')} (pg_controldata/pg_resetwal: ${how})`).join('; ');
  return `to ${CLIENT_TOOLS.major} only (pg_upgrade ${CLIENT_TOOLS.major} of the client tools): from ${ok || 'none'}${refused.length ? `; not from ${refused.join('; ')}` : ''}`;
}

/** Listen on host:port as soon as nothing else does (a stopping postmaster lets go), for at most `timeoutMs`. */
async function holdAddress(host: string, port: number, timeoutMs: number): Promise<Server | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const server = createServer();
    const bound = await new Promise<boolean>((res) => {
      server.once('error', () => res(false));
      server.listen(port, host, () => res(true));
    });
    if (bound) return server;
    await sleep(5);
  }
  return undefined;
}

/** postgres and pg_ctl of the old major from the lab's cache; pg_controldata/pg_resetwal as cloneSupport found them. */
async function oldBindir(dir: string, oldMajor: number, tools: OldControlTools, log: (s: string) => void): Promise<string> {
  const bins = await ensureBinaries(oldMajor, log);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  symlinkSync(bins.postgres, join(dir, 'postgres'));
  symlinkSync(bins.pgCtl, join(dir, 'pg_ctl'));
  for (const t of ['pg_controldata', 'pg_resetwal']) {
    if (tools.kind === 'install') symlinkSync(join(tools.bin, t), join(dir, t));
    else {
      const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
      const script = `#!/bin/sh\nCUTOVER_PG_CONTROL_VERSION=${oldMajor} exec ${sh(process.execPath)} ${sh(join(PROJECT_ROOT, 'bin', 'run-ts.mjs'))} ${sh(join(PROJECT_ROOT, 'lab', 'pg-control.ts'))} ${t} "$@"\n`;
      writeFileSync(join(dir, t), script, { mode: 0o755 });
    }
  }
  return dir;
}

async function runAs(user: OsUser | undefined, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; what: string; logFile?: string; input?: string }): Promise<string> {
  const child = execFileP(cmd, args, { uid: user?.uid, gid: user?.gid, cwd: opts.cwd, env: { ...serverEnv(), ...opts.env }, maxBuffer: 64 * 1024 * 1024 });
  if (opts.input !== undefined) {
    child.child.stdin?.end(opts.input);
  }
  try {
    const { stdout, stderr } = await child;
    if (opts.logFile) appendFileSync(opts.logFile, `$ ${cmd} ${args.join(' ')}\n${stdout}${stderr}\n`);
    return stdout;
  } catch (e: any) {
    const out = `${e?.stdout ?? ''}${e?.stderr ?? ''}`.trim();
    if (opts.logFile) appendFileSync(opts.logFile, `$ ${cmd} ${args.join(' ')}\n${out}\n`);
    throw new CutoverError('INTERNAL', `${opts.what} failed (exit ${e?.code ?? '?'})`, { detail: out.split('\n').slice(-12).join('\n'), hint: opts.logFile ? `see ${opts.logFile}` : undefined });
  }
}

export interface LabCloneOptions {
  /** The old cluster (source), reached directly, not through a proxy. */
  old: StartedCluster;
  /** The lab's new cluster: stopped, its data replaced by the upgraded copy, started again (same address and password). */
  target: StartedCluster;
  /** Replication name (its slot; the physical slot is `<slot>_phys`). */
  slot: string;
  log?: (line: string) => void;
}

/** The lab's CloneBuilder (see the file comment). */
export function labCloneBuilder(opts: LabCloneOptions): CloneBuilder & { timings: Record<string, number>; workDir: string } {
  const log = opts.log ?? (() => {});
  const oldRec = opts.old.record;
  const newRec = opts.target.record;
  if (!newRec.dataDir || newRec.provider !== 'embedded' || oldRec.provider !== 'embedded')
    throw new CutoverError('PRECONDITION', 'clone-then-follow in the lab builds the new cluster from a data directory: it needs the embedded provider on both sides', { hint: 'use clusters.provider: embedded, or initialSync: copy' });
  const tools = cloneSupport(oldRec.major, newRec.major);
  const user = serverUser();
  const workDir = join(newRec.dataDir, '..', 'clone');
  const copyDir = join(workDir, 'copy');
  const upgradedDir = join(workDir, 'upgraded');
  const logFile = join(workDir, 'clone.log');
  const physSlot = clonePhysicalSlot(opts.slot);
  const u = new URL(oldRec.url);
  const password = decodeURIComponent(u.password);
  const superuser = decodeURIComponent(u.username);
  const timings: Record<string, number> = {};
  let slotCreated = false;
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[name] = Date.now() - t0;
    }
  };
  const passfile = join(workDir, '.pgpass');

  return {
    timings,
    workDir,
    async backup() {
      rmSync(workDir, { recursive: true, force: true });
      mkdirFor(workDir, user, 0o700);
      ensureTraversable(workDir, user);
      writeFileSync(logFile, '');
      // the copy's walreceiver reads the password from here, never from a command line or a setting
      writeFileSync(passfile, `${oldRec.host}:${oldRec.port}:*:${superuser.replace(/[:\\]/g, '\\$&')}:${password.replace(/[:\\]/g, '\\$&')}\n`, { mode: 0o600 });
      if (user) {
        chownSync(passfile, user.uid, user.gid);
        chownSync(logFile, user.uid, user.gid);
      }
      const client = await ensureClientTools(log);
      await withClient(oldRec.url, async (c) => {
        const ts = await c.query(`select spcname from pg_tablespace where spcname not in ('pg_default', 'pg_global')`);
        if (ts.rowCount) throw new CutoverError('PRECONDITION', `the old cluster has tablespaces (${ts.rows.map((r) => r.spcname).join(', ')}); the lab's clone does not map them`, { hint: 'use initialSync: copy' });
        await c.query(`select pg_create_physical_replication_slot($1, true)`, [physSlot]);
        slotCreated = true;
      });
      log(`clone: physical slot ${physSlot} on old; pg_basebackup ${CLIENT_TOOLS.major} of PostgreSQL ${oldRec.major}…`);
      await timed('basebackup', () =>
        runAs(user, client.path('pg_basebackup'), ['-h', oldRec.host, '-p', String(oldRec.port), '-U', superuser, '-D', copyDir, '-X', 'stream', '-S', physSlot, '-c', 'fast', '--no-sync', '-w'], {
          env: { PGPASSFILE: passfile },
          what: 'pg_basebackup of the old cluster',
          logFile,
        }),
      );
    },

    async finish(lsn: string) {
      // Recovery stops when it reads the first record at or past the LSN: on an idle source the
      // next one could be a quarter of a minute away (the background writer's running-xacts record).
      await withClient(oldRec.url, (c) => c.query(`select pg_logical_emit_message(false, 'cutover_clone', $1)`, [lsn]));
      await timed('recover', () => recoverTo(lsn));
      await timed('upgrade', () => upgrade());
      await timed('start', () => swapIntoTarget());
      return { timings };
    },

    async cleanup() {
      if (slotCreated) {
        await withClient(oldRec.url, (c) => c.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [physSlot])).catch((e) => log(`clone: could not drop the physical slot ${physSlot} on old: ${e?.message ?? e}`));
        slotCreated = false;
      }
      // what is worth keeping once the scratch folder goes: our log and pg_upgrade's own (after a failure)
      const upgradeLogs = join(upgradedDir, 'pg_upgrade_output.d');
      try {
        if (existsSync(upgradeLogs)) execFileSync('sh', ['-c', `tail -n 40 "$0"/*/log/*.log >> "$1" 2>/dev/null`, upgradeLogs, logFile]);
        if (existsSync(logFile)) appendFileSync(join(newRec.dataDir!, '..', 'clone.log'), readFileSync(logFile));
      } catch {}
      rmSync(workDir, { recursive: true, force: true });
    },
  };

  /** The copy as a standby of old up to `lsn`, promoted there and shut down cleanly. */
  async function recoverTo(lsn: string): Promise<void> {
    const settings = [
      `primary_conninfo = ${quoteLiteral(`host=${oldRec.host} port=${oldRec.port} user=${superuser} passfile=${passfile} application_name=cutover_clone`)}`,
      `primary_slot_name = ${quoteLiteral(physSlot)}`,
      `recovery_target_lsn = ${quoteLiteral(lsn)}`,
      // off: replay every record that starts before the LSN and stop at the first one at or after
      // it. The walsender sends every commit whose record starts at or after the origin's LSN, so
      // with "on" a commit starting exactly there would be in the copy and sent again.
      `recovery_target_inclusive = off`,
      `recovery_target_action = 'promote'`,
      `hot_standby = off`,
    ];
    if (oldRec.major >= 12) {
      appendFileSync(join(copyDir, 'postgresql.auto.conf'), `\n# cutover-lab clone-then-follow\n${settings.join('\n')}\n`);
      writeFileSync(join(copyDir, 'standby.signal'), '');
    } else {
      writeFileSync(join(copyDir, 'recovery.conf'), `standby_mode = 'on'\n${settings.filter((s) => !s.startsWith('hot_standby')).join('\n')}\n`);
      appendFileSync(join(copyDir, 'postgresql.conf'), `\nhot_standby = off\n`);
    }
    if (user) await execFileP('chown', ['-R', `${user.uid}:${user.gid}`, copyDir]);
    const bins = await ensureBinaries(oldRec.major, log);
    const serverLog = join(workDir, 'copy.log');
    const fd = openSync(serverLog, 'a');
    const child = spawn(bins.postgres, ['-D', copyDir, '-c', `listen_addresses=`, '-c', `unix_socket_directories=${workDir}`, '-c', `port=${oldRec.port}`], { uid: user?.uid, gid: user?.gid, env: serverEnv(), stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.on('error', () => {});
    // a process that exits mid-recovery (Ctrl-C) must not leave the copy's postmaster behind
    const killCopy = () => void (child.exitCode === null && child.kill('SIGQUIT'));
    process.once('exit', killCopy);
    log(`clone: recovering the copy to ${lsn}…`);
    const deadline = Date.now() + 300_000;
    try {
      for (;;) {
        const text = existsSync(serverLog) ? readFileSync(serverLog, 'utf8') : '';
        if (/database system is ready to accept connections/.test(text) && /recovery stopping (after|before) WAL location/.test(text)) break;
        if (child.exitCode !== null || child.signalCode !== null)
          throw new CutoverError('INTERNAL', `the copy of old stopped before it reached ${lsn}`, { detail: tailFile(serverLog, 12), hint: `see ${serverLog}` });
        if (Date.now() > deadline) throw new CutoverError('TIMEOUT', `the copy of old did not reach ${lsn} within 300 s`, { detail: tailFile(serverLog, 12) });
        await sleep(100);
      }
      const stop = /recovery stopping (?:after|before) WAL location \(LSN\) "([0-9A-F/]+)"/.exec(readFileSync(serverLog, 'utf8'));
      log(`clone: the copy stopped recovery at ${stop?.[1] ?? '?'} (target ${lsn}) and was promoted`);
    } finally {
      // SIGINT = fast shutdown: a shutdown checkpoint, so pg_upgrade finds it "shut down"
      if (child.pid && pidAlive(child.pid)) child.kill('SIGINT');
      while (child.pid && pidAlive(child.pid)) await sleep(50);
      process.off('exit', killCopy);
      appendFileSync(logFile, readFileSync(serverLog, 'utf8'));
    }
    const state = readControlFile(copyDir).state;
    if (state !== 'shut down') throw new CutoverError('INTERNAL', `the recovered copy is "${state}" after its shutdown, not "shut down"; pg_upgrade would refuse it`, { detail: tailFile(serverLog, 8) });
  }

  /** pg_upgrade --link into a fresh cluster of the new major with the old one's locale, checksums and superuser. */
  async function upgrade(): Promise<void> {
    const client = await ensureClientTools(log);
    const control = readControlFile(copyDir);
    const spec = { ...(newRec.spec ?? { name: 'new', major: newRec.major }), name: 'new', major: newRec.major, user: superuser, dataChecksums: control.dataChecksumVersion > 0 };
    // pg_upgrade compares template0's encoding and locale: take old's
    for (const k of ['locale', 'encoding', 'localeProvider', 'icuLocale'] as const) (spec as any)[k] = oldRec.spec?.[k];
    const newPassword = decodeURIComponent(new URL(newRec.url).password);
    await initdb({ initdb: join(client.bin, 'initdb') }, spec, workDir, upgradedDir, newPassword, user, logFile);
    const oldBin = await oldBindir(join(workDir, 'old-bin'), oldRec.major, tools, log);
    log(`clone: pg_upgrade ${CLIENT_TOOLS.major} ${oldRec.major} → ${newRec.major} (--link; old's pg_controldata/pg_resetwal: ${tools.kind === 'install' ? tools.bin : `the lab's pg_control reader, layout ${tools.controlVersion}`})…`);
    await runAs(user, client.path('pg_upgrade'), ['-b', oldBin, '-B', client.bin, '-d', copyDir, '-D', upgradedDir, '-U', superuser, '--link', '--no-sync'], { cwd: workDir, what: `pg_upgrade ${oldRec.major} → ${newRec.major}`, logFile });
    // pg_upgrade brings old's roles, passwords included: the new cluster keeps its own superuser password
    await runAs(user, join(client.bin, 'postgres'), ['--single', '-D', upgradedDir, '-c', 'log_min_messages=fatal', '-c', 'log_min_error_statement=panic', 'postgres'], {
      input: `ALTER ROLE ${quoteIdent(superuser)} PASSWORD ${quoteLiteral(newPassword)};\n`,
      what: 'setting the new cluster\'s superuser password',
    });
  }

  /**
   * The upgraded data directory becomes the lab's new cluster (same address, same password). While
   * no postmaster listens there, other labs on this machine pick free addresses by trying to bind:
   * the address is held by a placeholder socket from the moment the old postmaster lets go until
   * just before the new one starts, and the swap itself is two renames.
   */
  async function swapIntoTarget(): Promise<void> {
    const restart = opts.target.restart?.bind(opts.target);
    if (!restart) throw new CutoverError('INTERNAL', 'the new cluster cannot be restarted by its provider');
    const holding = holdAddress(newRec.host, newRec.port, 40_000);
    await opts.target.stop();
    const hold = await holding;
    const aside = join(workDir, 'replaced-data');
    renameSync(newRec.dataDir!, aside);
    renameSync(upgradedDir, newRec.dataDir!);
    await new Promise<void>((res) => (hold ? hold.close(() => res()) : res()));
    for (let attempt = 0; ; attempt++) {
      try {
        await restart();
        break;
      } catch (e) {
        if (!(e instanceof CutoverError && e.code === 'PORT_IN_USE') || attempt >= 10)
          throw e instanceof CutoverError && e.code === 'PORT_IN_USE'
            ? new CutoverError('PORT_IN_USE', `another process took the new cluster's address ${newRec.host}:${newRec.port} while the upgraded copy was swapped in`, { hint: 'run the rehearsal (or lab up) again; on a busy machine fewer labs at once', cause: e })
            : e;
        await sleep(300);
      }
    }
    rmSync(aside, { recursive: true, force: true });
    log(`clone: new cluster started from the upgraded copy (PostgreSQL ${opts.target.record.versionNum})`);
  }
}
