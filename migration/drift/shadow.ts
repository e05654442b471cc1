/**
 * Behaviour drift by shadow reads: the same read-only queries on both sides, results compared
 * exactly (order-sensitive only when the query orders at its top level), latency and plan node
 * types compared, and a likely cause named for each difference. Anything that is not a read is
 * refused twice: lexically (SELECT/WITH/VALUES/TABLE only, no data-modifying CTE, no INTO, no
 * FOR UPDATE) and by running inside `SET TRANSACTION READ ONLY`.
 */
import { CutoverError } from '../errors.ts';
import type { Client } from '../pg.ts';
import { Progress } from '../progress.ts';
import { lexSql } from '../sql-lexer.ts';
import { classifyMismatch, SHADOW_CAUSE_TEXT } from './shadow-compare.ts';
import { finding, type DriftContext, type DriftFinding, type Side } from './types.ts';

/** Splits a file of `;`-terminated statements. Respects quotes, dollar quotes and comments; drops comment-only pieces. */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  const flush = () => {
    if (stripComments(cur).trim()) out.push(cur.trim());
    cur = '';
  };
  for (const seg of lexSql(text)) {
    if (seg.kind !== 'code') {
      cur += seg.text;
      continue;
    }
    seg.text.split(';').forEach((part, k) => {
      if (k > 0) flush();
      cur += part;
    });
  }
  flush();
  return out;
}

/** Comments removed, string literals and quoted identifiers blanked (so keyword searches only see code). */
export function stripComments(sql: string, blankLiterals = false): string {
  return lexSql(sql)
    .map((seg) => {
      switch (seg.kind) {
        case 'line-comment':
        case 'block-comment':
          return ' ';
        case 'string':
        case 'dollar':
          return blankLiterals ? "''" : seg.text;
        case 'ident':
          return blankLiterals ? '"x"' : seg.text;
        default:
          return seg.text;
      }
    })
    .join('');
}

export type Classification = { read: true } | { read: false; reason: string };

/** Pure: is this statement a read we may run on production? */
export function classifyQuery(sql: string): Classification {
  const code = stripComments(sql, true).trim();
  if (!code) return { read: false, reason: 'the statement is empty' };
  if (splitStatements(sql).length > 1) return { read: false, reason: 'it holds more than one statement; end each query with ;' };
  const first = /^\(*\s*([A-Za-z]+)/.exec(code)?.[1]?.toLowerCase();
  if (!first || !['select', 'with', 'values', 'table'].includes(first))
    return { read: false, reason: `it starts with ${first ? first.toUpperCase() : 'no keyword'}; only SELECT, WITH, VALUES and TABLE statements run as shadow reads` };
  const lower = code.toLowerCase();
  if (first === 'with' && /\(\s*(insert|update|delete|merge)\b/.test(lower)) return { read: false, reason: 'it has a data-modifying CTE (INSERT/UPDATE/DELETE/MERGE inside WITH)' };
  if (/\bfor\s+(update|no\s+key\s+update|share|key\s+share)\b/.test(lower)) return { read: false, reason: 'it locks rows (FOR UPDATE/SHARE)' };
  if (/^\(*\s*select\b[\s\S]*?\binto\b/.test(lower) && !/\binsert\s+into\b/.test(lower) && topLevelInto(lower)) return { read: false, reason: 'SELECT … INTO creates a table' };
  if (/\b(nextval|setval|pg_advisory_lock|pg_advisory_xact_lock|pg_terminate_backend|pg_cancel_backend|lo_import|lo_export|dblink_exec)\s*\(/.test(lower))
    return { read: false, reason: 'it calls a function with side effects' };
  return { read: true };
}

function topLevelInto(code: string): boolean {
  let depth = 0;
  const re = /[()]|\binto\b/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code))) {
    if (m[0] === '(') depth++;
    else if (m[0] === ')') depth--;
    else if (depth === 0) return true;
  }
  return false;
}

/** Pure: whether the query's result order is defined (an ORDER BY outside any parentheses). */
export function hasTopLevelOrderBy(sql: string): boolean {
  const code = stripComments(sql, true).toLowerCase();
  let depth = 0;
  const re = /[()]|\border\s+by\b/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code))) {
    if (m[0] === '(') depth++;
    else if (m[0] === ')') depth--;
    else if (depth === 0) return true;
  }
  return false;
}

