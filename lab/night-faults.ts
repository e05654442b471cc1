/**
 * The faults of a real night that are neither the network nor a crash:
 *  - `pause`: SIGSTOP a server (its postmaster and every backend) or the app for a while, then
 *    SIGCONT — hung, not dead: connections stay open, nothing answers. Every stopped process is
 *    resumed at teardown, and on process exit/SIGINT/SIGTERM too (a stopped postgres left behind
 *    is the worst outcome);
 *  - `lock`: a session (the lab's admin role, not the app's) holding LOCK TABLE … IN <mode> MODE;
 *    what waited behind it is sampled from pg_locks / pg_stat_activity;
 *  - `connections`: the server's free connection slots taken by idle sessions of a throwaway role;
 *  - `slot-loss`: max_slot_wal_keep_size made small on the old side and WAL forced past it while
 *    the subscription is disabled, until the slot's wal_status is `lost`.
 * Each function applies the fault or throws FaultNotApplied, and returns how to undo it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { FaultNotApplied } from './faults.ts';
import { sleep } from './net.ts';
import { redactSecrets } from '../migration/errors.ts';
import { parseProcStat } from '../migration/cpu.ts';
import { connect, qualified, quoteIdent, quoteLiteral, serverMajor, withClient, type Client } from '../migration/pg.ts';
import { displayName, objectNames, parseTableName } from '../migration/replication.ts';
import { lockModeOf, lockModes } from '../scenarios/schema.ts';

// --- pause -------------------------------------------------------------------------------------

/** Every pid this process has SIGSTOPped and not yet resumed. */
const stopped = new Set<number>();
let exitHooked = false;

/** SIGCONT, newest first (children before the parent that stopped first), and forget them. */
function resume(pids: number[]): void {
  for (const pid of [...pids].reverse()) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    stopped.delete(pid);
  }
}

function resumeAllSync(): void {
  resume([...stopped]);
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', resumeAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    // resume first; the other handlers (or the default) decide what the signal does
    process.prependListener(sig, resumeAllSync);
}

/** SIGCONT every process this process stopped and has not resumed (an interrupted run, a test cleaning up). */
export function resumeAllStopped(): void {
  resumeAllSync();
}

/** The pids stopped by this process that are still stopped (for tests and the runner's checks). */
export function stoppedPids(): number[] {
  return [...stopped];
}

/** A process and all its descendants (from /proc), parent first. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = parseProcStat(readFileSync(`/proc/${e}/stat`, 'utf8'));
      if (!st) continue;
      const ppid = st.ppid;
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** The process state letter from /proc (T = stopped), or null when it is gone. */
export function processState(pid: number): string | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state ?? null;
  } catch {
    return null;
  }
}

export interface Paused {
  pids: number[];
  resume(): Promise<void>;
}

/**
 * SIGSTOP `root` and (with `tree`) its descendants: a postmaster first, so it forks no new
 * backend, then every backend, walsender, apply worker. resume() sends SIGCONT children first.
 */
export async function pauseProcess(what: string, root: number | undefined, tree = true): Promise<Paused> {
  if (!root) throw new FaultNotApplied('pause', `no process id for ${what}`, 'pause needs a process the lab runs (embedded clusters, the sample app or your own app)');
  if (processState(root) === null) throw new FaultNotApplied('pause', `${what} (pid ${root}) is not running`, 'schedule the pause while it runs');
  hookExit();
  const pids: number[] = [];
  try {
    process.kill(root, 'SIGSTOP');
    stopped.add(root);
    pids.push(root);
    if (tree)
      for (const p of processTree(root).slice(1)) {
        try {
          process.kill(p, 'SIGSTOP');
          stopped.add(p);
          pids.push(p);
        } catch {
          /* exited meanwhile */
        }
      }
  } catch (e: any) {
    resume(pids);
    throw new FaultNotApplied('pause', `could not stop ${what} (pid ${root}): ${e?.message ?? e}`);
  }
  // SIGSTOP is delivered asynchronously: wait (briefly, bounded) until each one shows as stopped
  const until = Date.now() + 2000;
  // (a backend that had just exited is a zombie its stopped postmaster cannot reap: it is done, not running)
  while (Date.now() < until && pids.some((p) => { const st = processState(p); return st !== null && st !== 'T' && st !== 't' && st !== 'Z' && st !== 'X'; })) await sleep(5);
  let resumed = false;
  return {
    pids,
    resume: async () => {
      if (resumed) return;
      resumed = true;
      resume(pids);
    },
  };
}

