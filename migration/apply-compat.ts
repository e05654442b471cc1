/**
 * Will the subscriber be able to apply what the publisher sends? DDL is not replicated, so a
 * schema change on the old primary during replication (ALTER TABLE … ADD COLUMN, a type change, a
 * new table) either breaks apply at the next change to that table or silently leaves data behind.
 * This compares the published tables' columns on both sides and says, per difference, what it does
 * to replication — before apply breaks, so a switchover can refuse instead of finding out later.
 */
import { connect, serverMajor, type Client } from './pg.ts';
import { displayName } from './replication.ts';

export interface ApplyCompatFinding {
  table: string;
  /** breaks: apply stops at the next change to the table; loses: changes are not carried; warns: may fail for some values. */
  effect: 'breaks' | 'loses' | 'warns';
  message: string;
}

interface Col {
  schema: string;
  table: string;
  column: string;
  type: string;
  notNull: boolean;
  hasDefault: boolean;
}

async function columns(c: Client, tables: Array<{ schema: string; name: string }> | 'all'): Promise<Col[]> {
  const major = await serverMajor(c);
  const r = await c.query(
    `select n.nspname as schema, c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
            a.attnotnull as "notNull", (a.atthasdef ${major >= 10 ? "or a.attidentity <> ''" : ''}) as "hasDefault"
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where a.attnum > 0 and not a.attisdropped and c.relkind in ('r','p')
        ${major >= 12 ? "and a.attgenerated = ''" : ''}
        and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg_toast%'
      order by 1, 2, a.attnum`,
  );
  const want = tables === 'all' ? undefined : new Set(tables.map((t) => `${t.schema}\u0000${t.name}`));
  return (r.rows as Col[]).filter((x) => !want || want.has(`${x.schema}\u0000${x.table}`));
}

/** Differences between the publication's tables on the source and the same tables on the target. */
export async function applyCompat(opts: { source: string; target: string; publication: string }): Promise<ApplyCompatFinding[]> {
  const src = await connect(opts.source, { role: 'source' });
  let tgt: Client | undefined;
  try {
    tgt = await connect(opts.target, { role: 'target' });
    const pub = (await src.query<{ schema: string; name: string }>(`select schemaname as schema, tablename as name from pg_publication_tables where pubname = $1`, [opts.publication])).rows;
    const s = await columns(src, pub);
    const t = await columns(tgt, pub);
    const key = (x: { schema: string; table: string }) => `${x.schema}\u0000${x.table}`;
    const out: ApplyCompatFinding[] = [];
    const tgtBy = new Map<string, Map<string, Col>>();
    for (const c of t) (tgtBy.get(key(c)) ?? tgtBy.set(key(c), new Map()).get(key(c))!).set(c.column, c);
    const srcBy = new Map<string, Map<string, Col>>();
    for (const c of s) (srcBy.get(key(c)) ?? srcBy.set(key(c), new Map()).get(key(c))!).set(c.column, c);
    for (const p of pub) {
      const k = `${p.schema}\u0000${p.name}`;
      const table = displayName(p);
      const sc = srcBy.get(k) ?? new Map<string, Col>();
      const tc = tgtBy.get(k);
      if (!tc) {
        out.push({ table, effect: 'breaks', message: `${table} is published but does not exist on the target: apply stops at its first change` });
        continue;
      }
      for (const [name, c] of sc) {
        const o = tc.get(name);
        if (!o) out.push({ table, effect: 'breaks', message: `column ${name} (${c.type}) exists on the source only: apply stops at the next change to ${table} ("missing replicated column"); add it on the target` });
        else if (o.type !== c.type) out.push({ table, effect: 'warns', message: `column ${name} is ${c.type} on the source and ${o.type} on the target: values that do not convert stop apply` });
      }
      for (const [name, o] of tc)
        if (!sc.has(name) && o.notNull && !o.hasDefault) out.push({ table, effect: 'breaks', message: `column ${name} exists on the target only and is NOT NULL without a default: every replicated insert into ${table} fails` });
    }
    // tables created on the source since the publication was made are not in it: their rows stay behind
    const pubKeys = new Set(pub.map((p) => `${p.schema}\u0000${p.name}`));
    const tgtTables = new Set(t.map(key));
    const allSrc = await columns(src, 'all');
    const allTgt = new Set((await columns(tgt, 'all')).map(key));
    const seen = new Set<string>();
    for (const c of allSrc) {
      const k = key(c);
      if (seen.has(k) || pubKeys.has(k) || tgtTables.has(k) || allTgt.has(k) || /^cutover/.test(c.table)) continue;
      seen.add(k);
      out.push({ table: displayName({ schema: c.schema, name: c.table }), effect: 'loses', message: `${displayName({ schema: c.schema, name: c.table })} exists on the source only and is not published: its rows are not replicated` });
    }
    return out;
  } finally {
    await src.end().catch(() => {});
    await tgt?.end().catch(() => {});
  }
}
