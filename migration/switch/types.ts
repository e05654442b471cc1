/**
 * One interface for "how traffic reaches the primary": DNS weights, a proxy upstream, a pooler's
 * database entry, or a user's command. The state machine only calls `switchTo(side)`.
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

export interface SwitchStrategy {
  readonly name: string;
  /** True when the strategy can hold new queries (pgbouncer PAUSE): the `pause` fence needs it. */
  readonly canPause?: boolean;
  prepare?(ctx: SwitchContext): Promise<void>;
  /** Point traffic at `side`. Idempotent. Returns what it did, for the record. */
  switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown> | void>;
  /** Where traffic points now, when the strategy can tell. */
  current?(ctx: SwitchContext): Promise<Side | 'unknown'>;
  /** Hold new queries (pause fence). */
  pause?(ctx: SwitchContext): Promise<void>;
  /** Release held queries. */
  resume?(ctx: SwitchContext): Promise<void>;
}

export function endpointOf(url: string): Endpoint {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)) || 'postgres' };
}

/** fetch with a deadline and an error that names the API and what it said. */
export async function httpJson(method: string, url: string, body?: unknown, timeoutMs = 10_000): Promise<any> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e: any) {
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