export interface ShadowRun {
  fields: string[];
  rows: Array<Array<string | null>>;
  latencyMs: number;
  planNodes: string[];
  error?: { code?: string; message: string };
}

export interface ResultDiff {
  sameRows: boolean;
  sameOrder: boolean;
  onlySource: Array<Array<string | null>>;
  onlyTarget: Array<Array<string | null>>;
  firstDifference: number | null;
}

/** Pure: compare two result sets (as text), order-sensitive or as multisets. */
export function compareResults(a: Array<Array<string | null>>, b: Array<Array<string | null>>, ordered: boolean): ResultDiff {
  const ka = a.map((r) => JSON.stringify(r));
  const kb = b.map((r) => JSON.stringify(r));
  const sa = [...ka].sort();
  const sb = [...kb].sort();
  const sameRows = sa.length === sb.length && sa.every((x, i) => x === sb[i]);
  let firstDifference: number | null = null;
  for (let i = 0; i < Math.max(ka.length, kb.length); i++) if (ka[i] !== kb[i]) { firstDifference = i; break; }
  const sameOrder = firstDifference === null;
  // Multiset difference.
  const count = new Map<string, number>();
  for (const k of kb) count.set(k, (count.get(k) ?? 0) + 1);
  const onlySource: string[] = [];
  for (const k of ka) {
    const n = count.get(k) ?? 0;
    if (n > 0) count.set(k, n - 1);
    else onlySource.push(k);
  }
  const onlyTarget: string[] = [];
  for (const [k, n] of count) for (let i = 0; i < n; i++) onlyTarget.push(k);
  return {
    sameRows,
    sameOrder: ordered ? sameOrder : true,
    onlySource: onlySource.map((k) => JSON.parse(k)),
    onlyTarget: onlyTarget.map((k) => JSON.parse(k)),
    firstDifference: ordered ? firstDifference : null,
  };
}

/** Pure: a likely cause for differing results, from what the differing values look like. */
export function likelyCause(d: ResultDiff, a: Array<Array<string | null>>): string {
  if (d.sameRows && !d.sameOrder) {
    const textual = a.some((r) => r.some((v) => v !== null && /[^\d\s.,:+-]/.test(v)));
    return textual ? 'collation (same rows, different text order)' : 'ties in the ORDER BY resolved differently (plan change); add a unique tie-breaker';
  }
  const x = d.onlySource[0];
  const y = d.onlyTarget[0];
  if (!x || !y) return 'data (rows missing on one side: replication lag or a copy gap)';
  const causes = new Set<string>();
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const u = x[i];
    const v = y[i];
    if (u === v) continue;
    if (u === null || v === null) causes.add('NULL→default (NULL on one side, a value on the other)');
    else if (/\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|\d{2}\/\d{2}\/\d{4}/.test(u) || /\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}/.test(v)) causes.add('timezone or DateStyle (date/time values print differently)');
    else if (/^-?\d+\.\d{12,}(e[+-]?\d+)?$/i.test(u) || /^-?\d+\.\d{12,}(e[+-]?\d+)?$/i.test(v) || (/^-?[\d.]+(e[+-]?\d+)?$/i.test(u) && Number(u) === Number(v))) causes.add('float output format (extra_float_digits; shortest-exact floats since 12)');
    else if (u.toLowerCase() === v.toLowerCase() || u.normalize('NFD').replace(/\p{M}/gu, '') === v.normalize('NFD').replace(/\p{M}/gu, '')) causes.add('collation/ctype (case or accent handling: upper/lower, ILIKE, regex classes)');
    else if (/[^\x00-\x7f]/.test(u + v)) causes.add('encoding (non-ASCII text differs)');
    else causes.add('data (values differ)');
  }
  return [...causes].join('; ') || 'data';
}

