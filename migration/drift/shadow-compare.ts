/**
 * Shadow reads as a library, for rehearsals (and anything else that wants them): the same read on
 * old and new, results compared ordering-aware, each mismatch classified by cause — timezone,
 * NULL → default, collation, encoding, float text, other — with latency old vs new.
 *
 * Two ways in:
 *  - `shadowCompare(source, target, sql, params)` runs one read on both sides and says whether
 *    and why they differ;
 *  - `ShadowMirror` takes a share of an application's live reads (`offer(sql, params)`), mirrors
 *    them to both sides in the background with a bounded queue (never slowing the caller), and
 *    keeps a `ShadowTally`: mismatches per cause, per query latency, and timeline events.
 * A mismatch that disappears when re-read a moment later was replication lag, not drift: it is
 * counted as `settled`, not as a mismatch.
 *
 * Every read runs in a READ ONLY transaction with a statement timeout; statements are checked as
 * reads (classifyQuery) before anything runs. Rows are compared as the servers print them (text),
 * which is what an application receives.
 */
import { z } from 'zod';
import { CutoverError } from '../errors.ts';
import type { Client } from '../pg.ts';
import { classifyQuery, compareResults, hasTopLevelOrderBy, preview, splitStatements, type ResultDiff } from './shadow.ts';

export const SHADOW_CAUSES = ['timezone', 'null-default', 'collation', 'encoding', 'float-text', 'other'] as const;
export type ShadowCause = (typeof SHADOW_CAUSES)[number];

/** What each cause means, for reports. */
export const SHADOW_CAUSE_TEXT: Record<ShadowCause, string> = {
  timezone: 'date/time values print differently (TimeZone, DateStyle or the tz database)',
  'null-default': 'NULL on one side, a value on the other (a DEFAULT the other side lacks, or a NOT NULL/default change)',
  collation: 'text sorts or compares differently (same rows in another order, or case/accent handling)',
  encoding: 'non-ASCII text differs (double-encoded UTF-8, another server encoding)',
  'float-text': 'floating-point values print with other digits (extra_float_digits; shortest-exact output since 12)',
  other: 'values or rows differ for another reason (data, a changed function, plan-dependent ties)',
};

/**
 * The scenario `shadow:` block. Mount it in the scenario schema as `shadow: shadowBlockSchema.optional()`
 * and the budget as `maxShadowMismatches` (see notes/drift.md).
 */
export const shadowBlockSchema = z.strictObject({
  /** A file of `;`-terminated SELECT statements, run on both sides after the initial sync and again before the switch. */
  queries: z.string().min(1).optional(),
  /** Share (0–1) of the sample app's live reads mirrored to both sides while replication runs. */
  mirror: z.number().min(0).max(1).default(0),
  /** Reads waiting to be mirrored at most; more are skipped (counted), so the app is never slowed. */
  maxQueue: z.number().int().min(1).max(10_000).default(100),
  /** Per read, on each side. */
  statementTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  /** Wait before re-reading a mismatch to tell replication lag from drift. */
  settleMs: z.number().int().min(0).max(60_000).default(500),
});
export type ShadowBlock = z.infer<typeof shadowBlockSchema>;
export type ShadowBlockInput = z.input<typeof shadowBlockSchema>;

type Row = Array<string | null>;

export interface ShadowSideRun {
  rows: Row[];
  fields: string[];
  latencyMs: number;
  error?: { code?: string; message: string };
}

export interface ShadowMismatch {
  /** Every cause seen in this mismatch (a row can differ in a timestamp and a NULL at once). */
  causes: ShadowCause[];
  /** The main cause (first of `causes` in SHADOW_CAUSES order), for one-number-per-cause counters. */
  cause: ShadowCause;
  detail: string;
  /** Up to 3 pairs of differing rows (source, target). */
  sample: Array<{ source: Row | null; target: Row | null }>;
}

export interface ShadowComparison {
  query: string;
  ordered: boolean;
  rows: { source: number; target: number };
  latencyMs: { source: number; target: number };
  mismatch: ShadowMismatch | null;
  /** The query failed on the target only (it worked on the source). */
  targetError?: string;
}

const RAW = { getTypeParser: () => (v: string) => v };

/** Runs one read in a read-only transaction on one side; returns rows as text. */
export async function runRead(c: Client, sql: string, params: unknown[] = [], statementTimeoutMs = 10_000): Promise<ShadowSideRun> {
  await c.query('begin read only');
  try {
    await c.query(`set local statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`);
    const t0 = performance.now();
    const r = await c.query({ text: sql, values: params as any[], rowMode: 'array', types: RAW } as any);
    const latencyMs = Math.round((performance.now() - t0) * 100) / 100;
    return { rows: r.rows as Row[], fields: r.fields.map((f: any) => f.name), latencyMs };
  } finally {
    await c.query('rollback').catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Classification (pure)
// ---------------------------------------------------------------------------------------------

const DATE_TIME = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}(:?\d{2})?|Z)?( BC)?$|^\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:?\d{2})?)?$|^\d{2}\/\d{2}\/\d{4}/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$|^[+-]?(Infinity|NaN)$/i;

