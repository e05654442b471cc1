/**
 * Faults from a scenario's schedule: Toxiproxy toxics on a hop (app-old, app-new, replication),
 * process faults (kill -9 of the old or new postmaster, the sample app, the switchover), and
 * database faults — the ways the night goes wrong inside the clusters: `ddl` on the old primary,
 * a `conflict` row on the new side, a `long-transaction` open across the fence, a write `burst`.
 * A fault fires at a time after the load started (`atMs`) or when the switchover enters a phase,
 * and lasts `durationMs` (then it is removed: toxic deleted, proxy re-enabled, killed server
 * restarted). Every fault that fired is recorded for the report.
 */
import { readFileSync, statSync } from 'node:fs';
import { addToxic, type ToxicKind } from './toxiproxy.ts';
import type { Lab } from './lab.ts';
import { systemClock, type Clock } from '../migration/progress.ts';
import { CutoverError, redactSecrets } from '../migration/errors.ts';
import { connect, qualified, quoteIdent, quoteLiteral, serverMajor, withClient, type Client } from '../migration/pg.ts';
import { displayName, objectNames, parseTableName } from '../migration/replication.ts';
import { applyCompat, type ApplyCompatFinding } from '../migration/apply-compat.ts';
import { WatchSession } from '../migration/watch.ts';
import { describeWaiters, fillConnections, holdLock, loseSlot, pauseProcess, SLOT_LOST_RECOVERY } from './night-faults.ts';

export type DbFaultKind = 'ddl' | 'conflict' | 'long-transaction' | 'burst';
export const DB_FAULT_KINDS: readonly DbFaultKind[] = ['ddl', 'conflict', 'long-transaction', 'burst'];
/** The faults of a real night (lab/night-faults.ts): a hung process, a held lock, full slots, a lost slot. */
export type NightFaultKind = 'pause' | 'lock' | 'connections' | 'slot-loss';
export const NIGHT_FAULT_KINDS: readonly NightFaultKind[] = ['pause', 'lock', 'connections', 'slot-loss'];
export type FaultKind = ToxicKind | 'kill' | DbFaultKind | NightFaultKind;
export type Hop = 'app-old' | 'app-new' | 'replication';
export type KillTarget = 'old' | 'new' | 'app' | 'switchover';

export interface FaultSpec {
  kind: FaultKind;
  hop?: Hop;
  target?: KillTarget;
  /** ms after the load started. */
  atMs?: number;
  /** fire when the switchover enters this phase. */
  phase?: string;
  durationMs?: number;
  /** Toxic attributes (numbers); database faults also take text (sql, table, mode). */
  attributes?: Record<string, number | string | boolean>;
  stream?: 'upstream' | 'downstream';
}

export interface AppliedFault {
  kind: FaultKind;
  hop?: Hop;
  target?: KillTarget;
  atMs: number;
  durationMs?: number;
  attributes?: Record<string, number | string | boolean>;
  phase?: string;
  error?: string;
  /** Database faults: what the fault did or found, one line for the report. */
  effect?: string;
  /** conflict: how to get apply going again. */
  recovery?: string;
  /** Database faults: the measured result (long transaction's outcome, burst's rows, ddl findings). */
  outcome?: Record<string, unknown>;
  /** conflict: what the subscriber showed when the run ended (the runner fills it: detectConflict). */
  detection?: { detected: boolean; via: string[]; message?: string; finishLsn?: string };
}

export interface FaultHandlers {
  /** kill -9 the sample app (and bring it back after durationMs). */
  killApp?: () => Promise<void>;
  restartApp?: () => Promise<void>;
  /** kill -9 the switchover process; the runner resumes it from its state file. */
  killSwitchover?: () => Promise<void>;
  /**
   * long-transaction and burst: URL of an application role on the old primary. The fence only ends
   * sessions of application roles; with the lab's superuser URL (used when absent) the fence leaves
   * the fault's session alone, which is a different fault: a writer the fence does not cover.
   */
  oldAppUrl?: string;
  /** burst with attributes.multiplier: the load's rate in writes/s. */
  loadRate?: number;
  /** pause target app: the pid of the app's process now (its whole process tree is stopped). */
  appPid?: () => number | undefined;
}

