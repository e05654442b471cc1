/**
 * Grace for in-flight work when the terminate fence closes the old primary (issue 19, item 3).
 *
 * The terminate fence used to end every app session at once, so a transaction that was one
 * statement from COMMIT failed and the client retried it on the new side (or did not). With a
 * grace of G ms, after NOLOGIN has committed:
 * - a session with no open transaction (state idle, xact_start null) holds nothing: it is ended at once;
 * - a session inside a transaction that began before the fence gets up to G ms to end it (COMMIT
 *   or ROLLBACK). When its transaction ends it is ended too — it "finished";
 * - a transaction that began after the fence (a pooled connection starting new work) is new work on
 *   a fenced primary: ended at once, like an idle session;
 * - when G has passed, what is left is terminated; its open transaction is rolled back by the
 *   server, so none of its writes is committed.
 * Termination (not pg_cancel_backend) because a cancelled session is still logged in and could
 * write again. Nothing read here is a secret: query text is never read or reported.
 *
 * A transaction is identified by (pid, xact_start): the same pid with a new xact_start is a new one.
 */
import type pg from 'pg';
import { CutoverError } from './errors.ts';
import type { Change } from './switchover/state.ts';

/** One app session as pg_stat_activity shows it. */
export interface ActivityRow {
  pid: number;
  role: string;
  /** pg_stat_activity.state; null when our role may not see it (not superuser / pg_read_all_stats). */
  state: string | null;
  /** epoch ms of xact_start; null outside a transaction. */
  xactStart: number | null;
  application: string;
}

/** A transaction that was open when the fence closed, and what became of it. */
export interface InFlight {
  pid: number;
  role: string;
  application: string;
  xactStart: number | null;
  outcome: 'waiting' | 'finished' | 'terminated';
  /** ms from the fence to its outcome */
  afterMs?: number;
}

export interface GraceState {
  fencedAt: number;
  graceMs: number;
  inFlight: Map<number, InFlight>;
  /** Sessions ended because they held nothing (idle, or a transaction newer than the fence). */
  idleTerminated: number;
  /** pids already told to end (a terminated backend stays in pg_stat_activity for a moment). */
  ended: Set<number>;
}

export interface GraceDecision {
  /** pids to terminate now */
  terminate: number[];
  /** in-flight pids whose fenced transaction ended (finished) at this look */
  finished: number[];
  /** in-flight pids cut because the grace ran out */
  cut: number[];
  /** true when no fenced transaction is still waiting */
  done: boolean;
}

/**
 * The first look after NOLOGIN: which sessions are in flight (inside a transaction begun before
 * the fence — or whose state we may not read, which we must assume busy). Pure.
 */
export function startGrace(rows: ActivityRow[], fencedAt: number, graceMs: number): GraceState {
  const inFlight = new Map<number, InFlight>();
  for (const r of rows) {
    const busy = r.state === null || (r.xactStart !== null && r.xactStart <= fencedAt);
    if (busy) inFlight.set(r.pid, { pid: r.pid, role: r.role, application: r.application, xactStart: r.xactStart, outcome: 'waiting' });
  }
  return { fencedAt, graceMs, inFlight, idleTerminated: 0, ended: new Set() };
}

/**
 * One look: what to terminate now and which fenced transactions finished. Mutates `s` (outcomes,
 * counters) and returns the decision; `now` is the clock at the look. Pure apart from `s`.
 */
export function graceStep(s: GraceState, rows: ActivityRow[], now: number): GraceDecision {
  const terminate: number[] = [];
  const finished: number[] = [];
  const cut: number[] = [];
  const expired = now - s.fencedAt >= s.graceMs;
  const seen = new Set<number>();
  for (const r of rows) {
    seen.add(r.pid);
    const f = s.inFlight.get(r.pid);
    if (f && f.outcome === 'waiting') {
      // still inside the transaction it had at the fence (unknown state counts as still inside)
      const same = r.state === null || (r.xactStart !== null && r.xactStart === f.xactStart) || (f.xactStart === null && r.xactStart !== null && r.xactStart <= s.fencedAt);
      if (same && !expired) continue;
      if (same) {
        f.outcome = 'terminated';
        cut.push(r.pid);
      } else {
        f.outcome = 'finished';
        finished.push(r.pid);
      }
      f.afterMs = now - s.fencedAt;
      terminate.push(r.pid);
      continue;
    }
    // idle, a transaction newer than the fence, a login that raced NOLOGIN, or a finished session still there
    terminate.push(r.pid);
    if (!f && !s.ended.has(r.pid)) s.idleTerminated++;
  }
  for (const p of terminate) s.ended.add(p);
  // a fenced transaction whose session left by itself (the client committed and disconnected)
  for (const f of s.inFlight.values()) {
    if (f.outcome === 'waiting' && !seen.has(f.pid)) {
      f.outcome = 'finished';
      f.afterMs = now - s.fencedAt;
      finished.push(f.pid);
    }
  }
  const done = [...s.inFlight.values()].every((f) => f.outcome !== 'waiting');
  return { terminate, finished, cut, done };
}