// --- lock --------------------------------------------------------------------------------------

export interface LockWaiter {
  pid: number;
  role: string | null;
  application: string | null;
  backendType: string | null;
  waitEvent: string | null;
  query: string | null;
}

export interface HeldLock {
  pid: number;
  table: string;
  mode: string;
  /** Everything seen waiting behind the lock so far (distinct by pid). */
  waiters: LockWaiter[];
  maxWaiting: number;
  /** Release the lock (commit) and stop sampling; returns the held time in ms. */
  release(): Promise<number>;
}

export function normaliseLockMode(mode: unknown): string {
  const m = lockModeOf(mode);
  if (!m) throw new FaultNotApplied('lock', `${JSON.stringify(mode)} is not a lock mode`, `mode: ${lockModes.join(' | ')}`);
  return m;
}

/**
 * A session of the lab's admin role holding LOCK TABLE `table` IN `mode` MODE on `url`; every
 * `sampleMs` the sessions it blocks (pg_blocking_pids) are recorded — on the new side the apply
 * worker (lag rises), on the old side the app's writers.
 */
export async function holdLock(opts: { url: string; side: 'old' | 'new'; table: string; mode?: unknown; sampleMs?: number; lockTimeoutMs?: number }): Promise<HeldLock> {
  const mode = normaliseLockMode(opts.mode);
  const role = opts.side === 'old' ? 'old primary' : 'new primary';
  const t = parseTableName(opts.table);
  const q = qualified(t.schema, t.name);
  const c = await connect(opts.url, { role, applicationName: 'cutover-fault-lock' });
  let pid: number;
  try {
    const exists = (await c.query(`select to_regclass($1) as r`, [q])).rows[0].r;
    if (!exists) throw new FaultNotApplied('lock', `table ${displayName(t)} does not exist on the ${role}`, 'set attributes.table to a table of the dataset, e.g. orders');
    pid = (await c.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows[0].pid;
    await c.query('begin');
    // LOCK TABLE itself waits for the sessions holding conflicting locks: bounded, never a hang
    await c.query(`set local lock_timeout = ${Math.max(1000, Math.round(opts.lockTimeoutMs ?? 15000))}`);
    await c.query(`lock table ${q} in ${mode} mode`);
  } catch (e: any) {
    await c.end().catch(() => {});
    if (e instanceof FaultNotApplied) throw e;
    throw new FaultNotApplied('lock', `LOCK TABLE ${displayName(t)} IN ${mode} MODE failed on the ${role}: ${redactSecrets(e?.message ?? String(e))}`, 'the table must exist and the lock be obtainable within 15 s', e);
  }
  const started = Date.now();
  const waiters = new Map<number, LockWaiter>();
  const held: HeldLock = { pid, table: displayName(t), mode, waiters: [], maxWaiting: 0, release: async () => 0 };
  // a second session samples what waits behind the lock (the holder's own session is busy holding it)
  const watcher = await connect(opts.url, { role, applicationName: 'cutover-fault-lock-watch' }).catch(() => undefined);
  let sampling: Promise<void> = Promise.resolve();
  const sample = async () => {
    if (!watcher) return;
    const rows = (
      await watcher.query<{ pid: number; usename: string | null; application_name: string | null; backend_type: string | null; wait: string | null; query: string | null }>(
        `select a.pid, a.usename::text, a.application_name, a.backend_type,
                a.wait_event_type || '/' || a.wait_event as wait, left(a.query, 120) as query
           from pg_stat_activity a where $1 = any(pg_blocking_pids(a.pid))`,
        [pid],
      )
    ).rows;
    held.maxWaiting = Math.max(held.maxWaiting, rows.length);
    for (const r of rows) if (!waiters.has(r.pid)) waiters.set(r.pid, { pid: r.pid, role: r.usename, application: r.application_name, backendType: r.backend_type, waitEvent: r.wait, query: r.query });
    held.waiters = [...waiters.values()];
  };
  const timer = setInterval(() => {
    sampling = sampling.then(sample).catch(() => {});
  }, opts.sampleMs ?? 250);
  let released: number | undefined;
  held.release = async () => {
    if (released !== undefined) return released;
    clearInterval(timer);
    await sampling;
    await sample().catch(() => {});
    released = Date.now() - started;
    await c.query('commit').catch(() => {});
    await c.end().catch(() => {});
    await watcher?.end().catch(() => {});
    return released;
  };
  return held;
}

/** One line for the report: who waited behind the lock. */
export function describeWaiters(w: readonly LockWaiter[]): string {
  if (!w.length) return 'nothing waited behind it';
  const groups = new Map<string, number>();
  for (const x of w) {
    const who = x.backendType && x.backendType !== 'client backend' ? x.backendType : `${x.role ?? '?'}${x.application ? ` (${x.application})` : ''}`;
    const k = `${who} waiting on ${x.waitEvent ?? 'a lock'}`;
    groups.set(k, (groups.get(k) ?? 0) + 1);
  }
  return `waited: ${[...groups].map(([k, n]) => `${n} × ${k}`).join('; ')}`;
}

// --- connections -------------------------------------------------------------------------------

export interface FilledSlots {
  role: string;
  taken: number;
  /** The server's max_connections and the slots reserved for superusers (and pg_use_reserved_connections, 16+). */
  maxConnections: number;
  superuserReserved: number;
  reservedConnections: number;
  /** Connections refused to the filler once the slots were full (proof that they were). */
  refusal: string | null;
  release(): Promise<void>;
}

const FILL_LIMIT = 5000;

/**
 * Take the free connection slots of the server at `adminUrl` with idle sessions of a throwaway
 * LOGIN role (no superuser: it gets only the slots the app could get), leaving `reserved` free.
 */
export async function fillConnections(opts: { adminUrl: string; side: 'old' | 'new'; reserved?: number }): Promise<FilledSlots> {
  const reserved = Math.max(0, Math.floor(opts.reserved ?? 0));
  const roleName = `lab_fault_conn_${randomBytes(3).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const where = opts.side === 'old' ? 'old primary' : 'new primary';
  let settings: { max: number; su: number; res: number };
  try {
    settings = await withClient(
      opts.adminUrl,
      async (c) => {
        const major = await serverMajor(c);
        const r = (await c.query(`select current_setting('max_connections')::int as max, current_setting('superuser_reserved_connections')::int as su, ${major >= 16 ? `current_setting('reserved_connections')::int` : '0'} as res`)).rows[0];
        await c.query(`create role ${quoteIdent(roleName)} login password ${quoteLiteral(password)}`);
        return { max: r.max, su: r.su, res: r.res };
      },
      { role: where, applicationName: 'cutover-fault-connections' },
    );
  } catch (e: any) {
    throw new FaultNotApplied('connections', `could not make the throwaway role on the ${where}: ${redactSecrets(e?.message ?? String(e))}`);
  }
  const u = new URL(opts.adminUrl);
  u.username = roleName;
  u.password = password;
  const url = u.toString();
  const held: Client[] = [];
  let refusal: string | null = null;
  const dropRole = async () => {
    await withClient(opts.adminUrl, async (c) => {
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [roleName]).catch(() => {});
      // a terminated backend keeps its slot until it has exited: wait (bounded) so that the slots are
      // really free again when the fault is cleared, not a moment later
      for (let i = 0; i < 50; i++) {
        const left = (await c.query(`select count(*)::int as n from pg_stat_activity where usename = $1`, [roleName])).rows[0].n;
        if (left === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      for (let i = 0; i < 50; i++) {
        try {
          await c.query(`drop role if exists ${quoteIdent(roleName)}`);
          return;
        } catch (e: any) {
          // 2BP01: a session of it still ending
          if (e?.code !== '2BP01' && !/being accessed|depend/i.test(e?.message ?? '')) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }, { role: where, applicationName: 'cutover-fault-connections' });
  };
  try {
    // open in small batches until the server refuses (53300 too many clients / reserved slots)
    while (held.length < FILL_LIMIT && refusal === null) {
      const batch = await Promise.allSettled(Array.from({ length: 8 }, () => connect(url, { role: where, applicationName: 'cutover-fault-connections' })));
      for (const b of batch) {
        if (b.status === 'fulfilled') {
          b.value.on('error', () => {});
          held.push(b.value);
        } else {
          const e: any = b.reason;
          const msg = redactSecrets(e?.cause?.message ?? e?.message ?? String(e));
          if (/too many clients|remaining connection slots|53300/i.test(msg) || e?.code === '53300' || e?.cause?.code === '53300') refusal = msg;
          else throw new Error(msg);
        }
      }
    }
    if (refusal === null) throw new Error(`still not full after ${held.length} connections`);
    if (held.length < reserved) throw new Error(`only ${held.length} slot(s) were free, fewer than reserved: ${reserved}`);
    for (const c of held.splice(held.length - reserved, reserved)) await c.end().catch(() => {});
  } catch (e: any) {
    await Promise.allSettled(held.map((c) => c.end()));
    await dropRole().catch(() => {});
    throw new FaultNotApplied('connections', `could not fill the ${where}'s connection slots: ${redactSecrets(e?.message ?? String(e))}`, 'check max_connections and that the lab can log in with a new password role');
  }
  // Held full for the whole fault: a slot that frees up later (a backend that was still exiting
  // while the slots were counted, a client that leaves) is taken again, as a connection storm would.
  // Only when none is to be left free: topping up around `reserved` free slots would take them for a
  // moment and refuse the app there.
  const taken = held.length;
  let releasing = false;
  let topping: Promise<void> = Promise.resolve();
  const topUp =
    reserved === 0
      ? setInterval(() => {
          topping = topping.then(async () => {
            if (releasing || held.length >= FILL_LIMIT) return;
            try {
              const c = await connect(url, { role: where, applicationName: 'cutover-fault-connections', connectTimeoutMs: 2000 });
              c.on('error', () => {});
              if (releasing) await c.end().catch(() => {});
              else held.push(c);
            } catch {
              /* refused: still full */
            }
          });
        }, 200)
      : undefined;
  topUp?.unref();
  return {
    role: roleName,
    taken,
    maxConnections: settings.max,
    superuserReserved: settings.su,
    reservedConnections: settings.res,
    refusal,
    release: async () => {
      releasing = true;
      if (topUp) clearInterval(topUp);
      await topping;
      await Promise.allSettled(held.splice(0).map((c) => c.end()));
      await dropRole();
    },
  };
}

