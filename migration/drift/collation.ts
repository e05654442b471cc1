/**
 * Collation drift. Names and versions are not enough (two hosts can call the same glibc locale the
 * same name and sort differently), so besides provider/locale/version this sorts a fixed corpus of
 * tricky strings with every collation in use on each side and compares the orders. Works on every
 * major: only `ORDER BY x COLLATE "…"` over a VALUES list.
 */
import { createHash } from 'node:crypto';
import type { Client } from '../pg.ts';
import { finding, rows, type DriftContext, type DriftFinding, type Side } from './types.ts';

/** Strings whose relative order differs between C, glibc (before/after 2.28) and ICU orders. */
export const COLLATION_CORPUS: readonly string[] = [
  'a', 'A', 'b', 'B', 'á', 'Á', 'à', 'ä', 'Ä', 'å', 'æ', 'Æ', 'ß', 'ss', 'é', 'e', 'E', 'è', 'ê', 'ö', 'o', 'ø', 'ñ', 'n', 'ç', 'c', 'z', 'Z', 'ÿ',
  'co-op', 'coop', 'co op', 'co_op', 'co.op', "co'op", 'co-operate', 'cooperate', '-a', 'a-', '--', '-', '_', ' a', 'a ', 'a b', 'ab', 'a,b', 'a.b', 'a/b', '@home', '#tag', '!', '?', '$5', '€5',
  '1', '01', '10', '2', '9', '1.5', '1,5', '-1', '½', '١٢', 'Ⅻ',
  'résumé', 'resume', 'Resume', 'RESUME', 'rèsume', 'naïve', 'naive', 'Straße', 'strasse', 'Ærø', 'Aero', 'Zürich', 'Zurich',
  'ǅ', 'ǆ', 'ﬁ', 'fi', 'Ω', 'ω', 'Ж', 'ж', 'α', 'β', 'ı', 'İ', 'i', 'I', '中文', '日本', '한국', 'שלום', 'مرحبا',
  '😀', '😀a', 'a😀', '👍🏽', '🇩🇪', '', 'a\tb', 'ÅB', 'åb', 'Ab', 'aB',
];

/** Whether a string can be stored in a database of this server encoding (UTF8 client side). */
export function representable(s: string, encoding: string): boolean | undefined {
  const enc = encoding.toUpperCase();
  if (enc === 'UTF8' || enc === 'SQL_ASCII') return true;
  if (enc === 'LATIN1') return [...s].every((ch) => ch.codePointAt(0)! <= 0xff && ch.codePointAt(0)! > 0);
  return undefined; // ask the server
}

async function serverCanStore(c: Client, s: string): Promise<boolean> {
  try {
    await c.query('select $1::text', [s]);
    return true;
  } catch {
    return false;
  }
}

/** The corpus both sides can store (the same list on both, so orders are comparable). */
export async function sharedCorpus(a: Side, b: Side): Promise<string[]> {
  const out: string[] = [];
  for (const s of COLLATION_CORPUS) {
    let ok = true;
    for (const side of [a, b]) {
      const r = representable(s, side.encoding);
      if (r === false || (r === undefined && !(await serverCanStore(side.client, s)))) ok = false;
      if (!ok) break;
    }
    if (ok) out.push(s);
  }
  return out;
}

export async function sortWith(c: Client, collation: string, corpus: string[]): Promise<string[]> {
  const values = corpus.map((_, i) => `($${i + 1}::text)`).join(',');
  // The C tie-break keeps non-deterministic (ICU) collations' ties in a stable order.
  const r = await c.query(`select x from (values ${values}) v(x) order by x collate ${collation === 'default' ? '"default"' : collation}, x collate "C"`, corpus);
  return r.rows.map((row: any) => row.x);
}

export function orderHash(order: string[]): string {
  return createHash('sha256').update(JSON.stringify(order)).digest('hex').slice(0, 16);
}

