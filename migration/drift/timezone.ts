/**
 * Timezone and output-format drift. `timestamptz` keeps the instant, but everything that turns an
 * instant into local time (now()::timestamp, ::date, date_trunc, LOCALTIMESTAMP, defaults) runs in
 * the server's TimeZone. Postgres usually ships its own tz database, so two builds can also disagree
 * on a zone's offsets: a fixed-instant fingerprint over pg_timezone_names shows that.
 */
import { createHash } from 'node:crypto';
import { finding, rows, type DriftContext, type DriftFinding, type Severity, type Side } from './types.ts';

export const FORMAT_SETTINGS: Record<string, Severity> = {
  TimeZone: 'error',
  DateStyle: 'warning',
  IntervalStyle: 'warning',
  timezone_abbreviations: 'warning',
  extra_float_digits: 'warning',
  standard_conforming_strings: 'error',
};

/** Instants around DST switches, rule changes and the 2038 boundary (UTC). */
export const FIXED_INSTANTS: readonly string[] = [
  '1970-01-01 00:00:00+00', '1995-06-15 12:00:00+00', '2000-01-01 00:00:00+00', '2007-03-11 10:00:00+00',
  '2011-03-27 01:30:00+00', '2014-10-26 01:30:00+00', '2016-12-31 23:59:59+00', '2022-09-25 12:00:00+00',
  '2024-03-10 07:30:00+00', '2024-07-01 00:00:00+00', '2024-10-27 01:30:00+00', '2030-07-01 00:00:00+00', '2037-12-31 12:00:00+00',
];

export type TzFingerprint = Record<string, string>; // zone → comma-joined offsets in seconds

export async function tzFingerprint(side: Side): Promise<TzFingerprint> {
  const r = await rows<{ name: string; offsets: string }>(
    side.client,
    `select z.name, string_agg(extract(epoch from (i at time zone z.name) - (i at time zone 'UTC'))::int::text, ',' order by i) as offsets
     from pg_timezone_names z, unnest($1::timestamptz[]) i where z.name not in ('posixrules', 'localtime', 'Factory') group by z.name`,
    [FIXED_INSTANTS],
  );
  const out: TzFingerprint = {};
  for (const row of r) out[row.name] = row.offsets;
  return out;
}

export function fingerprintHash(fp: TzFingerprint): string {
  const h = createHash('sha256');
  for (const k of Object.keys(fp).sort()) h.update(k + '=' + fp[k] + ';');
  return h.digest('hex').slice(0, 16);
}

/** Pure: zones whose offsets at the fixed instants differ, and zones only one side knows. */
export function diffTzFingerprints(a: TzFingerprint, b: TzFingerprint, zonesInUse: string[]): DriftFinding[] {
  const out: DriftFinding[] = [];
  const differing: string[] = [];
  for (const z of Object.keys(a).sort()) {
    if (!(z in b)) continue;
    if (a[z] !== b[z]) differing.push(z);
  }
  const inUse = new Set(zonesInUse.map((z) => z.toLowerCase()));
  for (const z of differing.filter((z) => inUse.has(z.toLowerCase()))) {
    out.push(finding('timezone', 'error', `time zone ${z}`, a[z], b[z], `the two servers' tz databases give zone ${z} (in use as TimeZone) different UTC offsets at fixed instants (seconds at ${FIXED_INSTANTS.length} instants)`,
      'use the same tzdata on both (PostgreSQL built --with-system-tzdata, or the same minor release); check stored local times around the changed dates'));
  }
  const others = differing.filter((z) => !inUse.has(z.toLowerCase()));
  if (others.length) {
    out.push(finding('timezone', 'warning', 'tz database', others.slice(0, 20).map((z) => `${z}: ${a[z]}`), others.slice(0, 20).map((z) => `${z}: ${b[z]}`),
      `${others.length} time zones have different UTC offsets on the two servers at fixed instants (${others.slice(0, 8).join(', ')}${others.length > 8 ? ', …' : ''}): their tz databases differ`,
      'sessions that SET TimeZone to one of these zones will see different local times; align tzdata versions'));
  }
  const onlyA = Object.keys(a).filter((z) => !(z in b));
  const onlyB = Object.keys(b).filter((z) => !(z in a));
  if (onlyA.length) out.push(finding('timezone', onlyA.some((z) => inUse.has(z.toLowerCase())) ? 'error' : 'warning', 'tz database', onlyA.slice(0, 20), null,
    `${onlyA.length} zone names exist only on the source (${onlyA.slice(0, 8).join(', ')}${onlyA.length > 8 ? ', …' : ''})`, 'sessions or columns that name these zones will fail on the target'));
  if (onlyB.length) out.push(finding('timezone', 'info', 'tz database', null, onlyB.slice(0, 20), `${onlyB.length} zone names exist only on the target`, 'nothing to do unless the application enumerates zones'));
  return out;
}