export class FaultInjector {
  readonly applied: AppliedFault[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private undo = new Set<() => Promise<void>>();
  /** Removals of faults that have a duration (they end with the load at the latest). */
  private timedUndo = new Set<() => Promise<void>>();
  private t0 = 0;
  private stopped = false;
  /** Processes this injector stopped (pause), for resumePaused. */
  private readonly pauses = new Set<{ resume(): Promise<void> }>();
  /** The switchover phases that have started (a refusal by the fence is only one once the fence began). */
  private readonly phasesSeen = new Set<string>();

  constructor(
    private readonly lab: Lab,
    private readonly faults: readonly FaultSpec[],
    private readonly handlers: FaultHandlers = {},
    private readonly clock: Clock = { now: () => Date.now() },
    private readonly log: (s: string) => void = () => {},
  ) {}

  /** Arm the time-based faults; t0 is the load start. */
  start(t0 = this.clock.now()): void {
    this.t0 = t0;
    for (const f of this.faults) {
      if (f.atMs === undefined || f.phase) continue;
      const delay = Math.max(0, t0 + f.atMs - this.clock.now());
      this.later(delay, () => this.fire(f));
    }
  }

  /** Called by the switchover's phase hook. */
  async onPhase(phase: string): Promise<void> {
    this.phasesSeen.add(phase);
    await Promise.all(this.faults.filter((f) => f.phase === phase).map((f) => this.fire(f)));
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) void fn();
    }, ms);
    this.timers.add(t);
  }

  private async fire(f: FaultSpec): Promise<void> {
    const rec: AppliedFault = { kind: f.kind, hop: f.hop, target: f.target, atMs: this.clock.now() - this.t0, durationMs: f.durationMs, attributes: f.attributes, phase: f.phase };
    this.applied.push(rec);
    // after the load (cancelPending) nothing fires: its removal timer would never run, and nothing measures it
    if (this.stopped) {
      rec.error = `never fired: ${f.phase ? `phase ${f.phase} started` : 'its time came'} after the load had ended`;
      return;
    }
    try {
      const remove = await this.apply(f, rec);
      this.log(`fault: ${describeFault(f)} at +${rec.atMs} ms`);
      if (remove) {
        this.undo.add(remove);
        if (f.durationMs !== undefined) {
          const timed = async () => {
            if (!this.undo.delete(remove)) return;
            this.timedUndo.delete(timed);
            await remove().catch((e) => (rec.error = `removing: ${e?.message ?? e}`));
          };
          this.timedUndo.add(timed);
          this.later(f.durationMs, timed);
        }
      }
    } catch (e: any) {
      rec.error = e?.message ?? String(e);
      this.log(`fault ${describeFault(f)} could not be applied: ${rec.error}`);
    }
  }

  private async apply(f: FaultSpec, rec: AppliedFault): Promise<(() => Promise<void>) | undefined> {
    if ((DB_FAULT_KINDS as readonly string[]).includes(f.kind)) return this.applyDb(f, rec);
    if ((NIGHT_FAULT_KINDS as readonly string[]).includes(f.kind)) return this.applyNight(f, rec);
    if (f.kind === 'kill') {
      switch (f.target) {
        case 'old':
        case 'new': {
          const c = f.target === 'old' ? this.lab.old : this.lab.new;
          if (!c.kill || !c.restart) throw new Error(`the ${this.lab.record.provider} provider cannot kill a postmaster`);
          await c.kill();
          return () => c.restart!();
        }
        case 'app':
          if (!this.handlers.killApp) throw new Error('no sample app to kill in this run');
          await this.handlers.killApp();
          return this.handlers.restartApp;
        case 'switchover':
          if (!this.handlers.killSwitchover) throw new Error('the switchover does not run as a separate process in this run');
          await this.handlers.killSwitchover();
          return undefined;
        default:
          throw new Error(`kill needs a target: old, new, app or switchover`);
      }
    }
    if (!this.lab.toxiproxy) throw new Error('Toxiproxy is not running in this lab');
    if (!f.hop) throw new Error(`${f.kind} needs a hop: app-old, app-new or replication`);
    const numeric = Object.fromEntries(Object.entries(f.attributes ?? {}).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
    return addToxic(this.lab.toxiproxy, f.hop, f.kind as ToxicKind, numeric, f.stream ?? 'downstream');
  }

  private async applyDb(f: FaultSpec, rec: AppliedFault): Promise<(() => Promise<void>) | undefined> {
    const a = f.attributes ?? {};
    const str = (k: string) => (a[k] === undefined ? undefined : String(a[k]));
    const num = (k: string) => (a[k] === undefined ? undefined : Number(a[k]));
    const table = () => {
      const t = str('table');
      if (!t) throw new FaultNotApplied(f.kind, 'needs attributes.table', 'e.g. attributes: { table: orders }');
      return t;
    };
    const oldUrl = this.lab.old.url;
    const newUrl = this.lab.new.url;
    switch (f.kind as DbFaultKind) {
      case 'ddl': {
        const r = await applyDdlFault({ oldUrl, newUrl, sql: str('sql') ?? '' });
        rec.effect = r.effect;
        rec.outcome = { breaksApply: r.breaksApply, findings: r.findings };
        return undefined;
      }
      case 'conflict': {
        const logFile = this.lab.new.record.logFile;
        const logFromOffset = logFile ? safeSize(logFile) : undefined;
        const r = await applyConflictFault({ oldUrl, newUrl, table: table(), mode: str('mode') as 'now' | 'ahead' | undefined, rows: num('rows') });
        rec.effect = r.effect;
        rec.recovery = r.recovery;
        rec.outcome = { table: r.table, pk: r.pk, mode: r.mode, keys: r.keys, ...(logFile ? { logFile, logFromOffset } : {}) };
        // cleared after `duration`: the operator's lossless fix (remove the row, enable the subscription)
        return async () => {
          const t = parseTableName(r.table);
          await withClient(newUrl, async (c) => {
            const pk = (await c.query(`select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = $1::regclass and i.indisprimary`, [qualified(t.schema, t.name)])).rows[0].attname;
            await c.query(`delete from ${qualified(t.schema, t.name)} where ${quoteIdent(pk)}::text = any($1::text[])`, [r.keys.map(String)]);
            await c.query(`alter subscription ${quoteIdent(objectNames().subscription)} enable`).catch(() => {});
          });
        };
      }
      case 'long-transaction': {
        const lt = await this.unlessFenced(rec, () => startLongTransaction({ url: this.handlers.oldAppUrl ?? oldUrl, table: table(), rows: num('rows'), durationMs: f.durationMs ?? 0, clock: this.clock }));
        if (!lt) return undefined;
        rec.effect = `transaction (pid ${lt.pid}) holding ${num('rows') ?? 10} written row(s) in ${lt.table} open for ${f.durationMs} ms`;
        rec.outcome = { pid: lt.pid, outcome: 'open' };
        void lt.done.then((o) => {
          rec.outcome = { pid: lt.pid, ...o };
          rec.effect = `transaction (pid ${lt.pid}) on ${lt.table}: ${o.outcome} after ${o.heldMs} ms (${o.rowsCommitted} of ${o.rowsWritten} row(s) committed)`;
        });
        return async () => void (await lt.end());
      }
      case 'burst': {
        const mult = num('multiplier');
        if (mult !== undefined && !this.handlers.loadRate) throw new FaultNotApplied('burst', 'attributes.multiplier needs the load rate, which this run did not pass', 'give attributes.rate (rows per second) instead');
        const rate = num('rate') ?? (mult !== undefined ? mult * this.handlers.loadRate! : undefined);
        const b = await this.unlessFenced(rec, () => startBurst({ url: this.handlers.oldAppUrl ?? oldUrl, table: table(), durationMs: f.durationMs ?? 0, rows: num('rows'), rate, clock: this.clock }));
        if (!b) return undefined;
        rec.effect = `write burst on ${b.table}: ${num('rows') !== undefined ? `${num('rows')} rows` : `${rate} rows/s`} for ${f.durationMs} ms`;
        void b.done.then((o) => {
          rec.outcome = { ...o };
          rec.effect = `write burst on ${b.table}: ${o.rowsWritten} rows in ${o.ms} ms (${o.rate} rows/s)${o.error ? `, stopped by: ${o.error}` : ''}`;
        });
        return async () => void (await b.stop());
      }
    }
  }

  /**
   * long-transaction and burst run as the application role: after the switchover's fence the old
   * primary refuses that role's login (terminate fence: NOLOGIN) or its writes (read-only fence).
   * That is the fence doing its job, not a fault that could not be applied — recorded as the
   * fault's effect (nothing written), and the run is judged on what it measured.
   */
  private async unlessFenced<T>(rec: AppliedFault, start: () => Promise<T>): Promise<T | undefined> {
    try {
      return await start();
    } catch (e: any) {
      const cause = e?.cause ?? e;
      const code = cause?.code ?? cause?.cause?.code;
      const text = `${e?.message ?? ''} ${cause?.message ?? ''}`;
      const fenced = this.handlers.oldAppUrl && this.phasesSeen.has('fence') && (code === '28000' && /not permitted to log in/.test(text) ? 'login' : code === '25006' || /read-only transaction/.test(text) ? 'write' : undefined);
      if (!fenced) throw e;
      const why = redactSecrets(String(cause?.message ?? e?.message ?? e)).replace(/^.*?rejected the login: /, '');
      rec.effect = `refused by the switchover's fence on the old primary (${fenced === 'login' ? 'the app role cannot log in' : 'the app role cannot write'}: ${why}): nothing written`;
      rec.outcome = { refusedByFence: fenced, rowsWritten: 0 };
      return undefined;
    }
  }

  private async applyNight(f: FaultSpec, rec: AppliedFault): Promise<(() => Promise<void>) | undefined> {
    const a = f.attributes ?? {};
    const side = (): 'old' | 'new' => {
      if (a.side !== 'old' && a.side !== 'new') throw new FaultNotApplied(f.kind, `attributes.side must be old or new (got ${JSON.stringify(a.side)})`, 'attributes: { side: old }');
      return a.side;
    };
    const needDuration = () => {
      if (!(f.durationMs && f.durationMs > 0)) throw new FaultNotApplied(f.kind, 'needs a duration', 'e.g. duration: 10s');
    };
    switch (f.kind as NightFaultKind) {
      case 'pause': {
        needDuration();
        let what: string;
        let pid: number | undefined;
        if (f.target === 'old' || f.target === 'new') {
          const c = f.target === 'old' ? this.lab.old : this.lab.new;
          if (this.lab.record.provider !== 'embedded') throw new FaultNotApplied('pause', `the ${this.lab.record.provider} provider does not run the ${f.target} server as a process of the lab`, 'pause servers on embedded clusters, or pause target app');
          what = `the ${f.target} server's postmaster`;
          pid = c.record.pid;
        } else if (f.target === 'app') {
          if (!this.handlers.appPid) throw new FaultNotApplied('pause', 'no app process to pause in this run');
          what = 'the app';
          pid = this.handlers.appPid();
        } else throw new FaultNotApplied('pause', `target must be old, new or app (got ${JSON.stringify(f.target)})`);
        const p = await pauseProcess(what, pid);
        this.pauses.add(p);
        const t0 = this.clock.now();
        rec.effect = `${what} (pid ${pid}) and ${p.pids.length - 1} child process(es) stopped (SIGSTOP) for ${f.durationMs} ms: connections open, nothing answers`;
        rec.outcome = { pids: p.pids.length, resumed: false };
        return async () => {
          await p.resume();
          const ms = this.clock.now() - t0;
          rec.outcome = { pids: p.pids.length, resumed: true, stoppedMs: ms };
          rec.effect = `${what} (pid ${pid}) and ${p.pids.length - 1} child process(es) stopped (SIGSTOP) for ${ms} ms, then resumed (SIGCONT)`;
        };
      }
      case 'lock': {
        needDuration();
        const sd = side();
        const table = a.table === undefined ? undefined : String(a.table);
        if (!table) throw new FaultNotApplied('lock', 'needs attributes.table', 'e.g. attributes: { side: new, table: orders }');
        const l = await holdLock({ url: sd === 'old' ? this.lab.old.url : this.lab.new.url, side: sd, table, mode: a.mode });
        rec.effect = `LOCK TABLE ${l.table} IN ${l.mode} MODE held on the ${sd} side (pid ${l.pid})`;
        rec.outcome = { side: sd, table: l.table, mode: l.mode, released: false };
        return async () => {
          const ms = await l.release();
          rec.outcome = { side: sd, table: l.table, mode: l.mode, released: true, heldMs: ms, maxWaiting: l.maxWaiting, waiters: l.waiters.map((w) => ({ backendType: w.backendType, role: w.role, application: w.application, waitEvent: w.waitEvent })) };
          rec.effect = `LOCK TABLE ${l.table} IN ${l.mode} MODE held on the ${sd} side for ${ms} ms: ${describeWaiters(l.waiters)} (at most ${l.maxWaiting} at once)`;
        };
      }
      case 'connections': {
        needDuration();
        const sd = side();
        const r = await fillConnections({ adminUrl: sd === 'old' ? this.lab.old.url : this.lab.new.url, side: sd, reserved: a.reserved === undefined ? 0 : Number(a.reserved) });
        const base = `${r.taken} free connection slot(s) of the ${sd} side taken by idle sessions of ${r.role} (max_connections ${r.maxConnections}, ${r.superuserReserved} reserved for superusers${r.reservedConnections ? `, ${r.reservedConnections} for pg_use_reserved_connections` : ''}, ${Number(a.reserved ?? 0)} left free)`;
        rec.effect = `${base}; the server then refused: ${r.refusal}`;
        rec.outcome = { side: sd, taken: r.taken, maxConnections: r.maxConnections, reserved: Number(a.reserved ?? 0), released: false };
        return async () => {
          await r.release();
          rec.outcome = { ...rec.outcome, released: true };
        };
      }
      case 'slot-loss': {
        const size = a.size === undefined ? 1 : Number(a.size);
        const r = await loseSlot({ oldUrl: this.lab.old.url, newUrl: this.lab.new.url, sizeMb: size });
        rec.effect = `replication slot ${r.slot} on the old side: wal_status ${r.walStatus} (max_slot_wal_keep_size ${size}MB, was ${r.previous}; ${r.switches} WAL segment(s) forced with the subscription disabled)`;
        rec.recovery = SLOT_LOST_RECOVERY;
        rec.outcome = { slot: r.slot, walStatus: r.walStatus, previous: r.previous, restored: false };
        // restored at the duration, or at teardown: the setting must not outlive the run
        return async () => {
          await r.restore();
          rec.outcome = { ...rec.outcome, restored: true };
        };
      }
    }
  }

  /**
   * Fire nothing more (the load is over), but leave the active faults as they are: a fault that
   * lasts "until the end of the run" (a killed server not restarted) must still hold while the
   * run is measured; one with a duration ends now. clear() removes the rest afterwards.
   */
  async cancelPending(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // a fault with a duration would have been removed by its timer: remove it now
    const timed = [...this.timedUndo];
    this.timedUndo.clear();
    if (timed.length && this.liftedAtMs === undefined) this.liftedAtMs = this.clock.now();
    await Promise.allSettled(timed.map((u) => u()));
  }

  /**
   * Epoch ms when the load's end lifted faults still in force (their durations outlasted the load);
   * undefined when none was. What a client saw succeed after it was the lab's doing, not the
   * system recovering: measurement treats the load as ending there.
   */
  liftedAtMs?: number;

  /**
   * SIGCONT every process a pause fault stopped, now (their records are completed by clear()). The
   * teardown does this first: anything else it stops (the timeline's sampler, a switchover's
   * session) may be waiting for an answer from the stopped server.
   */
  async resumePaused(): Promise<void> {
    const p = [...this.pauses];
    this.pauses.clear();
    await Promise.allSettled(p.map((x) => x.resume()));
  }

  /** Cancel pending faults and remove the active ones (servers restarted, proxies re-enabled). */
  async clear(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const undo = [...this.undo];
    this.undo.clear();
    this.timedUndo.clear();
    await Promise.allSettled(undo.map((u) => u()));
  }
}