/** Pure: where two orders of the same corpus first differ, or null when identical. */
export function compareOrders(a: string[], b: string[]): null | { index: number; old: string[]; new: string[]; moved: number } {
  if (a.length === b.length && a.every((x, i) => x === b[i])) return null;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const moved = a.filter((x, k) => b[k] !== x).length;
  return { index: i, old: a.slice(i, i + 4), new: b.slice(i, i + 4), moved };
}

export interface CollationInfo {
  /** 'libc:en_US.UTF-8', 'icu:en-US', 'builtin:C.UTF-8', 'c:C' */
  descriptor: string;
  collname: string;
  version: string | null;
  actualVersion: string | null;
  /** The library was asked for its version and answered (null included): a recorded version it does not report is drift. */
  actualAsked?: boolean;
}

export interface CollationSnapshot {
  database: { name: string; provider: string; collate: string; ctype: string; locale: string; descriptor: string; version: string | null; actualVersion: string | null };
  /** Column key → collation (schema-qualified, or "default" for the database default) and descriptor. */
  columns: Record<string, { collname: string; descriptor: string; indexed: boolean }>;
  collations: Record<string, CollationInfo>;
}

const PROVIDER: Record<string, string> = { c: 'libc', i: 'icu', b: 'builtin', d: 'default' };

/**
 * An ICU locale as a BCP 47 language tag, the way PostgreSQL 16+ stores it (it canonicalises
 * CREATE COLLATION … locale = 'de_AT' to 'de-AT'; 11–15 keep what was written): the same locale,
 * spelled by two majors. Only the plain language_REGION[_variant] form is rewritten; names with
 * ICU keywords (@collation=…) are left as written rather than guessed.
 */
export function icuLanguageTag(locale: string | null | undefined): string | null {
  if (locale === null || locale === undefined) return null;
  if (locale === 'root' || locale === '') return 'und';
  if (!/^[A-Za-z]{2,8}(_[A-Za-z0-9]{2,8})*$/.test(locale)) return locale;
  return locale.replace(/_/g, '-');
}

/** "provider:locale", an ICU locale in its language-tag spelling (the same locale on every major). */
function descriptor(provider: string, locale: string | null): string {
  return `${provider}:${provider === 'icu' ? icuLanguageTag(locale) : locale}`;
}

