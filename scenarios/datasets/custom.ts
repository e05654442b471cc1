/**
 * custom: a user's own schema. Either the tables a DDL file just created, or the empty tables that
 * already exist in the target database.
 *
 * Plan first, load after. Everything a row must honour is read from the catalogs and turned into
 * generators before a row is written:
 *  - types: format_type, domains (their base type, NOT NULL and CHECKs), enums, arrays, ranges,
 *    numeric precision/scale, varchar(n), bit(n), jsonb, bytea …;
 *  - unique keys (primary keys, unique constraints and indexes, partial ones too, and exclusion
 *    constraints made of `=` only): every key is a mixed-radix "dimension" plan over its columns —
 *    one injective column when one is wide enough, otherwise digits spread over several columns
 *    and foreign keys (a join table's (a_id, b_id) is a pair of distinct parent indexes). A unique
 *    foreign key (one-to-one) takes distinct parents and caps the table at the parent's row count;
 *    the plan says so (`notes`);
 *  - foreign keys: a child's key columns are the parent's generator at a parent row index, so they
 *    always exist — composite keys, non-integer keys, self references and cycles alike (the loader
 *    adds the FKs after the data, so load order does not matter);
 *  - CHECKs: simple ranges, value lists, lengths, regular expressions and column orders
 *    (`ends_at > starts_at`) are generated within; any other CHECK the evaluator understands is
 *    re-drawn a bounded number of times; what is left is decided by the server (`probeDataset`);
 *  - exclusion constraints with && on a range: disjoint ranges per row;
 *  - partitioned tables: the partition key is drawn inside the partitions' bounds;
 *  - generated columns are left to the server; identity and serial columns get 1..n (sequences are
 *    moved past them after the load).
 * When a column cannot be satisfied, `buildCustom`/`probeDataset` throw one error listing every
 * such column as table.column, the constraint, and the `dataset.generators` line that fixes it.
 *
 * Every column value is a pure function of (seed, table, column, row index), so FKs stay consistent
 * and any order or parallelism of loading gives the same rows.
 */
import { CutoverError } from '../../migration/errors.ts';
import type { Client } from '../../migration/pg.ts';
import { lexSql } from '../../migration/sql-lexer.ts';
import { checkBody, compileCheck, deriveBounds, mergeBounds, parseArray, parseExpr, type Bounds, type CompiledCheck, type Node, type Order, type Row } from './check-expr.ts';
import { compileRegexGen } from './regex-gen.ts';
import { DAY_MS, EPOCH_2024, Rng, arrayLiteral, hash3, hashString, isoAt, pools, type Dataset, type DatasetContext, type TableLoad, type Value } from './gen.ts';

interface TypeInfo {
  base: string;
  category: string;
  elemBase: string | null;
  elemCategory: string | null;
  enumLabels: string[] | null;
  rangeSub: string | null;
  /** A multirange (14+): its values are `{range, …}` of rangeSub. */
  multirange?: boolean;
  typmod: number;
  domain: string | null;
  domainNotNull: boolean;
  domainChecks: { name: string; def: string }[];
  /** The base type as format_type renders it, with the domain's typmod (for the probe table). */
  baseType: string;
}

export interface ColumnInfo extends TypeInfo {
  name: string;
  type: string;
  notNull: boolean;
  identity: boolean;
  generated: boolean;
  /** A generated column's expression (pg_get_expr), for the probe to compute it as the server will. */
  generatedExpr?: string;
  serial: boolean;
  hasDefault: boolean;
}

export interface UniqueKey {
  name: string;
  cols: string[];
  partial: boolean;
  kind: 'primary key' | 'unique' | 'exclusion';
  /** The index's key expressions and WHERE clause as SQL (for the probe: exactly what the index compares). */
  keyExprs?: string[];
  predicate?: string | null;
  /** Generated columns of the key, planned through the columns they are computed from (cols). */
  via?: string[];
}

export interface ForeignKey {
  name: string;
  cols: string[];
  parent: string;
  parentCols: string[];
  def: string;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  columns: ColumnInfo[];
  checks: { name: string; def: string }[];
  uniques: UniqueKey[];
  /** Exclusion constraints with an && element: those columns get disjoint ranges. */
  overlaps: { name: string; cols: string[] }[];
  fks: ForeignKey[];
  partition: {
    key: string;
    strategy: string;
    column: string | null;
    bounds: string[];
    hasDefault: boolean;
    leafConstraints: string[];
    /** Partitions that are themselves partitioned: their key column and their partitions' bounds. */
    sub?: { column: string | null; strategy: string; bounds: string[]; hasDefault: boolean }[];
  } | null;
}

/** Something the plan cannot satisfy: where, why, and the setting that fixes it. */
export interface PlanProblem {
  table: string;
  column: string;
  constraint: string;
  why: string;
  fix: string;
}

export class SeedPlanError extends CutoverError {
  readonly problems: PlanProblem[];
  constructor(problems: PlanProblem[], stage: string) {
    const lines = problems.map((p) => `  ${p.table}.${p.column}: ${p.constraint}: ${p.why}\n    fix: ${p.fix}`);
    super('CONFIG', `the seed plan cannot satisfy ${problems.length} column(s) ${stage}; nothing was loaded:\n${lines.join('\n')}`, {
      hint: `add the lines above to the scenario's dataset.generators (or --generator "table.column=…" on the command line). Generators: faker.<module>.<method>, "const:<literal>", "regex:<pattern>", "null"`,
      exitCode: 2,
    });
    this.problems = problems;
  }
}

