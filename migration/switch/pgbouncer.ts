/**
 * PgBouncer switch: PAUSE the database (new queries wait, in-flight ones finish), rewrite its
 * [databases] line to the other side, RELOAD, RESUME — clients see a stall, not errors. The admin
 * console only speaks the simple query protocol: commands are sent without parameters.
 * `current()` asks the running pooler (SHOW DATABASES), not the ini: the file may be rewritten
 * but not yet reloaded. An abort closes the admin connection (a PAUSE waiting for in-flight
 * queries is given up) and a pause this switch took is released again.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { CutoverError } from '../errors.ts';
import { describeTarget } from '../pg.ts';
import { pgbouncerServerPids, replaceFileKeepingMode, whilePaused } from '../pgbouncer-safety.ts';
import type { Endpoint, PausableSwitch, Side, SwitchContext } from './types.ts';

export interface PgbouncerSwitchOptions {
  /** postgres://admin@host:port/pgbouncer (a user listed in admin_users). */
  adminUrl: string;
  /** Path of the pgbouncer.ini to rewrite (must be writable by us, read by pgbouncer on RELOAD). */
  iniFile: string;
  /** The database alias clients connect to (default: the source URL's database). */
  database?: string;
  /** Endpoints (default: from the source/target URLs). */
  oldEndpoint?: Endpoint;
  newEndpoint?: Endpoint;
  /**
   * While paused, a held query is released with an error after this long (query_wait_timeout is
   * set for the pause and restored on resume): a stuck switchover never holds clients forever.
   */
  maxHoldMs?: number;
}

/** Replace host/port/dbname of `alias` in the [databases] section; other keys (user, pool_size…) are kept. Pure. */
export function rewriteDatabaseLine(ini: string, alias: string, to: Endpoint): string {
  const lines = ini.split('\n');
  let section = '';
  let found = false;
  const out = lines.map((line) => {
    const sec = /^\s*\[([^\]]+)\]/.exec(line);
    if (sec) {
      section = sec[1].trim().toLowerCase();
      return line;
    }
    if (section !== 'databases') return line;
    const m = /^(\s*)("[^"]+"|[^=\s]+)(\s*=\s*)(.*)$/.exec(line);
    if (!m || m[2].replace(/^"|"$/g, '') !== alias) return line;
    found = true;
    const pairs = [...m[4].matchAll(/(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g)].map((x) => [x[1], x[2]] as [string, string]);
    const kv = new Map(pairs);
    kv.set('host', to.host);
    kv.set('port', String(to.port));
    kv.set('dbname', to.database.includes(' ') ? `'${to.database.replace(/'/g, "\\'")}'` : to.database);
    return `${m[1]}${m[2]}${m[3]}${[...kv].map(([k, v]) => `${k}=${v}`).join(' ')}`;
  });
  if (!found) throw new CutoverError('CONFIG', `database ${alias} is not in the [databases] section of the pgbouncer ini`, { hint: 'add a line `<alias> = host=… port=… dbname=…` or pass --pgbouncer-db' });
  return out.join('\n');
}

/** Which side the ini points `alias` at. Pure. */
export function currentSide(ini: string, alias: string, old: Endpoint, nu: Endpoint): Side | 'unknown' {
  const m = new RegExp(`^\\s*"?${alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?\\s*=(.*)$`, 'm').exec(ini);
  if (!m) return 'unknown';
  const host = /host=(\S+)/.exec(m[1])?.[1];
  const port = Number(/port=(\d+)/.exec(m[1])?.[1] ?? 5432);
  if (host === old.host && port === old.port) return 'old';
  if (host === nu.host && port === nu.port) return 'new';
  return 'unknown';
}

/** Which side a SHOW DATABASES row list points `alias` at. Pure. */
export function sideOfDatabases(rows: Array<{ name: string; host: string | null; port: number | string | null }>, alias: string, old: Endpoint, nu: Endpoint): Side | 'unknown' {
  const row = rows.find((r) => r.name === alias);
  if (!row) return 'unknown';
  const port = Number(row.port ?? 5432);
  if (row.host === old.host && port === old.port) return 'old';
  if (row.host === nu.host && port === nu.port) return 'new';
  return 'unknown';
}

export class PgbouncerSwitch implements PausableSwitch {
  readonly name = 'pgbouncer';
  readonly pausable = true;
  private paused = false;
  /** query_wait_timeout as it was before our pause lowered it (restored by resume). */
  private holdRestore: string | undefined;
  constructor(private readonly o: PgbouncerSwitchOptions) {}

  private alias(ctx: SwitchContext): string {
    return this.o.database ?? (ctx.direction === 'forward' ? ctx.old.database : ctx.new.database);
  }

