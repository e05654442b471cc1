/**
 * Watching a logical replication between rehearsals and on the night itself: one sample of what
 * both clusters are going through (WAL the slot keeps, confirmed-flush lag in bytes and seconds,
 * the apply worker's state and error counts, xid ages, connections), thresholds over it, and the
 * transitions between healthy and crossed that an alert is sent for.
 *
 * Every query is read-only and works with `pg_monitor` membership on both sides (plain login roles
 * see most of it; see `WATCH_PRIVILEGES`), so the same code runs against production. Sampling and
 * deciding are apart: `WatchSession.sample()` talks to the servers, `evaluate()` and
 * `transitions()` are pure and unit-tested.
 */
import { CutoverError, redactSecrets } from './errors.ts';
import { connect, describeTarget, serverMajor, type Client } from './pg.ts';
import { objectNames } from './replication.ts';
import { systemClock, type Clock } from './progress.ts';
import { applyCompat, type ApplyCompatFinding } from './apply-compat.ts';

/** What the watch needs, per side, said once for the README and `--help`. */
export const WATCH_PRIVILEGES =
  'source: any login role can read pg_replication_slots and pg_database; pg_monitor (or pg_read_all_stats) is needed for lag in seconds from pg_stat_replication and for other roles\' transaction ages in pg_stat_activity. ' +
  'target: any login role can read pg_subscription (without subconninfo), pg_stat_subscription and pg_stat_subscription_stats. No superuser, nothing is written.';

export interface WatchTarget {
  source: string;
  target: string;
  /** Replication name as `cutover replicate` uses it (objects cutover_<name>). */
  name?: string;
  /** Override the subscription / slot / publication name (a replication not created by cutover). */
  subscription?: string;
  slot?: string;
  publication?: string;
}

export type ApplyState = 'streaming' | 'syncing' | 'down' | 'disabled' | 'missing' | 'unknown';

export interface SideFigures {
  reachable: boolean;
  error?: string;
  major: number | null;
  /** Client backends on the server (all databases), our own connection excluded. */
  connections: number | null;
  /** Of those, inside a transaction that is idle. */
  idleInTransaction: number | null;
  /** Age of the oldest open transaction (seconds), our own excluded. */
  oldestXactSeconds: number | null;
  /** max(age(datfrozenxid)) over the databases: distance to wraparound pressure. */
  datfrozenxidAge: number | null;
}

export interface WatchSample {
  /** ISO time of the sample. */
  at: string;
  tMs: number;
  replication: { subscription: string; slot: string };
  source: SideFigures & { walLsn: string | null };
  target: SideFigures;
  slot: {
    exists: boolean;
    active: boolean | null;
    walRetainedBytes: number | null;
    lagBytes: number | null;
    confirmedFlushLsn: string | null;
    walStatus: string | null;
    xminAge: number | null;
    catalogXminAge: number | null;
  };
  lagBytes: number | null;
  lagSeconds: number | null;
  /** Where lagSeconds comes from: the walsender's replay/flush lag, the watch's own LSN history, or "caught up". */
  lagSecondsFrom: 'walsender' | 'history' | 'history-lower-bound' | 'caught-up' | null;
  /**
   * Published tables compared on both sides (DDL is not replicated), when the watch checked them
   * (every `schemaEveryMs`; the last result is carried between checks). Absent when not checked.
   */
  schema?: { checkedAt: string; findings: ApplyCompatFinding[]; error?: string };
  subscription: {
    exists: boolean;
    enabled: boolean | null;
    disableOnError: boolean | null;
    applyState: ApplyState;
    workerPid: number | null;
    syncWorkers: number;
    lastMessageAt: string | null;
    /** pg_stat_subscription_stats (15+ subscriber); null before. */
    applyErrorCount: number | null;
    syncErrorCount: number | null;
    /** confl_* counters of pg_stat_subscription_stats (18+ subscriber), e.g. insert_exists. */
    conflicts: Record<string, number> | null;
  };
}

// ---------------------------------------------------------------------------------------------
// LSN arithmetic (for lag in seconds from the watch's own history)
// ---------------------------------------------------------------------------------------------