function safeSize(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

export function describeFault(f: FaultSpec): string {
  const a = f.attributes ?? {};
  const short = (v: unknown) => {
    const t = String(v).replace(/\s+/g, ' ').trim();
    return t.length > 60 ? t.slice(0, 57) + '…' : t;
  };
  const where =
    f.kind === 'kill'
      ? `kill -9 ${f.target}`
      : f.kind === 'ddl'
        ? `ddl "${short(a.sql ?? '')}" on old`
        : f.kind === 'pause'
          ? `pause (SIGSTOP) ${f.target}`
          : f.kind === 'slot-loss'
            ? 'slot-loss on old'
            : f.kind === 'connections'
              ? `connections on ${a.side ?? '?'}`
              : f.kind === 'lock'
                ? `lock ${a.mode ?? 'ACCESS EXCLUSIVE'} on ${a.table ?? '?'} (${a.side ?? '?'})`
                : (DB_FAULT_KINDS as readonly string[]).includes(f.kind)
          ? `${f.kind} on ${a.table ?? '?'}`
          : `${f.kind} on ${f.hop}`;
  const when = f.phase ? `at phase ${f.phase}` : `at ${f.atMs ?? 0} ms`;
  return `${where} ${when}${f.durationMs !== undefined ? ` for ${f.durationMs} ms` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Database faults: what goes wrong inside the clusters on the night (not on the network)
// ---------------------------------------------------------------------------------------------

/** Raised when a database fault could not be applied; the runner turns it into a NO-GO for the run. */
export class FaultNotApplied extends CutoverError {
  constructor(kind: string, message: string, hint?: string, cause?: unknown) {
    super('PRECONDITION', `${kind} fault could not be applied: ${message}`, { hint, cause });
  }
}

interface CloneTarget {
  schema: string;
  name: string;
  display: string;
  qualified: string;
  pk: string;
  pkType: string;
  /** Columns written by the clone, pk first. */
  columns: string[];
  /** nextval(...) of the pk's sequence (serial or identity), if it has one. */
  sequence: string | null;
}

/** Resolve a table for row cloning: single-column primary key, at least one row to copy. */
async function cloneTarget(c: Client, kind: string, table: string, side = 'old primary'): Promise<CloneTarget> {
  const t = parseTableName(table);
  const q = qualified(t.schema, t.name);
  const exists = (await c.query(`select to_regclass($1) as r`, [q])).rows[0].r;
  if (!exists) throw new FaultNotApplied(kind, `table ${displayName(t)} does not exist on the ${side}`, 'set attributes.table to a published table of the dataset, e.g. orders');
  const major = await serverMajor(c);
  const pk = (
    await c.query<{ col: string; type: string }>(
      `select a.attname as col, format_type(a.atttypid, a.atttypmod) as type
         from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = $1::regclass and i.indisprimary`,
      [q],
    )
  ).rows;
  if (pk.length !== 1) throw new FaultNotApplied(kind, `${displayName(t)} needs a single-column primary key (on the ${side} it has ${pk.length ? pk.map((p) => p.col).join(', ') : 'none'})`, 'choose a table with a one-column primary key');
  const cols = (
    await c.query<{ name: string }>(
      `select attname as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped ${major >= 12 ? "and attgenerated = ''" : ''} order by attnum`,
      [q],
    )
  ).rows.map((r) => r.name);
  const seq = (await c.query<{ s: string | null }>(`select pg_get_serial_sequence($1, $2) as s`, [q, pk[0].col])).rows[0].s;
  const any = (await c.query(`select 1 from ${q} limit 1`)).rows.length;
  if (!any) throw new FaultNotApplied(kind, `${displayName(t)} is empty on the ${side}: the fault copies an existing row with a new key`, 'choose a seeded table, or raise dataset.scale');
  return { schema: t.schema, name: t.name, display: displayName(t), qualified: q, pk: pk[0].col, pkType: pk[0].type, columns: [pk[0].col, ...cols.filter((x) => x !== pk[0].col)], sequence: seq };
}

/**
 * INSERT … SELECT copies of the newest row with new keys (`keys`: a SQL expression over g, the
 * generate_series counter). Copies keep every other value, so a table with another unique key
 * (an email, an idempotency key) cannot be used: that is said, not hidden.
 */
function cloneSql(t: CloneTarget, count: number, keyExpr: string): string {
  const rest = t.columns.slice(1).map((x) => `t.${quoteIdent(x)}`);
  return `insert into ${t.qualified} (${t.columns.map(quoteIdent).join(', ')}) overriding system value
          select ${[keyExpr, ...rest].join(', ')}
            from (select * from ${t.qualified} order by ${quoteIdent(t.pk)} desc limit 1) t cross join generate_series(1, ${Math.max(1, Math.floor(count))}) g`;
}

function nextKeyExpr(t: CloneTarget): string {
  if (t.sequence) return `nextval(${quoteLiteral(t.sequence)})`;
  if (/^(smallint|integer|bigint|numeric)/.test(t.pkType)) return `(select coalesce(max(${quoteIdent(t.pk)}), 0) from ${t.qualified}) + g`;
  if (/^(text|character varying)/.test(t.pkType)) return `'cutover-fault-' || md5(random()::text || clock_timestamp()::text || g)`;
  if (t.pkType === 'uuid') return `md5(random()::text || clock_timestamp()::text || g)::uuid`;
  throw new FaultNotApplied('row', `cannot make new keys of type ${t.pkType} for ${t.display}`, 'choose a table with an integer, text or uuid primary key');
}

async function runClone(c: Client, kind: string, t: CloneTarget, sql: string): Promise<number> {
  try {
    return (await c.query(sql)).rowCount ?? 0;
  } catch (e: any) {
    if (e?.code === '23505') throw new FaultNotApplied(kind, `copying a row of ${t.display} hits another unique key: ${e.message}`, 'choose a table whose only unique key is its primary key (e.g. orders or ledger_entries in the payments dataset)', e);
    throw new FaultNotApplied(kind, `writing into ${t.display}: ${redactSecrets(e?.message ?? String(e))}`, e?.hint, e);
  }
}

// --- ddl ---------------------------------------------------------------------------------------

export interface DdlFaultResult {
  statement: string;
  /** What the statement does to replication, from comparing the published tables on both sides. */
  findings: ApplyCompatFinding[];
  breaksApply: boolean;
  /** One line for the report. */
  effect: string;
}

/** Run `sql` on the old primary (DDL is not replicated) and say what it does to replication. */
export async function applyDdlFault(opts: { oldUrl: string; newUrl: string; sql: string; publication?: string }): Promise<DdlFaultResult> {
  if (!opts.sql?.trim()) throw new FaultNotApplied('ddl', 'attributes.sql is empty', 'e.g. attributes: { sql: "alter table orders add column gift boolean" }');
  try {
    await withClient(opts.oldUrl, (c) => c.query(opts.sql), { role: 'old primary', applicationName: 'cutover-fault-ddl' });
  } catch (e: any) {
    throw new FaultNotApplied('ddl', `the statement failed on the old primary: ${redactSecrets(e?.message ?? String(e))}`, e?.hint ?? 'check attributes.sql against the dataset', e);
  }
  const findings = await applyCompat({ source: opts.oldUrl, target: opts.newUrl, publication: opts.publication ?? objectNames().publication });
  const breaksApply = findings.some((f) => f.effect === 'breaks');
  const effect = findings.length ? findings.map((f) => `${f.effect}: ${f.message}`).join('; ') : 'no difference between the published tables on both sides (the statement does not affect replication)';
  return { statement: opts.sql, findings, breaksApply, effect };
}

// --- conflict ----------------------------------------------------------------------------------

export interface ConflictFaultResult {
  table: string;
  /** The primary key column the keys are of. */
  pk: string;
  mode: 'now' | 'ahead';
  /** Keys of the rows made on the new side. */
  keys: Array<string | number>;
  recovery: string;
  effect: string;
}

/**
 * A row on the new side that replication will collide with (a unique violation stops apply: it
 * retries forever, or disable_on_error stops the subscription on 15+).
 *  - `now`: the same new row on the new side, then on the old one: the collision follows at once;
 *  - `ahead`: rows on the new side at the next keys of the old side's sequence: the load's next
 *    inserts into that table collide (what an early write on the new side does on the night).
 */
export async function applyConflictFault(opts: { oldUrl: string; newUrl: string; table: string; mode?: 'now' | 'ahead'; rows?: number; subscription?: string }): Promise<ConflictFaultResult> {
  const mode = opts.mode ?? 'now';
  if (mode !== 'now' && mode !== 'ahead') throw new FaultNotApplied('conflict', `attributes.mode must be now or ahead (got ${JSON.stringify(mode)})`);
  const sub = opts.subscription ?? objectNames().subscription;
  const old = await connect(opts.oldUrl, { role: 'old primary', applicationName: 'cutover-fault-conflict' });
  let neu: Client | undefined;
  try {
    neu = await connect(opts.newUrl, { role: 'new primary', applicationName: 'cutover-fault-conflict' });
    const t = await cloneTarget(old, 'conflict', opts.table);
    const tn = await cloneTarget(neu, 'conflict', opts.table, 'new primary');
    const newMajor = await serverMajor(neu);
    let keys: Array<string | number>;
    if (mode === 'now') {
      if (!/^(smallint|integer|bigint)/.test(t.pkType)) throw new FaultNotApplied('conflict', `mode now needs an integer primary key (${t.display}.${t.pk} is ${t.pkType})`, 'use mode: ahead, or an integer-keyed table');
      // far above the keys the load is using, so only our own row collides
      const k = Number((await old.query(`select coalesce(max(${quoteIdent(t.pk)}), 0) + 1000000 + (random() * 1000)::int as k from ${t.qualified}`)).rows[0].k);
      await runClone(neu, 'conflict', tn, cloneSql(tn, 1, String(k)));
      try {
        await runClone(old, 'conflict', t, cloneSql(t, 1, String(k)));
      } catch (e) {
        // leave nothing behind when the fault did not happen
        await neu.query(`delete from ${tn.qualified} where ${quoteIdent(tn.pk)} = $1`, [k]).catch(() => {});
        throw e;
      }
      keys = [k];
    } else {
      if (!t.sequence) throw new FaultNotApplied('conflict', `mode ahead needs a sequence-fed key (${t.display}.${t.pk} has none)`, 'use mode: now');
      const n = Math.max(1, Math.floor(opts.rows ?? 20));
      // pg_sequence_last_value needs no privilege on the sequence's data and does not consume a value
      const last = Number((await old.query(`select coalesce(pg_sequence_last_value($1::regclass), 0) as v`, [t.sequence])).rows[0].v);
      await runClone(neu, 'conflict', tn, cloneSql(tn, n, `${last} + g`));
      keys = Array.from({ length: n }, (_, i) => last + 1 + i);
    }
    const recovery = conflictRecovery({ subscription: sub, table: t.display, pk: t.pk, keys, targetMajor: newMajor });
    return { table: t.display, pk: t.pk, mode, keys, recovery, effect: `row(s) ${t.pk} = ${keys.length > 3 ? `${keys[0]}…${keys[keys.length - 1]}` : keys.join(', ')} made on the new side of ${t.display}: the next replicated insert with that key stops apply (unique violation)` };
  } finally {
    await old.end().catch(() => {});
    await neu?.end().catch(() => {});
  }
}

/** How to get apply going again after a unique-violation conflict: the lossless way first. */
export function conflictRecovery(o: { subscription: string; table: string; pk: string; keys: Array<string | number>; targetMajor: number; finishLsn?: string }): string {
  const list = o.keys.map((k) => (typeof k === 'number' ? String(k) : quoteLiteral(String(k)))).join(', ');
  const del = `on the new primary: DELETE FROM ${o.table} WHERE ${quoteIdent(o.pk)} IN (${list}); — apply retries the transaction and goes on, nothing is lost`;
  const enable = `then ALTER SUBSCRIPTION ${quoteIdent(o.subscription)} ENABLE if disable_on_error stopped it`;
  if (o.targetMajor >= 15)
    return `${del}; ${enable}. Or ALTER SUBSCRIPTION ${quoteIdent(o.subscription)} SKIP (lsn = '${o.finishLsn ?? '<the "finished at" LSN in the new primary\'s server log>'}') — this drops the WHOLE old-side transaction on the new side (its rows must be re-applied by hand)`;
  return `${del} (PostgreSQL ${o.targetMajor} has no ALTER SUBSCRIPTION … SKIP: removing the colliding row is the only way; the worker retries every wal_retrieve_retry_interval until then)`;
}

export interface ConflictDetection {
  detected: boolean;
  /** pg_stat_subscription_stats, a disabled subscription, the worker down, or the server log. */
  via: string[];
  /** The log's ERROR line, when the log could be read. */
  message?: string;
  /** The remote transaction's finish LSN (15+ subscribers log it), for ALTER SUBSCRIPTION … SKIP. */
  finishLsn?: string;
}

/** Read the subscriber's log (from `fromOffset`) for an apply conflict. */
export function scanSubscriberLog(text: string): { message?: string; finishLsn?: string } {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /ERROR:.*(duplicate key value violates unique constraint|conflict detected)/.test(l));
  if (i < 0) return {};
  const around = lines.slice(i, i + 6).join('\n');
  const lsn = /finished at ([0-9A-F]+\/[0-9A-F]+)/i.exec(around)?.[1];
  return { message: lines[i].replace(/^.*?ERROR:\s*/, '').trim(), ...(lsn ? { finishLsn: lsn } : {}) };
}