  /** Run admin console commands (simple protocol: no parameters); the rows of the last one. An abort closes the connection. */
  async admin(commands: string[], signal?: AbortSignal): Promise<any[]> {
    signal?.throwIfAborted();
    const c = new pg.Client({ connectionString: this.o.adminUrl, connectionTimeoutMillis: 5000 });
    c.on('error', () => {});
    const onAbort = () => void c.end().catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        await c.connect();
      } catch (e: any) {
        throw new CutoverError('CONNECT', `cannot reach the pgbouncer admin console at ${describeTarget(this.o.adminUrl)}: ${e?.message ?? e}`, { hint: 'check --pgbouncer-admin and admin_users in pgbouncer.ini', cause: e });
      }
      let rows: any[] = [];
      try {
        for (const cmd of commands) rows = (await c.query(cmd)).rows;
      } catch (e: any) {
        throw new CutoverError('SQL', `pgbouncer admin command failed: ${signal?.aborted ? 'stopped (aborted)' : (e?.message ?? e)}`, { exitCode: 1, cause: e });
      }
      return rows;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await c.end().catch(() => {});
    }
  }

  private ends(ctx: SwitchContext) {
    return { old: this.o.oldEndpoint ?? ctx.old, new: this.o.newEndpoint ?? ctx.new };
  }

  async current(ctx: SwitchContext): Promise<Side | 'unknown'> {
    const e = this.ends(ctx);
    return sideOfDatabases(await this.admin(['SHOW DATABASES'], ctx.signal), this.alias(ctx), e.old, e.new);
  }

  async pause(ctx: SwitchContext): Promise<void> {
    await this.boundHold(ctx);
    try {
      await this.admin([`PAUSE ${this.alias(ctx)}`], ctx.signal).catch((e) => {
        if (!/already/i.test(e.message)) throw e;
      });
    } catch (e) {
      await this.restoreHold().catch(() => {});
      throw e;
    }
    this.paused = true;
  }

  /**
   * Bound the hold before pausing: a query held longer than maxHoldMs is released by pgbouncer with
   * an error ("query_wait_timeout") instead of waiting for a switchover that may never resume it.
   * The previous value is kept for resume (a per-process memory: a killed run leaves the lower
   * bound set, which only shortens waits).
   */
  private async boundHold(ctx: SwitchContext): Promise<void> {
    if (!this.o.maxHoldMs || this.holdRestore !== undefined) return;
    const rows = await this.admin(['SHOW CONFIG'], ctx.signal);
    const prev = rows.find((r) => r.key === 'query_wait_timeout')?.value;
    if (prev === undefined) return; // a pooler without it: nothing to bound with
    // seconds, decimals allowed (as server_login_retry = 0.1); the admin console takes no parameters
    await this.admin([`SET query_wait_timeout = '${(this.o.maxHoldMs / 1000).toFixed(3)}'`], ctx.signal);
    this.holdRestore = String(prev).replace(/[^0-9.a-z]/gi, '');
  }

  private async restoreHold(): Promise<void> {
    if (this.holdRestore === undefined) return;
    await this.admin([`SET query_wait_timeout = '${this.holdRestore}'`]);
    this.holdRestore = undefined;
  }

  async resume(ctx: SwitchContext): Promise<void> {
    // never with the phase's signal: a resume must run even (especially) when the phase was aborted
    await this.admin([`RESUME ${this.alias(ctx)}`]).catch((e) => {
      if (!/not paused/i.test(e.message)) throw e;
    });
    this.paused = false;
    await this.restoreHold().catch((e) => ctx.log?.(`pgbouncer: could not restore query_wait_timeout (${e?.message ?? e}); it stays at ${this.o.maxHoldMs} ms`));
  }

  /** pgbouncer's own server connections (SHOW SERVERS remote_pid): every other app session bypasses the pause. */
  serverPids(): Promise<number[]> {
    return pgbouncerServerPids(this.o.adminUrl);
  }

  async switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown>> {
    const alias = this.alias(ctx);
    const to = this.ends(ctx)[side];
    const t0 = Date.now();
    const heldByUs = !this.paused;
    // RESUME always follows: a failed rewrite or RELOAD used to leave every client held. A pause
    // fence's pause is left for the resume phase on success, and released at once on failure.
    await whilePaused(
      () => this.pause(ctx),
      () => this.resume(ctx),
      async () => {
        ctx.signal?.throwIfAborted();
        // keeps the ini's mode (0600: it may hold auth settings) and owner (the pgbouncer user)
        replaceFileKeepingMode(this.o.iniFile, rewriteDatabaseLine(readFileSync(this.o.iniFile, 'utf8'), alias, to));
        await this.admin(['RELOAD'], ctx.signal);
      },
      { alreadyPaused: !heldByUs },
    );
    return { database: alias, to: side, host: to.host, port: to.port, heldMs: heldByUs ? Date.now() - t0 : undefined };
  }
}