const q = (s: string) => '"' + s.replace(/"/g, '""') + '"';

async function typeInfo(c: Client, oid: number, cache: Map<number, TypeInfo>): Promise<TypeInfo> {
  const hit = cache.get(oid);
  if (hit) return hit;
  let cur = oid;
  let domain: string | null = null;
  let domainNotNull = false;
  let typmod = -1;
  const domainChecks: { name: string; def: string }[] = [];
  for (let depth = 0; depth < 10; depth++) {
    const r = (await c.query<any>(`select typtype, typbasetype::int as b, typtypmod, typnotnull, oid::regtype::text as n from pg_type where oid = $1`, [cur])).rows[0];
    if (r.typtype !== 'd') break;
    domain ??= r.n;
    domainNotNull ||= r.typnotnull;
    if (typmod < 0) typmod = Number(r.typtypmod);
    const cons = await c.query<{ name: string; def: string }>(`select conname as name, pg_get_constraintdef(oid) as def from pg_constraint where contypid = $1 and contype = 'c'`, [cur]);
    domainChecks.push(...cons.rows);
    cur = Number(r.b);
  }
  const t = (
    await c.query<any>(
      `select bt.typname as base, bt.typcategory as category, et.typname as elem_base, et.typcategory as elem_category,
              case when bt.typtype = 'e' then (select array_agg(enumlabel order by enumsortorder)::text[] from pg_enum where enumtypid = bt.oid)
                   when et.typtype = 'e' then (select array_agg(enumlabel order by enumsortorder)::text[] from pg_enum where enumtypid = et.oid) end as enum_labels,
              (select st.typname from pg_range r join pg_type st on st.oid = r.rngsubtype
                 where r.rngtypid = bt.oid or (bt.typtype = 'm' and to_jsonb(r) ->> 'rngmultitypid' = bt.oid::text)) as range_sub,
              bt.typtype = 'm' as multirange,
              format_type(bt.oid, $2) as base_type
         from pg_type bt left join pg_type et on et.oid = bt.typelem and bt.typcategory = 'A' where bt.oid = $1`,
      [cur, typmod >= 0 ? typmod : null],
    )
  ).rows[0];
  const info: TypeInfo = { base: t.base, category: t.category, elemBase: t.elem_base, elemCategory: t.elem_category, enumLabels: t.enum_labels, rangeSub: t.range_sub, multirange: t.multirange || undefined, typmod, domain, domainNotNull, domainChecks, baseType: t.base_type };
  cache.set(oid, info);
  return info;
}

async function introspect(c: Client, major: number, onlyNewSince?: Set<number>, constraintsFrom?: Client): Promise<TableInfo[]> {
  const generatedExpr = major >= 12 ? `a.attgenerated <> ''` : 'false';
  const rels = await c.query<{ oid: number; schema: string; name: string; kind: string }>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name, c.relkind as kind
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r','p') and not c.relispartition
        and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg\\_%'
        and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      order by n.nspname, c.relname`,
  );
  const types = new Map<number, TypeInfo>();
  const out: TableInfo[] = [];
  const chosen: typeof rels.rows = [];
  for (const r of rels.rows) {
    if (onlyNewSince && onlyNewSince.has(Number(r.oid))) continue;
    if (!onlyNewSince) {
      const nonEmpty = await c.query(`select 1 from ${q(r.schema)}.${q(r.name)} limit 1`);
      if (nonEmpty.rowCount) continue;
    }
    chosen.push(r);
  }
  if (!chosen.length) return out;
  // One catalog query per kind for all tables (a schema of a hundred tables is a hundred times fewer round trips).
  const oids = chosen.map((r) => Number(r.oid));
  const byRel = <T extends { rel: number }>(rows: T[]) => {
    const m = new Map<number, T[]>();
    for (const x of rows) m.set(Number(x.rel), [...(m.get(Number(x.rel)) ?? []), x]);
    return m;
  };
  const colRows = byRel(
    (
      await c.query<any>(
        `select a.attrelid::int as rel, a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.atttypid::int as typid, a.atttypmod as typmod,
                a.attnotnull as not_null, a.attidentity <> '' as identity, ${generatedExpr} as generated,
                d.adbin is not null as has_default, case when ${generatedExpr} then pg_get_expr(d.adbin, d.adrelid) end as generated_expr,
                coalesce(pg_get_expr(d.adbin, d.adrelid) like 'nextval(%', false) as serial
           from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where a.attrelid = any($1) and a.attnum > 0 and not a.attisdropped order by a.attrelid, a.attnum`,
        [oids],
      )
    ).rows,
  );
  const checkRows = byRel((await c.query<any>(`select conrelid::int as rel, conname as name, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = any($1) and contype = 'c' order by conname`, [oids])).rows);
  // Keys and FKs: from this database, or (schema copied before its post-data) from the source.
  const k = constraintsFrom ?? c;
  const kOids = constraintsFrom
    ? (await k.query<{ o: number }>(`select coalesce(to_regclass(x)::oid, 0)::int as o from unnest($1::text[]) with ordinality u(x, n) order by n`, [chosen.map((r) => `${q(r.schema)}.${q(r.name)}`)])).rows.map((x) => Number(x.o))
    : oids;
  const uniqRows = byRel(
    (
      await k.query<any>(
        `select i.indrelid::int as rel, ic.relname as name, i.indisprimary as primary, i.indpred is not null as partial,
                (select array_agg(a.attname order by k.ord)::text[] from unnest(i.indkey::int2[]) with ordinality k(n, ord)
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n where k.ord <= i.indnkeyatts) as cols,
                case when i.indexprs is not null then pg_get_expr(i.indexprs, i.indrelid) end as exprs,
                (select array_agg(pg_get_indexdef(i.indexrelid, k, true) order by k)::text[] from generate_series(1, i.indnkeyatts) k) as key_exprs,
                pg_get_expr(i.indpred, i.indrelid) as predicate
           from pg_index i join pg_class ic on ic.oid = i.indexrelid where i.indrelid = any($1) and i.indisunique order by i.indisprimary desc, ic.relname`,
        [kOids],
      )
    ).rows,
  );
  const exclRows = byRel(
    (
      await k.query<any>(
        `select con.conrelid::int as rel, con.conname as name,
                (select array_agg(a.attname order by k.ord)::text[] from unnest(con.conkey) with ordinality k(n, ord) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n) as cols,
                (select array_agg(o.oprname order by k.ord)::text[] from unnest(con.conexclop) with ordinality k(op, ord) join pg_operator o on o.oid = k.op) as ops
           from pg_constraint con where con.conrelid = any($1) and con.contype = 'x'`,
        [kOids],
      )
    ).rows,
  );
  const fkRows = byRel(
    (
      await k.query<any>(
        `select con.conrelid::int as rel, con.conname as name, (select format('%s.%s', n.nspname, p.relname) from pg_class p join pg_namespace n on n.oid = p.relnamespace where p.oid = con.confrelid) as parent,
                (select array_agg(a.attname order by k.ord)::text[] from unnest(con.conkey) with ordinality k(n, ord) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n) as cols,
                (select array_agg(a.attname order by k.ord)::text[] from unnest(con.confkey) with ordinality k(n, ord) join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n) as parent_cols,
                pg_get_constraintdef(con.oid) as def
           from pg_constraint con where con.conrelid = any($1) and con.contype = 'f' and con.conparentid = 0 order by con.conname`,
        [kOids],
      )
    ).rows,
  );
  for (const [n, r] of chosen.entries()) {
    const kOid = kOids[n];
    const columns: ColumnInfo[] = [];
    for (const x of colRows.get(Number(r.oid)) ?? []) {
      const ti = await typeInfo(c, Number(x.typid), types);
      columns.push({
        ...ti,
        typmod: ti.domain ? ti.typmod : Number(x.typmod),
        name: x.name,
        type: x.type,
        notNull: x.not_null || ti.domainNotNull,
        identity: x.identity,
        generated: x.generated,
        generatedExpr: x.generated_expr ?? undefined,
        serial: x.serial,
        hasDefault: x.has_default,
      });
    }
    const checks = (checkRows.get(Number(r.oid)) ?? []).map((x) => ({ name: x.name, def: x.def }));
    const colNames = new Set(columns.map((x) => x.name));
    const uniques: UniqueKey[] = (uniqRows.get(kOid) ?? []).map((u) => {
      const cs = new Set<string>(u.cols ?? []);
      // An expression key (lower(email)) is unique when the columns inside it are.
      if (u.exprs) for (const seg of lexSql(u.exprs)) if (seg.kind === 'ident') cs.add(seg.text.slice(1, -1).replace(/""/g, '"'));
      else if (seg.kind === 'code') for (const w of seg.text.match(/[A-Za-z_][\w$]*/g) ?? []) if (colNames.has(w)) cs.add(w);
      return { name: u.name, cols: [...cs].filter((x) => colNames.has(x)), partial: u.partial, kind: u.primary ? 'primary key' : 'unique', keyExprs: u.key_exprs ?? undefined, predicate: u.predicate };
    });
    // A key over a generated column (slug_lower text generated always as (lower(slug))) is planned over the
    // columns it is computed from, as an expression key is; the probe checks the computed values.
    const genSources = new Map<string, string[]>();
    for (const col of columns)
      if (col.generated && col.generatedExpr) {
        const src = new Set<string>();
        for (const seg of lexSql(col.generatedExpr))
          if (seg.kind === 'ident') src.add(seg.text.slice(1, -1).replace(/""/g, '"'));
          else if (seg.kind === 'code') for (const w of seg.text.match(/[A-Za-z_][\w$]*/g) ?? []) src.add(w);
        genSources.set(col.name, [...src].filter((x) => colNames.has(x) && x !== col.name && !columns.find((y) => y.name === x)?.generated));
      }
    if (genSources.size)
      for (const u of uniques)
        if (u.cols.some((cn) => genSources.has(cn))) {
          u.via = u.cols.filter((cn) => genSources.has(cn));
          u.cols = [...new Set(u.cols.flatMap((cn) => genSources.get(cn) ?? [cn]))];
        }
    const overlaps: TableInfo['overlaps'] = [];
    for (const x of exclRows.get(kOid) ?? []) {
      const cs: string[] = x.cols ?? [];
      const ops: string[] = x.ops ?? [];
      if (ops.includes('&&')) overlaps.push({ name: x.name, cols: cs.filter((_, j) => ops[j] === '&&') });
      else if (ops.every((o) => o === '=')) uniques.push({ name: x.name, cols: cs, partial: false, kind: 'exclusion' });
      else overlaps.push({ name: x.name, cols: [] });
    }
    const fks = fkRows.get(kOid) ?? [];
    let partition: TableInfo['partition'] = null;
    if (r.kind === 'p') {
      const pk = (await c.query<any>(`select pg_get_partkeydef($1) as key`, [r.oid])).rows[0].key as string;
      const m = /^(RANGE|LIST|HASH)\s*\((.*)\)$/i.exec(pk);
      const keyCols = m ? m[2].split(',').map((s) => s.trim()) : [];
      const column = keyCols.length === 1 && /^("?)[^()]+\1$/.test(keyCols[0]) ? (keyCols[0].startsWith('"') ? keyCols[0].slice(1, -1).replace(/""/g, '"') : keyCols[0]) : null;
      const children = await c.query<any>(`select pg_get_expr(c.relpartbound, c.oid) as bound from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = $1`, [r.oid]);
      const leaves = await c.query<any>(
        `with recursive t(oid) as (select inhrelid from pg_inherits where inhparent = $1 union all select i.inhrelid from pg_inherits i join t on i.inhparent = t.oid)
         select pg_get_partition_constraintdef(c.oid) as con from t join pg_class c on c.oid = t.oid where c.relkind <> 'p'`,
        [r.oid],
      );
      // Sub-partitioned partitions: their key column and the bounds of their own partitions.
      const nested = await c.query<any>(
        `with recursive t(oid) as (select inhrelid from pg_inherits where inhparent = $1 union all select i.inhrelid from pg_inherits i join t on i.inhparent = t.oid)
         select pg_get_partkeydef(p.oid) as key, (select array_agg(pg_get_expr(c.relpartbound, c.oid))::text[] from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = p.oid) as bounds
           from t join pg_class p on p.oid = t.oid where p.relkind = 'p'`,
        [r.oid],
      );
      const sub = nested.rows.map((x) => {
        const sm = /^(RANGE|LIST|HASH)\s*\((.*)\)$/i.exec(x.key);
        const col = sm && /^("?)[^(),]+\1$/.test(sm[2].trim()) ? sm[2].trim().replace(/^"(.*)"$/, '$1') : null;
        const bounds: string[] = x.bounds ?? [];
        return { column: col, strategy: sm ? sm[1].toLowerCase() : '?', bounds, hasDefault: bounds.includes('DEFAULT') };
      });
      partition = {
        sub,
        key: pk,
        strategy: m ? m[1].toLowerCase() : '?',
        column,
        bounds: children.rows.map((x) => x.bound),
        hasDefault: children.rows.some((x) => x.bound === 'DEFAULT'),
        leafConstraints: leaves.rows.map((x) => x.con).filter(Boolean),
      };
    }
    out.push({
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      columns,
      checks,
      uniques,
      overlaps,
      fks: fks.map((f) => ({ name: f.name, cols: f.cols, parent: f.parent, parentCols: f.parent_cols, def: f.def })),
      partition,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Value generators

/** A column's value for row i; `k` is the key index when the column is part of a unique key. */
type Gen = (i: number, attempt: number) => Value;

interface ColPlan {
  col: ColumnInfo;
  bounds: Bounds;
  /** One of an exclusive arc (CHECK num_nonnulls(a, b) = 1): non-NULL exactly in the rows i % n = j. */
  arc?: { j: number; n: number };
  /** Set when the column carries (a digit of) a unique key: value = injective(keyIndex(i)). */
  keyIndex?: (i: number) => number;
  /** How many distinct values the injective generator has (Infinity: enough for any table). */
  capacity: number;
  gen?: Gen;
  fk?: FkPlan;
  /** Re-drawable when a CHECK fails (not a key, not an FK column, no override). */
  redraw: boolean;
  override?: string;
  disjoint?: boolean;
  /** Distinct matches of the column's CHECK regular expressions (key k takes the k-th). */
  pool?: string[];
  /** Rows from `from` on take a value that makes a partial unique index's WHERE false (so they need not be distinct). */
  gate?: { from: number; value: 'false' | 'true' | 'null' | 'nonnull'; index: string };
}

interface FkPlan {
  fk: ForeignKey;
  parent: TablePlan;
  nullable: boolean;
  /** Parent row index for child row i. */
  parentIndex?: (i: number) => number;
  /** The unique key that fixed parentIndex (one-to-one and join tables). */
  keyed?: string;
  /** A self reference sharing columns with a narrower FK: root rows take those columns from it. */
  rootFrom?: { fk: ForeignKey; parent: TablePlan; cols: string[] };
  /** A follower: it shares `shared` (child columns) with `lead` and picks its parent row among those agreeing with the lead's. */
  align?: { lead: FkPlan; shared: string[] };
  /** On a lead: the FKs that follow it. */
  followers?: FkPlan[];
  /** On a lead: a unique key spans it and these followers — rows enumerate distinct combinations (lead row × follower rows that agree). */
  combo?: { key: UniqueKey; members: FkPlan[] };
  /** On a lead with followers: row → parent row indexes, built before the load (see prepareGroup). */
  group?: { leadIdx: (i: number) => number; followerIdx: (f: FkPlan, i: number) => number };
  preparing?: boolean;
}

interface TablePlan {
  info: TableInfo;
  key: string;
  rows: number;
  cols: Map<string, ColPlan>;
  fks: FkPlan[];
  checks: { name: string; def: string; compiled?: CompiledCheck; domainOf?: string }[];
  orders: Order[];
  notes: string[];
}

const INT_RANGE: Record<string, [number, number]> = { int2: [-32768, 32767], int4: [-2147483648, 2147483647], int8: [-9007199254740991, 9007199254740991] };

function numericShape(col: ColumnInfo): { precision: number; scale: number } {
  const tm = col.typmod;
  return tm > 4 ? { precision: ((tm - 4) >> 16) & 0xffff, scale: (tm - 4) & 0xffff } : { precision: 14, scale: 2 };
}

function textMax(col: ColumnInfo, base: string): number | undefined {
  return col.typmod > 4 && /^(varchar|bpchar)$/.test(base) ? col.typmod - 4 : undefined;
}

/** Lowest and highest value a numeric column may take, from its type and CHECK bounds. */
function numericRange(base: string, col: ColumnInfo, b: Bounds): { lo: number; hi: number; step: number } {
  let step = 1;
  let [tlo, thi] = INT_RANGE[base] ?? [-1e15, 1e15];
  if (base === 'numeric') {
    const { precision, scale } = numericShape(col);
    step = 10 ** -scale;
    thi = Math.min(1e15, 10 ** Math.min(15, precision - scale) - step);
    tlo = -thi;
  } else if (base === 'float4' || base === 'float8' || base === 'money') step = 0.01;
  let lo = b.min !== undefined ? b.min + (b.minExclusive ? step : 0) : undefined;
  let hi = b.max !== undefined ? b.max - (b.maxExclusive ? step : 0) : undefined;
  if (step === 1) {
    if (lo !== undefined) lo = Math.ceil(lo);
    if (hi !== undefined) hi = Math.floor(hi);
  }
  lo = Math.max(tlo, lo ?? (hi !== undefined ? Math.min(0, hi - 1000) : base === 'int2' ? 0 : 0));
  hi = Math.min(thi, hi ?? Math.min(thi, lo + (base === 'int2' ? 30000 : 1_000_000)));
  return { lo, hi, step };
}

function formatNumber(base: string, col: ColumnInfo, x: number): Value {
  if (base === 'numeric') {
    const { scale } = numericShape(col);
    return x.toFixed(Math.min(scale, 20));
  }
  if (base === 'money') return x.toFixed(2);
  if (base === 'float4' || base === 'float8') return Math.round(x * 100) / 100;
  return Math.round(x);
}

const BASE36 = (k: number) => k.toString(36);

/** Capacity of the injective generator of a column (distinct values it can give). */
function capacityOf(p: ColPlan, base = p.col.base): number {
  const b = p.bounds;
  if (b.values) return b.values.length;
  if (p.col.enumLabels && p.col.category === 'E') return p.col.enumLabels.length;
  switch (base) {
    case 'bool':
      return 2;
    case 'int2':
    case 'int4':
    case 'int8':
    case 'numeric':
    case 'float4':
    case 'float8':
    case 'money': {
      const typeMax = INT_RANGE[base]?.[1] ?? (base === 'numeric' ? 10 ** Math.min(15, numericShape(p.col).precision - numericShape(p.col).scale) - 1 : 1e15);
      const { lo, hi } = numericRange(base, p.col, { ...b, max: b.max ?? typeMax });
      const ulo = b.min === undefined && lo <= 1 && hi >= 1 ? 1 : lo;
      return Math.max(0, Math.floor(hi - ulo) + 1);
    }
    case 'time':
    case 'timetz':
      return 86400;
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'citext':
    case 'name': {
      if (b.patterns?.length) return Infinity; // decided by the probe (distinct values in the sample)
      const max = Math.min(textMax(p.col, base) ?? Infinity, b.maxLength ?? Infinity);
      return max >= 8 ? Infinity : 36 ** max;
    }
    case 'bit':
    case 'varbit':
      return p.col.typmod > 0 ? 2 ** Math.min(50, p.col.typmod) : Infinity;
  }
  return Infinity;
}

function fitText(s: string, min: number | undefined, max: number | undefined, keepEnd: boolean): string {
  if (max !== undefined && s.length > max) s = keepEnd ? s.slice(s.length - max) : s.slice(0, max);
  if (min !== undefined && s.length < min) s = s + 'x'.repeat(min - s.length);
  return s;
}

/** Shift an instant/number/date text value by n units (for column orders: ends_at > starts_at). */
function shiftValue(v: Value, n: number): Value {
  if (typeof v === 'number') return v + n;
  if (typeof v !== 'string') return v;
  if (/^-?\d+(\.\d+)?$/.test(v)) {
    const dec = v.includes('.') ? v.split('.')[1].length : 0;
    return (Number(v) + n).toFixed(dec);
  }
  if (/^\d{4}-\d\d-\d\d$/.test(v)) return isoAt(Date.parse(v) + n * DAY_MS).slice(0, 10);
  const ms = Date.parse(v.includes('T') ? v : v.replace(' ', 'T') + (v.length <= 23 ? 'Z' : ''));
  if (!isNaN(ms)) {
    const out = isoAt(ms + n * 3_600_000);
    return v.includes('T') ? out : out.replace('T', ' ').replace('Z', '');
  }
  return v;
}

/** Distinct strings matching every CHECK regular expression of a text column, drawn once. */
function regexPool(seed: number, salt: number, p: ColPlan, rows: number): string[] | undefined {
  const b = p.bounds;
  if (!b.patterns?.length || !/^(text|varchar|bpchar|citext|name)$/.test(p.col.base)) return undefined;
  const gens = b.patterns.map((pat) => compileRegexGen(pat));
  if (!gens.every(Boolean)) return undefined;
  const max = Math.min(textMax(p.col, p.col.base) ?? Infinity, b.maxLength ?? Infinity);
  const min = b.minLength ?? (b.notEmpty ? 1 : 0);
  const all = b.patterns.map((pat) => {
    try {
      return new RegExp(pat, 'u');
    } catch {
      return undefined;
    }
  });
  // One pool per distinct pattern set and length window (a domain used by thirty columns draws once).
  // Enough distinct values for a unique column of the table's rows (a pattern like ^[^@ ]+@[^@ ]+$ has
  // no end of them; ^[A-Z]{2}$ has 676, and the table is capped there).
  const target = Math.min(2_000_000, Math.max(8192, Math.ceil(rows * 1.05)));
  const cacheKey = `${seed}|${b.patterns.join('\u0000')}|${min}|${max}|${p.col.base}|${target}`;
  const hit = regexPools.get(cacheKey);
  if (hit) return hit;
  const f = new Rng(seed, hashString(cacheKey), 0);
  const seen = new Set<string>();
  const lowered = new Set<string>();
  for (let n = 0; n < target * 5 && seen.size < target; n++) {
    const s = gens[n % gens.length]!(() => f.float());
    // bpchar pads with blanks: a shorter match is stored padded and may no longer match.
    if (s.length > max || s.length < min || (p.col.base === 'bpchar' && max !== Infinity && s.length !== max)) continue;
    // Distinct ignoring case: a unique index on lower(col), or a citext column, must not see "a" and "A".
    if (all.every((re) => !re || re.test(s)) && !lowered.has(s.toLowerCase())) {
      seen.add(s);
      lowered.add(s.toLowerCase());
    }
  }
  const pool = [...seen];
  regexPools.set(cacheKey, pool);
  return pool;
}
const regexPools = new Map<string, string[]>();

/** Literal examples for types the seeder does not generate (for the fix line). */
const EXAMPLES: Record<string, string> = { point: '(0,0)', line: '{1,-1,0}', lseg: '[(0,0),(1,1)]', box: '(1,1),(0,0)', path: '[(0,0),(1,1)]', polygon: '((0,0),(1,1),(1,0))', circle: '<(0,0),1>', tsquery: 'a', hstore: 'a=>1', ltree: 'a.b', pg_lsn: '0/0', txid_snapshot: '10:20:', int4multirange: '{[1,2)}' };

function typeGen(seed: number, salt: number, p: ColPlan, base = p.col.base, category = p.col.category): ((i: number, k: number | undefined, attempt: number) => Value) | undefined {
  const col = p.col;
  const b = p.bounds;
  const pl = pools(seed);
  const rng = (i: number, attempt: number) => new Rng(seed, salt + attempt * 0x9e3779b1, i);
  const name = col.name.toLowerCase();
  if (b.values && b.values.length) {
    const vals = b.values.map((v) => (v === null ? null : Array.isArray(v) ? arrayLiteral(v as any) : (v as Value)));
    return (i, k, a) => vals[k !== undefined ? k % vals.length : rng(i, a).int(vals.length)];
  }
  if (col.enumLabels && category === 'E') {
    const labels = col.enumLabels;
    return (i, k, a) => labels[k !== undefined ? k % labels.length : rng(i, a).int(labels.length)];
  }
  switch (base) {
    case 'int2':
    case 'int4':
    case 'int8':
    case 'oid':
    case 'numeric':
    case 'float4':
    case 'float8':
    case 'money': {
      const { lo, hi, step } = numericRange(base === 'oid' ? 'int4' : base, col, b);
      const ulo = b.min === undefined && lo <= 1 && hi >= 1 ? 1 : lo;
      const span = hi - lo;
      return (i, k, a) => {
        if (k !== undefined) return formatNumber(base, col, ulo + k);
        const r = rng(i, a);
        const x = step === 1 ? lo + r.int(span + 1) : Math.min(hi, lo + Math.round((r.float() * span) / step) * step);
        return formatNumber(base, col, x);
      };
    }
    case 'bool':
      return (i, k, a) => (k !== undefined ? k % 2 === 1 : rng(i, a).chance(0.5));
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'citext': {
      const max = Math.min(textMax(col, base) ?? Infinity, b.maxLength ?? Infinity, base === 'name' ? 63 : Infinity);
      const maxLen = max === Infinity ? undefined : max;
      const minLen = b.minLength ?? (b.notEmpty ? 1 : undefined);
      if (p.pool) {
        const pool = p.pool;
        if (!pool.length) return undefined;
        return (i, k, a) => pool[k !== undefined ? k % pool.length : rng(i, a).int(pool.length)];
      }
      const word = (r: Rng) =>
        /email/.test(name)
          ? `${r.pick(pl.firstNames)}.${r.pick(pl.lastNames)}@${r.pick(pl.domains)}`.toLowerCase()
          : /(^|_)(name|title)$/.test(name)
            ? `${r.pick(pl.firstNames)} ${r.pick(pl.lastNames)}`
            : /city/.test(name)
              ? r.pick(pl.cities)
              : /(^|_)(code|key|slug|ref|token)$/.test(name) || (maxLen !== undefined && maxLen <= 12)
                ? r.pick(pl.words)
                : r.pick(pl.sentences);
      return (i, k, a) => {
        const r = rng(i, a);
        if (k === undefined) return fitText(word(r), minLen, maxLen, false);
        const suffix = BASE36(k);
        if (maxLen !== undefined && suffix.length >= maxLen) return fitText(suffix.padStart(Math.min(maxLen, minLen ?? 0), '0'), minLen, maxLen, true);
        const w = word(r);
        // Unique emails stay emails: the key goes before the @.
        const s = /email/.test(name) && w.includes('@') ? w.replace('@', `.${suffix}@`) : `${w}-${suffix}`;
        if (maxLen !== undefined && s.length > maxLen) return fitText(`${w.slice(0, Math.max(0, maxLen - suffix.length - 1))}-${suffix}`.slice(-maxLen), minLen, maxLen, true);
        return fitText(s, minLen, maxLen, true);
      };
    }
    case 'uuid':
      return (i, k, a) => (k !== undefined ? new Rng(seed, salt, k).uuid() : rng(i, a).uuid());
    case 'date':
      return (i, k, a) => isoAt(EPOCH_2024 + (k !== undefined ? k : rng(i, a).int(365)) * DAY_MS).slice(0, 10);
    case 'timestamp':
      return (i, k, a) => isoAt(EPOCH_2024 + (k !== undefined ? k * 1000 : rng(i, a).int(365 * DAY_MS))).replace('T', ' ').replace('Z', '');
    case 'timestamptz':
      return (i, k, a) => isoAt(EPOCH_2024 + (k !== undefined ? k * 1000 : rng(i, a).int(365 * DAY_MS)));
    case 'time':
    case 'timetz':
      return (i, k, a) => isoAt((k !== undefined ? (k % 86400) * 1000 : rng(i, a).int(DAY_MS))).slice(11, 19);
    case 'interval':
      return (i, k, a) => `${k !== undefined ? k : rng(i, a).int(100000)} seconds`;
    case 'json':
    case 'jsonb':
      return (i, k, a) => {
        const r = rng(i, a);
        return `{"id": ${k ?? i}, "word": "${r.pick(pl.words)}", "n": ${r.int(1000)}, "ok": ${r.chance(0.5)}}`;
      };
    case 'bytea':
      return (i, k, a) => '\\x' + (k !== undefined ? k.toString(16).padStart(8, '0') : '') + rng(i, a).hex(8 + rng(i, a).int(24));
    case 'inet':
    case 'cidr':
      return (i, k, a) => {
        const x = ((10 << 24) + (k !== undefined ? k : rng(i, a).int(1 << 24))) >>> 0;
        return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}${base === 'cidr' ? '/32' : ''}`;
      };
    case 'macaddr':
    case 'macaddr8':
      return (i, k, a) => (k !== undefined ? k.toString(16).padStart(12, '0').slice(-12) : rng(i, a).hex(6)).replace(/(..)(?!$)/g, '$1:') + (base === 'macaddr8' ? ':00:00' : '');
    case 'xml':
      return (i, k) => `<row id="${k ?? i}"/>`;
    case 'tsvector':
      return (i, k, a) => `${rng(i, a).pick(pl.words)} ${k !== undefined ? 'k' + BASE36(k) : rng(i, a).pick(pl.words)}`;
    case 'bit':
    case 'varbit': {
      const n = col.typmod > 0 ? col.typmod : 8;
      return (i, k, a) => {
        const x = k !== undefined ? k : rng(i, a).u32();
        let s = '';
        for (let j = n - 1; j >= 0; j--) s += j < 31 ? (x >>> j) & 1 : 0;
        return s;
      };
    }
    case 'char':
      return (i, k, a) => 'abcdefghijklmnopqrstuvwxyz'[k !== undefined ? k % 26 : rng(i, a).int(26)];
    // Contrib and geometric types: a literal of the type's input syntax; distinct per key when k is given.
    case 'ltree':
      return (i, k, a) => {
        const r = rng(i, a);
        const label = () => r.pick(pl.words).replace(/[^A-Za-z0-9_]/g, '_') || 'n';
        const path = Array.from({ length: 1 + r.int(3) }, label);
        if (k !== undefined) path.push(`k${BASE36(k)}`);
        return path.join('.');
      };
    case 'hstore':
      return (i, k, a) => {
        const r = rng(i, a);
        return `"${r.pick(pl.words).replace(/["\\]/g, '')}"=>"${r.int(1000)}"${k !== undefined ? `, "k"=>"${BASE36(k)}"` : ''}`;
      };
    case 'cube':
    case 'point':
      return (i, k, a) => {
        const r = rng(i, a);
        const [x, y] = k !== undefined ? [k, r.int(1000)] : [r.int(100000) / 100, r.int(100000) / 100];
        return `(${x},${y})`;
      };
    case 'seg':
      return (i, k, a) => {
        const from = k !== undefined ? k * 2 : rng(i, a).int(10000);
        return `${from} .. ${from + 1}`;
      };
    case 'box':
    case 'lseg':
    case 'path':
    case 'polygon':
    case 'circle':
    case 'line':
      return (i, k, a) => {
        const r = rng(i, a);
        const x = k ?? r.int(1000);
        const y = r.int(1000);
        const d = 1 + r.int(50);
        return base === 'box' ? `(${x + d},${y + d}),(${x},${y})` : base === 'lseg' ? `[(${x},${y}),(${x + d},${y + d})]` : base === 'path' ? `[(${x},${y}),(${x + d},${y}),(${x + d},${y + d})]` : base === 'polygon' ? `((${x},${y}),(${x + d},${y}),(${x},${y + d}))` : base === 'circle' ? `<(${x},${y}),${d}>` : `{1,-1,${x}}`;
      };
    case 'tsquery':
      return (i, k, a) => {
        const r = rng(i, a);
        const w = () => r.pick(pl.words).replace(/[^A-Za-z0-9]/g, '') || 'a';
        return k !== undefined ? `${w()} & k${BASE36(k)}` : `${w()} & ${w()}`;
      };
    case 'pg_lsn':
      return (i, k, a) => `${(k ?? rng(i, a).int(256)).toString(16).toUpperCase()}/${rng(i, a).hex(4).toUpperCase()}`;
  }
  if (category === 'R' && col.rangeSub) {
    const sub = col.rangeSub;
    const bound = (x: number): string =>
      sub === 'date' ? isoAt(EPOCH_2024 + x * DAY_MS).slice(0, 10) : sub === 'timestamptz' ? isoAt(EPOCH_2024 + x * 3_600_000) : sub === 'timestamp' ? isoAt(EPOCH_2024 + x * 3_600_000).replace('T', ' ').replace('Z', '') : String(x);
    const quote = (s: string) => (/^[\d.-]+$/.test(s) ? s : `"${s}"`);
    return (i, k, a) => {
      // Disjoint per row when an exclusion constraint asks for it: [2i, 2i+1).
      const key = p.disjoint ? i : k;
      const from = key !== undefined ? key * 2 : rng(i, a).int(10000);
      const len = key !== undefined ? 1 : 1 + rng(i, a).int(48);
      const r = `[${quote(bound(from))},${quote(bound(from + len))})`;
      // A multirange: the range and a second one after it (one only when rows must be disjoint).
      return col.multirange && p.disjoint ? `{${r}}` : col.multirange ? `{${r},[${quote(bound(from + len + 1))},${quote(bound(from + len + 2))})}` : r;
    };
  }
  if (category === 'A' && col.elemBase) {
    const elemPlan: ColPlan = { ...p, col: { ...col, typmod: -1, base: col.elemBase, category: col.elemCategory ?? 'S', enumLabels: col.enumLabels }, bounds: {}, capacity: Infinity };
    const elem = typeGen(seed, salt ^ 0x51ed, elemPlan, col.elemBase, col.elemCategory ?? 'S');
    if (!elem) return undefined;
    return (i, k, a) => {
      const n = (k !== undefined ? 1 : 0) + rng(i, a).int(4);
      return arrayLiteral(
        Array.from({ length: n }, (_, j) => {
          const v = j === 0 && k !== undefined ? elem(i, k, a) : elem(i * 4 + j, undefined, a);
          return v === null ? null : typeof v === 'boolean' ? (v ? 't' : 'f') : (v as string | number);
        }),
      );
    };
  }
  return undefined;
}