/** Pure: why two values differ. */
export function classifyValues(u: string | null, v: string | null): ShadowCause | null {
  if (u === v) return null;
  if (u === null || v === null) return 'null-default';
  if (DATE_TIME.test(u) && DATE_TIME.test(v)) return 'timezone';
  if (NUMBER.test(u) && NUMBER.test(v)) {
    const a = Number(u);
    const b = Number(v);
    if (a === b || (Number.isFinite(a) && Math.abs(a - b) <= Math.abs(a) * 1e-14)) return 'float-text';
    return 'other';
  }
  if (/[^\x00-\x7f]/.test(u + v)) {
    // Double-encoded UTF-8 (bytes read as LATIN1 and stored again) or lost characters.
    const lost = (x: string, y: string) => x.replace(/[^\x00-\x7f]/gu, '?') === y.replace(/\uFFFD/g, '?') && x !== y;
    if (mojibake(u) === v || mojibake(v) === u || lost(u, v) || lost(v, u)) return 'encoding';
  }
  if (u.toLowerCase() === v.toLowerCase() || fold(u) === fold(v)) return 'collation';
  return 'other';
}

function mojibake(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}
function fold(s: string): string {
  return s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** Pure: pair the rows only one side has, by their first column when it is a key, else by position. */
function pairRows(onlySource: Row[], onlyTarget: Row[]): Array<{ source: Row | null; target: Row | null }> {
  const out: Array<{ source: Row | null; target: Row | null }> = [];
  const byKey = new Map<string | null, Row[]>();
  for (const r of onlyTarget) byKey.set(r[0] ?? null, [...(byKey.get(r[0] ?? null) ?? []), r]);
  const unpairedSource: Row[] = [];
  for (const r of onlySource) {
    const list = byKey.get(r[0] ?? null);
    if (list?.length && r.length > 1) out.push({ source: r, target: list.shift()! });
    else unpairedSource.push(r);
  }
  const unpairedTarget = [...byKey.values()].flat();
  for (let i = 0; i < Math.max(unpairedSource.length, unpairedTarget.length); i++) out.push({ source: unpairedSource[i] ?? null, target: unpairedTarget[i] ?? null });
  return out;
}

/** Pure: classify a result difference (from compareResults) by cause. */
export function classifyMismatch(d: ResultDiff, source: Row[], target: Row[]): ShadowMismatch | null {
  if (d.sameRows && d.sameOrder) return null;
  const causes = new Set<ShadowCause>();
  let sample: ShadowMismatch['sample'] = [];
  let detail: string;
  if (d.sameRows) {
    // Same rows, another order: text ordering is collation; numbers/ids only are ties resolved by another plan.
    const i = d.firstDifference ?? 0;
    const a = source[i];
    const b = target[i];
    sample = [{ source: a ?? null, target: b ?? null }];
    const textual = (r: Row | undefined) => (r ?? []).some((x) => x !== null && !NUMBER.test(x) && !DATE_TIME.test(x));
    causes.add(textual(a) || textual(b) ? 'collation' : 'other');
    detail = `same rows in another order from row ${i + 1}`;
  } else {
    const pairs = pairRows(d.onlySource, d.onlyTarget);
    sample = pairs.slice(0, 3);
    for (const p of pairs) {
      if (!p.source || !p.target) {
        causes.add('other');
        continue;
      }
      for (let k = 0; k < Math.max(p.source.length, p.target.length); k++) {
        const c = classifyValues(p.source[k] ?? null, p.target[k] ?? null);
        if (c) causes.add(c);
      }
    }
    if (!causes.size) causes.add('other');
    detail = `${d.onlySource.length} row(s) only on the source, ${d.onlyTarget.length} only on the target (of ${source.length} / ${target.length})`;
  }
  const ordered = SHADOW_CAUSES.filter((c) => causes.has(c));
  return { causes: ordered, cause: ordered[0], detail, sample };
}

// ---------------------------------------------------------------------------------------------
// One comparison
// ---------------------------------------------------------------------------------------------

export interface ShadowCompareOptions {
  statementTimeoutMs?: number;
  /** Re-read after this many ms when the results differ; a mismatch that goes away was lag. 0: no re-read. */
  settleMs?: number;
}

/** Refuses anything that is not a single read, naming what it is. */
export function assertRead(sql: string, where = 'shadow read'): void {
  const c = classifyQuery(sql);
  if (!c.read) throw new CutoverError('USAGE', `${where} (${preview(sql)}) is not a read: ${c.reason}`, { hint: 'shadow reads only run SELECT/WITH/VALUES/TABLE statements' });
}

async function compareOnce(source: Client, target: Client, sql: string, params: unknown[], timeout: number): Promise<ShadowComparison> {
  const ordered = hasTopLevelOrderBy(sql);
  // Source first, then target: with replication the target is at most as new as the source, so a row
  // written in between shows as "only on the source", which the settle re-read absorbs.
  const a = await runRead(source, sql, params, timeout);
  let b: ShadowSideRun;
  try {
    b = await runRead(target, sql, params, timeout);
  } catch (e: any) {
    return { query: sql, ordered, rows: { source: a.rows.length, target: 0 }, latencyMs: { source: a.latencyMs, target: 0 }, mismatch: { causes: ['other'], cause: 'other', detail: `fails on the target: ${e?.message ?? e}`, sample: [] }, targetError: e?.message ?? String(e) };
  }
  const base = { query: sql, ordered, rows: { source: a.rows.length, target: b.rows.length }, latencyMs: { source: a.latencyMs, target: b.latencyMs } };
  if (a.fields.join('\u0000') !== b.fields.join('\u0000'))
    return { ...base, mismatch: { causes: ['other'], cause: 'other', detail: `other columns on the target (${a.fields.join(', ')} → ${b.fields.join(', ')})`, sample: [] } };
  return { ...base, mismatch: classifyMismatch(compareResults(a.rows, b.rows, ordered), a.rows, b.rows) };
}

/**
 * Runs one read on both sides and classifies a difference. Throws a USAGE error for a statement
 * that is not a read, and the source's own error when the query fails there (the query is wrong);
 * a failure on the target only is a mismatch ('other', with targetError).
 */
export async function shadowCompare(source: Client, target: Client, sql: string, params: unknown[] = [], opts: ShadowCompareOptions = {}): Promise<ShadowComparison & { settled: boolean }> {
  assertRead(sql);
  const timeout = opts.statementTimeoutMs ?? 10_000;
  const first = await compareOnce(source, target, sql, params, timeout);
  if (!first.mismatch || !opts.settleMs || first.targetError) return { ...first, settled: false };
  await new Promise((r) => setTimeout(r, opts.settleMs));
  const again = await compareOnce(source, target, sql, params, timeout);
  return again.mismatch ? { ...again, settled: false } : { ...first, mismatch: null, settled: true };
}

// ---------------------------------------------------------------------------------------------
// Tally, mirror, queries file
// ---------------------------------------------------------------------------------------------

export interface ShadowQueryStats {
  query: string;
  runs: number;
  mismatches: number;
  /** Median and p95 latency on each side, ms. */
  source: { p50: number; p95: number };
  target: { p50: number; p95: number };
}

export interface ShadowEvent {
  /** ms since the tally started (the rehearsal's timeline origin when given). */
  atMs: number;
  query: string;
  cause: ShadowCause;
  causes: ShadowCause[];
  detail: string;
}

export interface ShadowSummary {
  compared: number;
  mismatches: number;
  byCause: Record<ShadowCause, number>;
  /** Mismatches that went away on the re-read (replication lag). */
  settled: number;
  /** Mirrored reads dropped because the queue was full, or that failed on the source. */
  skipped: number;
  perQuery: ShadowQueryStats[];
  events: ShadowEvent[];
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p + 0.5))];
}