/** Has apply hit a conflict? One look (the caller polls): subscriber stats and, if given, its log. */
export async function detectConflict(opts: { oldUrl: string; newUrl: string; subscription?: string; logFile?: string; logFromOffset?: number }): Promise<ConflictDetection> {
  const session = new WatchSession({ source: opts.oldUrl, target: opts.newUrl, subscription: opts.subscription });
  try {
    const s = await session.sample();
    const via: string[] = [];
    if ((s.subscription.applyErrorCount ?? 0) > 0) via.push(`pg_stat_subscription_stats.apply_error_count = ${s.subscription.applyErrorCount}`);
    if (s.subscription.conflicts && Object.values(s.subscription.conflicts).some((v) => v > 0)) via.push(`conflict counters ${JSON.stringify(s.subscription.conflicts)}`);
    if (s.subscription.applyState === 'disabled') via.push('subscription disabled (disable_on_error)');
    let log: { message?: string; finishLsn?: string } = {};
    if (opts.logFile) {
      try {
        const buf = readFileSync(opts.logFile);
        log = scanSubscriberLog(buf.subarray(opts.logFromOffset ?? 0).toString('utf8'));
        if (log.message) via.push('subscriber log');
      } catch {
        /* no log to read: the stats decide */
      }
    }
    return { detected: via.length > 0, via, ...log };
  } finally {
    await session.close();
  }
}