/** Expressions whose value depends on the session TimeZone. */
export const ZONE_DEPENDENT = /\b(localtimestamp|localtime|current_date|current_time)\b|::timestamp without time zone|::date\b|\bdate_trunc\s*\(|\bto_char\s*\(|\bdate_part\s*\(|\bextract\s*\(|::time without time zone|\btimezone\s*\(/i;

export function dependsOnZone(expr: string | null | undefined): boolean {
  if (!expr) return false;
  // A date/time constant ('2000-01-01'::date) is the same everywhere; 'now'/'today'… are not constants.
  let e = expr.replace(/'(?!(?:now|today|tomorrow|yesterday)')(?:[^']|'')*'::(?:date|timestamp without time zone|time without time zone)\b/gi, "''");
  // date_trunc / date_part / to_char / EXTRACT over an explicitly zoned value (… AT TIME ZONE 'UTC') do not read the session's zone.
  e = withoutZonedCalls(e);
  return ZONE_DEPENDENT.test(e);
}

function withoutZonedCalls(expr: string): string {
  const re = /\b(date_trunc|date_part|to_char|extract)\s*\(/gi;
  let out = '';
  let from = 0;
  for (let m = re.exec(expr); m; m = re.exec(expr)) {
    if (m.index < from) continue;
    let depth = 0;
    let end = -1;
    for (let i = m.index + m[0].length - 1; i < expr.length; i++) {
      if (expr[i] === '(') depth++;
      else if (expr[i] === ')' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) break;
    const call = expr.slice(m.index, end + 1);
    if (/ AT TIME ZONE /i.test(call) && !ZONE_DEPENDENT.test(call.slice(m[0].length).replace(/\bAT TIME ZONE\b/gi, ''))) {
      out += expr.slice(from, m.index) + 'zoned()';
      from = end + 1;
      re.lastIndex = end + 1;
    }
  }
  return out + expr.slice(from);
}

export interface ZoneObjects {
  timestampColumns: string[];
  expressions: Array<{ object: string; expr: string }>;
}

const USER_NS = `n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'`;

export async function zoneObjects(side: Side): Promise<ZoneObjects> {
  const c = side.client;
  const ts = await rows(c, `select format('%I.%I.%I', n.nspname, cl.relname, a.attname) as key
     from pg_attribute a join pg_class cl on cl.oid = a.attrelid join pg_namespace n on n.oid = cl.relnamespace
     where a.attnum > 0 and not a.attisdropped and cl.relkind in ('r','p','m','f') and a.atttypid = 'timestamp'::regtype and ${USER_NS} order by 1`);
  const exprs = await rows(c, `
     select 'default of column ' || format('%I.%I.%I', n.nspname, cl.relname, a.attname) as object, pg_get_expr(d.adbin, d.adrelid) as expr
       from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum join pg_class cl on cl.oid = d.adrelid join pg_namespace n on n.oid = cl.relnamespace where ${USER_NS}
     union all
     select 'constraint ' || format('%I.%I.%I', n.nspname, cl.relname, k.conname), pg_get_constraintdef(k.oid)
       from pg_constraint k join pg_class cl on cl.oid = k.conrelid join pg_namespace n on n.oid = cl.relnamespace where k.contype = 'c' and ${USER_NS}
     union all
     select 'index ' || format('%I.%I', n.nspname, ic.relname), pg_get_indexdef(i.indexrelid)
       from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace where (i.indexprs is not null or i.indpred is not null) and ${USER_NS}
     union all
     select 'view ' || format('%I.%I', n.nspname, cl.relname), pg_get_viewdef(cl.oid)
       from pg_class cl join pg_namespace n on n.oid = cl.relnamespace where cl.relkind in ('v','m') and ${USER_NS}
     union all
     select 'function ' || format('%I.%I', n.nspname, p.proname), p.prosrc
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
       where l.lanname in ('sql','plpgsql') and ${USER_NS}
       and not exists (select 1 from pg_depend dep where dep.classid = 'pg_proc'::regclass and dep.objid = p.oid and dep.deptype = 'e')`);
  return { timestampColumns: ts.map((r) => r.key), expressions: exprs.filter((r) => dependsOnZone(r.expr)).map((r) => ({ object: r.object, expr: r.expr })) };
}

export async function formatSettings(side: Side): Promise<Record<string, string>> {
  const names = Object.keys(FORMAT_SETTINGS);
  const r = await rows(side.client, `select name, setting from pg_settings where name = any($1)`, [names]);
  const out: Record<string, string> = {};
  for (const row of r) out[row.name] = row.setting;
  return out;
}

/** Pure: settings differences, with the zone-dependent objects named when TimeZone differs. */
export function diffTimezone(a: Record<string, string>, b: Record<string, string>, objs: ZoneObjects, sourceMajor: number, targetMajor: number): DriftFinding[] {
  const out: DriftFinding[] = [];
  for (const [name, sev] of Object.entries(FORMAT_SETTINGS)) {
    const va = a[name] ?? null;
    const vb = b[name] ?? null;
    if (va === vb) continue;
    let severity = sev;
    // 12 changed what the default means (shortest-exact); 0/1 defaults of 11/12+ are the same intent.
    if (name === 'extra_float_digits' && (sourceMajor < 12) !== (targetMajor < 12)) severity = 'info';
    if (name === 'TimeZone' && sameZone(va, vb)) severity = 'info';
    // DateStyle is two settings in one: the output format (a warning: text output changes) and the
    // field order used to read ambiguous input such as 01/02/2024 (an error: the same text stores another date).
    if (name === 'DateStyle') severity = dateOrder(va) !== dateOrder(vb) ? 'error' : 'warning';
    out.push(finding('timezone', severity, `setting ${name}`, va, vb, messageFor(name, va, vb), hintFor(name)));
  }
  if (a.TimeZone !== b.TimeZone && !sameZone(a.TimeZone, b.TimeZone)) {
    for (const col of objs.timestampColumns) {
      out.push(finding('timezone', 'warning', `column ${col}`, a.TimeZone, b.TimeZone,
        `column ${col} is timestamp without time zone: values copied as written, but new values computed from now() or local time will be in ${b.TimeZone} instead of ${a.TimeZone}`,
        `set TimeZone = '${a.TimeZone}' on the target (ALTER DATABASE … SET TimeZone, or postgresql.conf), or migrate the column to timestamptz`));
    }
    const hint = `set TimeZone = '${a.TimeZone}' on the target (ALTER DATABASE … SET TimeZone, or postgresql.conf), or write the expressions with an explicit zone (now() AT TIME ZONE '${a.TimeZone}')`;
    if (objs.expressions.length < 3) {
      for (const e of objs.expressions)
        out.push(finding('timezone', 'error', e.object, a.TimeZone, b.TimeZone, `${e.object} depends on the server TimeZone (${truncate(e.expr)}) and will compute other values on the target`, hint));
    } else {
      // One cause (the TimeZone differs), many objects: one finding listing them all.
      const list = objs.expressions.slice(0, 5).map((e) => `${e.object} (${truncate(e.expr, 60)})`).join(', ');
      const f = finding('timezone', 'error', `${objs.expressions[0].object} (+${objs.expressions.length - 1} more)`, a.TimeZone, b.TimeZone,
        `${objs.expressions.length} objects depend on the server TimeZone (${a.TimeZone} → ${b.TimeZone}) and will compute other values on the target: ${list}${objs.expressions.length > 5 ? `, … (${objs.expressions.length} in all)` : ''}`, hint);
      f.objects = objs.expressions.map((e) => e.object);
      out.push(f);
    }
  }
  return out;
}

/** The field order DateStyle reads ambiguous dates in (MDY, DMY or YMD; the default is MDY). */
function dateOrder(v: string | null): string {
  const m = /\b(MDY|DMY|YMD|US|NONEURO|NONEUROPEAN|EURO|EUROPEAN)\b/i.exec(v ?? '');
  const w = (m?.[1] ?? 'MDY').toUpperCase();
  return w === 'US' || w.startsWith('NONEURO') ? 'MDY' : w.startsWith('EURO') ? 'DMY' : w;
}

function sameZone(a: string | null, b: string | null): boolean {
  const norm = (z: string | null) => (z ?? '').replace(/^Etc\//, '').replace(/^(UCT|Universal|Zulu|GMT|Greenwich)$/, 'UTC');
  return norm(a) === norm(b);
}

function truncate(s: string, n = 120): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? one.slice(0, n) + '…' : one;
}

function messageFor(name: string, a: string | null, b: string | null): string {
  switch (name) {
    case 'TimeZone':
      return `server TimeZone differs (${a} → ${b}): timestamptz values print with other offsets, and now()::timestamp, ::date, date_trunc and defaults compute other local times`;
    case 'DateStyle':
      return dateOrder(a) !== dateOrder(b)
        ? `DateStyle differs (${a} → ${b}): ambiguous date input like 01/02/2024 is read in another field order (${dateOrder(a)} → ${dateOrder(b)}), so the same text stores another date, and dates print differently`
        : `DateStyle differs (${a} → ${b}): dates print differently (input is read in the same field order)`;
    case 'IntervalStyle':
      return `IntervalStyle differs (${a} → ${b}): intervals print differently`;
    case 'extra_float_digits':
      return `extra_float_digits differs (${a} → ${b}): floats print with other precision`;
    case 'standard_conforming_strings':
      return `standard_conforming_strings differs (${a} → ${b}): backslashes in ordinary string literals mean something else`;
    default:
      return `${name} differs (${a} → ${b})`;
  }
}

function hintFor(name: string): string {
  return `ALTER DATABASE … SET ${name} = … on the target (or postgresql.conf) to match the source, unless the change is intended`;
}

export async function checkTimezone(ctx: DriftContext): Promise<DriftFinding[]> {
  const [sa, sb] = await Promise.all([formatSettings(ctx.source), formatSettings(ctx.target)]);
  const objs = await zoneObjects(ctx.source);
  const out = diffTimezone(sa, sb, objs, ctx.source.major, ctx.target.major);
  const [fa, fb] = await Promise.all([tzFingerprint(ctx.source), tzFingerprint(ctx.target)]);
  ctx.record('timezoneFingerprint', { source: fingerprintHash(fa), target: fingerprintHash(fb), zones: [Object.keys(fa).length, Object.keys(fb).length] });
  out.push(...diffTzFingerprints(fa, fb, [sa.TimeZone, sb.TimeZone].filter(Boolean)));
  return out;
}
