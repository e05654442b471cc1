/**
 * Drift detection between two databases (any two URLs): every difference between old and new that
 * can hurt after a "successful" cutover, as findings. A run returns a result object; a category
 * whose checks fail half-way (a catalog the role cannot read, say) becomes a finding and a note,
 * not a thrown error — except bad input (queries that are not reads, syntax errors) and
 * connection/privilege problems, which stop the run with a CutoverError.
 */
import { readFileSync } from 'node:fs';
import { CutoverError } from '../errors.ts';
import { connect, redactUrl, serverVersionNum, type Client } from '../pg.ts';
import { checkCollation } from './collation.ts';
import { checkData } from './data.ts';
import { checkEncoding } from './encoding.ts';
import { checkIncompatibility } from './incompatibility.ts';
import { checkSchema, groupFindings } from './schema.ts';
import { checkSettings } from './settings.ts';
import { checkShadow, splitStatements, validateQueries } from './shadow.ts';
import { checkTimezone } from './timezone.ts';
import { DRIFT_CATEGORIES, finding, type DriftCategory, type DriftContext, type DriftFinding, type Side } from './types.ts';

export type { DriftCategory, DriftFinding, Severity } from './types.ts';
export { DRIFT_CATEGORIES } from './types.ts';
/** Shadow reads as a library (rehearsals wire these in: notes/drift.md). */
export {
  SHADOW_CAUSES, SHADOW_CAUSE_TEXT, ShadowMirror, ShadowTally, shadowBlockSchema, shadowBudget, shadowCompare, shadowQueries, classifyMismatch, classifyValues,
  type ShadowBlock, type ShadowBlockInput, type ShadowCause, type ShadowComparison, type ShadowSummary, type ShadowEvent, type ShadowQueryStats,
} from './shadow-compare.ts';

export interface DriftOptions {
  source: string;
  target: string;
  /** Shadow-read queries, or `{ file }` holding `;`-terminated statements (`--` comments allowed). */
  queries?: string[] | { file: string };
  /** Categories to run (default: all). 'shadow' is accepted for 'behaviour'. */
  categories?: Array<DriftCategory | 'shadow'>;
  /** Try CREATE EXTENSION IF NOT EXISTS amcheck where it is missing (default false). */
  installAmcheck?: boolean;
  /** Progress lines on stderr for the table scans and shadow reads (the CLI turns it on). */
  progress?: boolean;
}

export interface DriftResult {
  ok: boolean;
  findings: DriftFinding[];
  counts: { error: number; warning: number; info: number };
  source: { url: string; version: number; database: string; encoding: string };
  target: { url: string; version: number; database: string; encoding: string };
  categories: DriftCategory[];
  /** Fingerprints and per-check summaries (stable across runs on unchanged clusters). */
  fingerprints: Record<string, unknown>;
  notes: string[];
  durationMs: number;
}

const CHECKS: Record<DriftCategory, (ctx: DriftContext) => Promise<DriftFinding[]>> = {
  schema: checkSchema,
  collation: checkCollation,
  timezone: checkTimezone,
  encoding: checkEncoding,
  settings: checkSettings,
  data: checkData,
  incompatibility: checkIncompatibility,
  behaviour: (ctx) => checkShadow(ctx),
};

/** Reads and splits a queries file; a missing file is a usage error naming the path. */
export function loadQueries(q: DriftOptions['queries']): string[] {
  if (!q) return [];
  if (Array.isArray(q)) return q.flatMap((s) => splitStatements(s));
  let text: string;
  try {
    text = readFileSync(q.file, 'utf8');
  } catch (e: any) {
    throw new CutoverError('USAGE', `cannot read the queries file ${q.file}: ${e?.code === 'ENOENT' ? 'no such file' : e?.message}`, { hint: 'pass a file of ;-terminated SELECT statements with --queries' });
  }
  const list = splitStatements(text);
  if (!list.length) throw new CutoverError('USAGE', `the queries file ${q.file} holds no statements`, { hint: 'write one SELECT per statement, each ending with ;' });
  return list;
}

