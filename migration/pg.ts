/**
 * Connections and SQL text helpers shared by the migration core. Everything that talks to
 * Postgres goes through `connect`/`withClient`, so connection failures are reported the same way
 * everywhere (host:port, what Postgres said, what to do) and passwords never reach a message.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { CutoverError, redactSecrets } from './errors.ts';

// int8 and numeric come back as strings by default; counts and LSN diffs fit in a double for our use.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Client = pg.Client;

/** Quote an SQL identifier. Always used: tables named `Order Items` or `"weird"` must work. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** An identifier as Postgres prints it: bare when it needs no quotes (lower case, no specials), else quoted. */
export function quoteIdentIfNeeded(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name);
}

export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** The URL with its password replaced, for logs and reports. */
export function redactUrl(url: string): string {
  // Text-based, not URL-based: a URL parser re-encodes (and may reject) the very strings that need
  // redacting, and misses ?password=. One function for every form (migration/errors.ts).
  return redactSecrets(url);
}

export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}/${safeDecode(u.pathname.slice(1)) || 'postgres'}`;
  } catch {
    return redactUrl(url);
  }
}

/** decodeURIComponent that never throws (for display only). */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const URL_HINT = 'use the form postgres://user@host:5432/dbname; a password goes after the user name and a colon, percent-encoded (@ as %40, % as %25, / as %2F), or in PGPASSWORD / ~/.pgpass';

/**
 * Check a connection URL before anything uses it: parseable, postgres scheme, and percent-escapes
 * that decode (a literal % in a password is accepted by the URL parser but breaks every later
 * decodeURIComponent with a URIError). Exported so the CLI checks each URL once, up front.
 */
export function checkUrl(url: string, what: string): URL {
  let u: URL;
  if (typeof url !== 'string' || !url) throw new CutoverError('USAGE', `${what} is missing`, { hint: URL_HINT });
  try {
    u = new URL(url);
  } catch {
    throw new CutoverError('USAGE', `${what} is not a valid connection URL: ${redactSecrets(url)}`, { hint: URL_HINT });
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) {
    throw new CutoverError('USAGE', `${what} must start with postgres:// (got ${u.protocol}//)`, { hint: URL_HINT });
  }
  const parts: Array<[string, string]> = [
    ['user name', u.username],
    ['password', u.password],
    ['database name', u.pathname.slice(1)],
  ];
  for (const [part, raw] of parts) {
    try {
      decodeURIComponent(raw);
    } catch {
      throw new CutoverError('USAGE', `the ${part} in ${what} contains a % that is not a valid percent-escape`, {
        hint: 'write a literal % as %25 (and @ as %40, / as %2F): a password p%ss is written p%25ss',
      });
    }
  }
  try {
    for (const _ of u.searchParams) void _;
  } catch {
    throw new CutoverError('USAGE', `the parameters in ${what} contain an invalid percent-escape`, { hint: 'write a literal % as %25' });
  }
  return u;
}

export interface ConnectOptions {
  /**
   * The session runs statements that carry a password (CREATE/ALTER SUBSCRIPTION … CONNECTION):
   * keep them out of the server log (log_min_error_statement = panic, log_statement = none).
   * Superuser-only settings: when they cannot be set, the session goes on (the caller was warned
   * by preflight that a non-superuser subscriber logs failing statements).
   */
  secretStatements?: boolean;
  /** Shown in errors: "source", "target", … */
  role?: string;
  applicationName?: string;
  connectTimeoutMs?: number;
  /** Extra libpq-style options (e.g. statement_timeout) set after connecting. */
  statementTimeoutMs?: number;
  /** A walsender session (replication commands such as CREATE_REPLICATION_SLOT, simple queries only). */
  replication?: boolean;
}