/** Values inside a partition bound list, for the partition key column. */
function partitionDomain(bounds: string[]): { ranges: [string, string][] | null; values: string[] | null } {
  const ranges: [string, string][] = [];
  const values: string[] = [];
  const lit = (s: string) => {
    const t = s.trim();
    if (/^'.*'$/.test(t)) return t.slice(1, -1).replace(/''/g, "'");
    return t;
  };
  for (const b of bounds) {
    const r = /^FOR VALUES FROM \((.*)\) TO \((.*)\)$/.exec(b);
    if (r && !r[1].includes(',') && !r[2].includes(',')) ranges.push([lit(r[1]), lit(r[2])]);
    const l = /^FOR VALUES IN \((.*)\)$/.exec(b);
    if (l) for (const v of l[1].match(/'(?:[^']|'')*'|[^,\s]+/g) ?? []) values.push(lit(v));
  }
  return { ranges: ranges.length ? ranges : null, values: values.length ? values : null };
}

function partitionGen(seed: number, salt: number, p: ColPlan, dom: { ranges: [string, string][] | null; values: string[] | null }): Gen | undefined {
  if (dom.values) {
    const vals = dom.values.filter((v) => v !== 'NULL');
    return (i, a) => vals[p.keyIndex ? p.keyIndex(i) % vals.length : new Rng(seed, salt + a, i).int(vals.length)];
  }
  if (!dom.ranges) return undefined;
  const isNum = (s: string) => /^-?\d+(\.\d+)?$/.test(s);
  const ranges = dom.ranges.filter(([f, t]) => (f !== 'MINVALUE' && t !== 'MAXVALUE') || isNum(f) || isNum(t));
  if (!ranges.length) return undefined;
  const base = p.col.base;
  const asMs = (s: string) => {
    if (/^\d{4}-\d\d-\d\d$/.test(s)) return Date.parse(s + 'T00:00:00Z');
    const t = s.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
    return Date.parse(/(Z|[+-]\d\d:\d\d)$/.test(t) ? t : t + 'Z');
  };
  const numeric = ['int2', 'int4', 'int8', 'numeric', 'float4', 'float8'].includes(base);
  const spans = ranges.map(([f, t]) => {
    const lo = numeric ? (f === 'MINVALUE' ? Number(t) - 1_000_000 : Number(f)) : asMs(f);
    const hi = numeric ? (t === 'MAXVALUE' ? Number(f) + 1_000_000 : Number(t)) : asMs(t);
    return [lo, hi] as [number, number];
  });
  if (spans.some(([lo, hi]) => isNaN(lo) || isNaN(hi) || hi <= lo)) return undefined;
  const fmt = (x: number): Value =>
    numeric ? formatNumber(base, p.col, x) : base === 'date' ? isoAt(x).slice(0, 10) : base === 'timestamp' ? isoAt(x).replace('T', ' ').replace('Z', '') : isoAt(x);
  const unit = numeric ? 1 : base === 'date' ? DAY_MS : 1000;
  return (i, a) => {
    if (p.keyIndex) {
      // Unique partition key: row k goes to partition k mod P, at offset ⌊k/P⌋ units from its lower bound.
      const k = p.keyIndex(i);
      const [lo, hi] = spans[k % spans.length];
      return fmt(Math.min(hi - unit, lo + Math.floor(k / spans.length) * unit));
    }
    const r = new Rng(seed, salt + a * 7919, i);
    const [lo, hi] = spans[r.int(spans.length)];
    const slots = Math.max(1, Math.floor((hi - lo) / unit));
    return fmt(lo + r.int(slots) * unit);
  };
}