function planNodes(plan: any): string[] {
  const out: string[] = [];
  const walk = (n: any) => {
    if (!n) return;
    out.push(n['Node Type'] + (n['Relation Name'] ? ` on ${n['Relation Name']}` : '') + (n['Index Name'] ? ` using ${n['Index Name']}` : ''));
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(plan?.[0]?.Plan);
  return out;
}

const RAW = { getTypeParser: () => (v: string) => v };

/** Runs one query read-only: plan, then `repeat` timed executions; the first result is kept. */
export async function runShadow(c: Client, sql: string, repeat = 3, statementTimeoutMs = 30_000): Promise<ShadowRun> {
  await c.query('begin');
  try {
    await c.query('set transaction read only');
    await c.query(`set local statement_timeout = ${Math.max(1, Math.floor(statementTimeoutMs))}`);
    const ex = await c.query({ text: `explain (format json) ${sql}`, rowMode: 'array', types: RAW } as any);
    const plan = JSON.parse(ex.rows[0][0]);
    let first: any = null;
    const times: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = performance.now();
      const r = await c.query({ text: sql, rowMode: 'array', types: RAW } as any);
      times.push(performance.now() - t0);
      first ??= r;
    }
    times.sort((x, y) => x - y);
    return {
      fields: first.fields.map((f: any) => f.name),
      rows: first.rows,
      latencyMs: Math.round(times[Math.floor(times.length / 2)] * 100) / 100,
      planNodes: planNodes(plan),
    };
  } finally {
    await c.query('rollback').catch(() => {});
  }
}

/** Validates every query before anything runs; throws a USAGE error naming the first bad one. */
export function validateQueries(queries: string[]): void {
  queries.forEach((q, i) => {
    const c = classifyQuery(q);
    if (!c.read)
      throw new CutoverError('USAGE', `shadow-read query #${i + 1} (${preview(q)}) is not a read: ${c.reason}`, {
        hint: 'shadow reads only run SELECT/WITH/VALUES/TABLE queries; remove writes from the queries file',
      });
  });
}

export function preview(q: string, n = 60): string {
  const one = stripComments(q).replace(/\s+/g, ' ').trim();
  return one.length > n ? one.slice(0, n) + '…' : one;
}

function queryError(e: any, i: number, q: string, side: Side): CutoverError {
  const where = e?.position ? ` at character ${e.position}` : '';
  if (e?.code === '25006')
    return new CutoverError('USAGE', `shadow-read query #${i + 1} (${preview(q)}) tried to write on the ${side.label}: ${e.message}`, { hint: 'remove writes (including functions that write) from the queries file', exitCode: 2 });
  if (e?.code === '42601')
    return new CutoverError('USAGE', `shadow-read query #${i + 1} (${preview(q)}) has a syntax error${where}: ${e.message}`, { hint: 'fix the query in the queries file (each query ends with ;)', exitCode: 2 });
  if (e?.code === '42501')
    return new CutoverError('PRIVILEGE', `shadow-read query #${i + 1} (${preview(q)}) is not allowed for the ${side.label} role: ${e.message}`, { hint: 'GRANT SELECT on the tables it reads to the connecting role', exitCode: 2 });
  return new CutoverError('USAGE', `shadow-read query #${i + 1} (${preview(q)}) failed on the ${side.label}${where}: ${e?.message}${e?.code ? ` (SQLSTATE ${e.code})` : ''}`, { hint: 'the query must run on the source; fix it in the queries file', exitCode: 2 });
}

export interface ShadowOptions { repeat?: number; statementTimeoutMs?: number; slowerFactor?: number }

