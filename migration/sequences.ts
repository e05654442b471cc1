/**
 * Sequences are not replicated: at cutover every sequence on the new primary is moved to
 * max(source last_value + buffer, max of the column it feeds + 1) — the column part catches
 * sequences the app bypassed with explicit ids. Sequences only ever move forward.
 *
 * This runs while clients cannot write, so it is batched: the cost does not grow with round trips
 * per sequence (61 sequences one at a time took 1.07 s of the write-blocked window).
 */
import type pg from 'pg';
import { CutoverError } from './errors.ts';
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
  /** Called once per change, before the change is made (state file: what to undo / report). */
  record?: (c: Change) => Promise<void>;
  /**
   * Called once with every change, before they are made — one state-file write instead of one per
   * sequence inside the write-blocked window. When given, `record` is not called.
   */
  recordAll?: (cs: Change[]) => Promise<void>;
  signal?: AbortSignal;
}

interface TargetSequence extends SequenceInfo {
  /** Max of the integer columns the sequence feeds (null: none, or all empty). */
  columnMax: number | null;
}

/**
 * Every target sequence with the max of the columns it feeds, in ONE query: the column maxima are
 * dynamic SQL (one per fed column), run inside the statement by query_to_xml so that 500
 * sequences cost one round trip, not 1 + 2 × 500. The XML is read as text (no xpath, so a server
 * built without libxml works as long as query_to_xml does; otherwise `targetSequencesSlow`).
 */
const TARGET_SEQUENCES_SQL = `
  with seqs as (
    select c.oid, n.nspname::text as schema, c.relname::text as name, s.seqincrement as increment_by, s.seqmax as max_value,
           case when has_sequence_privilege(c.oid, 'SELECT,USAGE') then pg_sequence_last_value(c.oid) end as last_value
      from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_sequence s on s.seqrelid = c.oid
     where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema') and not pg_is_other_temp_schema(n.oid)),
  cols as (
    select d.objid as seq, d.refobjid as rel, d.refobjsubid as att
      from pg_depend d join pg_class sc on sc.oid = d.objid and sc.relkind = 'S'
     where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0 and d.deptype in ('a', 'i')
    union
    select d.refobjid, ad.adrelid, ad.adnum
      from pg_depend d join pg_attrdef ad on ad.oid = d.objid join pg_class sc on sc.oid = d.refobjid and sc.relkind = 'S'
     where d.classid = 'pg_attrdef'::regclass and d.refclassid = 'pg_class'::regclass),
  maxes as (
    select cols.seq, array_agg(query_to_xml(format('select max(%I)::int8 as m from %I.%I', a.attname, n.nspname, c.relname), false, true, '')::text) as maxes
      from cols
      join pg_class c on c.oid = cols.rel join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = cols.rel and a.attnum = cols.att
     where a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype) and not a.attisdropped
       and c.relkind in ('r', 'p')
     group by cols.seq)
  select seqs.schema, seqs.name, seqs.last_value, seqs.increment_by, seqs.max_value, maxes.maxes
    from seqs left join maxes on maxes.seq = seqs.oid
   order by 1, 2`;

/** "<row><m>42</m></row>" → 42; an empty table gives "" (nulls are left out) → null. Pure. */
export function maxFromXml(xml: string): number | null {
  const m = /<m>(-?\d+)<\/m>/.exec(xml);
  return m ? Number(m[1]) : null;
}

async function targetSequences(target: pg.Client): Promise<TargetSequence[]> {
  let rows: Array<{ schema: string; name: string; last_value: number | null; increment_by: number; max_value: number; maxes: string[] | null }>;
  try {
    rows = (await target.query(TARGET_SEQUENCES_SQL)).rows;
  } catch (e: any) {
    if (e?.code === '0A000') return await targetSequencesSlow(target); // built without XML support
    throw sqlError(e, 'reading the sequences and the columns they feed on the target');
  }
  return rows.map((r) => {
    const maxes = (r.maxes ?? []).map(maxFromXml).filter((x): x is number => x !== null);
    return { schema: r.schema, name: r.name, lastValue: r.last_value, increment: Number(r.increment_by), maxValue: Number(r.max_value), columnMax: maxes.length ? Math.max(...maxes) : null };
  });
}