/** Generator overrides: faker pools, "const:<literal>", "regex:<pattern>", "null". */
function overrideGen(seed: number, key: string, spec: string, unique: boolean): Gen {
  if (spec === 'null') return () => null;
  if (spec.startsWith('const:')) {
    const v = spec.slice(6);
    return () => v;
  }
  if (spec.startsWith('regex:')) {
    const g = compileRegexGen(spec.slice(6));
    if (!g) throw new CutoverError('CONFIG', `generator ${key}: "${spec}" is beyond the regular expressions the seeder can generate`, { hint: 'use classes, groups, alternation and quantifiers; no back-references or look-arounds', exitCode: 2 });
    return (i, a) => {
      const r = new Rng(seed, hashString(key) + a, i);
      return g(() => r.float());
    };
  }
  const values = pools(seed).of(spec);
  const salt = hashString(key);
  // A unique column keeps its faker look with the row number behind it.
  return (i, a) => {
    const v = values[hash3(seed, salt + a, i) % values.length];
    return unique && typeof v === 'string' ? `${v}-${BASE36(i)}` : v;
  };
}

function fixLine(t: TableInfo, col: string, value: string): string {
  return `dataset.generators: { "${t.schema}.${t.name}.${col}": "${value}" }`;
}

// ---------------------------------------------------------------------------------------------

export interface CustomDataset extends Dataset {
  /** What the plan changed from what was asked (row caps, one-to-one relations, checks left to the server). */
  notes: string[];
  /** The tables as read from the catalogs, for the loader (FKs it drops and re-adds) and the probe. */
  schema: TableInfo[];
  plans: Map<
    string,
    {
      rows: number;
      checks: { name: string; def: string; domainOf?: string }[];
      /** The CHECKs the plan's evaluator reads, over the COPY's columns (checked on many rows before the load). */
      evaluable?: { name: string; def: string; domainOf?: string; cols: string[]; passes: (row: Row) => boolean }[];
      columns?: string[];
    }
  >;
}

const NULL_SHARE = 0.1;
const REDRAWS = 48;

export async function buildCustom(
  c: Client,
  ctx: DatasetContext,
  opts: { onlyNewSince?: Set<number>; rowsPerTable?: number; constraintsFrom?: Client; generators?: Record<string, string> } = {},
): Promise<CustomDataset> {
  const infos = await introspect(c, ctx.major, opts.onlyNewSince, opts.constraintsFrom);
  if (!infos.length)
    throw new CutoverError('PRECONDITION', opts.onlyNewSince ? 'the DDL created no tables to seed' : 'the database has no empty user tables to seed', {
      hint: opts.onlyNewSince ? 'the DDL file must contain CREATE TABLE statements' : 'pass --ddl <file> to create tables, or point --url at a database whose tables are empty',
      exitCode: 2,
    });
  return planCustom(infos, ctx, opts);
}

