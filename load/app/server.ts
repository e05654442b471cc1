/**
 * The sample app under test: a small payments-shaped HTTP service (node:http, no framework).
 *
 * What the measurements rely on:
 * - every write carries a client-generated request id (X-Request-Id header or "id" field), stored in
 *   `cutover_app_writes.request_id` (primary key) in the same transaction as the domain row, so
 *   "acknowledged ⇒ present" can be checked exactly after the cutover;
 * - 2xx only after COMMIT returned, with the written id;
 * - an error answer says whether the write is known not to be committed
 *   (header X-Cutover-Committed: false) or may have been (unknown: the connection died during COMMIT);
 * - the pg pool connects to a host *name* resolved through a configurable DNS server, cached for the
 *   record's TTL; when the answer changes new connections go to the new address and the old pool is
 *   drained (idle connections closed at once, busy ones when released) — a DNS-style switch as a
 *   real client experiences it; an error that says the server went away or refuses us cuts the
 *   cached answer's life to 100 ms (CUTOVER_APP_RERESOLVE_ON_ERROR_MS, 0 = obey the TTL only), so
 *   a moved record is seen at once rather than up to a TTL later;
 * - each write is one statement (domain row + request-id row, one round trip, its own transaction);
 * - retry policy is a setting: 'none', or 'bounded' (N retries with exponential backoff on connection-
 *   level errors, same request id; a request id seen before writes nothing, so retries are idempotent).
 *
 * In process: `const app = await startApp(opts); … await app.close()`.
 * As a process (so the lab can kill -9 it):
 *   node bin/run-ts.mjs load/app/server.ts --port 0 --db-url postgres://u@db.lab.internal:5432/app --dns 127.0.0.1:5353
 * prints one JSON line {"event":"listening","url":…,"pid":…} on stdout when ready (later lines:
 * {"event":"db-address-changed",from,to,at}, at = epoch ms). Exit 2 on bad flags or when the database is unreachable at
 * start (table creation); --no-create-tables starts without touching the database;
 * --no-prepared-statements behind a transaction-mode pooler. Every flag has an
 * env var (CUTOVER_APP_*), see `optionsFromEnv`; pass the password in the URL via CUTOVER_APP_DB_URL
 * or CUTOVER_APP_DB_PASSWORD rather than on the command line, where `ps` shows it.
 */
import http from 'node:http';
import { isIP } from 'node:net';
import { Resolver, promises as dnsPromises } from 'node:dns';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { quoteIdent, redactUrl } from '../../migration/pg.ts';
import { redactSecrets } from '../../migration/errors.ts';

export type RetryPolicy = 'none' | 'bounded';

export interface AppOptions {
  /** HTTP listen address and port (0 = any free port). */
  host?: string;
  port?: number;
  /** Connection URL whose host is the DNS name (e.g. postgres://app:pw@db.lab.internal:5432/app). */
  dbUrl?: string;
  /** Overrides for the parts of dbUrl (or instead of it). */
  dbHost?: string;
  dbPort?: number;
  user?: string;
  password?: string;
  database?: string;
  /** DNS server 'ip:port' to resolve dbHost through (the lab DNS). Default: the system resolver (1 s cache). */
  dnsServer?: string;
  retry?: RetryPolicy;
  /** Retries after the first attempt with retry 'bounded' (default 3). */
  retries?: number;
  /** First backoff; doubles each retry (default 100 ms). */
  retryBackoffMs?: number;
  poolSize?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Schema for the app's tables (default public). */
  schema?: string;
  /** Create the app's tables if absent at start (default true). */
  createTables?: boolean;
  /** Lower bound on the DNS cache time, ms (default 0: the record's TTL is obeyed as is). */
  minTtlMs?: number;
  /**
   * After an error that says the server went away or refuses us (connection lost, terminated,
   * read-only, login denied), keep the cached DNS answer at most this much longer, so a moved
   * record is seen in this time instead of up to a TTL (default 100 ms; 0: obey the TTL only).
   */
  reResolveOnErrorMs?: number;
  /**
   * Named (server-side prepared) write statements: parsed and planned once per connection, about
   * half the server's CPU per write (default true). Off behind a pooler in transaction mode that
   * does not track prepared statements (PgBouncer < 1.21): the next write may get another server.
   */
  preparedStatements?: boolean;
  log?: (event: Record<string, unknown>) => void;
}