/** Counts comparisons: mismatches per cause, latency per query, and an event per mismatch for the timeline. */
export class ShadowTally {
  private readonly started: number;
  private compared = 0;
  private settled = 0;
  skipped = 0;
  private readonly byCause = Object.fromEntries(SHADOW_CAUSES.map((c) => [c, 0])) as Record<ShadowCause, number>;
  private readonly queries = new Map<string, { runs: number; mismatches: number; source: number[]; target: number[] }>();
  private readonly events: ShadowEvent[] = [];
  /** At most this many timeline events are kept (the counters keep counting). */
  constructor(opts: { startedAt?: number; maxEvents?: number } = {}) {
    this.started = opts.startedAt ?? Date.now();
    this.maxEvents = opts.maxEvents ?? 1000;
  }
  private readonly maxEvents: number;

  add(c: ShadowComparison & { settled?: boolean }, at = Date.now()): void {
    this.compared++;
    if (c.settled) this.settled++;
    const key = preview(c.query, 120);
    const q = this.queries.get(key) ?? { runs: 0, mismatches: 0, source: [], target: [] };
    q.runs++;
    q.source.push(c.latencyMs.source);
    q.target.push(c.latencyMs.target);
    if (c.mismatch) {
      q.mismatches++;
      this.byCause[c.mismatch.cause]++;
      if (this.events.length < this.maxEvents) this.events.push({ atMs: at - this.started, query: key, cause: c.mismatch.cause, causes: c.mismatch.causes, detail: c.mismatch.detail });
    }
    this.queries.set(key, q);
  }