/** The same facts without query_to_xml: one query per fed column. */
async function targetSequencesSlow(target: pg.Client): Promise<TargetSequence[]> {
  const out: TargetSequence[] = [];
  for (const s of await listSequences(target)) {
    let columnMax: number | null = null;
    for (const col of await fedColumns(target, s.schema, s.name)) {
      const m = await target.query<{ m: number | null }>(`select max(${quoteIdent(col.column)})::int8 as m from ${qualified(col.schema, col.table)}`);
      const v = m.rows[0].m;
      if (v !== null && (columnMax === null || v > columnMax)) columnMax = Number(v);
    }
    out.push({ ...s, columnMax });
  }
  return out;
}

/** Decide each sequence's move (pure; unit-tested): source + buffer, never below column max + 1, never backwards. */
export function planSequenceMoves(src: SequenceInfo[], tgt: TargetSequence[], buffer: number): SequenceMove[] {
  const byName = new Map(tgt.map((s) => [`${s.schema}\u0000${s.name}`, s]));
  return src.map((s): SequenceMove => {
    const seq = qualified(s.schema, s.name);
    const base = { sequence: seq, schema: s.schema, name: s.name, source: s.lastValue };
    const t = byName.get(`${s.schema}\u0000${s.name}`);
    if (!t) return { ...base, before: null, columnMax: null, value: 0, changed: false, note: 'missing on the target' };
    if (s.increment < 0) return { ...base, before: t.lastValue, columnMax: null, value: t.lastValue ?? 0, changed: false, note: 'descending sequence: left as is' };
    const columnMax = t.columnMax;
    const candidates = [s.lastValue === null ? null : s.lastValue + buffer, columnMax === null ? null : columnMax + 1, t.lastValue].filter((x): x is number => x !== null);
    if (!candidates.length) return { ...base, before: t.lastValue, columnMax, value: 0, changed: false, note: 'never used on either side' };
    const value = Math.min(Math.max(...candidates), t.maxValue);
    return { ...base, before: t.lastValue, columnMax, value, changed: value !== t.lastValue };
  });
}

/**
 * Move every source sequence forward on the target. Reports one move per sequence. Batched for the
 * write-blocked window: one query on the source, one read and one setval round trip on the target,
 * whatever the number of sequences.
 */
export async function syncSequences(source: pg.Client, target: pg.Client, opts: SyncSequencesOptions): Promise<SequenceMove[]> {
  let src: SequenceInfo[];
  try {
    src = await listSequences(source);
  } catch (e) {
    throw sqlError(e, 'reading the sequences on the source');
  }
  const moves = planSequenceMoves(src, await targetSequences(target), opts.buffer);
  const changes = moves.filter((m) => m.changed);
  if (opts.signal?.aborted) throw new CutoverError('STATE', 'sequence move aborted before any sequence was set');
  if (opts.dryRun || !changes.length) return moves;
  const recs: Change[] = changes.map((m) => ({ kind: 'sequence-set', sequence: m.sequence, previous: m.before, value: m.value }));
  if (opts.recordAll) await opts.recordAll(recs);
  else for (const c of recs) await opts.record?.(c);
  try {
    const r = await target.query<{ sequence: string; v: number }>(
      `select x.seq as sequence, setval(x.seq::regclass, x.v, true) as v from unnest($1::text[], $2::int8[]) as x(seq, v)`,
      [changes.map((m) => m.sequence), changes.map((m) => m.value)],
    );
    const set = new Map(r.rows.map((x) => [x.sequence, Number(x.v)]));
    for (const m of changes) {
      if (set.get(m.sequence) !== m.value) throw new CutoverError('STATE', `sequence ${m.sequence} reads ${set.get(m.sequence)} after setval(${m.value}) on the target`);
    }
  } catch (e) {
    if (e instanceof CutoverError) throw e;
    throw sqlError(e, `moving ${changes.length} sequence(s) on the target`);
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