export async function collationSnapshot(side: Side): Promise<CollationSnapshot> {
  const v = side.versionNum;
  const c = side.client;
  const dbProvider = v >= 150000 ? 'd.datlocprovider::text' : `'c'`;
  const dbLocale = v >= 170000 ? 'coalesce(d.datlocale, d.datcollate)' : v >= 150000 ? 'coalesce(d.daticulocale, d.datcollate)' : 'd.datcollate';
  const dbVersion = v >= 150000 ? 'd.datcollversion' : 'null::text';
  const [db] = await rows<any>(c, `select d.datname as name, ${dbProvider} as provider, d.datcollate as collate, d.datctype as ctype, ${dbLocale} as locale, ${dbVersion} as version from pg_database d where d.datname = current_database()`);
  let dbActual: string | null = null;
  let dbAsked = false;
  if (v >= 150000) {
    const r = await rows(c, `select pg_database_collation_actual_version(oid) as v from pg_database where datname = current_database()`).catch(() => null);
    dbAsked = r !== null;
    dbActual = r?.[0]?.v ?? null;
  }
  const provider = PROVIDER[db.provider] ?? db.provider;
  const dbDescriptor = provider === 'libc' ? `libc:${db.collate}` : descriptor(provider, db.locale);

  const collLocale = v >= 170000 ? 'coalesce(co.colllocale, co.collcollate)' : v >= 150000 ? 'coalesce(co.colliculocale, co.collcollate)' : 'co.collcollate';
  const cols = await rows(
    c,
    `select format('%I.%I.%I', n.nspname, cl.relname, a.attname) as key, co.oid::int as colloid, format('%I.%I', cn.nspname, co.collname) as collname, co.collprovider::text as provider, ${collLocale} as locale,
            exists (select 1 from pg_index i where i.indrelid = cl.oid and a.attnum = any (i.indkey::int2[])) as indexed
     from pg_attribute a join pg_class cl on cl.oid = a.attrelid join pg_namespace n on n.oid = cl.relnamespace
     join pg_collation co on co.oid = a.attcollation join pg_namespace cn on cn.oid = co.collnamespace
     where a.attnum > 0 and not a.attisdropped and cl.relkind in ('r','p','m','f')
       and n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'`,
  );
  const collations: Record<string, CollationInfo> = {
    default: { descriptor: dbDescriptor, collname: 'default', version: db.version, actualVersion: dbActual, actualAsked: dbAsked },
  };
  const columns: CollationSnapshot['columns'] = {};
  for (const col of cols) {
    const isDefault = col.colloid === 100;
    const name = isDefault ? 'default' : col.collname;
    if (!collations[name]) {
      const p = PROVIDER[col.provider] ?? col.provider;
      const [vr] = await rows(c, `select collversion as version from pg_collation where oid = $1`, [col.colloid]);
      let actual: string | null = null;
      let asked = false;
      if (col.provider === 'i' || (v >= 130000 && col.provider === 'c')) {
        const r = await rows(c, `select pg_collation_actual_version($1::oid) as v`, [col.colloid]).catch(() => null);
        asked = r !== null;
        actual = r?.[0]?.v ?? null;
      }
      collations[name] = { descriptor: descriptor(p, col.locale), collname: name, version: vr?.version ?? null, actualVersion: actual, actualAsked: asked };
    }
    columns[col.key] = { collname: name, descriptor: collations[name].descriptor, indexed: col.indexed };
  }
  return { database: { ...db, provider, descriptor: dbDescriptor, version: db.version, actualVersion: dbActual }, columns, collations };
}

export interface CollationFingerprint {
  corpusSize: number;
  /** collation name → order hash */
  hashes: Record<string, string>;
  orders: Record<string, string[]>;
}

export async function fingerprint(side: Side, snap: CollationSnapshot, corpus: string[]): Promise<CollationFingerprint> {
  const fp: CollationFingerprint = { corpusSize: corpus.length, hashes: {}, orders: {} };
  for (const name of Object.keys(snap.collations).sort()) {
    const order = await sortWith(side.client, name, corpus);
    fp.orders[name] = order;
    fp.hashes[name] = orderHash(order);
  }
  return fp;
}

const REBUILD_HINT = 'text order differs: ORDER BY results, range scans and text-keyed partitions change on the target. Create the target with the source locale and provider (initdb --locale/--locale-provider, or CREATE DATABASE … LOCALE … TEMPLATE template0), or give the columns an explicit COLLATE that sorts the same on both';

