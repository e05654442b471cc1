/**
 * Apply errors said plainly. When a subscription is disabled after an error (15+ with
 * disable_on_error) or its worker keeps failing and restarting (before 15, or without
 * disable_on_error), the only place that holds the actual message is the target's server log.
 * This module reads it when the role may (pg_current_logfile() with logging_collector, else the
 * server's own stderr when that is a regular file), finds the errors of *our* subscription's
 * workers, and turns each into the message itself plus what to do about that kind of error.
 *
 * Parsing and classification are pure functions (unit-tested on real log lines); reading the log
 * is best effort and says why when it cannot.
 */
import { redactSecrets } from './errors.ts';
import type { Client } from './pg.ts';

export type ApplyErrorKind = 'missing-key' | 'duplicate-key' | 'missing-table' | 'missing-column' | 'permission' | 'constraint' | 'publisher' | 'other';

export interface LoggedError {
  /** "ERROR" or "FATAL" */
  level: string;
  /** The message itself, as the server wrote it. */
  message: string;
  detail?: string;
  context?: string;
  hint?: string;
  pid?: number;
  /** The log line prefix (timestamp etc.) as written. */
  prefix?: string;
  /** Which worker: "apply" or `sync <table>`. */
  worker?: string;
  /** How many runs of this worker ended in an error (since the anchor; 1 = only the latest). */
  failures?: number;
}

export interface ApplyError extends LoggedError {
  kind: ApplyErrorKind;
  /** The relation named by the message or its context, e.g. public.accounts. */
  relation?: string;
  /** The remote transaction's finish LSN (15+ context), what ALTER SUBSCRIPTION … SKIP takes. */
  finishLsn?: string;
  /** What to do, in order. */
  advice: string[];
}

interface LogRecord {
  prefix: string;
  pid?: number;
  level: string;
  text: string;
}

const LEVEL_RE = /^(.*?)\b(ERROR|FATAL|PANIC|LOG|WARNING|NOTICE|INFO|DETAIL|CONTEXT|HINT|STATEMENT|QUERY|LOCATION):\s\s?(.*)$/;

/** Split log text into records (continuation lines, which start with a tab, are joined). Pure. */
export function parseLog(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (/^\t/.test(line) && out.length) {
      out[out.length - 1].text += '\n' + line.slice(1);
      continue;
    }
    const m = LEVEL_RE.exec(line);
    if (!m) continue;
    const pid = /\[(\d+)\]/.exec(m[1]);
    out.push({ prefix: m[1].trim(), pid: pid ? Number(pid[1]) : undefined, level: m[2], text: m[3] });
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The errors of the *latest* run of each of this subscription's workers (apply, and table sync per
 * table): a worker that restarted and now runs cleanly has no current error, one that failed and
 * was disabled or is retrying does. Workers are tied to the subscription by their "has started"
 * line and the process id in the line prefix (%p, in the default log_line_prefix); errors whose
 * context names our replication origin (pg_<suboid>, 15+) are taken too when no prefix has a pid.
 */
export function extractSubscriptionErrors(text: string, subscription: string, subOid?: number, opts: { applyPid?: number | null } = {}): LoggedError[] {
  const recs = parseLog(text);
  const sub = esc(subscription);
  const applyStart = new RegExp(`logical replication (?:parallel )?apply worker for subscription "${sub}" has started`);
  const syncStart = new RegExp(`logical replication table synchronization worker for subscription "${sub}", table "([^"]+)" has started`);
  // Anchor: the start of the apply worker running now (its table-sync workers start after it), so
  // that a failed run of an older subscription of the same name is not taken for ours.
  let anchor = 0;
  if (opts.applyPid) {
    recs.forEach((r, i) => {
      if (r.level === 'LOG' && r.pid === opts.applyPid && applyStart.test(r.text)) anchor = i;
    });
  }
  // latest worker instance by worker name → pid and the index of its start line; every instance
  // that ended in an error is counted (a worker in a retry loop starts, fails, starts, fails …)
  const latest = new Map<string, { pid: number; at: number }>();
  const failures = new Map<string, number>();
  const started: Array<{ worker: string; pid: number; at: number }> = [];
  recs.forEach((r, i) => {
    if (i < anchor || r.level !== 'LOG' || r.pid === undefined) return;
    let worker: string | undefined;
    if (applyStart.test(r.text)) worker = 'apply';
    else {
      const m = syncStart.exec(r.text);
      if (m) worker = `sync ${m[1]}`;
    }
    if (worker) {
      latest.set(worker, { pid: r.pid, at: i });
      started.push({ worker, pid: r.pid, at: i });
    }
  });
  for (const w of started) {
    for (let i = w.at + 1; i < recs.length; i++) {
      const r = recs[i];
      if (r.pid !== w.pid) continue;
      if (r.level === 'LOG' && (applyStart.test(r.text) || syncStart.test(r.text))) break; // pid reused
      if (r.level === 'ERROR' || r.level === 'FATAL' || r.level === 'PANIC') {
        failures.set(w.worker, (failures.get(w.worker) ?? 0) + 1);
        break;
      }
    }
  }
  const errorAt = (i: number, worker?: string): LoggedError => {
    const r = recs[i];
    const e: LoggedError = { level: r.level, message: redactSecrets(r.text), pid: r.pid, prefix: r.prefix, worker };
    for (let j = i + 1; j < recs.length && j < i + 6; j++) {
      const n = recs[j];
      if (n.pid !== r.pid) continue;
      if (n.level === 'DETAIL') e.detail = redactSecrets(n.text);
      else if (n.level === 'CONTEXT') e.context = redactSecrets(n.text);
      else if (n.level === 'HINT') e.hint = redactSecrets(n.text);
      else if (n.level !== 'STATEMENT' && n.level !== 'QUERY' && n.level !== 'LOCATION') break;
    }
    return e;
  };
  const out: LoggedError[] = [];
  for (const [worker, w] of latest) {
    for (let i = w.at + 1; i < recs.length; i++) {
      const r = recs[i];
      if (r.pid !== w.pid) continue;
      if (r.level === 'ERROR' || r.level === 'FATAL' || r.level === 'PANIC') {
        out.push({ ...errorAt(i, worker), failures: failures.get(worker) ?? 1 });
        break; // a worker dies on its first error
      }
    }
  }
  if (!out.length && subOid !== undefined && !recs.some((r) => r.pid !== undefined)) {
    const origin = `replication origin "pg_${subOid}"`;
    for (let i = recs.length - 1; i >= 0; i--) {
      if (recs[i].level !== 'ERROR') continue;
      const e = errorAt(i, 'apply');
      if (e.context?.includes(origin)) {
        out.push(e);
        break;
      }
    }
  }
  return out;
}

