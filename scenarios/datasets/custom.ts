/**
 * custom: a user's own schema. Either the tables a DDL file just created, or the empty tables that
 * already exist in the target database. Rows are generated per column from the catalog: type,
 * length, precision, enum labels, NOT NULL, unique keys; foreign keys reference rows the parent
 * generator produces (every column value is a pure function of seed, table, column and row), so
 * they stay consistent. Per-column overrides come from dataset.generators (applied by the seeder).
 */
import { CutoverError } from '../../migration/errors.ts';
import type { Client } from '../../migration/pg.ts';
import { DAY_MS, EPOCH_2024, Rng, arrayLiteral, hashString, isoAt, pools, refIndex, type Dataset, type DatasetContext, type TableLoad, type Value } from './gen.ts';

interface ColumnInfo {
  name: string;
  type: string; // format_type, e.g. "character varying(20)"
  base: string; // base type name (domains resolved), e.g. "varchar", "_int4" for arrays
  category: string; // pg_type.typcategory of the base type
  elemBase: string | null;
  enumLabels: string[] | null;
  notNull: boolean;
  identity: boolean;
  generated: boolean;
  serial: boolean;
  typmod: number;
}

interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  columns: ColumnInfo[];
  unique: Set<string>;
  fks: { name: string; cols: string[]; parent: string; parentCols: string[] }[];
}

type Gen = (i: number) => Value;

async function introspect(c: Client, major: number, onlyNewSince?: Set<number>, constraintsFrom?: Client): Promise<TableInfo[]> {
  const generatedExpr = major >= 12 ? `a.attgenerated <> ''` : 'false';
  const rels = await c.query<{ oid: number; schema: string; name: string }>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r','p') and not c.relispartition
        and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg\\_%'
      order by n.nspname, c.relname`,
  );
  const out: TableInfo[] = [];
  for (const r of rels.rows) {
    if (onlyNewSince && onlyNewSince.has(Number(r.oid))) continue;
    if (!onlyNewSince) {
      const nonEmpty = await c.query(`select 1 from ${'"' + r.schema.replace(/"/g, '""') + '"."' + r.name.replace(/"/g, '""') + '"'} limit 1`);
      if (nonEmpty.rowCount) continue;
    }
    const cols = await c.query<any>(
      `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
              bt.typname as base, bt.typcategory as category, et.typname as elem_base,
              case when bt.typtype = 'e' then (select array_agg(enumlabel order by enumsortorder)::text[] from pg_enum where enumtypid = bt.oid)
                   when et.typtype = 'e' then (select array_agg(enumlabel order by enumsortorder)::text[] from pg_enum where enumtypid = et.oid) end as enum_labels,
              a.attnotnull as not_null, a.attidentity <> '' as identity, ${generatedExpr} as generated,
              coalesce(pg_get_expr(d.adbin, d.adrelid) like 'nextval(%', false) as serial,
              case when t.typtype = 'd' then t.typtypmod else a.atttypmod end as typmod
         from pg_attribute a
         join pg_type t on t.oid = a.atttypid
         join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
         left join pg_type et on et.oid = bt.typelem and bt.typcategory = 'A'
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [r.oid],
    );
    // Keys and FKs: from this database, or (schema copied before its post-data) from the source.
    const k = constraintsFrom ?? c;
    const kOid = constraintsFrom ? Number((await k.query(`select coalesce(to_regclass($1)::oid, 0)::int as o`, [`"${r.schema.replace(/"/g, '""')}"."${r.name.replace(/"/g, '""')}"`])).rows[0].o) : r.oid;
    const uniq = await k.query<{ col: string }>(
      `select a.attname as col from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = $1 and i.indisunique`,
      [kOid],
    );
    const fks = await k.query<any>(
      `select con.conname as name, (select format('%s.%s', n.nspname, p.relname) from pg_class p join pg_namespace n on n.oid = p.relnamespace where p.oid = con.confrelid) as parent,
              (select array_agg(a.attname order by k.ord)::text[] from unnest(con.conkey) with ordinality k(n, ord) join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n) as cols,
              (select array_agg(a.attname order by k.ord)::text[] from unnest(con.confkey) with ordinality k(n, ord) join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n) as parent_cols
         from pg_constraint con where con.conrelid = $1 and con.contype = 'f'`,
      [kOid],
    );
    out.push({
      oid: Number(r.oid),
      schema: r.schema,
      name: r.name,
      columns: cols.rows.map((x) => ({
        name: x.name,
        type: x.type,
        base: x.base,
        category: x.category,
        elemBase: x.elem_base,
        enumLabels: x.enum_labels,
        notNull: x.not_null,
        identity: x.identity,
        generated: x.generated,
        serial: x.serial,
        typmod: Number(x.typmod),
      })),
      unique: new Set(uniq.rows.map((u) => u.col)),
      fks: fks.rows.map((f) => ({ name: f.name, cols: f.cols, parent: f.parent, parentCols: f.parent_cols })),
    });
  }
  return out;
}