export async function checkShadow(ctx: DriftContext, opts: ShadowOptions = {}): Promise<DriftFinding[]> {
  validateQueries(ctx.queries);
  const out: DriftFinding[] = [];
  const summary: any[] = [];
  const progress = ctx.progress ? new Progress('drift: shadow reads', ctx.queries.length, { unit: 'queries' }) : undefined;
  for (const [i, q] of ctx.queries.entries()) {
    progress?.tick(1);
    const object = `query #${i + 1}`;
    let a: ShadowRun;
    try {
      a = await runShadow(ctx.source.client, q, opts.repeat, opts.statementTimeoutMs);
    } catch (e) {
      throw queryError(e, i, q, ctx.source);
    }
    let b: ShadowRun;
    try {
      b = await runShadow(ctx.target.client, q, opts.repeat, opts.statementTimeoutMs);
    } catch (e: any) {
      if (e?.code === '25006') throw queryError(e, i, q, ctx.target);
      out.push(finding('behaviour', 'error', object, 'runs', e?.message ?? String(e), `${object} (${preview(q)}) works on the source but fails on the target: ${e?.message}${e?.code ? ` (SQLSTATE ${e.code})` : ''}`,
        'a missing object, privilege, extension or a removed feature on the target; compare the schema findings'));
      continue;
    }
    const ordered = hasTopLevelOrderBy(q);
    summary.push({ query: i + 1, ordered, rows: [a.rows.length, b.rows.length], latencyMs: [a.latencyMs, b.latencyMs] });
    if (a.fields.join('\u0000') !== b.fields.join('\u0000')) {
      out.push(finding('behaviour', 'error', object, a.fields, b.fields, `${object} (${preview(q)}) returns other columns on the target`, 'compare the schema findings for the tables it reads'));
      continue;
    }
    const d = compareResults(a.rows, b.rows, ordered);
    if (!d.sameRows || !d.sameOrder) {
      const m = classifyMismatch(d, a.rows, b.rows);
      if (m) summary[summary.length - 1].cause = m.cause;
      const cause = m ? m.causes.map((c) => `${c} (${SHADOW_CAUSE_TEXT[c]})`).join('; ') : likelyCause(d, a.rows);
      const detail = !d.sameRows
        ? `${d.onlySource.length} rows only on the source, ${d.onlyTarget.length} only on the target`
        : `same rows, different order from position ${d.firstDifference}`;
      out.push(finding('behaviour', 'error', object,
        d.sameRows ? a.rows.slice(d.firstDifference ?? 0, (d.firstDifference ?? 0) + 5) : d.onlySource.slice(0, 5),
        d.sameRows ? b.rows.slice(d.firstDifference ?? 0, (d.firstDifference ?? 0) + 5) : d.onlyTarget.slice(0, 5),
        `${object} (${preview(q)}) returns different results on the target: ${detail}; likely cause: ${cause}`,
        'see the collation/timezone/settings findings for the matching difference; fix the target setting or make the query explicit (COLLATE, AT TIME ZONE, a unique ORDER BY)'));
    }
    const factor = opts.slowerFactor ?? 2;
    if (b.latencyMs > a.latencyMs * factor && b.latencyMs - a.latencyMs > 5) {
      out.push(finding('behaviour', 'warning', object, { latencyMs: a.latencyMs, plan: a.planNodes }, { latencyMs: b.latencyMs, plan: b.planNodes },
        `${object} (${preview(q)}) is ${(b.latencyMs / Math.max(a.latencyMs, 0.01)).toFixed(1)}× slower on the target (median ${a.latencyMs} ms → ${b.latencyMs} ms)`,
        'ANALYZE the target tables (statistics are not copied), check missing indexes and settings (work_mem, random_page_cost)'));
    }
    if (a.planNodes.join('|') !== b.planNodes.join('|')) {
      out.push(finding('behaviour', 'info', object, a.planNodes, b.planNodes, `${object} (${preview(q)}) uses another plan on the target (${a.planNodes[0] ?? '?'} … → ${b.planNodes[0] ?? '?'} …)`,
        'usually harmless; ANALYZE the target if the new plan is slower'));
    }
  }
  progress?.finish();
  ctx.record('shadow', summary);
  // Mismatches per cause (the same classes a rehearsal's shadow reads count).
  const byCause: Record<string, number> = {};
  for (const x of summary) if (x.cause) byCause[x.cause] = (byCause[x.cause] ?? 0) + 1;
  ctx.record('shadowByCause', byCause);
  return out;
}