/** Classify one logged error and say what to do (pure; unit-tested). */
export function classifyApplyError(e: LoggedError, ctx: { subscription: string; targetMajor: number }): ApplyError {
  const msg = e.message;
  const all = [msg, e.detail, e.context].filter(Boolean).join('\n');
  const relFromMsg = /relation "([^"]+)"/.exec(msg)?.[1];
  const relFromCtx = /replication target relation "([^"]+)"/.exec(e.context ?? '')?.[1] ?? /^COPY (\S+),/.exec(e.context ?? '')?.[1];
  const relation = relFromMsg ?? relFromCtx;
  const finishLsn = /finished at ([0-9A-F]+\/[0-9A-F]+)/i.exec(e.context ?? '')?.[1];
  const sub = ctx.subscription;
  const rel = relation ?? '<table>';
  const enable = `then ALTER SUBSCRIPTION ${sub} ENABLE (if it was disabled) — the worker retries the same change`;
  const base = { ...e, relation, finishLsn };
  if (/has neither REPLICA IDENTITY index nor PRIMARY KEY|does not have REPLICA IDENTITY FULL|replica identity/i.test(msg))
    return {
      ...base,
      kind: 'missing-key',
      advice: [
        `the target table ${rel} has no primary key or replica-identity index, so an UPDATE/DELETE cannot find its row: create the source's key on the target (the PRIMARY KEY or unique index and REPLICA IDENTITY of ${rel}; \`cutover replicate start\` builds them before the copy)`,
        `or, if the table really has no key, ALTER TABLE ${rel} REPLICA IDENTITY FULL on the source`,
        enable,
      ],
    };
  if (/duplicate key value violates unique constraint/i.test(msg)) {
    const key = /Key \((.*)\)=\((.*)\) already exists/.exec(e.detail ?? '');
    const del = key ? `DELETE FROM ${rel} WHERE (${key[1]}) = (${key[2]})` : `delete the conflicting row from ${rel}`;
    const copying = /^COPY /.test(e.context ?? '');
    return {
      ...base,
      kind: 'duplicate-key',
      advice: copying
        ? [`the initial copy of ${rel} met rows already on the target: truncate ${rel} on the target (it must be empty before its copy), ${enable}`]
        : [
            `the row already exists on the target (written there directly, or copied twice): ${del} on the target, ${enable}`,
            ctx.targetMajor >= 15
              ? `or skip the whole remote transaction: ALTER SUBSCRIPTION ${sub} SKIP (lsn = '${finishLsn ?? '<finish LSN from the log CONTEXT>'}') — its other changes are lost too, verify afterwards`
              : `(ALTER SUBSCRIPTION … SKIP needs a PostgreSQL 15+ target; before 15 the only ways are removing the conflict or pg_replication_origin_advance)`,
          ],
    };
  }
  if (/target relation "[^"]+" does not exist|relation "[^"]+" does not exist/i.test(msg))
    return { ...base, kind: 'missing-table', advice: [`create ${rel} on the target from the source's schema: \`cutover replicate add-table --tables ${rel}\` (pre-data, keys, refresh, copy, post-data)`, enable] };
  if (/is missing (?:some )?replicated columns?|column "[^"]+" of relation "[^"]+" does not exist/i.test(msg))
    return {
      ...base,
      kind: 'missing-column',
      advice: [`the source has a column the target's ${rel} lacks (DDL is not replicated): run the same ALTER TABLE on the target, ${enable}`, 'apply schema changes to the target first, then the source, while replication runs'],
    };
  if (/permission denied|must be (?:superuser|owner)|cannot SET ROLE|row-level security|insufficient privilege/i.test(all))
    return {
      ...base,
      kind: 'permission',
      advice: [
        `the subscription's owner may not write ${rel} on the target: make the subscription owner a superuser, or the owner of the tables${ctx.targetMajor >= 16 ? ` (16+: it must be able to SET ROLE to each table owner, or ALTER SUBSCRIPTION ${sub} SET (run_as_owner = true))` : ''}; row-level security must be off for it`,
        enable,
      ],
    };
  if (/violates (?:not-null|check|foreign key|exclusion) constraint|null value in column/i.test(msg))
    return { ...base, kind: 'constraint', advice: [`the target's definition of ${rel} differs from the source's (a constraint the source does not have): compare with \`cutover drift\`, fix the target's constraint, ${enable}`] };
  if (/could not connect to the publisher|could not receive data from WAL stream|replication slot "[^"]+" does not exist|could not start WAL streaming|publication "[^"]+" does not exist|terminating logical replication worker due to/i.test(msg))
    return { ...base, kind: 'publisher', advice: ['the worker cannot stream from the source: check the source is up and reachable from the target (the subscription connection), the slot and publication exist (`cutover replicate status`), and wal_sender/slot limits'] };
  return { ...base, kind: 'other', advice: [`fix the cause the message names, ${enable}; \`cutover replicate status\` shows it again`] };
}

