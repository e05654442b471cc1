/**
 * One interface for "how traffic reaches the primary": DNS weights, a proxy upstream, a pooler's
 * database entry, or a user's command. The state machine calls `switchTo(side)` and, when a switch
 * may have half-happened (a timeout, a killed process), `current()` to learn where traffic is.
 * Every call honours `ctx.signal`: an aborted switch stops its HTTP call, kills its command's
 * process group, closes its admin connection, and then settles (rejects).
 */
import { CutoverError } from '../errors.ts';

export type Side = 'old' | 'new';

export interface Endpoint {
  host: string;
  port: number;
  database: string;
}

export interface SwitchContext {
  runId: string;
  phase: string;
  direction: 'forward' | 'rollback';
  old: Endpoint;
  new: Endpoint;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

interface SwitchBase {
  readonly name: string;
  prepare?(ctx: SwitchContext): Promise<void>;
  /** Point traffic at `side`. Idempotent; the last call wins. Returns what it did, for the record. */
  switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown> | void>;
  /** Where traffic points now; 'unknown' when the strategy cannot tell (then the engine assumes the worst). */
  current(ctx: SwitchContext): Promise<Side | 'unknown'>;
}

/** A switch that cannot hold queries. */
export interface PlainSwitch extends SwitchBase {
  readonly pausable: false;
}

/** A switch that can hold new queries (pgbouncer PAUSE): the `pause` fence needs one. */
export interface PausableSwitch extends SwitchBase {
  readonly pausable: true;
  /** Hold new queries (pause fence). */
  pause(ctx: SwitchContext): Promise<void>;
  /** Release held queries. */
  resume(ctx: SwitchContext): Promise<void>;
  /**
   * The backend PIDs on the primary that are the pooler's own connections: every other app
   * session bypasses the pause, and the pause fence ends it.
   */
  serverPids?(ctx: SwitchContext): Promise<number[]>;
}

export type SwitchStrategy = PlainSwitch | PausableSwitch;

export function endpointOf(url: string): Endpoint {
  const u = new URL(url);
  // an IPv6 literal without its URL brackets: pgbouncer.ini, proxies and commands want the address
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)) || 'postgres' };
}

/** A sleep that ends early (rejecting with the abort reason) when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** fetch with a deadline (and the caller's abort signal) and an error that names the API and what it said. */
export async function httpJson(method: string, url: string, body?: unknown, timeoutMs = 10_000, signal?: AbortSignal): Promise<any> {
  let res: Response;
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.any(signals),
    });
  } catch (e: any) {
    if (signal?.aborted) throw new CutoverError('TIMEOUT', `${method} ${url} was stopped: ${signal.reason?.message ?? 'aborted'}`, { cause: e, exitCode: 1 });
    throw new CutoverError('CONNECT', `${method} ${url} failed: ${e?.cause?.code ?? e?.message ?? e}`, { hint: 'is the admin API running at that address?', cause: e });
  }
  const text = await res.text();
  if (!res.ok) throw new CutoverError('PRECONDITION', `${method} ${url} answered ${res.status}: ${text.slice(0, 300)}`, { exitCode: 1 });
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}