export interface RunningApp {
  url: string;
  port: number;
  /** The database address connections currently go to. */
  currentAddress(): string | undefined;
  stats(): AppStats;
  close(): Promise<void>;
}

export interface AppStats {
  ok: number;
  failed: number;
  unknown: number;
  retries: number;
  replays: number;
  addressChanges: number;
}

// ---------------------------------------------------------------------------------------------
// schema

export const APP_WRITES_TABLE = 'cutover_app_writes';

/** DDL of the app's tables. The orchestrator runs it on the old primary before replication starts. */
export function appSchemaSql(schema = 'public'): string[] {
  const t = (n: string) => `${quoteIdent(schema)}.${quoteIdent(n)}`;
  return [
    `create schema if not exists ${quoteIdent(schema)}`,
    `create table if not exists ${t(APP_WRITES_TABLE)} (
       request_id text primary key,
       kind text not null,
       result_id bigint,
       payload jsonb,
       created_at timestamptz not null default clock_timestamp(),
       -- the server the app wrote to; replication carries the value, so a row that reached the old
       -- primary through reverse replication still names the new one (split-brain check)
       written_on inet default inet_server_addr())`,
    `create table if not exists ${t('app_payments')} (
       id bigserial primary key,
       request_id text not null,
       account_id integer not null,
       amount_cents bigint not null,
       currency text not null default 'EUR',
       status text not null default 'pending',
       created_at timestamptz not null default now(),
       updated_at timestamptz)`,
    `create index if not exists ${quoteIdent('app_payments_request_id_idx')} on ${t('app_payments')} (request_id)`,
    `create table if not exists ${t('app_ledger_entries')} (
       id bigserial primary key,
       request_id text not null,
       account_id integer not null,
       amount_cents bigint not null,
       created_at timestamptz not null default now())`,
    `create index if not exists ${quoteIdent('app_ledger_entries_account_idx')} on ${t('app_ledger_entries')} (account_id)`,
    `create table if not exists ${t('app_notifications')} (
       id bigserial primary key,
       request_id text not null,
       channel text not null,
       body jsonb,
       created_at timestamptz not null default now())`,
  ];
}

/** Domain tables whose rows carry request_id (for the duplicate check). */
export const APP_DOMAIN_TABLES = ['app_payments', 'app_ledger_entries', 'app_notifications'] as const;