/** Map a driver error to a CutoverError that names the place and the fix. */
export function connectionError(e: any, url: string, role = 'database'): CutoverError {
  const where = describeTarget(url);
  const code: string | undefined = e?.code;
  if (code === 'ECONNREFUSED')
    return new CutoverError('CONNECT', `cannot connect to the ${role} at ${where}: connection refused`, {
      hint: 'is the server running and listening on that address and port? (listen_addresses, port, firewall)',
      cause: e,
    });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new CutoverError('CONNECT', `cannot resolve the ${role} host in ${where}`, { hint: 'check the host name in the URL', cause: e });
  if (code === 'ETIMEDOUT' || /timeout/i.test(e?.message ?? ''))
    return new CutoverError('CONNECT', `timed out connecting to the ${role} at ${where}`, {
      hint: 'the host did not answer; check the address, the network path and security groups',
      cause: e,
    });
  if (code === '28P01' || code === '28000')
    return new CutoverError('AUTH', `the ${role} at ${where} rejected the login: ${e.message}`, {
      hint: 'check the user and password in the URL, and pg_hba.conf on the server',
      cause: e,
    });
  if (code === '3D000')
    return new CutoverError('CONNECT', `the ${role} database does not exist at ${where}: ${e.message}`, {
      hint: 'create the database first or fix the database name in the URL',
      cause: e,
    });
  return new CutoverError('CONNECT', `cannot connect to the ${role} at ${where}: ${redactSecrets(e?.message ?? String(e))}`, { cause: e });
}

export async function connect(url: string, opts: ConnectOptions = {}): Promise<pg.Client> {
  checkUrl(url, opts.role ?? 'URL');
  const client = new pg.Client({
    connectionString: url,
    application_name: opts.applicationName ?? 'cutover-lab',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    statement_timeout: opts.statementTimeoutMs,
    ...(opts.replication ? { replication: 'database' } : {}),
  });
  // An idle client whose server goes away emits 'error'; without a listener that kills the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw connectionError(e, url, opts.role);
  }
  if (opts.secretStatements) await quietSecretStatements(client);
  return client;
}

/** Run fn with a connected client and always close it. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>, opts: ConnectOptions = {}): Promise<T> {
  const c = await connect(url, opts);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * pg_cancel_backend / pg_terminate_backend for the backends of `clients`, from a fresh connection
 * (the sessions themselves are busy). A terminate waits (up to 5 s) until the backends are gone, so
 * no statement of theirs can still commit after it returns. Best effort: a server that cannot be
 * reached now ends the statements when their sockets close.
 */
export async function signalBackends(url: string, clients: readonly pg.Client[], fn: 'pg_cancel_backend' | 'pg_terminate_backend', opts: ConnectOptions = {}): Promise<void> {
  const pids = clients.map((c) => (c as unknown as { processID?: number }).processID).filter((p): p is number => typeof p === 'number' && p > 0);
  if (!pids.length) return;
  await withClient(
    url,
    async (q) => {
      await q.query(`select ${fn}(p) from unnest($1::int[]) p`, [pids]);
      for (let i = 0; fn === 'pg_terminate_backend' && i < 100; i++) {
        if (!(await q.query(`select 1 from pg_stat_activity where pid = any($1::int[])`, [pids])).rowCount) return;
        await new Promise((res) => setTimeout(res, 50));
      }
    },
    opts,
  ).catch(() => {});
}

/** server_version_num, e.g. 110022 or 170004. */
export async function serverVersionNum(c: pg.Client): Promise<number> {
  const r = await c.query<{ v: string }>(`select current_setting('server_version_num') as v`);
  return Number(r.rows[0].v);
}

export async function serverMajor(c: pg.Client): Promise<number> {
  const v = await serverVersionNum(c);
  return Math.floor(v / 10000);
}

/** Wraps an SQL error with the statement context and Postgres' own detail/hint. */
export function sqlError(e: any, context: string): CutoverError {
  const parts = [e?.detail, e?.where].filter(Boolean).join('; ');
  return new CutoverError('SQL', `${context}: ${redactSecrets(e?.message ?? String(e))}${e?.code ? ` (SQLSTATE ${e.code})` : ''}`, {
    detail: parts || undefined,
    hint: e?.hint,
    cause: e,
  });
}

/**
 * Keep the statements of this session out of the server log: they carry a password (a subscription
 * conninfo). Returns false when the role may not change the settings (not superuser).
 */
export async function quietSecretStatements(c: pg.Client): Promise<boolean> {
  try {
    await c.query(`set log_min_error_statement = panic`);
    await c.query(`set log_statement = 'none'`);
    return true;
  } catch {
    return false;
  }
}

/** Replace the database name in a URL (keeps user, password, host, params). */
export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(db);
  return u.toString();
}

