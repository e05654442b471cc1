/**
 * Readiness of the new primary before traffic moves to it.
 *
 * Logical replication copies rows, not statistics: until ANALYZE runs, the planner of the new
 * primary guesses row counts, and the first queries after the switch can get plans that are
 * orders of magnitude slower (both the Knock and the 1-billion-row cutovers analysed and warmed the
 * new side first). Readiness runs BEFORE the fence — never inside the window in which clients
 * cannot write — and does, in order:
 *
 *   1. ANALYZE of every replicated table (statistics; autovacuum would get there eventually);
 *   2. optionally VACUUM (ANALYZE) (visibility map for index-only scans; costs I/O);
 *   3. REINDEX of indexes over collatable columns when the default collation's provider or
 *      version differs between the two sides AND the indexes were not built on the target
 *      (a physical clone carries the old side's index files: their order is the old collation's);
 *      indexes built by the logical copy's post-data are already in the target's order;
 *   4. warm-up: pg_prewarm of the tables and their indexes where the extension is available,
 *      else a replay of the user's query file (each statement once), else nothing.
 *
 * Each step is timed and reported; a step that cannot run says why instead of failing the
 * cutover (readiness improves the first seconds; it is never a reason to stay on the old side).
 */
import { connect, qualified, type Client } from './pg.ts';
import { mapLimit } from './concurrency.ts';
import { splitStatements } from './drift/shadow.ts';

