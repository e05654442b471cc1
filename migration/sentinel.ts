/**
 * Sentinel round-trip: after the fence, a marker row written on the old primary and seen on the
 * new one proves that everything committed before it has been applied (logical replication applies
 * in commit order). The table is created on both sides and published if the publication lists
 * tables one by one.
 */
import type pg from 'pg';
import { CutoverError } from './errors.ts';
import { quoteIdent, serverMajor, sqlError } from './pg.ts';
import { diagnoseSubscription } from './apply-errors.ts';
import type { Change } from './switchover/state.ts';

export const SENTINEL_TABLE = 'cutover_sentinel';
const DDL = `create table if not exists public.${SENTINEL_TABLE} (token text primary key, written_at timestamptz not null default clock_timestamp())`;

async function tableExists(c: pg.Client): Promise<boolean> {
  const r = await c.query(`select 1 from pg_class where oid = to_regclass($1)`, [`public.${SENTINEL_TABLE}`]);
  return r.rowCount! > 0;
}

export interface EnsureSentinelOptions {
  publication: string;
  subscription: string;
  record?: (c: Change) => Promise<void>;
  /** How long to wait for the table's initial sync when it had to be added to the publication. */
  timeoutMs?: number;
}

/** Create the sentinel table where missing and make sure the publication carries it. Idempotent. */
export async function ensureSentinel(source: pg.Client, target: pg.Client, opts: EnsureSentinelOptions): Promise<{ added: boolean }> {
  try {
    for (const [side, c] of [['old', source], ['new', target]] as const) {
      if (!(await tableExists(c))) {
        await opts.record?.({ kind: 'table-created', side, table: `public.${SENTINEL_TABLE}` });
        await c.query(DDL);
      }
    }
    const pub = await source.query<{ puballtables: boolean }>(`select puballtables from pg_publication where pubname = $1`, [opts.publication]);
    if (!pub.rows.length)
      throw new CutoverError('PRECONDITION', `publication ${opts.publication} does not exist on the source`, { hint: 'start replication first (cutover replicate start) or pass the publication name' });
    if (pub.rows[0].puballtables) return { added: false };
    const listed = await source.query(`select 1 from pg_publication_tables where pubname = $1 and schemaname = 'public' and tablename = $2`, [opts.publication, SENTINEL_TABLE]);
    let added = false;
    if (!listed.rowCount) {
      await opts.record?.({ kind: 'publication-table-added', publication: opts.publication, table: `public.${SENTINEL_TABLE}` });
      await source.query(`alter publication ${quoteIdent(opts.publication)} add table public.${SENTINEL_TABLE}`);
      added = true;
    }
    const known = await target.query(
      `select 1 from pg_subscription_rel sr join pg_subscription s on s.oid = sr.srsubid where s.subname = $1 and sr.srrelid = to_regclass($2)`,
      [opts.subscription, `public.${SENTINEL_TABLE}`],
    );
    if (!known.rowCount) {
      await opts.record?.({ kind: 'subscription-refreshed', subscription: opts.subscription });
      await target.query(`alter subscription ${quoteIdent(opts.subscription)} refresh publication`);
    }
    return { added };
  } catch (e) {
    if (e instanceof CutoverError) throw e;
    throw sqlError(e, 'preparing the cutover_sentinel table');
  }
}

export interface RoundTrip {
  token: string;
  /** From the commit on the old primary to the row being visible on the new one. */
  latencyMs: number;
  /** Times a subscription that lost its link was enabled again during the wait (resumeAfterLostLink). */
  linkReenables?: number;
}