/** The libpq key=value form of a URL, as CREATE SUBSCRIPTION … CONNECTION wants it. */
export function toConninfo(url: string): string {
  const u = new URL(url);
  const kv: Record<string, string> = {
    // an IPv6 literal keeps its brackets in a URL, never in conninfo
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port || '5432',
    dbname: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    user: decodeURIComponent(u.username),
  };
  if (u.password) kv.password = decodeURIComponent(u.password);
  for (const [k, v] of u.searchParams) kv[k] = v;
  return Object.entries(kv)
    .map(([k, v]) => `${k}='${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// Connection strings from anywhere libpq takes them: URL, key=value conninfo, a service, the
// environment (PGHOST, PGPASSWORD, …) and the password file. Resolved once, at the edge, into one
// complete URL, so node-pg, pg_dump (libpqEnv) and the subscription's conninfo all see the same
// server, user and password — whichever way the user supplied them, and never on a command line.
// ---------------------------------------------------------------------------------------------

/** Parse a libpq key=value conninfo string (values may be 'quoted' with \' and \\ escapes). */
export function parseConninfo(s: string, what = 'connection string'): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  for (;;) {
    ws();
    if (i >= s.length) return out;
    const k0 = i;
    while (i < s.length && /[A-Za-z0-9_]/.test(s[i])) i++;
    const key = s.slice(k0, i);
    ws();
    if (!key || s[i] !== '=') throw new CutoverError('USAGE', `cannot parse ${what}: expected key=value at "${redactSecrets(s.slice(k0, k0 + 20))}"`, { hint: "write host=db port=5432 dbname=app user=app, quoting values with spaces as 'like this'" });
    i++;
    ws();
    let v = '';
    if (s[i] === "'") {
      i++;
      for (;;) {
        if (i >= s.length) throw new CutoverError('USAGE', `unterminated quoted value for ${key} in ${what}`, { hint: "close the quote; write a quote inside a value as \\'" });
        if (s[i] === '\\' && i + 1 < s.length) {
          v += s[i + 1];
          i += 2;
        } else if (s[i] === "'") {
          i++;
          break;
        } else v += s[i++];
      }
    } else {
      while (i < s.length && !/\s/.test(s[i])) {
        if (s[i] === '\\' && i + 1 < s.length) {
          v += s[i + 1];
          i += 2;
        } else v += s[i++];
      }
    }
    out[key] = v;
  }
}

function readServiceFile(env: NodeJS.ProcessEnv, service: string): Record<string, string> | undefined {
  const files = [env.PGSERVICEFILE ?? join(env.HOME ?? homedir(), '.pg_service.conf'), join(env.PGSYSCONFDIR ?? '/etc/postgresql-common', 'pg_service.conf')];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    let current: string | undefined;
    const out: Record<string, string> = {};
    let found = false;
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const sec = /^\[(.*)\]$/.exec(line);
      if (sec) {
        current = sec[1];
        if (current === service) found = true;
        continue;
      }
      if (current !== service) continue;
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    }
    if (found) return out;
  }
  return undefined;
}

/** The password-file entry for host:port:db:user (libpq rules: * wildcards, \: and \\ escapes, 0600 required). */
export function passfileLookup(env: NodeJS.ProcessEnv, host: string, port: string, db: string, user: string): string | undefined {
  const file = env.PGPASSFILE ?? join(env.HOME ?? homedir(), '.pgpass');
  let text: string;
  try {
    const st = statSync(file);
    // libpq ignores a password file that others can read; so do we (and say nothing: neither does libpq)
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) return undefined;
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const hostKey = host.startsWith('/') ? 'localhost' : host;
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const fields: string[] = [];
    let cur = '';
    for (let i = 0; i < line.length; i++) {
      if (line[i] === '\\' && i + 1 < line.length) cur += line[++i];
      else if (line[i] === ':' && fields.length < 4) {
        fields.push(cur);
        cur = '';
      } else cur += line[i];
    }
    fields.push(cur);
    if (fields.length < 5) continue;
    const [h, p, d, u, pw] = fields;
    const m = (pat: string, v: string) => pat === '*' || pat === v;
    if (m(h, hostKey) && m(p, port) && m(d, db) && m(u, user)) return pw;
  }
  return undefined;
}

const CONNINFO_KEYS = new Set(['host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'service', 'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'sslpassword', 'application_name', 'connect_timeout', 'options', 'target_session_attrs', 'passfile', 'channel_binding', 'gssencmode', 'keepalives', 'sslcompression']);

/**
 * One complete postgres:// URL for a URL or conninfo string, with what the string leaves out
 * filled in the way libpq does: the service (service= or PGSERVICE), then PGHOST/PGPORT/
 * PGDATABASE/PGUSER/PGPASSWORD, then the password file (PGPASSFILE or ~/.pgpass), then defaults.
 * Bad input is a USAGE error naming `what` (never a TypeError/URIError later).
 */
export function resolveConnection(input: string, what: string, env: NodeJS.ProcessEnv = process.env, opts: { forServer?: boolean } = {}): string {
  const kv: Record<string, string> = {};
  const text = (input ?? '').trim();
  if (!text) throw new CutoverError('USAGE', `${what} is missing`, { hint: URL_HINT });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const u = checkUrl(text, what);
    if (u.hostname) kv.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (u.port) kv.port = u.port;
    if (u.pathname.length > 1) kv.dbname = decodeURIComponent(u.pathname.slice(1));
    if (u.username) kv.user = decodeURIComponent(u.username);
    if (u.password) kv.password = decodeURIComponent(u.password);
    for (const [k, v] of u.searchParams) kv[k] = v;
  } else if (text.includes('=')) {
    Object.assign(kv, parseConninfo(text, what));
  } else {
    throw new CutoverError('USAGE', `${what} is neither a postgres:// URL nor a key=value connection string: ${redactSecrets(text)}`, { hint: URL_HINT });
  }
  for (const k of Object.keys(kv))
    if (!CONNINFO_KEYS.has(k)) throw new CutoverError('USAGE', `${what}: unknown connection parameter "${k}"`, { hint: `known: ${[...CONNINFO_KEYS].join(', ')}` });
  const service = kv.service ?? env.PGSERVICE;
  if (service) {
    const sv = readServiceFile(env, service);
    if (!sv) throw new CutoverError('USAGE', `${what}: service "${service}" is not in ${env.PGSERVICEFILE ?? '~/.pg_service.conf'} or the system pg_service.conf`, { hint: 'define it there, or give the connection as a URL' });
    for (const [k, v] of Object.entries(sv)) kv[k] ??= v;
  }
  delete kv.service;
  if (kv.hostaddr && !kv.host) kv.host = kv.hostaddr;
  delete kv.hostaddr;
  kv.host ??= env.PGHOST || 'localhost';
  kv.port ??= env.PGPORT || '5432';
  kv.user ??= env.PGUSER || safeUserName();
  kv.dbname ??= env.PGDATABASE || kv.user;
  if (kv.host.includes(',')) throw new CutoverError('USAGE', `${what}: several hosts (${kv.host}) are not supported`, { hint: 'give the one primary you mean' });
  if (!/^\d{1,5}$/.test(kv.port) || Number(kv.port) < 1 || Number(kv.port) > 65535) throw new CutoverError('USAGE', `${what}: port "${kv.port}" is not a TCP port number`, { hint: 'use a number 1–65535' });
  if (opts.forServer) {
    // A conninfo the *server* uses (the subscription's): a passfile= names a file on the
    // subscriber's host and stays in it; without one, the password comes from here as usual.
    if (!kv.passfile) kv.password ??= env.PGPASSWORD || passfileLookup(env, kv.host, kv.port, kv.dbname, kv.user) || '';
  } else {
    if (kv.passfile) env = { ...env, PGPASSFILE: kv.passfile };
    delete kv.passfile;
    kv.password ??= env.PGPASSWORD || passfileLookup(env, kv.host, kv.port, kv.dbname, kv.user) || '';
  }
  if (!kv.password) delete kv.password;
  // A Unix-socket directory cannot be a URL host: it travels as ?host= (node-postgres and
  // toConninfo honour it), with localhost in the authority.
  const socketDir = kv.host.startsWith('/') ? kv.host : undefined;
  const host = socketDir ? 'localhost' : kv.host.includes(':') ? `[${kv.host}]` : kv.host;
  const u = new URL(`postgres://${host}:${kv.port}/`);
  u.username = encodeURIComponent(kv.user);
  if (kv.password !== undefined) u.password = encodeURIComponent(kv.password);
  u.pathname = '/' + encodeURIComponent(kv.dbname);
  for (const [k, v] of Object.entries(kv)) if (!['host', 'port', 'user', 'password', 'dbname'].includes(k)) u.searchParams.set(k, v);
  if (socketDir) u.searchParams.set('host', socketDir);
  return u.toString();
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
}