// --- long-transaction --------------------------------------------------------------------------

export interface LongTransactionOutcome {
  outcome: 'committed' | 'terminated' | 'failed';
  heldMs: number;
  rowsWritten: number;
  /** Rows that are on the old primary for good (0 unless committed). */
  rowsCommitted: number;
  error?: string;
}

export interface LongTransaction {
  pid: number;
  table: string;
  /** Resolves when the transaction ends: committed after `durationMs`, or ended by the fence. */
  done: Promise<LongTransactionOutcome>;
  /** End it now (commit); used when the fault is cleared early. */
  end(): Promise<LongTransactionOutcome>;
}

/**
 * A transaction on the old primary that has written rows and stays open for `durationMs`, then
 * commits: across the fence, it shows what the fence does with it (a terminate fence ends it, its
 * rows were never acknowledged; a fence that waits pays its remaining time) and while it is open
 * the slot cannot move restart_lsn past it (WAL kept grows). Run it as an application role
 * (`url`), or the fence will not treat it as an application session.
 */
export async function startLongTransaction(opts: { url: string; table: string; rows?: number; durationMs: number; clock?: Clock }): Promise<LongTransaction> {
  if (!(opts.durationMs > 0)) throw new FaultNotApplied('long-transaction', 'needs a duration (how long the transaction stays open)', 'e.g. duration: 20s');
  const clock = opts.clock ?? systemClock;
  const c = await connect(opts.url, { role: 'old primary', applicationName: 'cutover-fault-long-transaction' });
  let t: CloneTarget;
  let rows = 0;
  const started = clock.now();
  try {
    t = await cloneTarget(c, 'long-transaction', opts.table);
    await c.query('begin');
    rows = await runClone(c, 'long-transaction', t, cloneSql(t, opts.rows ?? 10, nextKeyExpr(t)));
  } catch (e) {
    await c.end().catch(() => {});
    throw e instanceof CutoverError ? e : new FaultNotApplied('long-transaction', redactSecrets((e as Error)?.message ?? String(e)));
  }
  const pid = (await c.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows[0].pid;
  let settle!: (o: LongTransactionOutcome) => void;
  const done = new Promise<LongTransactionOutcome>((r) => (settle = r));
  let finished = false;
  const finish = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    try {
      await c.query('commit');
      settle({ outcome: 'committed', heldMs: clock.now() - started, rowsWritten: rows, rowsCommitted: rows });
    } catch (e: any) {
      const terminated = e?.code === '57P01' || /terminat/i.test(e?.message ?? '');
      settle({ outcome: terminated ? 'terminated' : 'failed', heldMs: clock.now() - started, rowsWritten: rows, rowsCommitted: 0, error: redactSecrets(e?.message ?? String(e)) });
    } finally {
      await c.end().catch(() => {});
    }
  };
  const timer = setTimeout(() => void finish(), opts.durationMs);
  // A fence that terminates the session ends the transaction before its time: notice it at once.
  c.on('error', (e: any) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    settle({ outcome: e?.code === '57P01' ? 'terminated' : 'failed', heldMs: clock.now() - started, rowsWritten: rows, rowsCommitted: 0, error: redactSecrets(e?.message ?? String(e)) });
    void c.end().catch(() => {});
  });
  return {
    pid,
    table: t.display,
    done,
    end: async () => {
      await finish();
      return done;
    },
  };
}