// --- slot-loss ---------------------------------------------------------------------------------

export interface LostSlot {
  slot: string;
  walStatus: string;
  /** max_slot_wal_keep_size before the fault (restored by restore()). */
  previous: string;
  /** WAL segments switched to get there. */
  switches: number;
  restore(): Promise<void>;
}

/**
 * Make the subscription's slot on the old side lose WAL it needs: max_slot_wal_keep_size = `sizeMb`,
 * the subscription disabled (apply stops: the slot is inactive and falls behind), WAL switched and
 * checkpointed until pg_replication_slots.wal_status is `lost`, then the subscription enabled again
 * (its worker now fails: the slot can never serve it). restore() puts the setting back.
 */
export async function loseSlot(opts: { oldUrl: string; newUrl: string; sizeMb?: number; subscription?: string; slot?: string; maxSwitches?: number }): Promise<LostSlot> {
  const names = objectNames();
  const slot = opts.slot ?? names.slot;
  const sub = opts.subscription ?? names.subscription;
  const size = Math.max(1, Math.floor(opts.sizeMb ?? 1));
  const old = await connect(opts.oldUrl, { role: 'old primary', applicationName: 'cutover-fault-slot-loss' });
  let neu: Client | undefined;
  let previous: string | undefined;
  let autoConf: string | null = null;
  const restoreSetting = async (c: Client) => {
    if (previous === undefined) return;
    if (autoConf === null) await c.query(`alter system reset max_slot_wal_keep_size`);
    else await c.query(`alter system set max_slot_wal_keep_size = ${quoteLiteral(autoConf)}`);
    await c.query(`select pg_reload_conf()`);
  };
  try {
    const major = await serverMajor(old);
    if (major < 13) throw new FaultNotApplied('slot-loss', `the old side is PostgreSQL ${major}: max_slot_wal_keep_size exists from 13 on; before it a slot keeps all WAL (the disk fills instead) and is never lost`, 'rehearse slot-loss with clusters.old.major 13 or newer');
    const s = (await old.query<{ wal_status: string | null }>(`select wal_status from pg_replication_slots where slot_name = $1`, [slot])).rows[0];
    if (!s) throw new FaultNotApplied('slot-loss', `there is no replication slot ${slot} on the old primary`, 'schedule slot-loss while replication runs (after the initial sync)');
    previous = (await old.query(`select current_setting('max_slot_wal_keep_size') as v`)).rows[0].v;
    autoConf = (await old.query(`select setting from pg_file_settings where name = 'max_slot_wal_keep_size' and sourcefile like '%postgresql.auto.conf' and applied order by seqno desc limit 1`).catch(() => ({ rows: [] as any[] }))).rows[0]?.setting ?? null;
    await old.query(`alter system set max_slot_wal_keep_size = ${quoteLiteral(`${size}MB`)}`);
    await old.query(`select pg_reload_conf()`);
    neu = await connect(opts.newUrl, { role: 'new primary', applicationName: 'cutover-fault-slot-loss' });
    await neu.query(`alter subscription ${quoteIdent(sub)} disable`);
    // the walsender lets go of the slot once the apply worker has stopped
    for (let i = 0; i < 200; i++) {
      const a = (await old.query(`select active from pg_replication_slots where slot_name = $1`, [slot])).rows[0];
      if (!a?.active) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const wantSwitches = opts.maxSwitches ?? 64;
    let status = s.wal_status ?? '';
    let switches = 0;
    while (status !== 'lost' && switches < wantSwitches) {
      // a logged write, then a switch: each round moves the WAL a whole segment on, cheaply
      await old.query(`select pg_logical_emit_message(false, 'cutover-lab-slot-loss', repeat('x', 1024))`);
      await old.query(`select pg_switch_wal()`);
      switches++;
      if (switches % 2 === 0) {
        await old.query(`checkpoint`);
        status = (await old.query(`select wal_status from pg_replication_slots where slot_name = $1`, [slot])).rows[0]?.wal_status ?? 'gone';
      }
    }
    if (status !== 'lost') throw new FaultNotApplied('slot-loss', `slot ${slot} is still ${status} after ${switches} WAL segment switches`, 'raise attributes.size only if wal_keep_size is large; check wal_keep_size on the old side');
    await neu.query(`alter subscription ${quoteIdent(sub)} enable`).catch(() => {});
    const restore = async () => {
      await withClient(opts.oldUrl, (c) => restoreSetting(c), { role: 'old primary', applicationName: 'cutover-fault-slot-loss' });
    };
    return { slot, walStatus: status, previous: previous!, switches, restore };
  } catch (e: any) {
    // nothing half-done: setting back, subscription enabled again
    await restoreSetting(old).catch(() => {});
    await neu?.query(`alter subscription ${quoteIdent(sub)} enable`).catch(() => {});
    if (e instanceof FaultNotApplied) throw e;
    throw new FaultNotApplied('slot-loss', redactSecrets(e?.message ?? String(e)), undefined, e);
  } finally {
    await old.end().catch(() => {});
    await neu?.end().catch(() => {});
  }
}

/** The recovery text for a lost slot. */
export const SLOT_LOST_RECOVERY =
  'the slot lost WAL the new side had not applied: it can never catch up. Do not switch. Stop replication (cutover replicate stop), then set it up again from scratch (a fresh initial copy); raise max_slot_wal_keep_size (or give the old side more disk) so it cannot happen on the night';

