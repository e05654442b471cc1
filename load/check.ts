/**
 * The acknowledged-write check against real databases: what the new primary holds after the
 * cutover (and what reached the old one after the fence), fed to the pure `checkAcknowledged`.
 *
 * Everything is keyed on the sample app's `cutover_app_writes.request_id` (one row per write,
 * committed in the same transaction as the domain row) and restricted to one run by the id prefix
 * the workload uses (`<RUN_ID>-…`), so several runs can share a database.
 */
import { CutoverError } from '../migration/errors.ts';
import { connect, describeTarget, quoteIdent, sqlError } from '../migration/pg.ts';
import { APP_DOMAIN_TABLES, APP_WRITES_TABLE } from './app/server.ts';
import { checkAcknowledged, type AckCheck, type OpOutcome } from './measure.ts';

export interface PresenceOptions {
  /** Only ids starting with `${runId}-` (default: every id). */
  runId?: string;
  /** Schema of the app's tables (default public). */
  schema?: string;
}

export interface Presence {
  presentIds: Set<string>;
  /** Request ids with more than one domain row, and how many. */
  duplicateCounts: Map<string, number>;
}

function prefixOf(runId?: string): string {
  return runId ? `${runId}-` : '';
}

async function withDb<T>(url: string, role: string, fn: (c: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> {
  const c = await connect(url, { role, applicationName: 'cutover-check', connectTimeoutMs: 5000 });
  try {
    return await fn(c);
  } catch (e: any) {
    if (e?.code === '42P01' || e?.code === '3F000')
      throw new CutoverError('PRECONDITION', `the sample app's tables are missing on the ${role} at ${describeTarget(url)}: ${e.message}`, {
        hint: `create them on the old primary before replication starts (appSchemaSql() in load/app/server.ts) so the migration copies them`,
        cause: e,
      });
    throw e instanceof CutoverError ? e : sqlError(e, `reading the app's writes on the ${role} at ${describeTarget(url)}`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Request ids present (and duplicated) on one database. */
export async function readPresence(url: string, opts: PresenceOptions & { role?: string } = {}): Promise<Presence> {
  const schema = opts.schema ?? 'public';
  const prefix = prefixOf(opts.runId);
  const t = (n: string) => `${quoteIdent(schema)}.${quoteIdent(n)}`;
  return withDb(url, opts.role ?? 'new primary', async (c) => {
    const ids = await c.query<{ request_id: string }>(`select request_id from ${t(APP_WRITES_TABLE)} where left(request_id, length($1)) = $1`, [prefix]);
    const union = APP_DOMAIN_TABLES.map((n) => `select request_id from ${t(n)} where left(request_id, length($1)) = $1`).join(' union all ');
    const dups = await c.query<{ request_id: string; n: number }>(`select request_id, count(*)::int as n from (${union}) d group by request_id having count(*) > 1`, [prefix]);
    return { presentIds: new Set(ids.rows.map((r) => r.request_id)), duplicateCounts: new Map(dups.rows.map((r) => [r.request_id, r.n])) };
  });
}

/**
 * Ids of writes the old primary accepted after the fence (created_at is clock_timestamp() at the
 * insert, so a transaction that started before the fence but wrote after it is caught too).
 */
export async function readWritesAfter(url: string, fenceAtMs: number, opts: PresenceOptions & { writtenOn?: string } = {}): Promise<string[]> {
  const schema = opts.schema ?? 'public';
  const t = `${quoteIdent(schema)}.${quoteIdent(APP_WRITES_TABLE)}`;
  return withDb(url, 'old primary', async (c) => {
    // Rows that came back from the new primary by reverse replication name the new server in
    // written_on: only rows the old server itself accepted are split-brain writes.
    const onOld = opts.writtenOn ? ` and (written_on is null or host(written_on) = $3)` : '';
    const params: unknown[] = [prefixOf(opts.runId), fenceAtMs, ...(opts.writtenOn ? [opts.writtenOn] : [])];
    const r = await c.query<{ request_id: string }>(`select request_id from ${t} where left(request_id, length($1)) = $1 and created_at > to_timestamp($2::double precision / 1000)${onOld} order by created_at`, params);
    return r.rows.map((x) => x.request_id);
  });
}

export interface RunCheckInput extends PresenceOptions {
  ops: readonly OpOutcome[];
  newUrl: string;
  /** The old primary, for split-brain writes; skipped when absent. */
  oldUrl?: string;
  /** When the fence took effect (epoch ms); required for the split-brain check. */
  fenceAtMs?: number;
  /** The old server's own address (inet_server_addr() as the app saw it), to tell its writes from replicated ones. */
  oldServerAddr?: string;
}

export interface RunCheck extends AckCheck {
  /** False when the old primary could not be read (e.g. killed by a fault): split-brain unknown. */
  oldChecked: boolean;
  oldError?: string;
}

/** Gather presence on the new primary (and the old one after the fence) and judge the run's writes. */
export async function checkRun(input: RunCheckInput): Promise<RunCheck> {
  const presence = await readPresence(input.newUrl, input);
  let after: string[] = [];
  let oldChecked = false;
  let oldError: string | undefined;
  if (input.oldUrl && input.fenceAtMs !== undefined) {
    try {
      after = await readWritesAfter(input.oldUrl, input.fenceAtMs, { ...input, writtenOn: input.oldServerAddr });
      oldChecked = true;
    } catch (e: any) {
      oldError = e?.message ?? String(e);
    }
  }
  const res = checkAcknowledged({ ops: input.ops, presentIds: presence.presentIds, duplicateCounts: presence.duplicateCounts, oldPrimaryIdsAfterFence: after });
  return { ...res, oldChecked, ...(oldError ? { oldError } : {}) };
}

// ---------------------------------------------------------------------------------------------
// A user's own tables: the scenario's `ack.query`

export interface AckQueryInput {
  /** Ops from the cutover_op/cutover_ack contract; acknowledged ones carry `key`. */
  ops: ReadonlyArray<OpOutcome & { key?: string }>;
  /** SQL returning one row per row found, first column the key as text; $1 = the keys as text[]. */
  query: string;
  newUrl: string;
  oldUrl?: string;
  /** When the fence took effect (epoch ms), for split-brain writes. */
  fenceAtMs?: number;
}

/** Run the user's ack query on one primary: how many rows each key has there. */
export async function readAckKeys(url: string, query: string, keys: readonly string[], role: string): Promise<Map<string, number>> {
  const c = await connect(url, { role, applicationName: 'cutover-check', connectTimeoutMs: 5000 });
  try {
    const found = new Map<string, number>();
    // Batches keep one statement's parameter well below any message-size limit.
    for (let i = 0; i < keys.length || i === 0; i += 50_000) {
      const batch = keys.slice(i, i + 50_000);
      let r;
      try {
        r = await c.query({ text: query, values: [batch], rowMode: 'array' });
      } catch (e: any) {
        const pgCode = e?.code ? ` (SQLSTATE ${e.code})` : '';
        throw new CutoverError('CONFIG', `the scenario's ack.query \`${query.replace(/\s+/g, ' ').trim()}\` failed on the ${role} at ${describeTarget(url)}: ${e?.message ?? e}${pgCode}`, {
          hint: 'ack.query gets the acknowledged keys as text[] in $1 and returns one row per row found, the key first, e.g. `select id::text from orders where id::text = any($1)`',
          cause: e,
        });
      }
      for (const row of r.rows as unknown[][]) {
        const k = row[0] === null || row[0] === undefined ? '' : String(row[0]);
        found.set(k, (found.get(k) ?? 0) + 1);
      }
      if (batch.length === 0) break;
    }
    return found;
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Lost, duplicate and split-brain figures for any table, from the user's ack query.
 *
 * - lost: acknowledged, key not found on the new primary;
 * - duplicates: a key found more than once on the new primary;
 * - split-brain: acknowledged after the fence took effect, found on the old primary and not on the
 *   new one — a write the old primary accepted although traffic should have moved (rows that
 *   reverse replication carried from new to old are on both, so they do not count);
 * - unexpected and recovered cannot be told for a user's table (the query only sees acknowledged
 *   keys; an unacknowledged write has no key): they stay empty and indeterminate ops count as
 *   indeterminate-missing.
 */
export async function checkRunWithAckQuery(input: AckQueryInput): Promise<RunCheck> {
  const acked = input.ops.filter((o) => o.kind === 'write' && o.status === 'ok' && o.key !== undefined);
  const keys = [...new Set(acked.map((o) => o.key!))];
  const onNew = await readAckKeys(input.newUrl, input.query, keys, 'new primary');
  const presentIds = new Set<string>();
  const duplicateCounts = new Map<string, number>();
  for (const o of acked) {
    const n = onNew.get(o.key!) ?? 0;
    if (n > 0) presentIds.add(o.id);
    if (n > 1) duplicateCounts.set(o.id, n);
  }
  let splitBrain: string[] = [];
  let oldChecked = false;
  let oldError: string | undefined;
  if (input.oldUrl && input.fenceAtMs !== undefined) {
    const late = acked.filter((o) => o.endMs > input.fenceAtMs! && !(onNew.get(o.key!) ?? 0));
    try {
      const onOld = late.length ? await readAckKeys(input.oldUrl, input.query, [...new Set(late.map((o) => o.key!))], 'old primary') : new Map();
      splitBrain = late.filter((o) => (onOld.get(o.key!) ?? 0) > 0).map((o) => o.id);
      oldChecked = true;
    } catch (e: any) {
      if (e instanceof CutoverError && e.code === 'CONFIG') throw e;
      oldError = e?.message ?? String(e);
    }
  }
  const res = checkAcknowledged({ ops: input.ops, presentIds, duplicateCounts, oldPrimaryIdsAfterFence: splitBrain });
  // Present ids were only looked up for acknowledged keys: nothing is "unexpected" by construction.
  res.unexpected = [];
  return { ...res, oldChecked, ...(oldError ? { oldError } : {}) };
}
