/**
 * Connections and SQL text helpers shared by the migration core. Everything that talks to
 * Postgres goes through `connect`/`withClient`, so connection failures are reported the same way
 * everywhere (host:port, what Postgres said, what to do) and passwords never reach a message.
 */
import pg from 'pg';
import { CutoverError, redactSecrets } from './errors.ts';

// int8 and numeric come back as strings by default; counts and LSN diffs fit in a double for our use.
pg.types.setTypeParser(20, (v: string) => Number(v));

export type Client = pg.Client;

/** Quote an SQL identifier. Always used: tables named `Order Items` or `"weird"` must work. */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export function quoteLiteral(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** The URL with its password replaced, for logs and reports. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return redactSecrets(url);
  }
}

export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1)) || 'postgres'}`;
  } catch {
    return redactUrl(url);
  }
}

function checkUrl(url: string, what: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CutoverError('USAGE', `${what} is not a valid connection URL: ${redactSecrets(url)}`, {
      hint: 'use the form postgres://user:password@host:5432/dbname',
    });
  }
  if (!/^postgres(ql)?:$/.test(u.protocol)) {
    throw new CutoverError('USAGE', `${what} must start with postgres:// (got ${u.protocol}//)`, {
      hint: 'use the form postgres://user:password@host:5432/dbname',
    });
  }
}

export interface ConnectOptions {
  /** Shown in errors: "source", "target", … */
  role?: string;
  applicationName?: string;
  connectTimeoutMs?: number;
  /** Extra libpq-style options (e.g. statement_timeout) set after connecting. */
  statementTimeoutMs?: number;
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
  });
  // An idle client whose server goes away emits 'error'; without a listener that kills the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw connectionError(e, url, opts.role);
  }
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
    host: u.hostname,
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