export interface LogRead {
  text?: string;
  path?: string;
  /** Why the log could not be read (privilege, no file, …). */
  unavailable?: string;
}

/**
 * The tail of the target server's log. Tried in order: pg_current_logfile() (logging_collector on),
 * then the server's stderr (/proc/self/fd/2 — where pg_ctl -l or a service manager's file
 * redirection put it; Linux only, and only when it is a regular file, never a pipe or socket).
 * Needs superuser or pg_read_server_files (and EXECUTE on pg_current_logfile); otherwise says so.
 */
export async function readServerLog(c: Client, maxBytes = 512 * 1024): Promise<LogRead> {
  const tryQ = async <T>(sql: string, params: unknown[] = []): Promise<T | undefined> => {
    try {
      return (await c.query(sql, params)).rows[0] as T;
    } catch {
      return undefined;
    }
  };
  const candidates: string[] = [];
  // the plain-text log when several destinations are on (csvlog/jsonlog lines are not parsed)
  const cur = await tryQ<{ f: string | null }>(`select coalesce(pg_current_logfile('stderr'), pg_current_logfile()) as f`);
  if (cur?.f) candidates.push(cur.f);
  candidates.push('/proc/self/fd/2');
  let reason = 'the target role may not read server files (needs superuser or pg_read_server_files)';
  for (const path of candidates) {
    const st = await tryQ<{ size: number; isdir: boolean }>(`select size::float8 as size, isdir from pg_stat_file($1, true)`, [path]);
    if (!st) continue; // no privilege
    reason = 'the server log is not in a file this role can find (logging_collector off and stderr not a file)';
    if (!st.size || st.isdir) continue;
    const offset = Math.max(0, st.size - maxBytes);
    const r = await tryQ<{ b: Buffer }>(`select pg_read_binary_file($1, $2::int8, $3::int8) as b`, [path, offset, maxBytes]);
    if (!r) continue;
    let text = r.b.toString('utf8');
    if (offset > 0) text = text.slice(text.indexOf('\n') + 1); // drop the partial first line
    return { text, path: path === '/proc/self/fd/2' ? 'the server\'s stderr' : path };
  }
  return { unavailable: reason };
}

export interface Diagnosis {
  errors: ApplyError[];
  /** Where the messages came from, or why the log could not be read. */
  log: { path?: string; unavailable?: string };
}

/** The current errors of subscription `subscription` on the target, classified, from its server log. */
export async function diagnoseSubscription(c: Client, subscription: string, subOid: number, targetMajor: number, applyPid?: number | null): Promise<Diagnosis> {
  const log = await readServerLog(c);
  if (log.text === undefined) return { errors: [], log: { unavailable: log.unavailable } };
  const errors = extractSubscriptionErrors(log.text, subscription, subOid, { applyPid }).map((e) => classifyApplyError(e, { subscription, targetMajor }));
  return { errors, log: { path: log.path } };
}

/** "apply worker", "table-sync worker for accounts". */
export function workerLabel(worker: string | undefined): string {
  if (!worker || worker === 'apply') return 'apply worker';
  return `table-sync worker for ${worker.replace(/^sync /, '')}`;
}

/** One paragraph for a person: the error line itself, where it is, and what to do. */
export function describeApplyError(e: ApplyError): string {
  const lines = [`${e.worker ? `${workerLabel(e.worker)}${e.failures && e.failures > 1 ? ` (failed ${e.failures} times)` : ''}: ` : ''}${e.level}:  ${e.message}`];
  if (e.detail) lines.push(`  DETAIL:  ${e.detail}`);
  if (e.context) lines.push(`  CONTEXT:  ${e.context}`);
  for (const a of e.advice) lines.push(`  → ${a}`);
  return lines.join('\n');
}