/** Write `token` on the source (idempotent) and wait until the target shows it. */
export async function sentinelRoundTrip(source: pg.Client, target: pg.Client, token: string, opts: { timeoutMs: number; pollMs?: number; signal?: AbortSignal; log?: (m: string) => void }): Promise<RoundTrip> {
  const t0 = Date.now();
  try {
    await source.query(`insert into public.${SENTINEL_TABLE} (token) values ($1) on conflict (token) do nothing`, [token]);
  } catch (e) {
    throw sqlError(e, 'writing the sentinel row on the old primary');
  }
  // sub-millisecond clock: on a quiet machine the marker can be visible within the first poll
  const written = performance.now();
  const deadline = t0 + opts.timeoutMs;
  let lastApplyCheck = 0;
  const reenabled = new Map<string, number>();
  for (;;) {
    const r = await target.query(`select 1 from public.${SENTINEL_TABLE} where token = $1`, [token]).catch(() => ({ rowCount: 0 }));
    if (r.rowCount) {
      const n = [...reenabled.values()].reduce((a, b) => a + b, 0);
      return { token, latencyMs: Math.round((performance.now() - written) * 10) / 10, ...(n ? { linkReenables: n } : {}) };
    }
    // A stopped apply (disable_on_error after DDL on the old side or a conflicting row) can never
    // bring the marker: say so now instead of holding the fence until the timeout. Nor can a slot
    // that lost the WAL it needed (or is gone): the subscription is enabled, its worker only fails.
    if (Date.now() - lastApplyCheck >= 500) {
      lastApplyCheck = Date.now();
      const stopped = await applyStopped(target);
      if (stopped && (await resumeAfterLostLink(target, stopped, reenabled, opts.log))) continue;
      if (stopped)
        throw new CutoverError('PRECONDITION', `the sentinel row cannot arrive: ${stopped.message}`, {
          hint: 'apply stopped on an error (DDL on the old primary, a conflicting row on the new one, or a reset replication link on 15+ with disable_on_error): the target\'s server log names it; fix it, ALTER SUBSCRIPTION … ENABLE, then run the switchover again. The old primary is left serving',
        });
      const lost = await slotsLost(source, target);
      if (lost)
        throw new CutoverError('PRECONDITION', `the sentinel row cannot arrive: ${lost}`, {
          hint: 'the subscription can never catch up from this slot: do not switch. Stop replication (cutover replicate stop) and set it up again from scratch; raise max_slot_wal_keep_size (or give the old side more disk) so it cannot happen on the night. The old primary is left serving',
        });
    }
    if (Date.now() > deadline || opts.signal?.aborted)
      throw new CutoverError('TIMEOUT', `the sentinel row did not arrive on the new primary within ${opts.timeoutMs} ms`, {
        hint: 'replication is stalled or far behind: check pg_stat_subscription on the target and the server logs; the old primary is left serving',
      });
    await new Promise((res) => setTimeout(res, opts.pollMs ?? 20));
  }
}

/** A disabled subscription, and why (from the target's log when it can be read). */
export interface StoppedApply {
  subscriptions: string[];
  message: string;
  /** The last logged error was the worker losing its link to the publisher, not an apply error. */
  lostLink: boolean;
}

/** The subscriptions that carry the sentinel table, if every one of them is disabled: why apply stopped. */
async function applyStopped(target: pg.Client): Promise<StoppedApply | undefined> {
  const r = await target
    .query<{ subname: string; subenabled: boolean }>(
      `select s.subname, s.subenabled from pg_subscription s join pg_subscription_rel sr on sr.srsubid = s.oid where sr.srrelid = to_regclass($1)`,
      [`public.${SENTINEL_TABLE}`],
    )
    .catch(() => ({ rows: [] as Array<{ subname: string; subenabled: boolean }> }));
  if (!r.rows.length || r.rows.some((x) => x.subenabled)) return undefined;
  return disabledBecause(target, r.rows.map((x) => x.subname));
}

/** Why `subscriptions` (all disabled) stopped: the last error their workers logged on the target. */
export async function disabledBecause(target: pg.Client, subscriptions: string[]): Promise<StoppedApply> {
  // the target's log says why (an apply error, or on 15+ a reset replication link: disable_on_error)
  const e = await lastLoggedError(target, subscriptions[0]).catch(() => undefined);
  // the worker's stream broke (a reset or dropped connection), not a missing slot or publication
  const lostLink = e?.kind === 'publisher' && /could not (?:receive|send) data (?:from|to) WAL stream|could not connect to the publisher/i.test(e.message);
  const why = e ? `${e.message}${lostLink ? ' — the worker lost its connection to the old primary, not an apply error: ALTER SUBSCRIPTION … ENABLE resumes it losslessly' : ''}` : undefined;
  return { subscriptions, lostLink, message: `subscription ${subscriptions.join(', ')} is disabled on the new primary (apply stopped${why ? `: ${why}` : ''})` };
}

