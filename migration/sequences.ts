/**
 * Sequences are not replicated: at cutover every sequence on the new primary is moved to
 * max(source last_value + buffer, max of the column it feeds + 1) — the column part catches
 * sequences the app bypassed with explicit ids. Sequences only ever move forward.
 */
import type pg from 'pg';
import { qualified, quoteIdent, sqlError } from './pg.ts';
import type { Change } from './switchover/state.ts';

export interface SequenceInfo {
  schema: string;
  name: string;
  lastValue: number | null;
  increment: number;
  maxValue: number;
}

export interface SequenceMove {
  /** Quoted, qualified name. */
  sequence: string;
  schema: string;
  name: string;
  source: number | null;
  /** Value on the target before the move. */
  before: number | null;
  /** Max of the integer columns the sequence feeds on the target (owned-by or nextval default). */
  columnMax: number | null;
  /** Value set (next nextval returns value + increment). */
  value: number;
  changed: boolean;
  note?: string;
}

export async function listSequences(client: pg.Client): Promise<SequenceInfo[]> {
  const r = await client.query<{ schemaname: string; sequencename: string; last_value: number | null; increment_by: number; max_value: number }>(
    `select schemaname, sequencename, last_value, increment_by, max_value from pg_sequences
      where schemaname not in ('pg_catalog', 'information_schema') order by 1, 2`,
  );
  return r.rows.map((x) => ({ schema: x.schemaname, name: x.sequencename, lastValue: x.last_value, increment: Number(x.increment_by), maxValue: Number(x.max_value) }));
}

/** Integer columns a sequence feeds: OWNED BY / identity (pg_depend 'a'/'i') and column defaults calling nextval on it. */
export async function fedColumns(client: pg.Client, schema: string, name: string): Promise<Array<{ schema: string; table: string; column: string }>> {
  const r = await client.query<{ nspname: string; relname: string; attname: string }>(
    `with s as (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2 and c.relkind = 'S'),
     cols as (
       select d.refobjid as rel, d.refobjsubid as att from pg_depend d, s
        where d.classid = 'pg_class'::regclass and d.objid = s.oid and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0 and d.deptype in ('a', 'i')
       union
       select ad.adrelid, ad.adnum from pg_depend d join pg_attrdef ad on ad.oid = d.objid, s
        where d.classid = 'pg_attrdef'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjid = s.oid)
     select n.nspname, c.relname, a.attname from cols
       join pg_class c on c.oid = cols.rel join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = cols.rel and a.attnum = cols.att
      where a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype) and not a.attisdropped
        and c.relkind in ('r', 'p')`,
    [schema, name],
  );
  return r.rows.map((x) => ({ schema: x.nspname, table: x.relname, column: x.attname }));
}

export interface SyncSequencesOptions {
  buffer: number;
  dryRun?: boolean;
  record?: (c: Change) => Promise<void>;
  signal?: AbortSignal;
}

/** Move every source sequence forward on the target. Reports one move per sequence. */
export async function syncSequences(source: pg.Client, target: pg.Client, opts: SyncSequencesOptions): Promise<SequenceMove[]> {
  const src = await listSequences(source);
  const tgt = new Map((await listSequences(target)).map((s) => [`${s.schema}.${s.name}`, s]));
  const moves: SequenceMove[] = [];
  for (const s of src) {
    if (opts.signal?.aborted) break;
    const seq = qualified(s.schema, s.name);
    const t = tgt.get(`${s.schema}.${s.name}`);
    if (!t) {
      moves.push({ sequence: seq, schema: s.schema, name: s.name, source: s.lastValue, before: null, columnMax: null, value: 0, changed: false, note: 'missing on the target' });
      continue;
    }
    if (s.increment < 0) {
      moves.push({ sequence: seq, schema: s.schema, name: s.name, source: s.lastValue, before: t.lastValue, columnMax: null, value: t.lastValue ?? 0, changed: false, note: 'descending sequence: left as is' });
      continue;
    }
    try {
      let columnMax: number | null = null;
      for (const col of await fedColumns(target, s.schema, s.name)) {
        const m = await target.query<{ m: number | null }>(`select max(${quoteIdent(col.column)})::int8 as m from ${qualified(col.schema, col.table)}`);
        const v = m.rows[0].m;
        if (v !== null && (columnMax === null || v > columnMax)) columnMax = Number(v);
      }
      const candidates = [s.lastValue === null ? null : s.lastValue + opts.buffer, columnMax === null ? null : columnMax + 1, t.lastValue].filter((x): x is number => x !== null);
      if (!candidates.length) {
        moves.push({ sequence: seq, schema: s.schema, name: s.name, source: s.lastValue, before: t.lastValue, columnMax, value: 0, changed: false, note: 'never used on either side' });
        continue;
      }
      const value = Math.min(Math.max(...candidates), t.maxValue);
      const changed = value !== t.lastValue;
      if (changed && !opts.dryRun) {
        await opts.record?.({ kind: 'sequence-set', sequence: seq, previous: t.lastValue, value });
        await target.query(`select setval($1::regclass, $2::int8, true)`, [seq, value]);
      }
      moves.push({ sequence: seq, schema: s.schema, name: s.name, source: s.lastValue, before: t.lastValue, columnMax, value, changed });
    } catch (e) {
      throw sqlError(e, `moving sequence ${seq} on the target`);
    }
  }
  return moves;
}

export interface SequenceCheck {
  sequence: string;
  source: number | null;
  target: number | null;
  ok: boolean;
}

/** After the move: every target sequence is at or above its source. */
export async function verifySequences(source: pg.Client, target: pg.Client): Promise<{ ok: boolean; checks: SequenceCheck[] }> {
  const tgt = new Map((await listSequences(target)).map((s) => [`${s.schema}.${s.name}`, s]));
  const checks = (await listSequences(source)).map((s) => {
    const t = tgt.get(`${s.schema}.${s.name}`);
    const tv = t?.lastValue ?? null;
    const ok = !!t && (s.lastValue === null || (tv !== null && tv >= s.lastValue));
    return { sequence: qualified(s.schema, s.name), source: s.lastValue, target: tv, ok };
  });
  return { ok: checks.every((c) => c.ok), checks };
}