export interface ReadinessOptions {
  /** Tables to prepare, schema-qualified by parts (default: every ordinary/partitioned table outside system schemas). */
  tables?: Array<{ schema: string; name: string }>;
  analyze?: boolean;
  vacuum?: boolean;
  /** Reindex collatable indexes when the collation differs ('auto': only when indexes came from a physical clone). */
  reindex?: 'auto' | 'always' | 'never';
  /** The indexes on the target were carried over by a physical clone (clone-then-follow). */
  clonedIndexes?: boolean;
  /** pg_prewarm where available; else the queries of this text (SQL statements), each run once. */
  warmupSql?: string;
  prewarm?: boolean;
  /** Parallel ANALYZE/VACUUM sessions (default 2). */
  parallel?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface ReadinessStep {
  step: 'analyze' | 'vacuum' | 'reindex' | 'prewarm' | 'warmup';
  status: 'done' | 'skipped' | 'failed';
  ms: number;
  objects: number;
  reason?: string;
}

export interface ReadinessResult {
  steps: ReadinessStep[];
  totalMs: number;
}

async function userTables(c: Client): Promise<Array<{ schema: string; name: string }>> {
  const r = await c.query<{ schema: string; name: string }>(
    `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
      order by 1, 2`,
  );
  return r.rows;
}

/** Default-collation identity of a database: provider and version (what decides index order). */
export async function collationIdentity(c: Client): Promise<string> {
  const v = Number((await c.query<{ v: string }>('show server_version_num')).rows[0]!.v);
  const provider = v >= 150000 ? `(select datlocprovider::text from pg_database where datname = current_database())` : `'c'`;
  const version =
    v >= 150000
      ? `(select coalesce(pg_database_collation_actual_version(oid), '') from pg_database where datname = current_database())`
      : `(select coalesce(pg_collation_actual_version(c.oid), '') from pg_collation c where c.collname = (select datcollate from pg_database where datname = current_database()) limit 1)`;
  const r = await c.query<{ id: string }>(`select ${provider} || ':' || (select datcollate from pg_database where datname = current_database()) || ':' || coalesce(${version}, '') as id`);
  return r.rows[0]!.id;
}

async function timed(step: ReadinessStep['step'], fn: () => Promise<{ objects: number; status?: ReadinessStep['status']; reason?: string }>): Promise<ReadinessStep> {
  const t0 = Date.now();
  try {
    const r = await fn();
    return { step, status: r.status ?? 'done', ms: Date.now() - t0, objects: r.objects, ...(r.reason ? { reason: r.reason } : {}) };
  } catch (e: any) {
    return { step, status: 'failed', ms: Date.now() - t0, objects: 0, reason: String(e?.message ?? e) };
  }
}

/** Prepare the target (`targetUrl`) for traffic; `sourceUrl` is only read (collation identity). */
export async function prepareTarget(targetUrl: string, sourceUrl: string | undefined, opts: ReadinessOptions = {}): Promise<ReadinessResult> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const steps: ReadinessStep[] = [];
  const main = await connect(targetUrl, { role: 'target', applicationName: 'cutover-readiness' });
  const onAbort = () => main.end().catch(() => {});
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const tables = opts.tables ?? (await userTables(main));
    const names = tables.map((t) => qualified(t.schema, t.name));
    const parallel = Math.max(1, opts.parallel ?? 2);
    // Each ANALYZE/VACUUM in its own session so that `parallel` of them run at once.
    const perTable = async (verb: string) =>
      mapLimit(names, parallel, async (n) => {
        if (opts.signal?.aborted) throw new Error('aborted');
        const c = await connect(targetUrl, { role: 'target', applicationName: 'cutover-readiness' });
        try {
          await c.query(`${verb} ${n}`);
        } finally {
          await c.end().catch(() => {});
        }
      });
    if (opts.analyze !== false) {
      steps.push(await timed('analyze', async () => (await perTable('analyze'), { objects: names.length })));
      log(`readiness: analyzed ${names.length} table(s)`);
    }
    if (opts.vacuum) steps.push(await timed('vacuum', async () => (await perTable('vacuum'), { objects: names.length })));
    steps.push(
      await timed('reindex', async () => {
        const mode = opts.reindex ?? 'auto';
        if (mode === 'never') return { objects: 0, status: 'skipped', reason: 'turned off' };
        if (!sourceUrl) return { objects: 0, status: 'skipped', reason: 'no source to compare collations with' };
        const src = await connect(sourceUrl, { role: 'source', applicationName: 'cutover-readiness' });
        let same: boolean;
        try {
          same = (await collationIdentity(src)) === (await collationIdentity(main));
        } finally {
          await src.end().catch(() => {});
        }
        if (same && mode !== 'always') return { objects: 0, status: 'skipped', reason: 'same collation provider and version on both sides' };
        if (mode === 'auto' && !opts.clonedIndexes) return { objects: 0, status: 'skipped', reason: 'the indexes were built on the target (logical copy): already in its collation order' };
        const idx = await main.query<{ name: string }>(
          `select distinct format('%I.%I', n.nspname, ic.relname) as name
             from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
             join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
             join pg_type t on t.oid = a.atttypid
            where n.nspname not in ('pg_catalog', 'information_schema') and t.typcollation <> 0`,
        );
        for (const r of idx.rows) {
          if (opts.signal?.aborted) throw new Error('aborted');
          await main.query(`reindex index ${r.name}`);
        }
        return { objects: idx.rows.length };
      }),
    );
    const hasPrewarm = opts.prewarm !== false && (await main.query(`select 1 from pg_extension where extname = 'pg_prewarm'`)).rowCount! > 0;
    if (hasPrewarm) {
      steps.push(
        await timed('prewarm', async () => {
          const r = await main.query<{ n: number }>(
            `select count(pg_prewarm(c.oid))::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.relkind in ('r', 'i', 'm') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'`,
          );
          return { objects: r.rows[0]!.n };
        }),
      );
    } else if (opts.warmupSql) {
      steps.push(
        await timed('warmup', async () => {
          const stmts = splitStatements(opts.warmupSql!).filter((s) => s.trim());
          // Read-only: a warm-up must never write on the new side before the switch.
          await main.query('begin transaction read only');
          try {
            for (const s of stmts) await main.query(s);
          } finally {
            await main.query('rollback').catch(() => {});
          }
          return { objects: stmts.length };
        }),
      );
    } else steps.push({ step: 'prewarm', status: 'skipped', ms: 0, objects: 0, reason: `pg_prewarm is not installed on the target (create extension pg_prewarm) and no warm-up query file was given` });
    return { steps, totalMs: Date.now() - t0 };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await main.end().catch(() => {});
  }
}

/** One line per step, for logs and the report. */
export function describeReadiness(r: ReadinessResult): string {
  return r.steps.map((s) => `${s.step} ${s.status}${s.status === 'done' ? ` (${s.objects} in ${s.ms} ms)` : s.reason ? ` (${s.reason})` : ''}`).join(', ');
}


