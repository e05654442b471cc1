/**
 * Back-fill of `--skip-copy` tables from the slot's own snapshot, instead of the subscription's
 * initial copy (the append-only tables of `replicate plan`: their old rows are copied at our pace,
 * in primary-key chunks, while their new rows stream).
 *
 * Why it is exact: the slot is created over a replication connection with EXPORT_SNAPSHOT, and a
 * second session imports that snapshot at once (REPEATABLE READ, read only). The snapshot holds
 * exactly the rows committed before the slot's consistent point; everything committed after it
 * arrives through the slot. So no row is in neither, and no row is in both: an INSERT streamed
 * after the consistent point never collides with a back-filled row. `INSERT … ON CONFLICT DO
 * NOTHING` makes a re-run (or a row the stream brought first) harmless all the same.
 *
 * What it assumes: the tables are append-only while the back-fill runs (`replicate plan` classes
 * them). An UPDATE or DELETE streamed for an old row that is not back-filled yet finds nothing on
 * the target and is skipped by the apply worker; the back-fill then writes the snapshot's version.
 * `cutover verify` finds such a row.
 *
 * The count check: every chunk read from the snapshot is counted again on the target by its keys
 * after the insert (a row skipped by a conflict on another unique index would be missing there),
 * and the snapshot's own count(*) must equal the rows read.
 */
import { CutoverError } from './errors.ts';
import { connect, qualified, quoteIdent, quoteLiteral, serverMajor, sqlError, type Client } from './pg.ts';
import { Progress, defaultProgressMode } from './progress.ts';
import type { TableName } from './replication.ts';

export interface SnapshotSlot {
  slot: string;
  consistentPoint: string;
  /** A session inside the slot's snapshot (REPEATABLE READ, read only); close() ends it. */
  snapshot: Client;
  close(): Promise<void>;
}

/**
 * Create the logical slot `slot` (pgoutput) with an exported snapshot and import the snapshot into
 * a session of its own. The replication connection is closed once the snapshot is imported (the
 * import keeps it). On failure nothing is left but possibly the slot, which the caller's cleanup
 * drops by name.
 */
export async function createSlotWithSnapshot(sourceUrl: string, slot: string): Promise<SnapshotSlot> {
  const walsender = await connect(sourceUrl, { role: 'source', replication: true, applicationName: 'cutover-backfill-slot' });
  let snapshot: Client | undefined;
  try {
    const major = await serverMajorOverReplication(walsender);
    // 15+ spells the options in parentheses; the old form is gone from the grammar's docs there
    const cmd = major >= 15 ? `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput (SNAPSHOT 'export')` : `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput EXPORT_SNAPSHOT`;
    let row: { consistent_point: string; snapshot_name: string };
    try {
      row = (await walsender.query(cmd)).rows[0];
    } catch (e: any) {
      if (e?.code === '42501') throw new CutoverError('PRIVILEGE', `creating the slot for the back-fill: ${e.message}`, { hint: 'the source role needs the REPLICATION attribute (the subscription needs it as well): ALTER ROLE … REPLICATION', cause: e });
      throw sqlError(e, 'creating the replication slot with an exported snapshot');
    }
    snapshot = await connect(sourceUrl, { role: 'source', applicationName: 'cutover-backfill' });
    await snapshot.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await snapshot.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(row.snapshot_name)}`);
    // the text of floats must survive the trip through JSON on every major (11 prints 15 digits by default)
    await snapshot.query('SET LOCAL extra_float_digits = 3');
    await snapshot.query(`SET LOCAL bytea_output = 'hex'`);
    const s = snapshot;
    let closed = false;
    return {
      slot,
      consistentPoint: row.consistent_point,
      snapshot: s,
      close: async () => {
        if (closed) return;
        closed = true;
        await s.query('COMMIT').catch(() => {});
        await s.end().catch(() => {});
      },
    };
  } catch (e) {
    await snapshot?.end().catch(() => {});
    throw e;
  } finally {
    await walsender.end().catch(() => {});
  }
}

/** The server's major over the walsender session (SHOW is a replication command there too). */
async function serverMajorOverReplication(c: Client): Promise<number> {
  const v = (await c.query('SHOW server_version_num')).rows[0];
  return Math.floor(Number(Object.values(v)[0]) / 10000);
}

export interface BackfillTable {
  table: string;
  /** count(*) within the snapshot. */
  snapshotRows: number;
  /** Rows read from the snapshot, in key order. */
  read: number;
  /** Rows the back-fill inserted; the rest of `read` were there already (ON CONFLICT DO NOTHING). */
  inserted: number;
  alreadyPresent: number;
  /** Of the rows read, how many the target holds (by key) after the back-fill: must equal `read`. */
  presentOnTarget: number;
  chunks: number;
  elapsedMs: number;
  rowsPerSec: number;
  ok: boolean;
}

export interface BackfillResult {
  consistentPoint: string;
  tables: BackfillTable[];
  elapsedMs: number;
  ok: boolean;
}

interface KeyColumn {
  name: string;
  type: string;
}

/** The primary key of a table (in key order, with its SQL type), or [] without one. */
export async function primaryKey(c: Client, t: TableName): Promise<KeyColumn[]> {
  const r = await c.query<KeyColumn>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
       from pg_constraint k cross join lateral unnest(k.conkey) with ordinality u(attnum, ord)
       join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.attnum
      where k.conrelid = $1::regclass and k.contype = 'p' order by u.ord`,
    [qualified(t.schema, t.name)],
  );
  return r.rows;
}