async function lastLoggedError(target: pg.Client, subscription: string) {
  const oid = (await target.query<{ oid: number }>(`select oid from pg_subscription where subname = $1`, [subscription])).rows[0]?.oid;
  if (oid === undefined) return undefined;
  const d = await diagnoseSubscription(target, subscription, oid, await serverMajor(target));
  return d.errors.at(-1);
}

/** How many times one wait re-enables a subscription that lost its link: a link that keeps failing is reported, not hidden. */
export const MAX_LINK_REENABLES = 3;

/**
 * disable_on_error (15+) stops a subscription on any error of its apply worker — a reset replication
 * link included, which is no apply error at all. When the target's log shows that was the cause,
 * enable it again: apply resumes from its replication origin's progress, so nothing is lost or
 * applied twice (and if the link is still down the worker only retries its connection, which does not
 * disable it). At most MAX_LINK_REENABLES times per wait (`counts`); true when it enabled something.
 * Without a readable log nothing is re-enabled: the cause is unknown, and the error says so.
 */
export async function resumeAfterLostLink(target: pg.Client, stopped: StoppedApply, counts: Map<string, number>, log?: (m: string) => void): Promise<boolean> {
  if (!stopped.lostLink) return false;
  let done = false;
  for (const sub of stopped.subscriptions) {
    const n = counts.get(sub) ?? 0;
    if (n >= MAX_LINK_REENABLES) return false;
    await target.query(`alter subscription ${quoteIdent(sub)} enable`);
    counts.set(sub, n + 1);
    log?.(`subscription ${sub} was disabled by a lost link to the old primary (disable_on_error), not by an apply error: enabled again (${n + 1} of at most ${MAX_LINK_REENABLES}); apply resumes where it stopped`);
    done = true;
  }
  return done;
}

/** The slots (on the source) of the subscriptions that carry the sentinel, if every one is lost or gone: why the marker cannot come. */
async function slotsLost(source: pg.Client, target: pg.Client): Promise<string | undefined> {
  const subs = (
    await target
      .query<{ slot: string | null }>(`select s.subslotname as slot from pg_subscription s join pg_subscription_rel sr on sr.srsubid = s.oid where sr.srrelid = to_regclass($1)`, [`public.${SENTINEL_TABLE}`])
      .catch(() => ({ rows: [] as Array<{ slot: string | null }> }))
  ).rows.map((x) => x.slot);
  if (!subs.length || subs.some((x) => x === null)) return undefined;
  // wal_status exists from 13 on; before, a slot keeps all WAL and can only be missing
  const rows = await source
    .query<{ slot_name: string; wal_status: string | null }>(`select slot_name, wal_status from pg_replication_slots where slot_name = any($1)`, [subs])
    .catch(() => source.query<{ slot_name: string; wal_status: string | null }>(`select slot_name, null::text as wal_status from pg_replication_slots where slot_name = any($1)`, [subs]))
    .catch(() => undefined);
  if (!rows) return undefined;
  const status = new Map(rows.rows.map((x) => [x.slot_name, x.wal_status]));
  const dead = subs.filter((x) => !status.has(x!) || status.get(x!) === 'lost');
  if (dead.length < subs.length) return undefined;
  const gone = dead.filter((x) => !status.has(x!));
  return gone.length
    ? `replication slot ${gone.join(', ')} does not exist on the old primary (dropped, or the server was replaced): the subscription can never catch up`
    : `replication slot ${dead.join(', ')} on the old primary lost WAL the new side had not applied (wal_status lost): the subscription can never catch up`;
}
