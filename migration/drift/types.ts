/**
 * The shapes shared by every drift category: a finding, the two sides being compared, and the
 * context a category check receives. Category modules export a pure comparison (testable without
 * a server) and an async `check…(ctx)` that collects what the comparison needs from both sides.
 */
import type { Client } from '../pg.ts';

export type DriftCategory = 'schema' | 'collation' | 'timezone' | 'encoding' | 'settings' | 'data' | 'incompatibility' | 'behaviour';
export const DRIFT_CATEGORIES: DriftCategory[] = ['schema', 'collation', 'timezone', 'encoding', 'settings', 'data', 'incompatibility', 'behaviour'];
export type Severity = 'error' | 'warning' | 'info';

export interface DriftFinding {
  category: DriftCategory;
  severity: Severity;
  /** What differs, in Postgres terms: `database app`, `column public.orders.note`, `setting TimeZone`, `query #2`. */
  object: string;
  /** The value on the source (old) side; null when the object is missing there. */
  old: unknown;
  /** The value on the target (new) side; null when the object is missing there. */
  new: unknown;
  /** Why it matters. */
  message: string;
  /** What to do about it. */
  hint: string;
  /**
   * When one cause explains a difference on many objects, the finding is reported once and lists
   * them all here (`object` then names the first, e.g. `column public.a.id (+42 more)`). Additive:
   * consumers that ignore it still get the count and the first names in `message`.
   */
  objects?: string[];
}

export interface Side {
  label: 'source' | 'target';
  url: string;
  client: Client;
  /** server_version_num, e.g. 110022. */
  versionNum: number;
  major: number;
  /** Current database name and its server encoding. */
  database: string;
  encoding: string;
}

export interface DriftContext {
  source: Side;
  target: Side;
  /** Shadow-read queries (already split, comments kept). */
  queries: string[];
  /** Show progress (table scans, shadow reads) on stderr. */
  progress: boolean;
  /** Try `CREATE EXTENSION IF NOT EXISTS amcheck` where it is missing. */
  installAmcheck: boolean;
  /** Notes for the result: checks skipped, fallbacks taken. */
  note(line: string): void;
  /** Values worth keeping in the result (fingerprints), keyed by name. */
  record(key: string, value: unknown): void;
}

export function finding(category: DriftCategory, severity: Severity, object: string, old: unknown, neu: unknown, message: string, hint: string): DriftFinding {
  return { category, severity, object, old: old === undefined ? null : old, new: neu === undefined ? null : neu, message, hint };
}

/** Rows as plain objects; every helper here uses text output so the comparison is exact. */
export async function rows<T = any>(c: Client, sql: string, params: unknown[] = []): Promise<T[]> {
  const r = await c.query(sql, params as any[]);
  return r.rows as T[];
}