/** The pure half of buildCustom: tables read from the catalogs → generators, row counts, problems. */
export function planCustom(infos: TableInfo[], ctx: DatasetContext, opts: { rowsPerTable?: number; generators?: Record<string, string> } = {}): CustomDataset {
  const { seed } = ctx;
  const wanted = opts.rowsPerTable ?? Math.max(1, Math.round(ctx.scale / infos.length));
  const problems: PlanProblem[] = [];
  const notes: string[] = [];
  const byName = new Map<string, TablePlan>();
  const overrides = resolveOverrides(infos, opts.generators ?? {});

  // 1. Columns, bounds from CHECKs and domains, FKs.
  for (const t of infos) {
    const key = `${t.schema}.${t.name}`;
    const cols = new Map<string, ColPlan>();
    const checks: TablePlan['checks'] = [];
    const orders: Order[] = [];
    const bounds = new Map<string, Bounds>();
    const addBounds = (col: string, b: Bounds) => bounds.set(col, mergeBounds(bounds.get(col) ?? {}, b));
    for (const ch of t.checks) {
      const body = checkBody(ch.def);
      const d = deriveBounds(body);
      d.bounds.forEach((b, col) => addBounds(col, b));
      orders.push(...d.orders);
      checks.push({ ...ch, compiled: compileCheck(body) });
    }
    for (const col of t.columns) {
      for (const dc of col.domainChecks) {
        const body = checkBody(dc.def);
        deriveBounds(body, col.name).bounds.forEach((b, cn) => addBounds(cn, b));
        const compiled = compileCheck(body);
        checks.push({
          name: `${dc.name} (domain ${col.domain})`,
          def: dc.def,
          domainOf: col.name,
          compiled: compiled && { columns: [col.name], passes: (row: Row) => compiled.passes({ VALUE: row[col.name] }) },
        });
      }
      cols.set(col.name, { col, bounds: bounds.get(col.name) ?? {}, capacity: Infinity, redraw: !col.identity && !col.serial, override: overrides.get(`${key}.${col.name}`) });
    }
    for (const ch of t.checks) {
      const arc = exclusiveArc(checkBody(ch.def));
      const cps = arc?.map((cn) => cols.get(cn));
      if (cps && cps.every((cp) => cp && !cp.col.notNull && !cp.arc && !cp.override)) cps.forEach((cp, j) => (cp!.arc = { j, n: cps.length }));
    }
    for (const cp of cols.values()) {
      cp.pool = regexPool(seed, hashString(`${key}.${cp.col.name}`), cp, wanted);
      cp.capacity = cp.pool ? cp.pool.length : capacityOf(cp);
    }
    byName.set(key, { info: t, key, rows: wanted, cols, fks: [], checks, orders, notes: [] });
  }
  for (const tp of byName.values()) {
    const claimed = new Map<string, FkPlan>();
    // Wider FKs first: when two FKs share a column (tenant_id), the composite one drives it.
    // Of equal width, a reference to another table leads before a self reference (a tree follows its owner's tenant).
    for (const fk of [...tp.info.fks].sort((a, b) => b.cols.length - a.cols.length || Number(a.parent === tp.key) - Number(b.parent === tp.key))) {
      const parent = byName.get(fk.parent);
      const nullable = fk.cols.every((cn) => !tp.cols.get(cn)?.col.notNull);
      if (!parent) {
        if (!nullable)
          problems.push({ table: tp.key, column: fk.cols.join(', '), constraint: `FOREIGN KEY ${fk.name}`, why: `references ${fk.parent}, which is not being seeded`, fix: `seed ${fk.parent} too (include it in the DDL), or ${fixLine(tp.info, fk.cols[0], 'null')} when the column is nullable` });
        for (const cn of fk.cols) tp.cols.get(cn)!.gen = () => null;
        continue;
      }
      const plan: FkPlan = { fk, parent, nullable };
      const shared = fk.cols.filter((cn) => claimed.has(cn));
      const owners = [...new Set(shared.map((cn) => claimed.get(cn)!))];
      if (owners.length > 1) {
        problems.push({
          table: tp.key,
          column: shared.join(', '),
          constraint: `FOREIGN KEY ${fk.name}`,
          why: `shares ${shared.join(', ')} with several FOREIGN KEYs (${owners.map((o) => o.fk.name).join(', ')}): a row would need one parent row agreeing with two others on different columns, which the seeder does not plan (unsupported shape)`,
          fix: `seed without ${fk.name} (leave it out of the DDL you seed from, add it back after the seed once the rows agree), or ${fixLine(tp.info, fk.cols.find((c) => !tp.cols.get(c)!.col.notNull) ?? fk.cols[0], 'null')} when one of its columns is nullable`,
        });
        continue;
      }
      if (shared.length === fk.cols.length) {
        // Every column is driven by a wider FK: holds when that FK's parent references this FK's parent.
        const wider = claimed.get(shared[0])!;
        const ok = wider.parent.info.fks.some((pf) => pf.parent === fk.parent && shared.every((cn) => pf.cols.includes(wider.fk.parentCols[wider.fk.cols.indexOf(cn)])));
        // A tree inside a tenant ((tenant_id, parent_id) → the table itself): its root rows take tenant_id from this FK.
        if (ok && wider.parent === tp) wider.rootFrom = { fk, parent, cols: shared };
        if (!ok)
          problems.push({ table: tp.key, column: shared.join(', '), constraint: `FOREIGN KEY ${fk.name}`, why: `the columns are also part of ${wider.fk.name}, and ${wider.parent.key} does not reference ${fk.parent} through them, so no one value honours both`, fix: fixLine(tp.info, shared[0], 'const:<a value present in both parents>') });
        continue;
      }
      if (shared.length) {
        // Overlapping FKs ((tenant_id, team_id) → teams and (tenant_id, user_id) → users): the FK that
        // claimed the shared columns leads; this one follows, taking a parent row among those of
        // ${fk.parent} whose shared values are the lead parent row's (index lists built before the load).
        const lead = claimed.get(shared[0])!;
        if (lead.align) {
          problems.push({
            table: tp.key,
            column: shared.join(', '),
            constraint: `FOREIGN KEY ${fk.name}`,
            why: `shares ${shared.join(', ')} with FOREIGN KEY ${lead.fk.name}, which itself follows FOREIGN KEY ${lead.align!.lead.fk.name} on other shared columns (a chain of overlaps, unsupported shape)`,
            fix: `seed without ${fk.name} (leave it out of the DDL you seed from, add it back after the seed once the rows agree), or ${fixLine(tp.info, fk.cols.find((c) => !shared.includes(c)) ?? fk.cols[0], 'null')} when that column is nullable`,
          });
        } else {
          plan.align = { lead, shared };
          (lead.followers ??= []).push(plan);
          plan.nullable = fk.cols.some((cn) => !shared.includes(cn) && !tp.cols.get(cn)!.col.notNull);
          for (const cn of fk.cols) {
            if (shared.includes(cn)) continue;
            claimed.set(cn, plan);
            const cp = tp.cols.get(cn)!;
            cp.fk = plan;
            cp.redraw = false;
          }
          tp.fks.push(plan);
        }
        continue;
      }
      for (const cn of fk.cols) {
        claimed.set(cn, plan);
        const cp = tp.cols.get(cn)!;
        cp.fk = plan;
        cp.redraw = false;
      }
      tp.fks.push(plan);
    }
  }

  // 2. Unique keys → key dimensions, row caps (parents before children: a cap follows the parent's rows).
  const done = new Set<string>();
  const planKeys = (tp: TablePlan, stack: Set<string>) => {
    if (done.has(tp.key) || stack.has(tp.key)) return;
    stack.add(tp.key);
    for (const f of tp.fks) if (f.parent !== tp) planKeys(f.parent, stack);
    stack.delete(tp.key);
    const t = tp.info;
    const injective = new Set<string>(); // columns or "fk:<name>" that are injective over all rows
    const digits = new Set<string>(); // dimensions already used as a non-injective digit
    const gatedDims = new Set<string>(); // dimensions of a gated partial key (another gated key may reuse them)
    const keys = [...t.uniques].sort((a, b) => a.cols.length - b.cols.length);
    for (const col of tp.cols.values()) if (col.col.identity || col.col.serial) injective.add(col.col.name);
    for (const u of keys) {
      if (!u.cols.length) continue;
      const dimName = (cn: string) => (tp.cols.get(cn)?.fk ? `fk:${tp.cols.get(cn)!.fk!.fk.name}` : cn);
      const dims = [...new Set(u.cols.map(dimName))];
      if (dims.some((d) => injective.has(d))) continue;
      // A key over overlapping FKs (team_members (tenant_id, team_id, user_id)): distinct combinations of a
      // lead parent row and follower parent rows that agree with it; the row cap is known once the parents'
      // values are (prepareGroup, before the load).
      const fkOfDim = (d: string) => (d.startsWith('fk:') ? tp.fks.find((x) => `fk:${x.fk.name}` === d) : undefined);
      const fol = dims.map(fkOfDim).filter((f): f is FkPlan => !!f?.align);
      if (fol.length) {
        const lead = fol[0].align!.lead;
        const why = !dims.includes(`fk:${lead.fk.name}`)
          ? `the key holds ${fol.map((f) => f.fk.name).join(', ')} but not ${lead.fk.name}, whose columns they share`
          : fol.some((f) => f.align!.lead !== lead)
            ? 'the key spans followers of different overlapping FOREIGN KEYs'
            : lead.parent === tp || fol.some((f) => f.parent === tp)
              ? 'one of the overlapping FOREIGN KEYs is a self reference'
              : lead.combo || lead.parentIndex
                ? `${lead.fk.name} is already made distinct by another unique key`
                : '';
        if (why) {
          problems.push({ table: tp.key, column: u.cols.join(', '), constraint: `${u.kind.toUpperCase()} ${u.name}`, why: `${why}: distinct combinations of agreeing parent rows are not planned for this shape (unsupported shape)`, fix: fixLine(t, u.cols[0], 'faker.string.uuid') });
          continue;
        }
        lead.combo = { key: u, members: fol };
        lead.keyed = u.name;
        for (const f of fol) f.keyed = u.name;
        for (const d of dims) injective.add(d);
        continue;
      }
      const free = dims.filter((d) => !digits.has(d) && (!gatedDims.has(d) || u.partial));
      const capOf = (d: string) => {
        if (d.startsWith('fk:')) {
          const f = tp.fks.find((x) => `fk:${x.fk.name}` === d)!;
          return f.parent === tp ? Infinity : f.parent.rows;
        }
        const cp = tp.cols.get(d)!;
        return cp.override ? Infinity : cp.capacity;
      };
      // Prefer one wide non-FK column (the others stay random), then one FK (one-to-one), then digits.
      const sorted = [...free].sort((a, b) => Number(a.startsWith('fk:')) - Number(b.startsWith('fk:')) || capOf(b) - capOf(a));
      // A lone FK is one-to-one only when it is the whole key; a join table spreads over all its parents.
      const single = sorted.find((d) => capOf(d) >= tp.rows && (!d.startsWith('fk:') || dims.length === 1));
      const use = single ? [single] : sorted;
      let product = 1;
      for (const d of use) product = Math.min(Number.MAX_SAFE_INTEGER, product * capOf(d));
      if (!use.length || product < 1) {
        problems.push({ table: tp.key, column: u.cols.join(', '), constraint: `${u.kind.toUpperCase()} ${u.name}`, why: 'every column of the key is already spread over another unique key, so no combination is left to make it distinct', fix: fixLine(t, u.cols[0], 'faker.string.uuid') });
        continue;
      }
      // A partial unique index whose WHERE is one column's flag or NULL test: the rows past what the key
      // allows make the WHERE false instead of being dropped.
      const gate = u.partial && product < tp.rows ? predicateGate(tp, u) : undefined;
      if (gate) {
        tp.cols.get(gate.col)!.gate = { from: product, value: gate.value, index: u.name };
        tp.cols.get(gate.col)!.redraw = false;
        tp.notes.push(`${tp.key}: partial unique index ${u.name} (${u.cols.join(', ')}) WHERE ${u.predicate}: the first ${product} rows are distinct and match it, the others set ${gate.col} so that they do not`);
      } else if (product < tp.rows) {
        const what = use.map((d) => (d.startsWith('fk:') ? `${tp.fks.find((x) => `fk:${x.fk.name}` === d)!.parent.key} rows` : `${d} values`)).join(' × ');
        const note = `${tp.key}: ${tp.rows} rows asked, ${product} loaded — ${u.kind} ${u.name} (${u.cols.join(', ')}) allows at most ${what} = ${product}`;
        tp.notes.push(note);
        tp.rows = product;
      }
      // Mixed radix: dimension j takes digit j of the row index.
      // d_j = (⌊i / radix_j⌋ + d_(j-1)) mod cap_j: still one tuple per row (q_j = d_j − d_(j−1)), and the
      // digits move together, so rows do not all share parent 0 of the slower dimensions.
      let radix = 1;
      let prev: ((i: number) => number) | undefined;
      for (const d of use) {
        const cap = capOf(d);
        const div = radix;
        const before = prev;
        const lim = product;
        const idx = use.length === 1 ? (gate ? (i: number) => i % lim : (i: number) => i) : before ? (i: number) => (Math.floor(i / div) + before(i)) % cap : (i: number) => i % cap;
        prev = idx;
        radix = Math.min(Number.MAX_SAFE_INTEGER, radix * cap);
        if (gate) gatedDims.add(d);
        else if (use.length === 1) injective.add(d);
        else digits.add(d);
        if (d.startsWith('fk:')) {
          const f = tp.fks.find((x) => `fk:${x.fk.name}` === d)!;
          f.keyed = u.name;
          if (use.length === 1 && f.parent !== tp && cap !== Infinity) {
            // One-to-one: distinct parents, in an order that is not just 0, 1, 2 …
            const n = cap;
            const mul = coprime(n, Math.floor(n * 0.618));
            const off = hash3(seed, hashString(f.fk.name), 0) % Math.max(1, n);
            f.parentIndex = (i) => (((i % n) * mul) % n + off) % n;
            if (!gate) tp.notes.push(`${tp.key}: one-to-one with ${f.parent.key} through ${u.name} (${u.cols.join(', ')}): each row takes a distinct parent`);
          } else f.parentIndex = idx;
        } else {
          tp.cols.get(d)!.keyIndex = idx;
          tp.cols.get(d)!.redraw = false;
        }
      }
      if (u.partial && !gate) tp.notes.push(`${tp.key}: partial unique index ${u.name} is honoured for every row, not only those its WHERE clause selects`);
    }
    // Range columns of an exclusion constraint with &&: disjoint per row.
    for (const o of t.overlaps) {
      if (!o.cols.length) {
        problems.push({ table: tp.key, column: '?', constraint: `EXCLUDE ${o.name}`, why: 'operators other than = and && are not planned', fix: `${fixLine(t, '<column>', 'const:<value>')} and seed at most one row` });
        continue;
      }
      for (const cn of o.cols) {
        const cp = tp.cols.get(cn)!;
        cp.disjoint = true;
        cp.redraw = false;
      }
    }
    done.add(tp.key);
  };
  for (const tp of byName.values()) planKeys(tp, new Set());

  // 3. Generators.
  for (const tp of byName.values()) {
    const t = tp.info;
    const part = t.partition && !t.partition.hasDefault && t.partition.column ? partitionDomain(t.partition.bounds) : null;
    for (const cp of tp.cols.values()) {
      const col = cp.col;
      if (col.generated || cp.gen) continue;
      const salt = hashString(`${tp.key}.${col.name}`);
      if (cp.override) {
        cp.gen = overrideGen(seed, `${tp.key}.${col.name}`, cp.override, !!cp.keyIndex);
        continue;
      }
      if (cp.fk) continue; // resolved lazily below (parents may not have generators yet)
      if (col.identity || col.serial) {
        // 1..n, or from the lower bound of a CHECK (id >= 1000) up.
        const lo = cp.bounds.min !== undefined ? Math.max(1, Math.ceil(numericRange(col.base, col, cp.bounds).lo)) : 1;
        cp.gen = lo === 1 ? (i) => i + 1 : (i) => i + lo;
        continue;
      }
      // A sub-partition key (the months of a range, each cut by list on region): drawn inside the union
      // of the sub-partitions' bounds when no sub-partitioned partition has a DEFAULT.
      const subs = (t.partition?.sub ?? []).filter((x) => x.column === col.name && x.column !== t.partition!.column);
      if (subs.length && subs.every((x) => !x.hasDefault && x.strategy !== 'hash')) {
        const g = partitionGen(seed, salt, cp, partitionDomain(subs.flatMap((x) => x.bounds)));
        if (g) {
          cp.gen = g;
          cp.redraw = false;
          if (subs.length > 1 && new Set(subs.map((x) => [...x.bounds].sort().join('|'))).size > 1)
            tp.notes.push(`${tp.key}: the partitions of ${t.partition!.key} are cut by ${col.name} differently; ${col.name} is drawn from all their bounds, and the server checks the rows' routing before the load`);
          continue;
        }
      }
      if (part && t.partition!.column === col.name) {
        const g = partitionGen(seed, salt, cp, part);
        if (g) {
          cp.gen = g;
          cp.redraw = false;
          continue;
        }
        if (t.partition!.strategy !== 'hash') tp.notes.push(`${tp.key}: the bounds of partition key ${t.partition!.key} were not parsed; the server checks the rows' routing before the load`);
      }
      const g = typeGen(seed, salt, cp);
      if (!g) {
        if (col.hasDefault || !col.notNull) {
          cp.gen = undefined; // left out of the COPY: its default (or NULL) fills it
          if (col.notNull || cp.keyIndex) tp.notes.push(`${tp.key}.${col.name} (${col.type}): no generator for the type; its default fills it`);
          continue;
        }
        const example = EXAMPLES[col.base] ?? EXAMPLES[col.elemBase ?? ''];
        problems.push({ table: tp.key, column: col.name, constraint: `NOT NULL, type ${col.type}${col.domain ? ` (domain ${col.domain})` : ''}`, why: 'the seeder has no generator for this type and the column has no default', fix: fixLine(t, col.name, `const:${example ?? `<a ${col.type} literal>`}`) });
        continue;
      }
      const kIdx = cp.keyIndex;
      const arc = cp.arc;
      if (arc) cp.gen = (i, a) => (i % arc.n === arc.j ? g(i, kIdx?.(i), a) : null);
      else if (kIdx) cp.gen = (i, a) => g(i, kIdx(i), a);
      else if (!col.notNull && !cp.bounds.notNull) {
        // Nullable, non-key columns get some NULLs, as real data does.
        // Later re-draws make NULL as likely as not, so a CHECK that wants some of them NULL (num_nonnulls(a, b) = 1) is met.
        cp.gen = (i, a) => (new Rng(seed, (salt ^ 0x7f) + a * 0x3c6ef372, i).chance(a < 8 ? NULL_SHARE : 0.5) ? null : g(i, undefined, a));
      } else cp.gen = (i, a) => g(i, undefined, a);
    }
  }
  // Gates of partial unique indexes.
  for (const tp of byName.values())
    for (const cp of tp.cols.values()) {
      if (!cp.gate || !cp.gen) continue;
      const inner = cp.gen;
      const { from, value } = cp.gate;
      const typed = value === 'nonnull' ? typeGen(seed, hashString(`${tp.key}.${cp.col.name}#gate`), { ...cp, bounds: { ...cp.bounds } }) : undefined;
      const beyond: Gen = value === 'false' ? () => false : value === 'true' ? () => true : value === 'null' ? () => null : (i, a) => typed!(i, undefined, a);
      cp.gen = (i, a) => (i >= from ? beyond(i, a) : inner(i, a));
    }

  // FK columns: the parent's generator at the parent row index (lazy, so cycles and self references resolve).
  for (const tp of byName.values()) {
    for (const f of tp.fks) {
      const parentGens: (Gen | undefined)[] = [];
      let resolved = false;
      const salt = `fk:${tp.key}.${f.fk.name}`;
      const nsalt = hashString(salt + ':null');
      // A self reference (not keyed) is a tree: row i's parent is an earlier row, so following parents
      // ends at a root (row 0, or a row whose nullable columns are NULL) — no cycles, no row its own parent,
      // and a column the reference shares (tenant_id) is the root's all the way down.
      const self = f.parent === tp && !f.parentIndex;
      const rootable = self && f.fk.cols.some((cn) => !tp.cols.get(cn)!.col.notNull);
      const tree = (i: number) => (i === 0 || (rootable && new Rng(seed, nsalt, i).chance(NULL_SHARE)) ? -1 : new Rng(seed, hashString(salt), i).int(i));
      const basePIdx = f.parentIndex ?? (self ? tree : (i: number) => new Rng(seed, hashString(salt), i).int(Math.max(1, f.parent.rows)));
      // Overlapping FKs: the lead's and the followers' parent rows come from the group (prepareGroup).
      // Prepared on first use (a parent's group before its children's, whatever the order of the tables).
      const groupOf = (lead: FkPlan) => {
        if (!lead.group && !lead.preparing) {
          lead.preparing = true;
          prepareGroup(seed, tp, lead, problems); // a follower's lead is an FK of the same table
        }
        return lead.group;
      };
      const pIdx = f.align
        ? (i: number) => groupOf(f.align!.lead)?.followerIdx(f, i) ?? -1
        : f.followers
          ? (i: number) => groupOf(f)?.leadIdx(i) ?? basePIdx(i)
          : basePIdx;
      const keyed = !!f.keyed;
      const root = f.rootFrom;
      const rootGens: (Gen | undefined)[] = [];
      const rootIdx = (i: number) => new Rng(seed, hashString(salt + ':root'), i).int(Math.max(1, root!.parent.rows));
      f.fk.cols.forEach((cn, j) => {
        const cp = tp.cols.get(cn)!;
        if (cp.override || f.align?.shared.includes(cn)) return; // a follower's shared columns are its lead's
        const viaRoot = root ? root.fk.cols.indexOf(cn) : -1;
        // A root's value of a column the reference maps onto itself (tenant_id → tenant_id) with no FK to take it from: its own type's.
        const own = self && f.fk.parentCols[j] === cn && viaRoot < 0 ? typeGen(seed, hashString(`${tp.key}.${cn}#root`), { ...cp, keyIndex: undefined }) : undefined;
        cp.gen = (i) => {
          if (!resolved) {
            for (const pc of f.fk.parentCols) parentGens.push(f.parent.cols.get(pc)?.gen);
            if (root) for (const pc of root.fk.parentCols) rootGens.push(root.parent.cols.get(pc)?.gen);
            resolved = true;
          }
          const pg = parentGens[j];
          if (f.align) {
            // A follower: MATCH SIMPLE, a NULL in its own (non-shared) column needs no parent.
            if (cp.arc ? i % cp.arc.n !== cp.arc.j : !cp.col.notNull && f.nullable && !keyed && new Rng(seed, nsalt, i).chance(NULL_SHARE)) return null;
            const p = pIdx(i);
            if (p < 0) return cp.col.notNull && pg ? pg(0, 0) : null;
            return pg ? pg(p, 0) : null;
          }
          if (cp.arc ? i % cp.arc.n !== cp.arc.j : f.nullable && !keyed && !self && new Rng(seed, nsalt, i).chance(NULL_SHARE)) return null;
          let p = pIdx(i);
          if (p < 0) {
            if (viaRoot >= 0) return rootGens[viaRoot] ? rootGens[viaRoot]!(rootIdx(i), 0) : null;
            if (own) return own(i, undefined, 0);
            if (!cp.col.notNull) return null;
            p = i; // a NOT NULL self reference at a root: the row is its own parent
          }
          return pg ? pg(p, 0) : null;
        };
      });
      const missing = f.fk.parentCols.filter((pc) => {
        const pcp = f.parent.cols.get(pc);
        return !pcp || (!pcp.gen && !pcp.fk && !pcp.override && !pcp.col.identity && !pcp.col.serial);
      });
      if (missing.length)
        problems.push({ table: tp.key, column: f.fk.cols.join(', '), constraint: `FOREIGN KEY ${f.fk.name}`, why: `the referenced column(s) ${f.parent.key}.${missing.join(', ')} have no generator, so child rows cannot name a parent`, fix: fixLine(f.parent.info, missing[0], 'const:<a literal>') });
    }
  }
  // Overlapping FKs: index lists of the parents' rows by shared values, and row caps of keys over them (parents first).
  if (!problems.length)
    for (const key of done) {
      const tp = byName.get(key)!;
      for (const f of tp.fks) if (f.followers?.length && !f.preparing) (f.preparing = true), prepareGroup(seed, tp, f, problems);
    }
  if (problems.length) throw new SeedPlanError(problems, 'before loading');

  // 4. Rows: generate, then honour column orders and re-draw what a CHECK rejects.
  const plans: CustomDataset['plans'] = new Map();
  const tables: TableLoad[] = [];
  for (const tp of byName.values()) {
    const entries = [...tp.cols.values()].filter((cp) => cp.gen && !cp.col.generated);
    const columns = entries.map((cp) => cp.col.name);
    const fns = entries.map((cp) => cp.gen!);
    const index = new Map(columns.map((c, j) => [c, j]));
    // Only checks over columns the COPY carries can be evaluated here; the rest is the server's (probe).
    const checks = tp.checks.filter((ch) => ch.compiled && (ch.domainOf ? index.has(ch.domainOf) : ch.compiled.columns.every((cn) => index.has(cn))));
    const redrawable = (cn: string) => {
      const cp = tp.cols.get(cn);
      return !!cp && cp.redraw && !cp.override && index.has(cn);
    };
    const orders = tp.orders.filter((o) => index.has(o.low) && index.has(o.high));
    for (const ch of tp.checks) if (!ch.compiled) tp.notes.push(`${tp.key}: CHECK ${ch.name} is beyond the seeder's evaluator; the server checks sample rows against it before the load`);
    const n = fns.length;
    const rowOf = (i: number): Value[] => {
      const v = new Array<Value>(n);
      for (let j = 0; j < n; j++) v[j] = fns[j](i, 0);
      return v;
    };
    let row = rowOf;
    if (checks.length || orders.length) {
      row = (i) => {
        const v = rowOf(i);
        for (const o of orders) {
          const lo = v[index.get(o.low)!];
          const hi = v[index.get(o.high)!];
          if (lo === null || hi === null) continue;
          const gap = 1 + new Rng(seed, 0x0bde, i).int(48);
          if (redrawable(o.high)) v[index.get(o.high)!] = shiftValue(lo, gap);
          else if (redrawable(o.low)) v[index.get(o.low)!] = shiftValue(hi, -gap);
        }
        if (!checks.length) return v;
        const obj: Row = {};
        for (let j = 0; j < n; j++) obj[columns[j]] = v[j];
        for (const ch of checks) {
          if (ch.compiled!.passes(obj)) continue;
          const cols = (ch.domainOf ? [ch.domainOf] : ch.compiled!.columns).filter(redrawable);
          for (let a = 1; a <= REDRAWS && cols.length; a++) {
            for (const cn of cols) obj[cn] = v[index.get(cn)!] = fns[index.get(cn)!](i, a) as Value;
            if (ch.compiled!.passes(obj)) break;
          }
        }
        return v;
      };
    }
    notes.push(...tp.notes);
    plans.set(tp.key, { rows: tp.rows, checks: tp.checks.map(({ name, def, domainOf }) => ({ name, def, domainOf })), evaluable: checks.map((ch) => ({ name: ch.name, def: ch.def, domainOf: ch.domainOf, cols: ch.domainOf ? [ch.domainOf] : ch.compiled!.columns, passes: ch.compiled!.passes })), columns });
    tables.push({
      schema: tp.info.schema,
      name: tp.info.name,
      columns,
      rows: tp.rows,
      dependsOn: tp.fks.filter((f) => f.parent !== tp).map((f) => f.parent.key),
      selfReferencing: tp.fks.some((f) => f.parent === tp),
      row,
    });
  }
  return { name: 'custom', preDdl: '', postDdl: '', tables, notes, schema: infos, plans };
}