// --- burst -------------------------------------------------------------------------------------

export interface BurstOutcome {
  rowsWritten: number;
  ms: number;
  /** Rows per second achieved (the old primary may not take the rate asked for). */
  rate: number;
  error?: string;
}

export interface Burst {
  table: string;
  done: Promise<BurstOutcome>;
  stop(): Promise<BurstOutcome>;
}

/**
 * A write burst on the old primary (a batch job on the night): `rows` spread over `durationMs`, or
 * `rate` rows per second, in one transaction per tick — so the WAL comes in chunks the subscriber
 * must apply whole, and lag rises past the catch-up gate while it lasts.
 */
export async function startBurst(opts: { url: string; table: string; durationMs: number; rows?: number; rate?: number; tickMs?: number; clock?: Clock }): Promise<Burst> {
  if (!(opts.durationMs > 0)) throw new FaultNotApplied('burst', 'needs a duration', 'e.g. duration: 10s');
  if (opts.rows === undefined && opts.rate === undefined) throw new FaultNotApplied('burst', 'needs attributes.rows (total) or attributes.rate (rows per second), or multiplier (× the load rate)');
  const clock = opts.clock ?? systemClock;
  const tick = opts.tickMs ?? 250;
  const perTick = Math.max(1, Math.round(opts.rate !== undefined ? (opts.rate * tick) / 1000 : (opts.rows! * tick) / opts.durationMs));
  const c = await connect(opts.url, { role: 'old primary', applicationName: 'cutover-fault-burst' });
  // a fence that terminates the session: keep its message (the next query only says "not queryable")
  let lost: string | undefined;
  c.on('error', (e: any) => void (lost ??= redactSecrets(e?.message ?? String(e))));
  let t: CloneTarget;
  try {
    t = await cloneTarget(c, 'burst', opts.table);
  } catch (e) {
    await c.end().catch(() => {});
    throw e;
  }
  const sql = cloneSql(t, perTick, nextKeyExpr(t));
  // the first batch runs before we return, so a burst that cannot write is reported as not applied
  const started = clock.now();
  let written = 0;
  try {
    written += await runClone(c, 'burst', t, sql);
  } catch (e) {
    await c.end().catch(() => {});
    throw e;
  }
  let stopping = false;
  const done = (async (): Promise<BurstOutcome> => {
    let error: string | undefined;
    let next = started + tick;
    try {
      while (!stopping && clock.now() - started < opts.durationMs && (opts.rows === undefined || written < opts.rows)) {
        const wait = next - clock.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        next += tick;
        if (stopping) break;
        written += (await c.query(sql)).rowCount ?? 0;
      }
    } catch (e: any) {
      error = lost ?? redactSecrets(e?.message ?? String(e));
    } finally {
      await c.end().catch(() => {});
    }
    const ms = clock.now() - started;
    return { rowsWritten: written, ms, rate: ms > 0 ? Math.round((written * 1000) / ms) : written, ...(error ? { error } : {}) };
  })();
  return {
    table: t.display,
    done,
    stop: async () => {
      stopping = true;
      return done;
    },
  };
}