export async function ensureAppSchema(client: pg.Client | pg.PoolClient, schema = 'public'): Promise<void> {
  // No DDL when everything is there: a restarted app must also start against a fenced (read-only) server.
  const names = [APP_WRITES_TABLE, ...APP_DOMAIN_TABLES].map((n) => `${quoteIdent(schema)}.${quoteIdent(n)}`);
  const have = await client.query<{ n: number }>(`select count(to_regclass(x))::int as n from unnest($1::text[]) x`, [names]);
  if (have.rows[0].n === names.length) return;
  for (const sql of appSchemaSql(schema)) {
    try {
      await client.query(sql);
    } catch (e: any) {
      // Two apps starting at once race on IF NOT EXISTS; the loser sees a duplicate.
      if (!['42P07', '23505', '42710'].includes(e?.code)) throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// DNS with TTL

interface Answer {
  address: string;
  expiresAt: number;
}

/** Resolves one name through one DNS server, caching each answer for its TTL; concurrent callers share a lookup. */
export class TtlResolver {
  private answer?: Answer;
  private inflight?: Promise<Answer>;
  private readonly resolver?: Resolver;

  constructor(
    readonly name: string,
    dnsServer?: string,
    private readonly minTtlMs = 0,
    private readonly now: () => number = Date.now,
  ) {
    if (dnsServer && !isIP(name)) {
      this.resolver = new Resolver({ timeout: 500, tries: 2 });
      this.resolver.setServers([dnsServer]);
    }
  }

  /** Let the cached answer live at most `ms` more (the server behind it just failed us). */
  expireWithin(ms: number): void {
    if (this.answer) this.answer.expiresAt = Math.min(this.answer.expiresAt, this.now() + ms);
  }

  async address(): Promise<string> {
    if (isIP(this.name)) return this.name;
    if (this.answer && this.now() < this.answer.expiresAt) return this.answer.address;
    this.inflight ??= this.lookup().finally(() => (this.inflight = undefined));
    try {
      this.answer = await this.inflight;
    } catch (e) {
      // Serve the stale answer for a short while rather than failing every request on a DNS hiccup.
      if (!this.answer) throw e;
      this.answer = { address: this.answer.address, expiresAt: this.now() + 250 };
    }
    return this.answer.address;
  }

  private async lookup(): Promise<Answer> {
    if (!this.resolver) {
      const r = await dnsPromises.lookup(this.name, { family: 4 });
      return { address: r.address, expiresAt: this.now() + Math.max(1000, this.minTtlMs) };
    }
    const records = await new Promise<{ address: string; ttl: number }[]>((res, rej) =>
      this.resolver!.resolve4(this.name, { ttl: true }, (err, recs) => (err ? rej(err) : res(recs))),
    );
    if (records.length === 0) throw Object.assign(new Error(`no A record for ${this.name}`), { code: 'ENOTFOUND' });
    return { address: records[0].address, expiresAt: this.now() + Math.max(records[0].ttl * 1000, this.minTtlMs) };
  }
}

// ---------------------------------------------------------------------------------------------
// pool that follows DNS

class DnsPool {
  private pool?: pg.Pool;
  private address?: string;
  /** Settles when the app moves away from that pool's address. */
  private readonly left = new WeakMap<pg.Pool, { promise: Promise<undefined>; resolve: () => void; gone: boolean }>();
  addressChanges = 0;

  constructor(
    private readonly resolver: TtlResolver,
    private readonly base: pg.PoolConfig,
    private readonly log: (e: Record<string, unknown>) => void,
  ) {}

  current(): string | undefined {
    return this.address;
  }

  async get(): Promise<pg.Pool> {
    const address = await this.resolver.address();
    if (this.pool && address === this.address) return this.pool;
    const old = this.pool;
    const from = this.address;
    const pool = new pg.Pool({ ...this.base, host: address });
    // A fenced or killed server drops idle connections; without a listener that crashes the process.
    pool.on('error', () => {});
    // A fence terminates busy backends too. pg-pool only listens for errors on idle clients; a
    // client that is checked out, or already removed from an ending pool, would otherwise emit an
    // unhandled 'error' and take the whole app down (the query in flight still rejects as usual).
    pool.on('connect', (client) => client.on('error', () => {}));
    const leaving = { gone: false } as { promise: Promise<undefined>; resolve: () => void; gone: boolean };
    leaving.promise = new Promise<undefined>((r) => (leaving.resolve = () => ((leaving.gone = true), r(undefined))));
    this.left.set(pool, leaving);
    this.pool = pool;
    this.address = address;
    if (old) {
      this.left.get(old)?.resolve();
      this.addressChanges++;
      this.log({ event: 'db-address-changed', from, to: address, at: Date.now() });
      // Idle connections to the old address close now, busy ones as they are released. pg-pool
      // never serves requests already queued on a pool once end() is called (they would sit until
      // the connect timeout), so end it only when its queue is empty.
      const drain = () => (old.waitingCount === 0 ? old.end().catch(() => {}) : setTimeout(drain, 20).unref());
      drain();
    }
    return pool;
  }

  /**
   * A client of the pool at the current address. A request waiting for a connection on a pool the
   * app has moved away from (the old server fenced, its connects failing or slow) does not wait
   * there for the connect timeout: it goes to the new address's pool — nothing was sent yet.
   */
  async connect(pool: pg.Pool): Promise<pg.PoolClient> {
    for (let moves = 0; ; moves++) {
      const left = moves < 3 ? this.left.get(pool) : undefined;
      if (left?.gone) {
        pool = await this.get();
        continue;
      }
      const pending = pool.connect();
      const c = left ? await Promise.race([pending, left.promise]) : await pending;
      if (c) return c;
      pending.then((x) => x.release(), () => {});
      pool = await this.get();
    }
  }

  async end(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// errors

/** Errors worth another attempt with the same request id: the connection or server went away, or is read-only (fenced). */
export function isRetryable(e: any): boolean {
  const code: string = e?.code ?? '';
  if (/^(08|57P|53)/.test(code) || code === '25006' || code === '40001' || code === '40P01') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED'].includes(code)) return true;
  const m = String(e?.message ?? '');
  return /Connection terminated|timeout exceeded when trying to connect|Cannot use a pool after calling end|Client has encountered a connection error|connection timeout|Query read timeout/i.test(m);
}

/** An error after which the name may point elsewhere by now: the server went away, is fenced, or refuses our login. */
export function suggestsMove(e: any): boolean {
  return isRetryable(e) || e?.code === '28000' || e?.code === '28P01';
}

/**
 * A write statement commits on its own (autocommit): an error answer that says it was rolled back
 * or never ran (serialization, integrity, read-only, bad data, bad SQL, statement timeout) means not
 * committed. Anything else after it was sent — the connection died, the session was terminated
 * (a fence ends sessions mid-statement, possibly right after the commit) — leaves it unknown.
 */
function sentUnanswered(e: any): boolean {
  const code = String(e?.code ?? '');
  if (/^(40|23|25|22|42)/.test(code) || code === '57014') return false;
  // refused before anything went on the wire
  return !/not queryable|Cannot use a pool after calling end|timeout exceeded when trying to connect/i.test(String(e?.message ?? ''));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Committed = false | 'unknown';

class WriteError extends Error {
  constructor(
    readonly committed: Committed,
    readonly cause: any,
  ) {
    super(String(cause?.message ?? cause));
  }
}

// ---------------------------------------------------------------------------------------------
// app

const ID_RE = /^[A-Za-z0-9._:-]{1,200}$/;

export async function startApp(opts: AppOptions): Promise<RunningApp> {
  const log = opts.log ?? (() => {});
  const u = opts.dbUrl ? new URL(opts.dbUrl) : undefined;
  const dbHost = opts.dbHost ?? u?.hostname;
  if (!dbHost) throw new Error('sample app: no database host (set dbUrl or dbHost / --db-url or --db-host)');
  const base: pg.PoolConfig = {
    port: opts.dbPort ?? (u?.port ? Number(u.port) : 5432),
    user: opts.user ?? (u ? decodeURIComponent(u.username) : undefined) ?? 'postgres',
    password: opts.password ?? (u?.password ? decodeURIComponent(u.password) : undefined),
    database: opts.database ?? (u ? decodeURIComponent(u.pathname.slice(1)) || undefined : undefined) ?? 'app',
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 2000,
    idleTimeoutMillis: 10_000,
    statement_timeout: opts.statementTimeoutMs ?? 3000,
    application_name: 'cutover-sample-app',
  };
  const schema = opts.schema ?? 'public';
  const t = (n: string) => `${quoteIdent(schema)}.${quoteIdent(n)}`;
  const resolver = new TtlResolver(dbHost, opts.dnsServer, opts.minTtlMs ?? 0);
  const reResolveMs = opts.reResolveOnErrorMs ?? 100;
  const prepared = opts.preparedStatements ?? true;
  const pools = new DnsPool(resolver, base, log);
  const retry = opts.retry ?? 'none';
  const maxAttempts = retry === 'bounded' ? 1 + (opts.retries ?? 3) : 1;
  const backoff = opts.retryBackoffMs ?? 100;
  const stats: AppStats = { ok: 0, failed: 0, unknown: 0, retries: 0, replays: 0, addressChanges: 0 };

  if (opts.createTables ?? true) {
    const pool = await pools.get();
    const c = await pool.connect();
    try {
      await ensureAppSchema(c, schema);
    } finally {
      c.release();
    }
  }

  /** Retries fn per the policy; fn gets a fresh pool each attempt (the DNS answer may have moved). */
  async function withRetry<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
    let unknown = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(await pools.get());
      } catch (e: any) {
        const inner = e instanceof WriteError ? e.cause : e;
        if (e instanceof WriteError && e.committed === 'unknown') unknown = true;
        if (reResolveMs > 0 && suggestsMove(inner)) resolver.expireWithin(reResolveMs);
        if (attempt >= maxAttempts || !isRetryable(inner)) {
          // One attempt that may have committed makes the whole request indeterminate.
          throw e instanceof WriteError ? new WriteError(unknown ? 'unknown' : e.committed, inner) : new WriteError(unknown ? 'unknown' : false, e);
        }
        stats.retries++;
        await new Promise((r) => setTimeout(r, backoff * 2 ** (attempt - 1)));
      }
    }
  }

  /**
   * One write in one statement, so one round trip and its own transaction: the domain row and the
   * request-id row together, or neither. `domain` is an INSERT … SELECT or UPDATE whose WHERE has
   * `not exists (select 1 from prior)` (params from $4 on): a request id seen before writes nothing
   * and returns the earlier result (idempotent retries, client or app side); two attempts racing
   * on one id end in a unique violation on the request-id row, which rolls the statement back.
   */
  async function write(kind: string, requestId: string, payload: unknown, domain: string, params: unknown[], notFound?: () => HttpError): Promise<{ resultId: number | null; replay: boolean }> {
    const sql = `with prior as (select result_id from ${t(APP_WRITES_TABLE)} where request_id = $1::text),
      d as (${domain} returning id),
      w as (insert into ${t(APP_WRITES_TABLE)} (request_id, kind, result_id, payload) select $1::text, $2::text, d.id, $3::jsonb from d)
      select (select id from d) as id, (select result_id from prior) as prior_id, exists (select 1 from prior) as seen`;
    return withRetry(async (pool) => {
      let c: pg.PoolClient;
      try {
        c = await pools.connect(pool);
      } catch (e) {
        throw new WriteError(false, e);
      }
      let row: { id: string | null; prior_id: string | null; seen: boolean };
      try {
        const values = [requestId, kind, JSON.stringify(payload ?? null), ...params];
        row = (await c.query(prepared ? { name: `cutover-write-${kind}`, text: sql, values } : { text: sql, values })).rows[0];
      } catch (e: any) {
        c.release(true);
        if (e?.code === '23505' && e?.table === APP_WRITES_TABLE) return replayOf(pool, requestId);
        throw new WriteError(sentUnanswered(e) ? 'unknown' : false, e);
      }
      c.release();
      if (row.seen) {
        stats.replays++;
        return { resultId: row.prior_id === null ? null : Number(row.prior_id), replay: true };
      }
      if (row.id === null) throw notFound?.() ?? new Error(`the ${kind} write wrote no row`);
      return { resultId: Number(row.id), replay: false };
    });
  }

  async function replayOf(pool: pg.Pool, requestId: string): Promise<{ resultId: number | null; replay: boolean }> {
    const prev = await pool.query<{ result_id: string | null }>(`select result_id from ${t(APP_WRITES_TABLE)} where request_id = $1`, [requestId]);
    stats.replays++;
    const id = prev.rows[0]?.result_id;
    return { resultId: id === null || id === undefined ? null : Number(id), replay: true };
  }

  async function read<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
    return withRetry(fn);
  }

  function requestIdOf(req: http.IncomingMessage, body: any): string {
    const id = String(req.headers['x-request-id'] ?? body?.id ?? '');
    if (!ID_RE.test(id)) throw new HttpError(400, 'every write needs a request id (X-Request-Id header or "id" field): 1–200 characters of A–Z a–z 0–9 . _ : -');
    return id;
  }

  const int = (v: unknown, dflt: number) => (Number.isFinite(Number(v)) && v !== null && v !== '' ? Math.trunc(Number(v)) : dflt);

  async function route(req: http.IncomingMessage, body: any): Promise<[number, unknown]> {
    const url = new URL(req.url ?? '/', 'http://app');
    const p = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const m = req.method ?? 'GET';
    if (m === 'GET' && p[0] === 'healthz') return [200, { ok: true, dbAddress: pools.current(), stats: { ...stats, addressChanges: pools.addressChanges } }];

    if (m === 'POST' && p.length === 1 && p[0] === 'payments') {
      const id = requestIdOf(req, body);
      const account = int(body?.account_id, 1);
      const amount = int(body?.amount_cents, 100);
      const currency = String(body?.currency ?? 'EUR').slice(0, 3);
      const r = await write('payment', id, body, `insert into ${t('app_payments')} (request_id, account_id, amount_cents, currency) select $1::text, $4::int, $5::bigint, $6::text where not exists (select 1 from prior)`, [account, amount, currency]);
      return [201, { id, kind: 'payment', resultId: r.resultId, replay: r.replay }];
    }
    if (m === 'POST' && p.length === 1 && p[0] === 'ledger') {
      const id = requestIdOf(req, body);
      const r = await write('ledger', id, body, `insert into ${t('app_ledger_entries')} (request_id, account_id, amount_cents) select $1::text, $4::int, $5::bigint where not exists (select 1 from prior)`, [int(body?.account_id, 1), int(body?.amount_cents, 100)]);
      return [201, { id, kind: 'ledger', resultId: r.resultId, replay: r.replay }];
    }
    if (m === 'POST' && p.length === 1 && p[0] === 'notifications') {
      const id = requestIdOf(req, body);
      const r = await write('notification', id, body, `insert into ${t('app_notifications')} (request_id, channel, body) select $1::text, $4::text, $5::jsonb where not exists (select 1 from prior)`, [String(body?.channel ?? 'email').slice(0, 32), JSON.stringify(body?.body ?? null)]);
      return [201, { id, kind: 'notification', resultId: r.resultId, replay: r.replay }];
    }
    if (m === 'POST' && p.length === 3 && p[0] === 'payments' && p[2] === 'status') {
      const id = requestIdOf(req, body);
      const payment = p[1];
      const status = String(body?.status ?? 'settled').slice(0, 32);
      const r = await write('status', id, { payment, status }, `update ${t('app_payments')} set status = $5::text, updated_at = now() where request_id = $4::text and not exists (select 1 from prior)`, [payment, status], () => new HttpError(404, `no payment with request id ${payment}`));
      return [200, { id, kind: 'status', resultId: r.resultId, replay: r.replay }];
    }
    if (m === 'GET' && p.length === 2 && p[0] === 'payments') {
      const rows = await read((pool) => pool.query(`select id, request_id, account_id, amount_cents, currency, status, created_at from ${t('app_payments')} where request_id = $1`, [p[1]]));
      if (rows.rowCount === 0) throw new HttpError(404, `no payment with request id ${p[1]}`);
      return [200, rows.rows[0]];
    }
    if (m === 'GET' && p.length === 3 && p[0] === 'accounts' && p[2] === 'balance') {
      const account = int(p[1], -1);
      const r = await read((pool) => pool.query<{ balance: string }>(`select coalesce(sum(amount_cents), 0)::text as balance from ${t('app_ledger_entries')} where account_id = $1`, [account]));
      return [200, { account, balanceCents: Number(r.rows[0].balance) }];
    }
    if (m === 'GET' && p.length === 3 && p[0] === 'accounts' && p[2] === 'recent') {
      // the account's latest ledger entries: a query whose plan needs statistics (on a table with
      // few rows per account, the planner without them walks the primary key backwards instead of
      // using the account index — the readiness phase's ANALYZE is what prevents that)
      const account = int(p[1], -1);
      const r = await read((pool) => pool.query(`select id, amount_cents, created_at from ${t('app_ledger_entries')} where account_id = $1 order by id desc limit 10`, [account]));
      return [200, { account, entries: r.rows }];
    }
    throw new HttpError(404, `no route ${m} ${url.pathname}`);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= 65536) chunks.push(d);
    });
    req.on('end', async () => {
      let status = 500;
      let body: unknown;
      let committed: Committed | undefined;
      try {
        if (size > 65536) throw new HttpError(413, 'request body over 64 KiB');
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: any = undefined;
        if (text.trim()) {
          try {
            parsed = JSON.parse(text);
          } catch {
            throw new HttpError(400, 'request body is not JSON');
          }
        }
        [status, body] = await route(req, parsed);
        stats.ok++;
      } catch (e: any) {
        if (e instanceof HttpError) {
          status = e.status;
          committed = false;
          body = { error: e.message, committed: false };
          stats.failed++;
        } else {
          const we = e instanceof WriteError ? e : new WriteError(false, e);
          if (we.cause instanceof HttpError) {
            status = we.cause.status;
            committed = false;
            body = { error: we.cause.message, committed: false };
            stats.failed++;
          } else {
            status = 503;
            committed = we.committed;
            body = { error: redactSecrets(we.message), code: we.cause?.code, committed: we.committed };
            if (we.committed === 'unknown') stats.unknown++;
            else stats.failed++;
          }
        }
      }
      if (res.destroyed) return;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (committed !== undefined) headers['x-cutover-committed'] = String(committed);
      res.writeHead(status, headers);
      res.end(JSON.stringify(body));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => res());
  });
  const addr = server.address() as { port: number; address: string };
  const url = `http://${addr.address}:${addr.port}`;
  log({ event: 'listening', url, dbHost, dnsServer: opts.dnsServer, retry, dbAddress: pools.current() });
  return {
    url,
    port: addr.port,
    currentAddress: () => pools.current(),
    stats: () => ({ ...stats, addressChanges: pools.addressChanges }),
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
      await pools.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CLI

/** Options from CUTOVER_APP_* environment variables (flags override them). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): AppOptions {
  const num = (k: string) => (env[k] !== undefined && env[k] !== '' ? Number(env[k]) : undefined);
  return {
    host: env.CUTOVER_APP_HOST,
    port: num('CUTOVER_APP_PORT'),
    dbUrl: env.CUTOVER_APP_DB_URL,
    dbHost: env.CUTOVER_APP_DB_HOST,
    dbPort: num('CUTOVER_APP_DB_PORT'),
    user: env.CUTOVER_APP_DB_USER,
    password: env.CUTOVER_APP_DB_PASSWORD,
    database: env.CUTOVER_APP_DB_NAME,
    dnsServer: env.CUTOVER_APP_DNS,
    retry: env.CUTOVER_APP_RETRY as RetryPolicy | undefined,
    retries: num('CUTOVER_APP_RETRIES'),
    retryBackoffMs: num('CUTOVER_APP_RETRY_BACKOFF_MS'),
    poolSize: num('CUTOVER_APP_POOL_SIZE'),
    reResolveOnErrorMs: num('CUTOVER_APP_RERESOLVE_ON_ERROR_MS'),
    preparedStatements: env.CUTOVER_APP_PREPARED_STATEMENTS === undefined ? undefined : !/^(0|false|no)$/i.test(env.CUTOVER_APP_PREPARED_STATEMENTS),
    schema: env.CUTOVER_APP_SCHEMA,
    createTables: env.CUTOVER_APP_CREATE_TABLES === undefined ? undefined : !/^(0|false|no)$/i.test(env.CUTOVER_APP_CREATE_TABLES),
  };
}

export function optionsFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): AppOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'db-url': { type: 'string' },
      'db-host': { type: 'string' },
      'db-port': { type: 'string' },
      user: { type: 'string' },
      database: { type: 'string' },
      dns: { type: 'string' },
      retry: { type: 'string' },
      retries: { type: 'string' },
      'retry-backoff-ms': { type: 'string' },
      'pool-size': { type: 'string' },
      schema: { type: 'string' },
      'no-create-tables': { type: 'boolean' },
      'no-prepared-statements': { type: 'boolean' },
    },
    strict: true,
  });
  const o = optionsFromEnv(env);
  const n = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const pick = <T>(a: T | undefined, b: T | undefined) => (a !== undefined ? a : b);
  const retry = pick(values.retry as RetryPolicy | undefined, o.retry);
  if (retry !== undefined && retry !== 'none' && retry !== 'bounded') throw new Error(`--retry must be none or bounded (got ${retry})`);
  return {
    ...o,
    host: pick(values.host, o.host),
    port: pick(n(values.port), o.port),
    dbUrl: pick(values['db-url'], o.dbUrl),
    dbHost: pick(values['db-host'], o.dbHost),
    dbPort: pick(n(values['db-port']), o.dbPort),
    user: pick(values.user, o.user),
    database: pick(values.database, o.database),
    dnsServer: pick(values.dns, o.dnsServer),
    retry,
    retries: pick(n(values.retries), o.retries),
    retryBackoffMs: pick(n(values['retry-backoff-ms']), o.retryBackoffMs),
    poolSize: pick(n(values['pool-size']), o.poolSize),
    schema: pick(values.schema, o.schema),
    createTables: values['no-create-tables'] ? false : o.createTables,
    preparedStatements: values['no-prepared-statements'] ? false : o.preparedStatements,
  };
}

async function main() {
  let opts: AppOptions;
  try {
    opts = optionsFromArgs(process.argv.slice(2));
  } catch (e: any) {
    process.stderr.write(`sample app: ${e.message}\n`);
    process.exit(2);
  }
  const print = (e: Record<string, unknown>) => process.stdout.write(JSON.stringify({ ...e, pid: process.pid }) + '\n');
  try {
    const app = await startApp({ ...opts, log: print });
    const stop = () => app.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } catch (e: any) {
    process.stderr.write(`sample app: cannot start against ${opts.dbUrl ? redactUrl(opts.dbUrl) : opts.dbHost}: ${redactSecrets(e?.message ?? String(e))}\n`);
    process.exit(2);
  }
}

if (process.argv[1] && pathToFileURL(resolvePath(process.argv[1])).href === import.meta.url) await main();