/** A generator for one column from its type; undefined when the type is unknown. */
function typeGen(seed: number, salt: number, col: ColumnInfo, unique: boolean, base = col.base, category = col.category): Gen | undefined {
  const p = pools(seed);
  const rng = (i: number) => new Rng(seed, salt, i);
  const len = col.typmod > 4 && /char|bpchar|varchar/.test(base) ? col.typmod - 4 : undefined;
  const fit = (s: string) => (len !== undefined && s.length > len ? s.slice(s.length - len) : s);
  const name = col.name.toLowerCase();
  if (col.enumLabels && category === 'E') return (i) => col.enumLabels![unique ? i % col.enumLabels!.length : rng(i).int(col.enumLabels!.length)];
  switch (base) {
    case 'int2':
      return (i) => (unique ? (i % 32767) + 1 : rng(i).int(32767));
    case 'int4':
    case 'int8':
    case 'oid':
      return (i) => (unique ? i + 1 : rng(i).int(1_000_000));
    case 'numeric': {
      const precision = col.typmod > 4 ? ((col.typmod - 4) >> 16) & 0xffff : 12;
      const scale = col.typmod > 4 ? (col.typmod - 4) & 0xffff : 2;
      const intDigits = Math.max(0, Math.min(9, precision - scale));
      return (i) => {
        const r = rng(i);
        const ip = unique ? String(i + 1) : String(r.int(10 ** intDigits));
        return scale ? `${ip}.${String(r.int(10 ** Math.min(scale, 9))).padStart(Math.min(scale, 9), '0')}` : ip;
      };
    }
    case 'float4':
    case 'float8':
      return (i) => (unique ? i + rng(i).float() : Math.round(rng(i).float() * 1e6) / 1000);
    case 'money':
      return (i) => `${rng(i).int(100000)}.${String(rng(i).int(100)).padStart(2, '0')}`;
    case 'bool':
      return (i) => rng(i).chance(0.5);
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'citext': {
      const word = (r: Rng) =>
        /email/.test(name)
          ? `${r.pick(p.firstNames)}.${r.pick(p.lastNames)}@${r.pick(p.domains)}`.toLowerCase()
          : /name/.test(name)
            ? `${r.pick(p.firstNames)} ${r.pick(p.lastNames)}`
            : /city/.test(name)
              ? r.pick(p.cities)
              : len !== undefined && len <= 12
                ? r.pick(p.words)
                : r.pick(p.sentences);
      return (i) => {
        const r = rng(i);
        return unique ? fit(`${word(r)}-${i.toString(36)}`) : fit(word(r));
      };
    }
    case 'uuid':
      return (i) => rng(i).uuid();
    case 'date':
      return (i) => isoAt(EPOCH_2024 + rng(i).int(365) * DAY_MS).slice(0, 10);
    case 'timestamp':
      return (i) => isoAt(EPOCH_2024 + (unique ? i * 1000 : rng(i).int(365 * DAY_MS))).replace('T', ' ').replace('Z', '');
    case 'timestamptz':
      return (i) => isoAt(EPOCH_2024 + (unique ? i * 1000 : rng(i).int(365 * DAY_MS)));
    case 'time':
    case 'timetz':
      return (i) => isoAt(rng(i).int(DAY_MS)).slice(11, 19);
    case 'interval':
      return (i) => `${rng(i).int(10000)} seconds`;
    case 'json':
    case 'jsonb':
      return (i) => {
        const r = rng(i);
        return JSON.stringify({ id: i + 1, word: r.pick(p.words), n: r.int(1000), ok: r.chance(0.5) });
      };
    case 'bytea':
      return (i) => '\\x' + rng(i).hex(8 + rng(i).int(24));
    case 'inet':
    case 'cidr':
      return (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}${base === 'cidr' ? '/32' : ''}`;
    case 'macaddr':
      return (i) => rng(i).hex(6).replace(/(..)(?!$)/g, '$1:');
    case 'xml':
      return (i) => `<row id="${i + 1}"/>`;
  }
  if (category === 'A' && col.elemBase) {
    const elemCategory = col.enumLabels ? 'E' : col.elemBase === 'text' || col.elemBase === 'varchar' ? 'S' : 'N';
    const elem = typeGen(seed, salt ^ 0x51ed, { ...col, enumLabels: col.enumLabels, typmod: -1, name: col.name }, false, col.elemBase, elemCategory);
    if (!elem) return undefined;
    return (i) => {
      const n = rng(i).int(4);
      return arrayLiteral(Array.from({ length: n }, (_, k) => {
        const v = elem(i * 4 + k);
        return v === null ? null : typeof v === 'boolean' ? (v ? 't' : 'f') : (v as string | number);
      }));
    };
  }
  return undefined;
}

export async function buildCustom(c: Client, ctx: DatasetContext, opts: { onlyNewSince?: Set<number>; rowsPerTable?: number; constraintsFrom?: Client } = {}): Promise<Dataset> {
  const { seed } = ctx;
  const infos = await introspect(c, ctx.major, opts.onlyNewSince, opts.constraintsFrom);
  if (!infos.length)
    throw new CutoverError('PRECONDITION', opts.onlyNewSince ? 'the DDL created no tables to seed' : 'the database has no empty user tables to seed', {
      hint: opts.onlyNewSince ? 'the DDL file must contain CREATE TABLE statements' : 'pass --ddl <file> to create tables, or point --url at a database whose tables are empty',
      exitCode: 2,
    });
  const rows = opts.rowsPerTable ?? Math.max(1, Math.round(ctx.scale / infos.length));
  const byName = new Map(infos.map((t) => [`${t.schema}.${t.name}`, t]));
  const gens = new Map<number, Map<string, Gen>>();
  const building = new Set<number>();

  // Column generators, parents first (a child's FK column reuses the parent's generator).
  function columnsOf(t: TableInfo): Map<string, Gen> {
    const have = gens.get(t.oid);
    if (have) return have;
    if (building.has(t.oid)) return new Map();
    building.add(t.oid);
    const m = new Map<string, Gen>();
    for (const col of t.columns) {
      if (col.generated) continue;
      const salt = hashString(`${t.schema}.${t.name}.${col.name}`);
      const unique = t.unique.has(col.name) || col.identity || col.serial;
      const g = col.identity || col.serial ? (i: number) => i + 1 : typeGen(seed, salt, col, unique);
      if (!g) {
        if (col.notNull)
          throw new CutoverError('CONFIG', `no generator for column ${t.schema}.${t.name}.${col.name} of type ${col.type}`, {
            hint: `add an override: dataset.generators: { "${t.name}.${col.name}": "faker.<module>.<method>" } (or --generator on the command line)`,
            exitCode: 2,
          });
        m.set(col.name, () => null);
        continue;
      }
      // Nullable, non-key columns get some NULLs, as real data does.
      m.set(col.name, !col.notNull && !unique ? (i) => (new Rng(seed, salt ^ 0x7f, i).chance(0.1) ? null : g(i)) : g);
    }
    for (const fk of t.fks) {
      const parent = byName.get(fk.parent);
      const nullable = fk.cols.every((cn) => !t.columns.find((cc) => cc.name === cn)?.notNull);
      if (parent === t) {
        // Self reference: the row itself (always present by the end of the COPY) or NULL.
        const own = fk.parentCols.map((pc) => m.get(pc));
        fk.cols.forEach((cn, k) => m.set(cn, (i) => (nullable ? null : (own[k]?.(i) ?? null))));
        continue;
      }
      if (!parent) {
        if (!nullable)
          throw new CutoverError('CONFIG', `${t.schema}.${t.name} references a table that is not being seeded (constraint ${fk.name})`, {
            hint: 'seed the parent table too (include it in the DDL), or make the foreign key columns nullable',
            exitCode: 2,
          });
        fk.cols.forEach((cn) => m.set(cn, () => null));
        continue;
      }
      const pg = columnsOf(parent);
      const pgens = fk.parentCols.map((pc) => pg.get(pc) ?? (() => null));
      fk.cols.forEach((cn, k) =>
        m.set(cn, (i) => {
          if (nullable && new Rng(seed, hashString(fk.name), i).chance(0.1)) return null;
          return pgens[k](refIndex(seed, `fk:${t.schema}.${t.name}.${fk.name}`, i, rows));
        }),
      );
    }
    gens.set(t.oid, m);
    building.delete(t.oid);
    return m;
  }

  const tables: TableLoad[] = infos.map((t) => {
    const m = columnsOf(t);
    const columns = [...m.keys()];
    const fns = columns.map((cn) => m.get(cn)!);
    return {
      schema: t.schema,
      name: t.name,
      columns,
      rows,
      dependsOn: t.fks.map((f) => byName.get(f.parent)).filter((p): p is TableInfo => !!p && p !== t).map((p) => `${p.schema}.${p.name}`),
      row: (i: number) => fns.map((f) => f(i)),
    };
  });
  return { name: 'custom', preDdl: '', postDdl: '', tables };
}