// ---------------------------------------------------------------------------------------------
// The same server twice
// ---------------------------------------------------------------------------------------------

export interface ServerIdentity {
  /** pg_control_system().system_identifier; null when the role may not read it. */
  systemIdentifier: string | null;
  database: string;
  versionNum: number;
  version: string;
  inRecovery: boolean;
  /** postmaster start time + port: tells clusters apart where system_identifier is not readable. */
  instance: string;
}

export async function serverIdentity(c: pg.Client): Promise<ServerIdentity> {
  const r = await c.query<{ db: string; v: string; version: string; rec: boolean; instance: string }>(
    `select current_database() as db, current_setting('server_version_num') as v, current_setting('server_version') as version,
            pg_is_in_recovery() as rec, pg_postmaster_start_time()::text || ' port ' || current_setting('port') as instance`,
  );
  let systemIdentifier: string | null = null;
  if (Number(r.rows[0].v) >= 90600) {
    try {
      systemIdentifier = (await c.query<{ id: string }>(`select system_identifier::text as id from pg_control_system()`)).rows[0].id;
    } catch {
      systemIdentifier = null;
    }
  }
  const x = r.rows[0];
  return { systemIdentifier, database: x.db, versionNum: Number(x.v), version: x.version, inRecovery: x.rec, instance: x.instance };
}