/** Columns the target can be given values for (not generated, not dropped), that the source has too. */
async function insertableColumns(src: Client, tgt: Client, t: TableName): Promise<string[]> {
  const cols = async (c: Client, extra: string) =>
    (await c.query<{ name: string }>(`select attname as name from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped ${extra} order by attnum`, [qualified(t.schema, t.name)])).rows.map((r) => r.name);
  const generated = (await serverMajor(tgt)) >= 12 ? `and attgenerated = ''` : '';
  const onSource = new Set(await cols(src, ''));
  return (await cols(tgt, generated)).filter((c) => onSource.has(c));
}

export interface BackfillOptions {
  target: string;
  tables: Array<TableName & { rowFilter?: string }>;
  /** Rows per chunk (default 10 000). */
  chunkRows?: number;
  progress?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Copy each table's rows from the snapshot session to the target in primary-key chunks. A row
 * filter of the publication applies here too (the shard's rows only).
 */
export async function backfillFromSnapshot(slot: SnapshotSlot, opts: BackfillOptions): Promise<BackfillResult> {
  const t0 = Date.now();
  const src = slot.snapshot;
  const tgt = await connect(opts.target, { role: 'target', applicationName: 'cutover-backfill' });
  const log = opts.log ?? (() => {});
  const chunkRows = opts.chunkRows ?? 10_000;
  try {
    const tables: BackfillTable[] = [];
    for (const t of opts.tables) tables.push(await backfillTable(src, tgt, t, chunkRows, opts));
    for (const b of tables)
      log(`back-fill ${b.table}: ${b.read} of ${b.snapshotRows} snapshot row(s) read, ${b.inserted} inserted, ${b.alreadyPresent} already there; count check ${b.ok ? 'ok' : 'FAILED'} (${b.presentOnTarget} on the target) — ${b.rowsPerSec} rows/s`);
    return { consistentPoint: slot.consistentPoint, tables, elapsedMs: Date.now() - t0, ok: tables.every((b) => b.ok) };
  } finally {
    await tgt.end().catch(() => {});
  }
}

async function backfillTable(src: Client, tgt: Client, t: TableName & { rowFilter?: string }, chunkRows: number, opts: BackfillOptions): Promise<BackfillTable> {
  const t0 = Date.now();
  const label = `${t.schema}.${t.name}`;
  const tbl = qualified(t.schema, t.name);
  const pk = await primaryKey(src, t);
  if (!pk.length) throw new CutoverError('PRECONDITION', `${label} has no primary key: the back-fill copies it in key chunks with ON CONFLICT by key`, { hint: 'add a primary key, or copy the table normally (leave it out of --skip-copy)' });
  const cols = await insertableColumns(src, tgt, t);
  const keyList = pk.map((k) => quoteIdent(k.name)).join(', ');
  const filter = t.rowFilter ? `coalesce((${t.rowFilter}), false)` : 'true';
  const q = async <T>(c: Client, text: string, params: unknown[], what: string): Promise<T[]> => {
    try {
      return (await c.query(text, params)).rows as T[];
    } catch (e) {
      throw sqlError(e, `back-fill of ${label}: ${what}`);
    }
  };
  const [{ n: snapshotRows }] = await q<{ n: number }>(src, `select count(*)::float8 as n from ${tbl} where ${filter}`, [], 'counting the snapshot');
  const progress = opts.progress ? new Progress(`back-fill ${label}`, snapshotRows, { mode: defaultProgressMode() }) : undefined;
  const colList = cols.map(quoteIdent).join(', ');
  // OVERRIDING SYSTEM VALUE: a GENERATED ALWAYS identity column takes the source's values, as the apply worker's do
  const insert = `insert into ${tbl} (${colList}) overriding system value select ${colList} from json_populate_recordset(null::${tbl}, $1::json) on conflict do nothing`;
  const present = `select count(*)::int as n from ${tbl} t join json_populate_recordset(null::${tbl}, $1::json) j on ${pk.map((k) => `t.${quoteIdent(k.name)} = j.${quoteIdent(k.name)}`).join(' and ')}`;
  let last: string[] | null = null;
  let read = 0;
  let inserted = 0;
  let presentOnTarget = 0;
  let chunks = 0;
  for (;;) {
    if (opts.signal?.aborted) throw new CutoverError('STATE', `back-fill of ${label} aborted after ${read} row(s) (a re-run is harmless: ON CONFLICT DO NOTHING)`);
    const after: string = last ? `and (${keyList}) > (${pk.map((k, i) => `$${i + 1}::${k.type}`).join(', ')})` : '';
    const [chunk]: Array<{ rows: unknown[] | null; n: number; last: string[] | null }> = await q<{ rows: unknown[] | null; n: number; last: string[] | null }>(
      src,
      `with c as (select * from ${tbl} where ${filter} ${after} order by ${keyList} limit ${chunkRows})
       select (select json_agg(c) from c) as rows, (select count(*)::int from c) as n,
              (select array[${pk.map((k) => `${quoteIdent(k.name)}::text`).join(', ')}] from c order by ${keyList} desc limit 1) as last`,
      last ?? [],
      'reading a chunk from the snapshot',
    );
    if (!chunk.n) break;
    const json = JSON.stringify(chunk.rows);
    const ins = await tgt.query(insert, [json]).catch((e) => Promise.reject(sqlError(e, `back-fill of ${label}: inserting a chunk on the target`)));
    const [{ n: here }] = await q<{ n: number }>(tgt, present, [json], 'counting the chunk on the target');
    read += chunk.n;
    inserted += ins.rowCount ?? 0;
    presentOnTarget += here;
    chunks++;
    last = chunk.last;
    progress?.tick(chunk.n, `${inserted} inserted`);
    if (chunk.n < chunkRows) break;
  }
  const elapsedMs = Date.now() - t0;
  progress?.finish(`${inserted} inserted, ${read - inserted} already there`);
  return {
    table: label,
    snapshotRows,
    read,
    inserted,
    alreadyPresent: read - inserted,
    presentOnTarget,
    chunks,
    elapsedMs,
    rowsPerSec: elapsedMs > 0 ? Math.round((read * 1000) / elapsedMs) : read,
    ok: read === snapshotRows && presentOnTarget === read,
  };
}