/** Pure: findings from both sides' snapshots and fingerprints. */
export function diffCollation(
  a: CollationSnapshot, fa: CollationFingerprint, b: CollationSnapshot, fb: CollationFingerprint,
): DriftFinding[] {
  const out: DriftFinding[] = [];
  const describeDiff = (d: NonNullable<ReturnType<typeof compareOrders>>) =>
    `${d.moved} of ${fa.corpusSize} corpus strings sort to a different place; first at position ${d.index}: source ${JSON.stringify(d.old)} vs target ${JSON.stringify(d.new)}`;

  // The database default.
  const dd = compareOrders(fa.orders.default, fb.orders.default);
  const dbOld = { provider: a.database.provider, collate: a.database.collate, ctype: a.database.ctype, locale: a.database.locale, fingerprint: fa.hashes.default };
  const dbNew = { provider: b.database.provider, collate: b.database.collate, ctype: b.database.ctype, locale: b.database.locale, fingerprint: fb.hashes.default };
  if (dd) {
    out.push(finding('collation', 'error', `database ${b.database.name} default collation`, dbOld, dbNew,
      `the database default collation sorts differently (${a.database.descriptor} → ${b.database.descriptor}): ${describeDiff(dd)}`, REBUILD_HINT));
  } else if (a.database.descriptor !== b.database.descriptor || a.database.ctype !== b.database.ctype) {
    out.push(finding('collation', 'warning', `database ${b.database.name} default collation`, dbOld, dbNew,
      `the database locale differs (${a.database.descriptor} → ${b.database.descriptor}, ctype ${a.database.ctype} → ${b.database.ctype}) although the test corpus sorts the same; upper()/lower(), ILIKE and regex classes can still differ`,
      'prefer the same locale and provider on both sides'));
  }

  // Every collated column present on both sides.
  for (const key of Object.keys(a.columns).sort()) {
    const ca = a.columns[key];
    const cb = b.columns[key];
    if (!cb) continue; // a missing column is a schema finding
    const oa = fa.orders[ca.collname];
    const ob = fb.orders[cb.collname];
    const d = oa && ob ? compareOrders(oa, ob) : null;
    const old = { collation: ca.collname, locale: ca.descriptor, fingerprint: fa.hashes[ca.collname] };
    const neu = { collation: cb.collname, locale: cb.descriptor, fingerprint: fb.hashes[cb.collname] };
    if (d) {
      out.push(finding('collation', 'error', `column ${key}`, old, neu,
        `column ${key} sorts differently (${ca.descriptor} → ${cb.descriptor})${cb.indexed ? ', and it is indexed' : ''}: ${describeDiff(d)}`, REBUILD_HINT));
    } else if (ca.descriptor !== cb.descriptor) {
      out.push(finding('collation', 'warning', `column ${key}`, old, neu,
        `column ${key} uses another collation (${ca.descriptor} → ${cb.descriptor}) although the test corpus sorts the same`, 'prefer the same collation on both sides'));
    }
  }

  // Recorded versions against the library actually loaded (per side), and across sides.
  for (const [side, snap] of [['source', a], ['target', b]] as const) {
    for (const [name, info] of Object.entries(snap.collations)) {
      if (info.version && info.actualVersion && info.version !== info.actualVersion) {
        out.push(finding('collation', 'warning', `collation ${name} on the ${side}`, side === 'source' ? info.version : null, side === 'target' ? info.actualVersion : null,
          `collation ${name} was recorded with version ${info.version} but the ${side}'s library now reports ${info.actualVersion}: indexes built under the old order may be corrupt`,
          name === 'default'
            ? `REINDEX the text indexes, then ALTER DATABASE ${snap.database.name} REFRESH COLLATION VERSION`
            : `REINDEX the indexes that use it, then ALTER COLLATION "${name}" REFRESH VERSION`));
      } else if (info.version && info.actualAsked && info.actualVersion === null) {
        // PostgreSQL itself warns on connect (database) or refuses the collation ("has no actual version, but a version was recorded").
        out.push(finding('collation', 'warning', `collation ${name} on the ${side}`, info.version, null,
          `collation ${name} was recorded with version ${info.version} but the ${side}'s library reports no version for ${info.descriptor}: the locale changed under it (another OS or library), so indexes built under the old order may be corrupt${name === 'default' ? ', and every connection warns' : ', and PostgreSQL refuses to use the collation'}`,
          name === 'default'
            ? `REINDEX the text indexes, then ALTER DATABASE ${snap.database.name} REFRESH COLLATION VERSION`
            : `REINDEX the indexes that use it, then ALTER COLLATION "${name}" REFRESH VERSION`));
      }
    }
  }
  for (const name of Object.keys(a.collations)) {
    const x = a.collations[name];
    const y = b.collations[name];
    if (!y || x.descriptor !== y.descriptor) continue;
    const vx = x.actualVersion ?? x.version;
    const vy = y.actualVersion ?? y.version;
    if (vx && vy && vx !== vy) {
      const same = fa.hashes[name] === fb.hashes[name];
      out.push(finding('collation', same ? 'warning' : 'error', `collation ${name}`, vx, vy,
        `collation ${name} (${x.descriptor}) comes from another library version on each side${same ? '; the test corpus still sorts the same' : ' and sorts differently'}`,
        'glibc/ICU updates change orders: compare real ORDER BY results (shadow reads) and REINDEX text indexes built under the old version'));
    }
  }
  return out;
}