/**
 * A lead FK and the FKs that share some of its columns (team_members: (tenant_id, team_id) → teams leads,
 * (tenant_id, user_id) → users follows). Parent values are pure functions of the parent row index, so the
 * rows of each follower's parent are listed by their shared values once; a child row takes its lead parent
 * row first, then each follower's parent row among those agreeing with it. With a unique key over them,
 * rows enumerate distinct combinations (Σ over lead rows of Π matching follower rows), capped there.
 */
function prepareGroup(seed: number, tp: TablePlan, lead: FkPlan, problems: PlanProblem[]): void {
  const fols = lead.followers!;
  const valsAt = (plan: TablePlan, cols: string[], p: number) =>
    JSON.stringify(
      cols.map((c) => {
        const g = plan.cols.get(c)?.gen;
        return g ? g(p, 0) : null;
      }),
    );
  const spec = fols.map((f) => {
    const sh = f.align!.shared;
    return { f, leadCols: sh.map((cn) => lead.fk.parentCols[lead.fk.cols.indexOf(cn)]), folCols: sh.map((cn) => f.fk.parentCols[f.fk.cols.indexOf(cn)]), lists: undefined as Map<string, number[]> | undefined };
  });
  type Spec = (typeof spec)[number];
  const listsOf = (s: Spec) => {
    if (s.lists) return s.lists;
    const m = new Map<string, number[]>();
    for (let q = 0; q < s.f.parent.rows; q++) {
      const k = valsAt(s.f.parent, s.folCols, q);
      const l = m.get(k);
      if (l) l.push(q);
      else m.set(k, [q]);
    }
    return (s.lists = m);
  };
  const listAt = (s: Spec, p: number) => listsOf(s).get(valsAt(lead.parent, s.leadCols, p)) ?? [];
  const what = (s: Spec) => `${s.f.parent.key} row with the same ${s.f.align!.shared.join(', ')}`;
  const salt = hashString(`fk:${tp.key}.${lead.fk.name}:group`);
  if (lead.parent === tp) {
    problems.push({ table: tp.key, column: lead.fk.cols.join(', '), constraint: `FOREIGN KEY ${lead.fk.name}`, why: `a self reference leads FOREIGN KEY(s) ${fols.map((f) => f.fk.name).join(', ')} that share its columns: not planned (unsupported shape)`, fix: `seed without ${fols[0].fk.name} (add it back after the seed)` });
    return;
  }
  const P = lead.parent.rows;
  const members = lead.combo?.members ?? [];
  const hard = spec.filter((s) => s.f.parent !== tp && (members.includes(s.f) || !s.f.nullable));
  const mspec = members.map((m) => spec.find((s) => s.f === m)!);
  const valid: number[] = [];
  const prefix: number[] = [];
  let total = 0;
  for (let p = 0; p < P; p++) {
    if (!hard.every((s) => listAt(s, p).length)) continue;
    valid.push(p);
    if (lead.combo) {
      prefix.push(total);
      total = Math.min(Number.MAX_SAFE_INTEGER, total + mspec.reduce((a, s) => a * listAt(s, p).length, 1));
    }
  }
  if (lead.parentIndex && valid.length < P) {
    const s = hard.find((x) => [...Array(P).keys()].some((p) => !listAt(x, p).length))!;
    problems.push({ table: tp.key, column: s.f.fk.cols.join(', '), constraint: `FOREIGN KEY ${s.f.fk.name}`, why: `${lead.fk.name} takes every ${lead.parent.key} row (${lead.keyed}), but ${P - valid.length} of them have no ${what(s)}`, fix: `seed ${s.f.parent.key} with more rows, or ${fixLine(tp.info, s.f.fk.cols.find((c) => !s.f.align!.shared.includes(c))!, 'null')} when that column is nullable` });
    return;
  }
  if (!valid.length || (lead.combo && !total)) {
    const s = hard[0] ?? spec[0];
    problems.push({ table: tp.key, column: s.f.fk.cols.join(', '), constraint: `FOREIGN KEY ${s.f.fk.name}`, why: `no ${lead.parent.key} row (through ${lead.fk.name}) has a ${what(s)}, so no row honours both`, fix: `seed ${s.f.parent.key} so that its ${s.folCols.join(', ')} values meet ${lead.parent.key}'s, or ${fixLine(tp.info, s.f.fk.cols.find((c) => !s.f.align!.shared.includes(c))!, 'null')} when that column is nullable` });
    return;
  }
  // One decoded row at a time (every column of the row asks for it); the stride is fixed once total is.
  const mul = lead.combo && total < 9e7 ? coprime(total, Math.floor(total * 0.618)) : 1;
  let memo: { i: number; p: number; picks: number[] } | undefined;
  const decode = (i: number) => {
    if (memo?.i === i) return memo;
    let p: number;
    const picks: number[] = [];
    if (lead.combo) {
      const r = ((i % total) * mul) % total;
      let lo = 0;
      let hi = prefix.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (prefix[mid] <= r) lo = mid;
        else hi = mid - 1;
      }
      p = valid[lo];
      let rem = r - prefix[lo];
      for (const s of mspec) {
        const l = listAt(s, p);
        picks.push(l[rem % l.length]);
        rem = Math.floor(rem / l.length);
      }
    } else p = lead.parentIndex ? lead.parentIndex(i) : valid[new Rng(seed, salt, i).int(valid.length)];
    return (memo = { i, p, picks });
  };
  if (lead.combo && tp.rows > total) {
    tp.notes.push(
      `${tp.key}: ${tp.rows} rows asked, ${total} loaded — ${lead.combo.key.kind} ${lead.combo.key.name} (${lead.combo.key.cols.join(', ')}) allows at most that many distinct combinations of a ${lead.parent.key} row and ${mspec.map((s) => `a ${what(s)}`).join(' and ')}`,
    );
    tp.rows = total;
  }
  let selfLists: Map<Spec, { map: Map<string, number[]> }> | undefined;
  const specOf = new Map<Spec['f'], Spec>();
  for (const x of spec) if (!specOf.has(x.f)) specOf.set(x.f, x); // the first spec of an FK, as a find() would
  lead.group = {
    leadIdx: (i) => decode(i).p,
    followerIdx: (f, i) => {
      const s = specOf.get(f)!;
      const d = decode(i);
      const mi = mspec.indexOf(s);
      if (mi >= 0) return d.picks[mi];
      const r = new Rng(seed, salt ^ hashString(f.fk.name), i);
      if (f.parent === tp) {
        // A tree inside the shared values (folders in a tenant): an earlier row with the same values, else a root.
        selfLists ??= new Map();
        let sl = selfLists.get(s);
        if (!sl) {
          const map = new Map<string, number[]>();
          for (let q = 0; q < tp.rows; q++) {
            const k = valsAt(tp, s.folCols, q);
            const l = map.get(k);
            if (l) l.push(q);
            else map.set(k, [q]);
          }
          selfLists.set(s, (sl = { map }));
        }
        const l = sl.map.get(valsAt(lead.parent, s.leadCols, d.p)) ?? [];
        let n = 0; // rows of l before i (l is ascending)
        for (let hi = l.length; n < hi; ) {
          const mid = (n + hi) >> 1;
          if (l[mid] < i) n = mid + 1;
          else hi = mid;
        }
        if (!n || (f.nullable && r.chance(NULL_SHARE))) return f.nullable ? -1 : i;
        return l[r.int(n)];
      }
      const l = listAt(s, d.p);
      return l.length ? l[r.int(l.length)] : -1;
    },
  };
}