  summary(): ShadowSummary {
    const perQuery = [...this.queries.entries()].map(([query, q]) => {
      const s = [...q.source].sort((x, y) => x - y);
      const t = [...q.target].sort((x, y) => x - y);
      return { query, runs: q.runs, mismatches: q.mismatches, source: { p50: pct(s, 0.5), p95: pct(s, 0.95) }, target: { p50: pct(t, 0.5), p95: pct(t, 0.95) } };
    });
    const mismatches = Object.values(this.byCause).reduce((a, b) => a + b, 0);
    return { compared: this.compared, mismatches, byCause: { ...this.byCause }, settled: this.settled, skipped: this.skipped, perQuery, events: [...this.events] };
  }
}

/** Pure: whether a summary is within the scenario's `maxShadowMismatches` budget. */
export function shadowBudget(summary: ShadowSummary, maxShadowMismatches: number): { pass: boolean; actual: number; limit: number; reason?: string } {
  const actual = summary.mismatches;
  if (actual <= maxShadowMismatches) return { pass: true, actual, limit: maxShadowMismatches };
  const causes = SHADOW_CAUSES.filter((c) => summary.byCause[c]).map((c) => `${c} ${summary.byCause[c]}`).join(', ');
  return { pass: false, actual, limit: maxShadowMismatches, reason: `${actual} shadow-read mismatch(es) (${causes}) over the budget of ${maxShadowMismatches}` };
}

/** Runs every query of a queries file (or list) on both sides once; a non-read stops before anything runs. */
export async function shadowQueries(source: Client, target: Client, queries: string[] | { text: string }, tally: ShadowTally, opts: ShadowCompareOptions = {}): Promise<ShadowComparison[]> {
  const list = Array.isArray(queries) ? queries : splitStatements(queries.text);
  list.forEach((q, i) => assertRead(q, `shadow-read query #${i + 1}`));
  const out: ShadowComparison[] = [];
  for (const q of list) {
    const c = await shadowCompare(source, target, q, [], opts);
    tally.add(c);
    out.push(c);
  }
  return out;
}

/**
 * Mirrors a share of live reads to both sides without slowing the caller: `offer` returns at once;
 * reads run one at a time per mirror (one connection per side), at most `maxQueue` waiting, the
 * rest skipped and counted. `drain()` waits for the queue; `summary()` any time.
 */
export class ShadowMirror {
  readonly tally: ShadowTally;
  private readonly queue: Array<{ sql: string; params: unknown[] }> = [];
  private running: Promise<void> | null = null;
  private readonly opts: ShadowBlock;
  private readonly random: () => number;
  /** Last error from the source side (a mirrored read that is wrong there is skipped, not counted). */
  lastSourceError: string | null = null;

  constructor(
    private readonly source: Client,
    private readonly target: Client,
    opts: ShadowBlockInput & { startedAt?: number; random?: () => number } = {},
  ) {
    this.opts = shadowBlockSchema.parse({ mirror: opts.mirror, maxQueue: opts.maxQueue, statementTimeoutMs: opts.statementTimeoutMs, settleMs: opts.settleMs, queries: opts.queries });
    this.tally = new ShadowTally({ startedAt: opts.startedAt });
    this.random = opts.random ?? Math.random;
  }

  /** Offer one live read (already sent to the old side by the application). Returns whether it was taken. */
  offer(sql: string, params: unknown[] = []): boolean {
    if (this.opts.mirror <= 0 || this.random() >= this.opts.mirror) return false;
    if (!classifyQuery(sql).read) return false;
    if (this.queue.length >= this.opts.maxQueue) {
      this.tally.skipped++;
      return false;
    }
    this.queue.push({ sql, params });
    this.running ??= this.pump().finally(() => (this.running = null));
    return true;
  }

  private async pump(): Promise<void> {
    while (this.queue.length) {
      const { sql, params } = this.queue.shift()!;
      try {
        this.tally.add(await shadowCompare(this.source, this.target, sql, params, { statementTimeoutMs: this.opts.statementTimeoutMs, settleMs: this.opts.settleMs }));
      } catch (e: any) {
        this.tally.skipped++;
        this.lastSourceError = e?.message ?? String(e);
      }
    }
  }

  async drain(): Promise<ShadowSummary> {
    while (this.running) await this.running;
    return this.tally.summary();
  }

  summary(): ShadowSummary {
    return this.tally.summary();
  }
}
