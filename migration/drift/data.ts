/**
 * Data drift: NULL counts per column beside defaults (the NULL→default trap: a column nullable
 * with NULLs on the source that is NOT NULL or has a DEFAULT on the target turns NULLs into
 * values, or rejects them), row counts and checksums. Checksums come from migration/verify.ts
 * (chunked, NULL-safe); when it cannot run, a count + order-independent md5 sum per table is
 * computed here, one scan per table and side, with output settings pinned so the text forms compare.
 */
import { quoteIdent, qualified, type Client, quoteIdentIfNeeded } from '../pg.ts';
import { Progress } from '../progress.ts';
import { verify, type VerifyResult } from '../verify.ts';
import { finding, rows, type DriftContext, type DriftFinding, type Side } from './types.ts';

export interface ColumnMeta { name: string; type: string; notNull: boolean; default: string | null; generated: boolean }
export interface TableMeta { key: string; schema: string; name: string; columns: ColumnMeta[] }

export async function tables(side: Side): Promise<Record<string, TableMeta>> {
  const generated = side.versionNum >= 120000 ? `a.attgenerated <> ''` : 'false';
  const r = await rows(side.client, `
    select format('%I.%I', n.nspname, c.relname) as key, n.nspname as schema, c.relname as name, a.attname as col,
           format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as def, ${generated} as generated
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where c.relkind in ('r','p') and not c.relispartition
      and n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'
      and not exists (select 1 from pg_depend dep where dep.classid = 'pg_class'::regclass and dep.objid = c.oid and dep.deptype = 'e')
    order by 1, a.attnum`);
  const out: Record<string, TableMeta> = {};
  for (const x of r) {
    const t = (out[x.key] ??= { key: x.key, schema: x.schema, name: x.name, columns: [] });
    t.columns.push({ name: x.col, type: x.type, notNull: x.not_null, default: x.def, generated: x.generated });
  }
  return out;
}

/** Pure: the text a column contributes to the row checksum (floats as their binary form: 11 and 12+ print them differently). */
export function checksumExpr(col: ColumnMeta): string {
  const c = quoteIdent(col.name);
  if (col.type === 'double precision') return `float8send(${c})`;
  if (col.type === 'real') return `float4send(${c})`;
  if (col.type === 'money') return `${c}::numeric`;
  return `${c}::text`;
}

export interface TableScan { rows: number; nulls: Record<string, number>; checksum: string | null }

export async function scanTable(c: Client, t: TableMeta, checksumCols: ColumnMeta[], withChecksum: boolean): Promise<TableScan> {
  const rel = qualified(t.schema, t.name);
  const nullExprs = t.columns.map((col, i) => `count(*) - count(${quoteIdent(col.name)}) as n${i}`);
  const parts = [`count(*) as rows`, ...nullExprs];
  let from = rel + ' t';
  if (withChecksum && checksumCols.length) {
    const row = `row(${checksumCols.map(checksumExpr).join(', ')})::text`;
    from += ` cross join lateral (select md5(convert_to(${row}, 'UTF8')) as h) x`;
    parts.push(`coalesce(sum(('x' || substr(x.h, 1, 8))::bit(32)::int), 0)::text || '/' || coalesce(sum(('x' || substr(x.h, 9, 8))::bit(32)::int), 0)::text as checksum`);
  }
  await c.query('begin transaction read only');
  try {
    // Pinned output settings: the same value prints the same text on both sides.
    await c.query(`set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 3; set local bytea_output = 'hex'`);
    const [r] = await rows(c, `select ${parts.join(', ')} from ${from}`);
    const nulls: Record<string, number> = {};
    t.columns.forEach((col, i) => (nulls[col.name] = Number(r[`n${i}`])));
    return { rows: Number(r.rows), nulls, checksum: r.checksum ?? null };
  } finally {
    await c.query('rollback').catch(() => {});
  }
}