/** '16/B374D848' → bytes. Numbers stay exact up to 8 PB of WAL. */
export function lsnToNumber(lsn: string): number {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn.trim());
  if (!m) throw new CutoverError('INTERNAL', `not an LSN: ${lsn}`);
  return parseInt(m[1], 16) * 2 ** 32 + parseInt(m[2], 16);
}

export interface LsnPoint {
  tMs: number;
  lsn: number;
}

/**
 * Seconds the subscriber is behind, from the times the source's WAL was at each position: the
 * confirmed-flush position was the source's current position at some earlier instant (interpolated
 * between samples). When it is older than the first sample, the elapsed time is a lower bound.
 */
export function lagSecondsFromHistory(history: readonly LsnPoint[], confirmed: number, nowMs: number): { seconds: number; lowerBound: boolean } | null {
  if (!history.length) return null;
  const last = history[history.length - 1];
  if (confirmed >= last.lsn) return { seconds: 0, lowerBound: false };
  // older than anything we saw: at least as old as our history (nothing to say on the first sample)
  if (confirmed < history[0].lsn) return nowMs > history[0].tMs ? { seconds: (nowMs - history[0].tMs) / 1000, lowerBound: true } : null;
  for (let i = history.length - 1; i > 0; i--) {
    const a = history[i - 1];
    const b = history[i];
    if (confirmed >= a.lsn && confirmed <= b.lsn) {
      const f = b.lsn === a.lsn ? 1 : (confirmed - a.lsn) / (b.lsn - a.lsn);
      const t = a.tMs + f * (b.tMs - a.tMs);
      return { seconds: Math.max(0, (nowMs - t) / 1000), lowerBound: false };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

const SIDE_SQL = `
  select (select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid())::int as conns,
         (select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and state like 'idle in transaction%')::int as idle_tx,
         (select extract(epoch from max(now() - xact_start)) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and xact_start is not null)::float8 as oldest_xact,
         (select max(age(datfrozenxid)) from pg_database)::int8 as frozen_age`;

function emptySide(error?: string): SideFigures {
  return { reachable: false, ...(error ? { error } : {}), major: null, connections: null, idleInTransaction: null, oldestXactSeconds: null, datfrozenxidAge: null };
}

export interface WatchSessionOptions {
  clock?: Clock;
  /** How much LSN history to keep for lag in seconds (default 1 h). */
  historyMs?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  applicationName?: string;
}

/**
 * Two long-lived read-only connections and the LSN history. A side that stops answering is
 * reported in the sample (reachable: false) and reconnected on the next one, so a watch outlives
 * a restart of either server.
 */
export class WatchSession {
  readonly subscription: string;
  readonly slot: string;
  private src?: Client;
  private tgt?: Client;
  private majors: { src?: number; tgt?: number } = {};
  /** pg_backend_pid() of our own connection per side: its parent is the postmaster when the server is local. */
  readonly backendPids: { source?: number; target?: number } = {};
  private history: LsnPoint[] = [];
  private readonly clock: Clock;

  constructor(
    readonly where: WatchTarget,
    private readonly opts: WatchSessionOptions = {},
  ) {
    const names = objectNames(where.name);
    this.subscription = where.subscription ?? names.subscription;
    this.slot = where.slot ?? names.slot;
    this.clock = opts.clock ?? systemClock;
  }

  /** Connect both sides now; throws the connection error (exit 2) when either does not answer. */
  async open(): Promise<void> {
    await this.client('source');
    await this.client('target');
  }

  private async client(side: 'source' | 'target'): Promise<Client> {
    const cur = side === 'source' ? this.src : this.tgt;
    if (cur) return cur;
    const c = await connect(side === 'source' ? this.where.source : this.where.target, {
      role: side,
      applicationName: this.opts.applicationName ?? 'cutover-watch',
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 5000,
      statementTimeoutMs: this.opts.statementTimeoutMs ?? 5000,
    });
    let major: number;
    try {
      major = await serverMajor(c);
      this.backendPids[side] = (await c.query<{ pid: number }>(`select pg_backend_pid() as pid`)).rows[0].pid;
    } catch (e) {
      await c.end().catch(() => {});
      throw e;
    }
    if (side === 'source') {
      this.src = c;
      this.majors.src = major;
    } else {
      this.tgt = c;
      this.majors.tgt = major;
    }
    return c;
  }

  private drop(side: 'source' | 'target'): void {
    const c = side === 'source' ? this.src : this.tgt;
    void c?.end().catch(() => {});
    if (side === 'source') this.src = undefined;
    else this.tgt = undefined;
  }

  async sample(): Promise<WatchSample> {
    const tMs = this.clock.now();
    const [src, tgt] = await Promise.all([this.sampleSource(tMs), this.sampleTarget()]);
    const s: WatchSample = {
      at: new Date(tMs).toISOString(),
      tMs,
      replication: { subscription: this.subscription, slot: this.slot },
      source: src.side,
      target: tgt.side,
      slot: src.slot,
      lagBytes: src.slot.lagBytes,
      lagSeconds: null,
      lagSecondsFrom: null,
      subscription: tgt.sub,
    };
    if (src.walsenderLagSeconds !== null) {
      s.lagSeconds = src.walsenderLagSeconds;
      s.lagSecondsFrom = 'walsender';
    } else if (src.slot.confirmedFlushLsn && src.side.walLsn) {
      const h = lagSecondsFromHistory(this.history, lsnToNumber(src.slot.confirmedFlushLsn), tMs);
      // An active slot a few KB behind an idle source is caught up (the source writes small
      // records of its own, and replay_lag goes NULL when nothing is being applied).
      if (src.slot.active && src.slot.lagBytes !== null && src.slot.lagBytes < 64 * 1024) {
        s.lagSeconds = 0;
        s.lagSecondsFrom = 'caught-up';
      } else if (h) {
        s.lagSeconds = Math.round(h.seconds * 1000) / 1000;
        s.lagSecondsFrom = h.lowerBound ? 'history-lower-bound' : 'history';
      }
    }
    return s;
  }

  private async sampleSource(tMs: number) {
    const slot: WatchSample['slot'] = { exists: false, active: null, walRetainedBytes: null, lagBytes: null, confirmedFlushLsn: null, walStatus: null, xminAge: null, catalogXminAge: null };
    let c: Client;
    try {
      c = await this.client('source');
    } catch (e) {
      return { side: { ...emptySide(errText(e)), walLsn: null }, slot, walsenderLagSeconds: null };
    }
    try {
      const major = this.majors.src!;
      const side = (await c.query(SIDE_SQL)).rows[0];
      const lsn = (await c.query<{ lsn: string }>(`select pg_current_wal_lsn()::text as lsn`)).rows[0].lsn;
      const r = (
        await c.query(
          `select active, confirmed_flush_lsn::text as cf,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 as lag,
                  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 as retained,
                  ${major >= 13 ? 'wal_status' : 'null::text'} as wal_status,
                  age(xmin)::int8 as xmin_age, age(catalog_xmin)::int8 as catalog_xmin_age
             from pg_replication_slots where slot_name = $1`,
          [this.slot],
        )
      ).rows[0];
      if (r) Object.assign(slot, { exists: true, active: r.active, walRetainedBytes: r.retained, lagBytes: r.lag, confirmedFlushLsn: r.cf, walStatus: r.wal_status, xminAge: r.xmin_age, catalogXminAge: r.catalog_xmin_age });
      // Lag columns of pg_stat_replication are NULL for roles without pg_read_all_stats: history fills in.
      const rep = (
        await c.query<{ s: number | null }>(
          `select extract(epoch from coalesce(replay_lag, flush_lag, write_lag))::float8 as s
             from pg_stat_replication where application_name = $1 order by backend_start desc limit 1`,
          [this.subscription],
        )
      ).rows[0];
      this.history.push({ tMs, lsn: lsnToNumber(lsn) });
      const keep = this.opts.historyMs ?? 3_600_000;
      while (this.history.length > 2 && this.history[0].tMs < tMs - keep) this.history.shift();
      return {
        side: { reachable: true, major, connections: side.conns, idleInTransaction: side.idle_tx, oldestXactSeconds: side.oldest_xact, datfrozenxidAge: side.frozen_age, walLsn: lsn },
        slot,
        walsenderLagSeconds: rep?.s ?? null,
      };
    } catch (e) {
      this.drop('source');
      return { side: { ...emptySide(errText(e)), walLsn: null }, slot, walsenderLagSeconds: null };
    }
  }

  private async sampleTarget() {
    const sub: WatchSample['subscription'] = { exists: false, enabled: null, disableOnError: null, applyState: 'unknown', workerPid: null, syncWorkers: 0, lastMessageAt: null, applyErrorCount: null, syncErrorCount: null, conflicts: null };
    let c: Client;
    try {
      c = await this.client('target');
    } catch (e) {
      return { side: emptySide(errText(e)), sub };
    }
    try {
      const major = this.majors.tgt!;
      const side = (await c.query(SIDE_SQL)).rows[0];
      // Named columns only: subconninfo (which holds the password) is not readable by non-superusers.
      const row = (
        await c.query(
          `select s.oid::int as oid, s.subenabled as enabled, ${major >= 15 ? 's.subdisableonerr' : 'null::bool'} as doe
             from pg_subscription s where s.subname = $1 and s.subdbid = (select oid from pg_database where datname = current_database())`,
          [this.subscription],
        )
      ).rows[0];
      if (!row) sub.applyState = 'missing';
      else {
        Object.assign(sub, { exists: true, enabled: row.enabled, disableOnError: row.doe });
        // to_jsonb: the view gained columns over the majors (leader_pid 16, worker_type 17).
        const workers = (await c.query<{ j: any }>(`select to_jsonb(w) as j from pg_stat_subscription w where w.subid = $1`, [row.oid])).rows.map((x) => x.j);
        const apply = workers.find((w) => w.relid === null && w.pid !== null && (w.leader_pid ?? null) === null && (w.worker_type ?? 'apply') === 'apply');
        sub.workerPid = apply?.pid ?? null;
        sub.lastMessageAt = apply?.last_msg_receipt_time ?? null;
        sub.syncWorkers = workers.filter((w) => w.relid !== null && w.pid !== null).length;
        if (major >= 15) {
          const st = (await c.query<{ j: any }>(`select to_jsonb(s) as j from pg_stat_subscription_stats s where s.subid = $1`, [row.oid])).rows[0]?.j;
          if (st) {
            sub.applyErrorCount = Number(st.apply_error_count ?? 0);
            sub.syncErrorCount = Number(st.sync_error_count ?? 0);
            const confl = Object.entries(st).filter(([k]) => k.startsWith('confl_'));
            if (confl.length) sub.conflicts = Object.fromEntries(confl.map(([k, v]) => [k.slice(6), Number(v)]));
          }
        }
        sub.applyState = !row.enabled ? 'disabled' : !apply ? 'down' : sub.syncWorkers > 0 ? 'syncing' : 'streaming';
      }
      return { side: { reachable: true, major, connections: side.conns, idleInTransaction: side.idle_tx, oldestXactSeconds: side.oldest_xact, datfrozenxidAge: side.frozen_age }, sub };
    } catch (e) {
      this.drop('target');
      return { side: emptySide(errText(e)), sub };
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.src?.end(), this.tgt?.end()]);
    this.src = this.tgt = undefined;
  }
}

function errText(e: unknown): string {
  return redactSecrets(e instanceof Error ? e.message : String(e));
}

// ---------------------------------------------------------------------------------------------
// Thresholds (pure)
// ---------------------------------------------------------------------------------------------

export interface Thresholds {
  maxLagBytes?: number;
  maxLagSeconds?: number;
  maxWalRetainedBytes?: number;
  /** Slot xmin / catalog_xmin age (transactions): vacuum on the source is held back that far. */
  maxXminAge?: number;
}

export type CrossingId =
  | 'source-unreachable'
  | 'target-unreachable'
  | 'slot-missing'
  | 'slot-lost'
  | 'subscription-missing'
  | 'subscription-disabled'
  | 'apply-erroring'
  | 'lag-bytes'
  | 'lag-seconds'
  | 'wal-retained'
  | 'xmin-age'
  | 'schema-breaks-apply';

export interface Crossing {
  id: CrossingId;
  message: string;
  value?: number | string | null;
  limit?: number;
}

/** Every threshold the sample crosses. `prev` lets a rise of the error counters count as erroring. */
export function evaluate(s: WatchSample, t: Thresholds, prev?: WatchSample): Crossing[] {
  const out: Crossing[] = [];
  const { subscription: sub, slot } = s;
  if (!s.source.reachable) out.push({ id: 'source-unreachable', message: `the source does not answer: ${s.source.error ?? 'unknown error'}` });
  if (!s.target.reachable) out.push({ id: 'target-unreachable', message: `the target does not answer: ${s.target.error ?? 'unknown error'}` });
  if (s.source.reachable && !slot.exists) out.push({ id: 'slot-missing', message: `replication slot ${s.replication.slot} does not exist on the source`, value: s.replication.slot });
  if (slot.walStatus === 'lost') out.push({ id: 'slot-lost', message: `replication slot ${s.replication.slot} lost WAL it needed: the subscription can never catch up; replication must start again`, value: 'lost' });
  if (s.target.reachable && !sub.exists) out.push({ id: 'subscription-missing', message: `subscription ${s.replication.subscription} does not exist on the target`, value: s.replication.subscription });
  if (sub.exists && sub.enabled === false) {
    const errs = (sub.applyErrorCount ?? 0) + (sub.syncErrorCount ?? 0);
    out.push({
      id: 'subscription-disabled',
      message: `subscription ${s.replication.subscription} is disabled${errs ? ` (apply errors ${sub.applyErrorCount}, sync errors ${sub.syncErrorCount}: disable_on_error stopped it — the target's server log names the cause)` : ''}; changes pile up on the source`,
      value: 'disabled',
    });
  }
  if (sub.exists && sub.enabled) {
    const rose = prev && prev.subscription.exists && ((sub.applyErrorCount ?? 0) > (prev.subscription.applyErrorCount ?? 0) || (sub.syncErrorCount ?? 0) > (prev.subscription.syncErrorCount ?? 0));
    if (sub.applyState === 'down' && s.source.reachable)
      out.push({ id: 'apply-erroring', message: `no apply worker is running for ${s.replication.subscription}: it exits on each error and restarts every few seconds (see the target's server log)`, value: 'down' });
    else if (rose)
      out.push({ id: 'apply-erroring', message: `apply errors rose from ${prev!.subscription.applyErrorCount ?? 0} to ${sub.applyErrorCount ?? 0} (sync errors ${sub.syncErrorCount ?? 0}) since the last sample`, value: sub.applyErrorCount });
  }
  if (t.maxLagBytes !== undefined && s.lagBytes !== null && s.lagBytes > t.maxLagBytes)
    out.push({ id: 'lag-bytes', message: `lag ${formatBytes(s.lagBytes)} is above ${formatBytes(t.maxLagBytes)}`, value: s.lagBytes, limit: t.maxLagBytes });
  if (t.maxLagSeconds !== undefined && s.lagSeconds !== null && s.lagSeconds > t.maxLagSeconds)
    out.push({ id: 'lag-seconds', message: `lag ${s.lagSeconds.toFixed(1)} s${s.lagSecondsFrom === 'history-lower-bound' ? ' (at least)' : ''} is above ${t.maxLagSeconds} s`, value: s.lagSeconds, limit: t.maxLagSeconds });
  if (t.maxWalRetainedBytes !== undefined && slot.walRetainedBytes !== null && slot.walRetainedBytes > t.maxWalRetainedBytes)
    out.push({ id: 'wal-retained', message: `the slot keeps ${formatBytes(slot.walRetainedBytes)} of WAL on the source, above ${formatBytes(t.maxWalRetainedBytes)}`, value: slot.walRetainedBytes, limit: t.maxWalRetainedBytes });
  const breaking = s.schema?.findings.filter((f) => f.effect === 'breaks') ?? [];
  if (breaking.length)
    out.push({ id: 'schema-breaks-apply', message: `schema change on one side will stop apply: ${breaking.map((f) => f.message).join('; ')}`, value: breaking.length });
  const xminAge = Math.max(slot.xminAge ?? -1, slot.catalogXminAge ?? -1);
  if (t.maxXminAge !== undefined && xminAge > t.maxXminAge)
    out.push({ id: 'xmin-age', message: `the slot holds back vacuum by ${xminAge} transactions (xmin/catalog_xmin age), above ${t.maxXminAge}`, value: xminAge, limit: t.maxXminAge });
  return out;
}

/** What changed between two evaluations: thresholds newly crossed, and those that cleared. */
export function transitions(before: readonly Crossing[], now: readonly Crossing[]): { crossed: Crossing[]; cleared: Crossing[] } {
  const was = new Set(before.map((c) => c.id));
  const is = new Set(now.map((c) => c.id));
  return { crossed: now.filter((c) => !was.has(c.id)), cleared: before.filter((c) => !is.has(c.id)) };
}

export function formatBytes(n: number): string {
  const a = Math.abs(n);
  if (a >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (a >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (a >= 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

/** "100MB", "1.5GB", "512kB", "2048" (bytes) → bytes. */
export function parseBytes(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g|tb|t)?\s*$/i.exec(v);
  if (!m) return undefined;
  const mult: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]);
}

/** One human line for a sample (TTY mode). */
export function formatSample(s: WatchSample, crossings: readonly Crossing[]): string {
  const n = (v: number | null | undefined) => (v === null || v === undefined ? '?' : String(v));
  const lagS = s.lagSeconds === null ? '?' : `${s.lagSecondsFrom === 'history-lower-bound' ? '≥' : ''}${s.lagSeconds.toFixed(1)} s`;
  const sub = s.subscription;
  const errs = sub.applyErrorCount === null ? '' : ` errors ${sub.applyErrorCount}/${sub.syncErrorCount}`;
  const parts = [
    s.at.slice(11, 19),
    `lag ${s.lagBytes === null ? '?' : formatBytes(s.lagBytes)} / ${lagS}`,
    `WAL kept ${s.slot.walRetainedBytes === null ? '?' : formatBytes(s.slot.walRetainedBytes)}`,
    `apply ${sub.applyState}${errs}`,
    `slot xmin age ${n(s.slot.catalogXminAge ?? s.slot.xminAge)}`,
    `frozen age ${n(s.source.datfrozenxidAge)}/${n(s.target.datfrozenxidAge)}`,
    `conns ${n(s.source.connections)}/${n(s.target.connections)}`,
  ];
  return `${parts.join(' · ')} · ${crossings.length ? `CROSSED ${crossings.map((c) => c.id).join(', ')}` : 'ok'}`;
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

export interface Alert {
  kind: 'cutover.replication.alert';
  event: 'crossed' | 'cleared';
  threshold: CrossingId;
  message: string;
  value?: number | string | null;
  limit?: number;
  at: string;
  /** host:port/db of each side: never a URL, never a password. */
  source: string;
  target: string;
  subscription: string;
  slot: string;
  figures: { lagBytes: number | null; lagSeconds: number | null; walRetainedBytes: number | null; applyState: ApplyState; applyErrorCount: number | null };
}

export function makeAlert(event: Alert['event'], c: Crossing, s: WatchSample, where: WatchTarget): Alert {
  return {
    kind: 'cutover.replication.alert',
    event,
    threshold: c.id,
    message: event === 'cleared' ? `cleared: ${c.message}` : c.message,
    ...(c.value !== undefined ? { value: c.value } : {}),
    ...(c.limit !== undefined ? { limit: c.limit } : {}),
    at: s.at,
    source: describeTarget(where.source),
    target: describeTarget(where.target),
    subscription: s.replication.subscription,
    slot: s.replication.slot,
    figures: { lagBytes: s.lagBytes, lagSeconds: s.lagSeconds, walRetainedBytes: s.slot.walRetainedBytes, applyState: s.subscription.applyState, applyErrorCount: s.subscription.applyErrorCount },
  };
}

/** The webhook URL for messages: scheme, host and path only (tokens often sit in the query or userinfo). */
export function redactWebhook(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? '/…' : ''}`;
  } catch {
    return '<invalid webhook URL>';
  }
}

export function checkWebhook(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CutoverError('USAGE', `--webhook is not a URL: ${redactWebhook(url)}`, { hint: 'give an http(s):// URL, e.g. https://hooks.example.com/cutover' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CutoverError('USAGE', `--webhook must be http:// or https:// (got ${u.protocol})`, { hint: 'give an http(s):// URL' });
}

/** POST an alert as JSON. Never throws: a failed alert is reported by the caller, the watch goes on. */
export async function postAlert(url: string, alert: Alert, timeoutMs = 5000): Promise<{ ok: boolean; status?: number; error?: string }> {
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'cutover-watch' }, body: JSON.stringify(alert), signal: AbortSignal.timeout(timeoutMs) });
    await r.body?.cancel().catch(() => {});
    return r.ok ? { ok: true, status: r.status } : { ok: false, status: r.status, error: `HTTP ${r.status} from ${redactWebhook(url)}` };
  } catch (e) {
    return { ok: false, error: `POST to ${redactWebhook(url)} failed: ${redactSecrets(e instanceof Error ? ((e.cause as Error)?.message ?? e.message) : String(e))}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The watch loop (library form of `cutover replicate watch`)
// ---------------------------------------------------------------------------------------------

export interface WatchOptions extends WatchTarget {
  thresholds: Thresholds;
  intervalMs?: number;
  /** One sample, then return. */
  once?: boolean;
  webhook?: string;
  /** Compare the published tables on both sides this often (default 60 s; 0 = never). `once` always checks. */
  schemaEveryMs?: number;
  signal?: AbortSignal;
  onSample?: (s: WatchSample, crossings: Crossing[]) => void;
  onAlert?: (a: Alert, delivery: { ok: boolean; error?: string }) => void;
  clock?: Clock;
}

export interface WatchResult {
  samples: number;
  last: WatchSample | null;
  crossings: Crossing[];
}

/**
 * Sample every interval until aborted (or once). Alerts go out on transitions only: the first
 * sample counts as a transition from healthy, so a watch started on a broken replication says so.
 */
export async function watchReplication(opts: WatchOptions): Promise<WatchResult> {
  if (opts.webhook) checkWebhook(opts.webhook);
  const session = new WatchSession(opts, { clock: opts.clock });
  let prevSample: WatchSample | undefined;
  let schema: WatchSample['schema'];
  const publication = opts.publication ?? objectNames(opts.name).publication;
  let prev: Crossing[] = [];
  let n = 0;
  const send = async (event: Alert['event'], cs: Crossing[], s: WatchSample) => {
    if (!opts.webhook) return;
    for (const c of cs) {
      const a = makeAlert(event, c, s, opts);
      const d = await postAlert(opts.webhook, a);
      opts.onAlert?.(a, d);
    }
  };
  try {
    await session.open(); // nothing is checked when a side does not answer at the start: exit 2
    for (;;) {
      const s = await session.sample();
      const every = opts.schemaEveryMs ?? 60_000;
      if ((opts.once || every > 0) && s.source.reachable && s.target.reachable && (opts.once || !schema || s.tMs - Date.parse(schema.checkedAt) >= every)) {
        try {
          schema = { checkedAt: s.at, findings: await applyCompat({ source: opts.source, target: opts.target, publication }) };
        } catch (e) {
          schema = { checkedAt: s.at, findings: schema?.findings ?? [], error: errText(e) };
        }
      }
      if (schema) s.schema = schema;
      n++;
      const now = evaluate(s, opts.thresholds, prevSample);
      // a rise of the error counter is an event, not a state: it stays crossed while the worker keeps failing
      if (!now.some((c) => c.id === 'apply-erroring') && prev.some((c) => c.id === 'apply-erroring') && s.subscription.applyState === 'down') now.push(prev.find((c) => c.id === 'apply-erroring')!);
      opts.onSample?.(s, now);
      const { crossed, cleared } = transitions(prev, now);
      await send('crossed', crossed, s);
      await send('cleared', cleared, s);
      prev = now;
      prevSample = s;
      if (opts.once || opts.signal?.aborted) return { samples: n, last: s, crossings: now };
      await sleep(opts.intervalMs ?? 5000, opts.signal);
      if (opts.signal?.aborted) return { samples: n, last: s, crossings: now };
    }
  } finally {
    await session.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Crossings after which waiting for lag to drain is pointless: apply has stopped (disabled by
 * disable_on_error, or the subscription or slot is gone or lost WAL). A catch-up gate that sees one
 * can refuse at once instead of waiting out its timeout. `apply-erroring` is not here: a worker
 * retrying a transient error (a restart of the source) may recover by itself.
 */
export const CATCHUP_BLOCKERS: readonly CrossingId[] = ['subscription-disabled', 'subscription-missing', 'slot-missing', 'slot-lost'];

export function catchupBlockers(s: WatchSample): Crossing[] {
  return evaluate(s, {}).filter((c) => CATCHUP_BLOCKERS.includes(c.id));
}