/** The column and value that make a partial index's WHERE false, for WHERE flag / NOT flag / col IS [NOT] NULL / flag = true|false. */
function predicateGate(tp: TablePlan, u: UniqueKey): { col: string; value: 'false' | 'true' | 'null' | 'nonnull' } | undefined {
  if (!u.predicate) return undefined;
  let n: Node;
  try {
    n = parseExpr(u.predicate);
  } catch {
    return undefined;
  }
  let col: string | undefined;
  let value: 'false' | 'true' | 'null' | 'nonnull' | undefined;
  if (n.k === 'col') (col = n.name), (value = 'false');
  else if (n.k === 'un' && n.op === 'not' && n.e.k === 'col') (col = n.e.name), (value = 'true');
  else if (n.k === 'isnull' && n.e.k === 'col') (col = n.e.name), (value = n.not ? 'null' : 'nonnull');
  else if (n.k === 'bin' && n.op === '=' && n.l.k === 'col' && n.r.k === 'lit' && typeof n.r.v === 'boolean') (col = n.l.name), (value = n.r.v ? 'false' : 'true');
  if (!col || !value) return undefined;
  const cp = tp.cols.get(col);
  if (!cp || u.cols.includes(col) || cp.fk || cp.keyIndex || cp.override || cp.gate || cp.col.identity || cp.col.serial || cp.col.generated) return undefined;
  if ((value === 'false' || value === 'true') && cp.col.base !== 'bool') return undefined;
  if (value === 'null' && (cp.col.notNull || cp.bounds.notNull)) return undefined;
  return { col, value };
}

/**
 * The columns of an "exactly one of them is set" CHECK (an exclusive arc, as Rails/Django polymorphic
 * FKs are written): num_nonnulls(a, b, …) = 1, num_nulls(a, b, …) = n - 1, (a IS NULL) <> (b IS NULL).
 */
export function exclusiveArc(body: string): string[] | undefined {
  const ident = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
  const un = (x: string) => (x.startsWith('"') ? x.slice(1, -1).replace(/""/g, '"') : x.toLowerCase());
  const b = body.trim().replace(/^\((.*)\)$/s, '$1').trim();
  const list = (x: string) => {
    const parts = x.split(',').map((p) => p.trim().replace(/^\((.*)\)$/, '$1'));
    return parts.every((p) => new RegExp(`^${ident}$`).test(p)) ? parts.map(un) : undefined;
  };
  let m = /^\(?num_nonnulls\((.+)\)\)?\s*=\s*1$/i.exec(b);
  if (m) return list(m[1]);
  m = /^\(?num_nulls\((.+)\)\)?\s*=\s*(\d+)$/i.exec(b);
  if (m) {
    const cs = list(m[1]);
    return cs && cs.length - 1 === Number(m[2]) ? cs : undefined;
  }
  m = new RegExp(`^\\(\\(?(${ident})\\)? IS (NOT )?NULL\\) <> \\(\\(?(${ident})\\)? IS (NOT )?NULL\\)$`, 'i').exec(b);
  if (m && !!m[2] === !!m[4]) return [un(m[1]), un(m[3])];
  return undefined;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** A multiplier coprime with n near `hint` (so i → i·m mod n is a permutation). */
function coprime(n: number, hint: number): number {
  if (n <= 2) return 1;
  for (let m = Math.max(2, hint); m < hint + 1000; m++) if (gcd(m, n) === 1) return m % n || 1;
  return 1;
}

/** "table.column" / "schema.table.column" override keys → "schema.table.column", with a clear error for unknown names. */
function resolveOverrides(infos: TableInfo[], generators: Record<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  // Names may hold dots ("user.group", a column "line.no"): a key is matched against every table's and column's
  // full name, not cut at the dots; a part may also be double-quoted (auth."user.group"."granted by").
  const unquoted = (key: string) => (key.includes('"') ? (key.match(/"(?:[^"]|"")*"|[^."]+/g) ?? []).map((p) => (p.startsWith('"') ? p.slice(1, -1).replace(/""/g, '"') : p)) : undefined);
  for (const [key, spec] of Object.entries(generators)) {
    const q = unquoted(key);
    const hits: { t: TableInfo; col: string }[] = [];
    for (const t of infos)
      for (const c of t.columns) {
        const full = q ? q.length === 3 && q[0] === t.schema && q[1] === t.name && q[2] === c.name : key === `${t.schema}.${t.name}.${c.name}`;
        const short = q ? q.length === 2 && q[0] === t.name && q[1] === c.name : key === `${t.name}.${c.name}`;
        if (full || short) hits.push({ t, col: c.name });
      }
    if (hits.length > 1)
      throw new CutoverError('CONFIG', `generator override ${key}: matches ${hits.map((h) => `${h.t.schema}.${h.t.name}.${h.col}`).join(' and ')}`, { hint: `name the schema: "${hits[0].t.schema}.${hits[0].t.name}.${hits[0].col}"`, exitCode: 2 });
    if (!hits.length) {
      const parts = q ?? key.split('.');
      const tableName = parts.length >= 2 ? parts[parts.length - 2] : key;
      const t = infos.find((x) => x.name === tableName || key.startsWith(`${x.schema}.${x.name}.`) || key.startsWith(`${x.name}.`));
      if (!t) throw new CutoverError('CONFIG', `generator override ${key}: no table ${parts.slice(0, -1).join('.') || key} in dataset custom`, { hint: `tables: ${infos.map((x) => `${x.schema}.${x.name}`).join(', ')}`, exitCode: 2 });
      throw new CutoverError('CONFIG', `generator override ${key}: table ${t.schema}.${t.name} has no column ${key.startsWith(`${t.schema}.${t.name}.`) ? key.slice(t.schema.length + t.name.length + 2) : parts[parts.length - 1]}`, { hint: `columns: ${t.columns.map((c) => c.name).join(', ')}`, exitCode: 2 });
    }
    out.set(`${hits[0].t.schema}.${hits[0].t.name}.${hits[0].col}`, spec);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server's word, before the load: sample rows of every table checked by Postgres itself.

const SAMPLE = 400;
/** Rows the plan's evaluator checks per table before the load (pure, no round trip). */
const EVAL_SAMPLE = 5000;

function sampleIndexes(rows: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < Math.min(rows, SAMPLE / 2); i++) out.add(i);
  const step = Math.max(1, Math.floor(rows / (SAMPLE / 2)));
  for (let i = 0; i < rows && out.size < SAMPLE; i += step) out.add(i);
  out.add(rows - 1);
  return [...out].filter((i) => i >= 0 && i < rows).sort((a, b) => a - b);
}