function normaliseCategories(c: DriftOptions['categories']): DriftCategory[] {
  if (!c || !c.length) return [...DRIFT_CATEGORIES];
  const out = new Set<DriftCategory>();
  for (const x of c) {
    const name = x === 'shadow' ? 'behaviour' : x;
    if (!DRIFT_CATEGORIES.includes(name)) throw new CutoverError('USAGE', `unknown drift category "${x}"`, { hint: `use one of ${DRIFT_CATEGORIES.join(', ')}` });
    out.add(name);
  }
  return DRIFT_CATEGORIES.filter((x) => out.has(x));
}

async function side(label: 'source' | 'target', url: string): Promise<Side> {
  const client = await connect(url, { role: label, applicationName: 'cutover-drift' });
  try {
    const versionNum = await serverVersionNum(client);
    const r = await client.query(`select current_database() as db, pg_encoding_to_char(encoding) as enc, has_database_privilege(current_database(), 'CONNECT') as ok from pg_database where datname = current_database()`);
    // Can the role read the user tables? A failing catalog read is reported by the category; table reads are checked here.
    const denied = await client.query(`select format('%I.%I', schemaname, tablename) as t from pg_tables where schemaname not in ('pg_catalog','information_schema') and not has_table_privilege(format('%I.%I', schemaname, tablename), 'SELECT') limit 5`);
    if (denied.rows.length)
      throw new CutoverError('PRIVILEGE', `the ${label} role cannot read ${denied.rows.map((x: any) => x.t).join(', ')}${denied.rows.length === 5 ? ', …' : ''} in ${redactUrl(url)}`, {
        hint: 'connect as a role that can SELECT every table (e.g. a member of pg_read_all_data on 14+, or the owner/superuser)',
        exitCode: 2,
      });
    return { label, url, client, versionNum, major: Math.floor(versionNum / 10000), database: r.rows[0].db, encoding: r.rows[0].enc };
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
}

/** Compares source and target; ok is false when any finding has severity error. */
export async function drift(opts: DriftOptions): Promise<DriftResult> {
  const started = Date.now();
  const categories = normaliseCategories(opts.categories);
  const queries = categories.includes('behaviour') ? loadQueries(opts.queries) : [];
  validateQueries(queries);
  const clients: Client[] = [];
  try {
    const source = await side('source', opts.source);
    clients.push(source.client);
    const target = await side('target', opts.target);
    clients.push(target.client);
    const notes: string[] = [];
    const fingerprints: Record<string, unknown> = {};
    const ctx: DriftContext = {
      source, target, queries, installAmcheck: !!opts.installAmcheck, progress: !!opts.progress,
      note: (l) => notes.push(l),
      record: (k, v) => (fingerprints[k] = v),
    };
    const findings: DriftFinding[] = [];
    // Sequential: categories share one connection per side (and some use transactions).
    for (const cat of categories) {
      if (cat === 'behaviour' && !queries.length) {
        notes.push('behaviour: no shadow-read queries given (--queries); skipped');
        continue;
      }
      try {
        // One cause across many objects is one finding (schema groups its own, with resolution findings).
        const found = await CHECKS[cat](ctx);
        findings.push(...(cat === 'schema' ? found : groupFindings(found)));
      } catch (e: any) {
        if (e instanceof CutoverError) throw e;
        if (e?.code === '42501')
          throw new CutoverError('PRIVILEGE', `drift ${cat}: the connecting role may not read what this check needs: ${e.message}`, { hint: 'connect as the owner or a superuser (or grant pg_read_all_data / pg_read_all_settings)', exitCode: 2, cause: e });
        notes.push(`${cat}: check failed: ${e?.message ?? e}`);
        findings.push(finding(cat, 'warning', `check ${cat}`, null, null, `the ${cat} check could not complete: ${e?.message ?? e}`, 'rerun with CUTOVER_DEBUG=1 and report the message'));
      }
    }
    const counts = { error: 0, warning: 0, info: 0 };
    for (const f of findings) counts[f.severity]++;
    return {
      ok: counts.error === 0,
      findings,
      counts,
      source: { url: redactUrl(source.url), version: source.versionNum, database: source.database, encoding: source.encoding },
      target: { url: redactUrl(target.url), version: target.versionNum, database: target.database, encoding: target.encoding },
      categories,
      fingerprints,
      notes,
      durationMs: Date.now() - started,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
  }
}