export interface GraceReport {
  graceMs: number;
  /** How long the fence waited for in-flight transactions (fence → last one finished or cut). */
  heldMs: number;
  inFlight: number;
  finished: number;
  /** In-flight transactions cut when the grace ran out (rolled back by the server). */
  terminated: number;
  /** Sessions ended at once because they held nothing. */
  idleTerminated: number;
  sessions: InFlight[];
}

export interface GraceOptions {
  graceMs: number;
  record?: (c: Change) => Promise<void>;
  signal?: AbortSignal;
  /** ms between looks (default 25) */
  pollMs?: number;
  now?: () => number;
}

/** Largest grace accepted: the fence is the window in which nobody can write. */
export const MAX_GRACE_MS = 600_000;

export function checkGrace(graceMs: number, timeoutMs?: number): void {
  if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS)
    throw new CutoverError('USAGE', `fence grace must be a whole number of ms from 0 to ${MAX_GRACE_MS} (got ${graceMs})`, { hint: 'e.g. --fence-grace 500' });
  if (timeoutMs !== undefined && graceMs + 1000 > timeoutMs)
    throw new CutoverError('USAGE', `fence grace ${graceMs} ms does not fit in the fence timeout ${timeoutMs} ms (the fence must still look that nobody is left after the grace)`, {
      hint: `lower --fence-grace below ${Math.max(0, timeoutMs - 1000)} ms or raise the fence timeout`,
    });
}

async function activity(client: pg.Client, roles: string[]): Promise<ActivityRow[]> {
  const r = await client.query<{ pid: number; role: string; state: string | null; xs: string | null; app: string }>(
    `select pid, usename as role, state, (extract(epoch from xact_start) * 1000)::float8::text as xs, coalesce(application_name, '') as app
       from pg_stat_activity
      where usename = any($1::text[]) and pid <> pg_backend_pid() and datname = current_database() and backend_type = 'client backend'`,
    [roles],
  );
  // milliseconds as float text: two looks at one transaction give the identical number
  return r.rows.map((x) => ({ pid: x.pid, role: x.role, state: x.state, xactStart: x.xs === null ? null : Number(x.xs), application: x.app }));
}

async function serverNow(client: pg.Client): Promise<number> {
  return Number((await client.query<{ t: string }>(`select (extract(epoch from clock_timestamp()) * 1000)::float8::text as t`)).rows[0].t);
}

/**
 * Give the in-flight transactions of `roles` up to `graceMs` to end, ending every other app
 * session at once; then terminate what is left. Call it after NOLOGIN has committed (fence() does,
 * with `grace`); follow it with terminateSessions for the clean looks. The clock is the server's
 * (xact_start is server time), so a skewed client clock changes nothing.
 */
export async function drainWithGrace(client: pg.Client, roles: string[], opts: GraceOptions): Promise<GraceReport> {
  checkGrace(opts.graceMs);
  const empty: GraceReport = { graceMs: opts.graceMs, heldMs: 0, inFlight: 0, finished: 0, terminated: 0, idleTerminated: 0, sessions: [] };
  if (!roles.length) return empty;
  const pollMs = opts.pollMs ?? 25;
  const fencedAt = await serverNow(client);
  const state = startGrace(await activity(client, roles), fencedAt, opts.graceMs);
  let heldMs = 0;
  for (;;) {
    const now = await serverNow(client);
    const rows = await activity(client, roles);
    const d = graceStep(state, rows, now);
    if (d.terminate.length) {
      const t = await client.query<{ pid: number }>(`select pid from unnest($1::int[]) pid where pg_terminate_backend(pid)`, [d.terminate]);
      if (t.rows.length && opts.record) await opts.record({ kind: 'sessions-terminated', pids: t.rows.map((x) => x.pid) });
    }
    if (d.done) {
      heldMs = Math.max(0, ...[...state.inFlight.values()].map((f) => f.afterMs ?? 0));
      break;
    }
    // aborted (the phase timed out or the operator stopped it): stop waiting; the abort path unfences
    if (opts.signal?.aborted) {
      heldMs = now - fencedAt;
      break;
    }
    await new Promise((res) => setTimeout(res, pollMs));
  }
  const sessions = [...state.inFlight.values()];
  return {
    graceMs: opts.graceMs,
    heldMs: Math.round(heldMs),
    inFlight: sessions.length,
    finished: sessions.filter((f) => f.outcome === 'finished').length,
    terminated: sessions.filter((f) => f.outcome === 'terminated').length,
    idleTerminated: state.idleTerminated,
    sessions: sessions.map((f) => ({ ...f, afterMs: f.afterMs === undefined ? undefined : Math.round(f.afterMs) })),
  };
}

/** One line for logs and reports. */
export function describeGrace(g: GraceReport): string {
  if (!g.inFlight) return `grace ${g.graceMs} ms: no transaction in flight; ${g.idleTerminated} idle session(s) ended at once`;
  return `grace ${g.graceMs} ms: held ${g.heldMs} ms for ${g.inFlight} in-flight transaction(s): ${g.finished} finished, ${g.terminated} terminated (rolled back); ${g.idleTerminated} idle session(s) ended at once`;
}