/**
 * Pure decision over two identities: why these two cannot be a cutover's source and target, or
 * null. Same cluster (same system_identifier, or same postmaster when it is not readable):
 * the same database is a no-op that a fence would lock out; another database of the same cluster
 * is locked out too (ALTER ROLE is cluster-wide) and CREATE SUBSCRIPTION waits forever for a slot
 * in its own cluster; a physical standby of the source shares its system_identifier.
 */
export function sameServerReason(s: ServerIdentity, t: ServerIdentity): string | null {
  const sameCluster = s.systemIdentifier && t.systemIdentifier ? s.systemIdentifier === t.systemIdentifier : s.instance === t.instance;
  if (!sameCluster) return null;
  const id = s.systemIdentifier ? `system_identifier ${s.systemIdentifier}` : `the same postmaster (${s.instance})`;
  if (s.instance !== t.instance) {
    // Same system_identifier, another postmaster: a physical standby, or a copy of the data
    // directory (a restored backup, a lab golden copy). A copy is a server of its own; a standby is not.
    if (!t.inRecovery && !s.inRecovery) return null;
    return `--source and --target share ${id} and one of them is in recovery: a physical standby of the other cannot be a logical replication target`;
  }
  if (s.database === t.database) return `--source and --target are the same database "${s.database}" on the same server (${id})`;
  return `--source and --target are two databases ("${s.database}" and "${t.database}") of the same PostgreSQL cluster (${id}): the fence (ALTER ROLE) would lock the target's applications out too, and a subscription to its own cluster hangs creating the slot`;
}

/** Refuse a server older than `minMajor`, naming its version (before any query needs a newer setting). */
export function checkServerVersion(id: ServerIdentity, role: string, minMajor = 10): void {
  if (id.versionNum < minMajor * 10000)
    throw new CutoverError('PRECONDITION', `the ${role} runs PostgreSQL ${id.version}; logical replication needs PostgreSQL ${minMajor} or newer`, {
      hint: role === 'source' ? 'upgrade the source in place first (pg_upgrade), or migrate it with dump/restore' : 'use a newer target server',
      exitCode: 2,
    });
}

/**
 * The first check of every command that takes a source and a target: both answer, both run a
 * supported version, and they are not the same server (exit 2 with the reason).
 */
export async function assertDistinctServers(source: string, target: string, opts: { minMajor?: number } = {}): Promise<{ source: ServerIdentity; target: ServerIdentity }> {
  const [s, t] = await Promise.all([withClient(source, serverIdentity, { role: 'source' }), withClient(target, serverIdentity, { role: 'target' })]);
  checkServerVersion(s, 'source', opts.minMajor);
  checkServerVersion(t, 'target', opts.minMajor);
  const why = sameServerReason(s, t);
  if (why)
    throw new CutoverError('USAGE', why, {
      hint: '--target must be the new server, a different cluster (check the host, port and database; a proxy, a DNS name or a pooler can hide that two URLs reach one server)',
    });
  return { source: s, target: t };
}