/** Pure: NULL→default trap and NULL-count differences for one table. */
export function diffNulls(src: TableMeta, tgt: TableMeta, a: TableScan, b: TableScan | null): DriftFinding[] {
  const out: DriftFinding[] = [];
  for (const cs of src.columns) {
    const ct = tgt.columns.find((c) => c.name === cs.name);
    if (!ct || cs.generated) continue;
    const object = `column ${src.key}.${quoteIdentIfNeeded(cs.name)}`;
    const na = a.nulls[cs.name] ?? 0;
    const nb = b?.nulls[cs.name];
    const trapNotNull = !cs.notNull && ct.notNull;
    const trapDefault = (ct.default ?? null) !== (cs.default ?? null) && ct.default !== null;
    if (na > 0 && (trapNotNull || trapDefault)) {
      out.push(finding('data', 'error', object, { nulls: na, notNull: cs.notNull, default: cs.default }, { nulls: nb ?? null, notNull: ct.notNull, default: ct.default },
        trapNotNull
          ? `${object} has ${na} NULLs on the source but is NOT NULL on the target: the copy or replication apply fails on them${ct.default ? `, or a path that omits the column writes the default ${ct.default}` : ''}`
          : `${object} has ${na} NULLs on the source and a DEFAULT ${ct.default} on the target that the source lacks: any copy path that omits NULL columns turns them into the default`,
        `make the target column match the source (ALTER TABLE ${src.key} ALTER COLUMN ${quoteIdent(cs.name)} ${trapNotNull ? 'DROP NOT NULL' : 'DROP DEFAULT'}) before copying`));
    } else if (nb !== undefined && b && a.rows === b.rows && na !== nb) {
      out.push(finding('data', 'error', object, { nulls: na }, { nulls: nb },
        `${object} has ${na} NULLs on the source and ${nb} on the target with the same row count: values changed on the way (NULL→default?)`,
        'compare the rows with NULLs on the source against the target (shadow reads), and check the copy path and column defaults'));
    }
  }
  return out;
}

/** Pure: row count and checksum differences for one table. */
export function diffTableScan(key: string, a: TableScan, b: TableScan): DriftFinding[] {
  if (a.rows !== b.rows)
    return [finding('data', 'error', `table ${key}`, { rows: a.rows }, { rows: b.rows }, `table ${key} has ${a.rows} rows on the source and ${b.rows} on the target`, 'let replication catch up, or re-copy the table; run cutover verify for per-chunk detail')];
  if (a.checksum && b.checksum && a.checksum !== b.checksum)
    return [finding('data', 'error', `table ${key}`, { checksum: a.checksum }, { checksum: b.checksum }, `table ${key} has the same row count but different contents (md5 sum over the rows)`, 'run cutover verify for the chunks that differ, then re-copy them')];
  return [];
}


/** Verification results (migration/verify.ts) as data findings. */
export function verifyFindings(result: VerifyResult): DriftFinding[] {
  const out: DriftFinding[] = [];
  for (const t of result.tables) {
    if (t.ok) continue;
    const rowsDiffer = t.sourceRows !== t.targetRows;
    const sample = t.differingRows.slice(0, 3).map((d) => ({ key: d.key, kind: d.kind, source: d.source, target: d.target }));
    out.push(finding('data', 'error', `table ${t.table}`, { rows: t.sourceRows }, { rows: t.targetRows, differingChunks: t.mismatches.length, sample },
      rowsDiffer
        ? `table ${t.table} has ${t.sourceRows} rows on the source and ${t.targetRows} on the target`
        : `table ${t.table} differs in ${t.mismatches.length} checksum chunks${t.differingRows.length ? ` (e.g. ${t.differingRows[0].kind} at ${JSON.stringify(t.differingRows[0].key)})` : ''}${t.problems.length ? `; ${t.problems.join('; ')}` : ''}`,
      'let replication catch up, or re-copy the differing chunks; `cutover verify` shows them in detail'));
  }
  return out;
}

export async function checkData(ctx: DriftContext): Promise<DriftFinding[]> {
  const [ta, tb] = await Promise.all([tables(ctx.source), tables(ctx.target)]);
  let verified: DriftFinding[] | null = null;
  const common = Object.keys(ta).filter((k) => k in tb).map((k) => ({ schema: ta[k].schema, name: ta[k].name }));
  if (common.length) {
    try {
      verified = verifyFindings(await verify({ source: ctx.source.url, target: ctx.target.url, tables: common, parallel: 1, progress: ctx.progress }));
    } catch (e: any) {
      // Verification needs things drift does not (e.g. a key to chunk by); fall back to a whole-table sum.
      ctx.note(`data: verify could not run (${e?.message ?? e}); row counts and an md5 sum per table computed by drift instead`);
    }
  }
  const out: DriftFinding[] = verified ? [...verified] : [];
  const keys = Object.keys(ta).sort();
  const progress = ctx.progress ? new Progress('drift: NULL counts' + (verified ? '' : ' and checksums'), keys.length, { unit: 'tables' }) : undefined;
  for (const key of keys) {
    progress?.tick(1, key);
    const src = ta[key];
    const tgt = tb[key];
    if (!tgt) continue; // a schema finding
    const common = src.columns.filter((c) => tgt.columns.some((d) => d.name === c.name));
    const tgtCommon = common.map((c) => tgt.columns.find((d) => d.name === c.name)!);
    const a = await scanTable(ctx.source.client, src, common, !verified);
    const b = await scanTable(ctx.target.client, tgt, tgtCommon, !verified);
    out.push(...diffNulls(src, tgt, a, b));
    if (!verified) out.push(...diffTableScan(key, a, b));
  }
  progress?.finish();
  return out;
}