/** VALUE in a domain CHECK, as the column it is checked on. */
function domainBody(def: string, col: string): string {
  return lexSql(checkBody(def))
    .map((s) => (s.kind === 'code' ? s.text.replace(/\bVALUE\b/g, q(col)) : s.text))
    .join('');
}

/**
 * Load a sample of every table's planned rows into a temporary table of the base types (type
 * input is checked by the server: varchar(n), numeric(p,s), enum labels, array and range syntax)
 * and count the rows each CHECK, domain CHECK, NOT NULL and partition bound would reject. All in a
 * transaction that is rolled back. Throws SeedPlanError listing every column that would fail.
 */
export async function probeDataset(c: Client, ds: CustomDataset, copyText: (rows: Value[][]) => string, copyInto: (c: Client, sql: string, text: string) => Promise<void>): Promise<void> {
  const problems: PlanProblem[] = [];
  const infos = new Map(ds.schema.map((t) => [`${t.schema}.${t.name}`, t]));
  // First the plan's own evaluator over many more rows than the server sample (cheap, no round trip):
  // rows that bounded re-draws left failing a CHECK join the server's sample, so a CHECK that fails
  // only now and then is named here, before the load, not by a COPY error (the server has the last word).
  const suspects = new Map<string, number[]>();
  for (const tl of ds.tables) {
    const plan = ds.plans.get(`${tl.schema}.${tl.name}`);
    if (!plan?.evaluable?.length || !tl.rows) continue;
    const n = Math.min(tl.rows, EVAL_SAMPLE);
    const step = tl.rows / n;
    const bad: number[] = [];
    for (let k = 0; k < n && bad.length < SAMPLE / 2; k++) {
      const i = Math.min(tl.rows - 1, Math.floor(k * step));
      const v = tl.row(i);
      const obj: Row = {};
      tl.columns.forEach((cn, j) => (obj[cn] = v[j] as any));
      if (plan.evaluable.some((ch) => !ch.passes(obj))) bad.push(i);
    }
    if (bad.length) suspects.set(`${tl.schema}.${tl.name}`, bad);
  }
  await c.query('begin');
  try {
    for (const tl of ds.tables) {
      const key = `${tl.schema}.${tl.name}`;
      const t = infos.get(key)!;
      if (!tl.rows) continue;
      const idx = [...new Set([...sampleIndexes(tl.rows), ...(suspects.get(key) ?? [])])].sort((x, y) => x - y);
      const rows = idx.map((i) => [i, ...tl.row(i)] as Value[]);
      const colInfo = new Map(t.columns.map((col) => [col.name, col]));
      // Domains are checked below, one constraint at a time, so the table holds their base type.
      const fmt = (col: ColumnInfo) => (col.domain ? col.baseType : col.type);
      await c.query(`savepoint p`);
      await c.query(`create temp table _seed_probe (${['_i int', ...tl.columns.map((cn) => `${q(cn)} ${fmt(colInfo.get(cn)!)}`)].join(', ')}) on commit drop`);
      try {
        await copyInto(c, `copy _seed_probe (${['_i', ...tl.columns.map(q)].join(', ')}) from stdin`, copyText(rows));
      } catch (e: any) {
        const m = /COPY _seed_probe, line (\d+), column (\S+?): "?(.*?)"?$/m.exec(String(e?.where ?? ''));
        const column = m?.[2] ?? '?';
        const col = colInfo.get(column);
        problems.push({ table: key, column, constraint: col ? `type ${col.type}` : 'type input', why: `the server rejects generated value ${m ? JSON.stringify(m[3].slice(0, 60)) : ''}: ${e?.message ?? e}`, fix: fixLine(t, column, `const:<a ${col?.type ?? 'valid'} literal>`) });
        await c.query(`rollback to savepoint p`);
        continue;
      }
      // Generated columns as the server will compute them, so CHECKs and unique keys over them are judged too.
      const present = new Set(tl.columns);
      const sources = new Map<string, string[]>();
      const mentions = (names: Iterable<string>, body: string) => [...names].filter((cn) => new RegExp(`(^|[^\\w"])("${cn.replace(/"/g, '""')}"|${cn.replace(/[^\w]/g, '')})([^\\w"]|$)`).test(body));
      for (const col of t.columns) {
        if (!col.generated || !col.generatedExpr) continue;
        await c.query('savepoint g');
        try {
          await c.query(`alter table _seed_probe add column ${q(col.name)} ${fmt(col)} generated always as (${col.generatedExpr}) stored`);
          present.add(col.name);
          sources.set(col.name, mentions(tl.columns, col.generatedExpr));
        } catch (e: any) {
          await c.query('rollback to savepoint g');
          const src = mentions(tl.columns, col.generatedExpr);
          // A data error computing it (overflow, division by zero, a bad cast) is what the load would hit.
          if (/^2[23]/.test(String(e?.code ?? '')))
            problems.push({
              table: key,
              column: col.name,
              constraint: `GENERATED ALWAYS AS (${col.generatedExpr}) STORED, type ${col.type}`,
              why: `the server cannot compute it from the sample rows: ${e?.message ?? e}`,
              fix: src.length ? `${src.map((x) => fixLine(t, x, t.columns.find((y) => y.name === x)?.category === 'N' ? 'regex:[1-9][0-9]?' : `regex:<values for which ${col.name} fits>`)).join(' or ')} (${col.name} is generated from ${src.join(', ')})` : `seed without ${col.name}'s table, or change the expression`,
            });
          else ds.notes.push(`${key}.${col.name}: generated column not computed before the load (${e?.message ?? e}); its CHECKs and keys are left to the load`);
        }
      }
      // A problem in a generated column is fixed at the columns it is computed from.
      const fixAt = (cn: string, value: string) => {
        const src = sources.get(cn);
        return src ? (src.length ? `${src.map((x) => fixLine(t, x, value)).join(' or ')} (${cn} is generated from ${src.join(', ')})` : `${cn} is generated from no column the seed writes: seed without the constraint or change the expression`) : fixLine(t, cn, value);
      };
      // Every condition of the table in one scan; one by one only when the scan itself fails.
      const conds: { cond: string; what: PlanProblem }[] = [];
      for (const ch of ds.plans.get(key)?.checks ?? []) {
        const cols = ch.domainOf ? [ch.domainOf] : mentions(present, checkBody(ch.def));
        conds.push({
          cond: ch.domainOf ? domainBody(ch.def, ch.domainOf) : checkBody(ch.def),
          what: { table: key, column: cols.join(', ') || '?', constraint: `CHECK ${ch.name} ${ch.def}`, why: '', fix: fixAt(cols.find((x) => !sources.has(x)) ?? cols[0] ?? '?', `const:<a value that passes ${ch.name.split(' ')[0]}>`) },
        });
      }
      for (const col of t.columns)
        if (col.notNull && tl.columns.includes(col.name)) conds.push({ cond: `${q(col.name)} is not null`, what: { table: key, column: col.name, constraint: 'NOT NULL', why: '', fix: fixLine(t, col.name, `const:<a ${col.type} literal>`) } });
      if (t.partition && !t.partition.hasDefault && t.partition.leafConstraints.length) {
        const pcol = [t.partition.column ?? '?', ...new Set((t.partition.sub ?? []).map((x) => x.column).filter((x): x is string => !!x && x !== t.partition!.column))].join(', ');
        conds.push({
          cond: t.partition.leafConstraints.map((x) => `(${x})`).join(' or '),
          what: { table: key, column: pcol, constraint: `PARTITION BY ${t.partition.key}`, why: 'no partition takes them', fix: `${fixLine(t, pcol.split(', ').pop()!, 'const:<a value inside one partition>')} or add a DEFAULT partition` },
        });
      }
      // Unique keys over the sample (the plan makes them distinct by construction; this checks the plan).
      const serialCols = new Set(t.columns.filter((x) => x.identity || x.serial).map((x) => x.name));
      const keys = t.uniques.filter((u) => u.kind !== 'exclusion' && u.cols.length && u.cols.every((cn) => present.has(cn)) && !u.cols.some((cn) => serialCols.has(cn)));
      const dupSql = (u: UniqueKey) => {
        const ks = u.keyExprs?.length ? u.keyExprs.map((e) => `(${e})`) : u.cols.map(q);
        const where = [...ks.map((e) => `${e} is not null`), ...(u.predicate ? [`(${u.predicate})`] : [])].join(' and ');
        return `(select count(*)::int from (select 1 from _seed_probe where ${where} group by ${ks.join(', ')} having count(*) > 1) d)`;
      };
      const report = (what: PlanProblem, n: number) => problems.push({ ...what, why: `${n} of ${rows.length} sample rows fail it${what.why ? '; ' + what.why : ''}` });
      const reportDup = (u: UniqueKey, n: number) => problems.push({ table: key, column: u.cols.join(', '), constraint: `${u.kind.toUpperCase()} ${u.name}`, why: `${n} duplicate value(s) among ${rows.length} sample rows`, fix: u.via?.length
          ? `${u.via.join(', ')} ${u.via.length > 1 ? 'are' : 'is'} generated from ${u.cols.join(', ')}: the seed makes those distinct, not what the expression computes from them (an unsupported shape) — seed without ${u.name}, or give ${fixLine(t, u.cols[u.cols.length - 1], 'regex:<values whose computed key is distinct>')}`
          : fixAt(u.cols.find((x) => !sources.has(x)) ?? u.cols[0], 'faker.string.uuid') });
      const exprs = [...conds.map((x) => `count(*) filter (where not coalesce((${x.cond}), true))::int`), ...keys.map(dupSql)];
      if (!exprs.length) {
        await c.query(`drop table _seed_probe`);
        continue;
      }
      await c.query('savepoint q');
      let counts: number[] | undefined;
      try {
        const r = await c.query({ text: `select ${exprs.join(', ')} from _seed_probe`, rowMode: 'array' });
        counts = (r.rows[0] as number[]).map(Number);
      } catch {
        await c.query('rollback to savepoint q');
      }
      if (counts) {
        conds.forEach((x, j) => counts![j] && report(x.what, counts![j]));
        keys.forEach((u, j) => counts![conds.length + j] && reportDup(u, counts![conds.length + j]));
      } else {
        for (const x of conds) {
          await c.query('savepoint q');
          try {
            const n = Number((await c.query(`select count(*)::int as n from _seed_probe where not coalesce((${x.cond}), true)`)).rows[0].n);
            if (n) report(x.what, n);
          } catch (e: any) {
            await c.query('rollback to savepoint q');
            ds.notes.push(`${key}: ${x.what.constraint} was not checked before the load (${e?.message ?? e})`);
          }
        }
        for (const u of keys) {
          await c.query('savepoint q');
          try {
            const n = Number((await c.query(`select ${dupSql(u)} as n`)).rows[0].n);
            if (n) reportDup(u, n);
          } catch (e: any) {
            await c.query('rollback to savepoint q');
            ds.notes.push(`${key}: ${u.kind} ${u.name} was not checked before the load (${e?.message ?? e})`);
          }
        }
      }
      await c.query(`drop table _seed_probe`);
    }
  } finally {
    await c.query('rollback').catch(() => {});
  }
  if (problems.length) throw new SeedPlanError(problems, 'when the server checked sample rows');
}

export { parseArray };