/** amcheck bt_index_check over btree indexes with a collatable key. Never fails the run. */
export async function amcheckTextIndexes(ctx: DriftContext, side: Side): Promise<DriftFinding[]> {
  const c = side.client;
  const out: DriftFinding[] = [];
  let have = (await rows(c, `select 1 from pg_extension where extname = 'amcheck'`)).length > 0;
  if (!have && ctx.installAmcheck) {
    try {
      await c.query('create extension if not exists amcheck');
      have = true;
      ctx.note(`${side.label}: created extension amcheck to check text indexes`);
    } catch (e: any) {
      ctx.note(`${side.label}: amcheck could not be created (${e?.message}); text indexes were not checked`);
    }
  }
  if (!have) {
    if (!ctx.installAmcheck) ctx.note(`${side.label}: amcheck is not installed; text indexes were not checked (allow installing it with installAmcheck / --install-amcheck)`);
    return out;
  }
  const schema = (await rows(c, `select extnamespace::regnamespace::text as s from pg_extension where extname = 'amcheck'`))[0].s;
  const idx = await rows(
    c,
    `select i.indexrelid::int as oid, format('%I.%I', n.nspname, ic.relname) as name
     from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace join pg_am am on am.oid = ic.relam
     where am.amname = 'btree' and i.indisvalid and ic.relpersistence <> 't'
       and n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'
       and exists (select 1 from unnest(i.indcollation::oid[]) co where co <> 0)
     order by 2`,
  );
  for (const ix of idx) {
    try {
      await c.query(`select ${schema}.bt_index_check($1::oid::regclass)`, [ix.oid]);
    } catch (e: any) {
      const corrupt = e?.code === 'XX002';
      out.push(finding('collation', corrupt ? 'error' : 'warning', `index ${ix.name} on the ${side.label}`, side.label === 'source' ? e?.message : null, side.label === 'target' ? e?.message : null,
        corrupt ? `amcheck found index ${ix.name} inconsistent with its collation's order on the ${side.label}: lookups can miss rows` : `amcheck could not check index ${ix.name} on the ${side.label}: ${e?.message}`,
        corrupt ? `REINDEX INDEX ${ix.name} on the ${side.label}` : 'check the privileges of the connecting role (amcheck needs EXECUTE on bt_index_check)'));
    }
  }
  ctx.record(`amcheck.${side.label}`, { indexes: idx.length, problems: out.length });
  return out;
}

export async function checkCollation(ctx: DriftContext): Promise<DriftFinding[]> {
  const [a, b] = await Promise.all([collationSnapshot(ctx.source), collationSnapshot(ctx.target)]);
  const corpus = await sharedCorpus(ctx.source, ctx.target);
  if (corpus.length < COLLATION_CORPUS.length) ctx.note(`collation fingerprint: ${COLLATION_CORPUS.length - corpus.length} corpus strings skipped (not representable in ${ctx.source.encoding}/${ctx.target.encoding})`);
  const [fa, fb] = await Promise.all([fingerprint(ctx.source, a, corpus), fingerprint(ctx.target, b, corpus)]);
  ctx.record('collationFingerprint', { source: fa.hashes, target: fb.hashes, corpusSize: corpus.length });
  const out = diffCollation(a, fa, b, fb);
  for (const side of [ctx.source, ctx.target]) out.push(...(await amcheckTextIndexes(ctx, side)));
  return out;
}
