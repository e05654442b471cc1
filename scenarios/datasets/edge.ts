/**
 * edge: the shapes that break cutovers, planted on purpose. Preflight and drift tests rely on these
 * exact names (see EDGE_SHAPES):
 *  - edge_times: `timestamp without time zone` beside `timestamptz`, DST-boundary instants, a
 *    `localtimestamp` default (evaluated in the server's TimeZone), infinities
 *  - edge_no_pk: no primary key, no unique index (UPDATE/DELETE fail once published)
 *  - edge_replica_full: REPLICA IDENTITY FULL
 *  - edge_unlogged: UNLOGGED (not replicated)
 *  - edge_generated: a STORED generated column (PostgreSQL 12+; on 11 the column is absent)
 *  - edge_daily_counts: a materialized view (not replicated)
 *  - "EdgeCases"."Mixed Case Table": quoted schema, table and columns ("Id", "select", "has space", "quote""d")
 *  - edge_free_seq: a sequence owned by no column (must be carried over at cutover by hand)
 *  - edge_types: arrays, bytea, jsonb, TOASTed text (every 50th row ~20 kB), NULL-heavy columns
 *  - edge_strings: unicode, emoji and collation-sensitive strings (case, accents, punctuation,
 *    hyphens), with a btree index whose order depends on the collation
 * On a LATIN1 database the strings are limited to what LATIN1 can hold.
 */
import { DAY_MS, EPOCH_2024, Rng, arrayLiteral, hashString, isoAt, pools, share, type Dataset, type DatasetContext, type Preset } from './gen.ts';

export const EDGE_SHAPES = {
  timestampPair: 'public.edge_times',
  noPrimaryKey: 'public.edge_no_pk',
  replicaIdentityFull: 'public.edge_replica_full',
  unlogged: 'public.edge_unlogged',
  generatedColumn: 'public.edge_generated',
  materializedView: 'public.edge_daily_counts',
  quotedIdentifiers: '"EdgeCases"."Mixed Case Table"',
  unownedSequence: 'public.edge_free_seq',
  types: 'public.edge_types',
  strings: 'public.edge_strings',
} as const;

/** Strings whose order differs between C, libc locales and ICU (case, accents, punctuation, hyphens, scripts). */
export const TRICKY_STRINGS = [
  'a', 'A', 'á', 'Á', 'à', 'ä', 'Ä', 'b', 'B', 'z', 'Z', 'zebra', 'Zebra', 'ZEBRA',
  'co-op', 'coop', 'co op', 'co_op', 'Co-op', 'x-ray', 'X-Ray', 'xray', 'e-mail', 'email', 'E-Mail',
  'résumé', 'resume', 'Resume', 'résume', 'Ångström', 'angstrom', 'straße', 'strasse', 'STRASSE', 'ß',
  'ñandú', 'nandu', 'Œuvre', 'oeuvre', 'æble', 'aeble', 'øre', 'ore', 'Ørsted',
  'e\u0301clair', 'éclair', 'eclair', '1', '10', '2', '-1', '+1', '!bang', '#hash', '@at', '_under', '~tilde',
  '', ' ', ' leading', 'trailing ', 'tab\there', 'new\nline', 'back\\slash', 'quote"s', "apos'trophe", 'semi;colon', 'comma,sep',
  'İstanbul', 'istanbul', 'ı', 'I', 'Ω', 'ω', 'Ǆ', 'ǅ', 'ﬁle', 'file', 'Straße-Nord', 'zero\u200bwidth', '\u00a0nbsp',
  '日本語', '中文', '한국어', 'Ελληνικά', 'русский', 'עברית', 'العربية', '😀', '👍🏽', '🏳️‍🌈', 'emoji 🎉 party', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
];

export function stringsFor(encoding: string): string[] {
  if (encoding === 'UTF8' || encoding === 'SQL_ASCII') return TRICKY_STRINGS;
  // Single-byte encodings: keep what Latin-1 can hold (other single-byte encodings: ASCII only).
  const max = encoding === 'LATIN1' ? 0xff : 0x7f;
  return TRICKY_STRINGS.filter((s) => [...s].every((ch) => ch.codePointAt(0)! <= max));
}

/** Wall-clock times that do not exist or exist twice somewhere (NY, London/Berlin, Sydney), and other edges. */
export const DST_LOCAL_TIMES = [
  '2024-03-10 02:30:00', // America/New_York: does not exist
  '2024-11-03 01:30:00', // America/New_York: happens twice
  '2024-03-31 02:30:00', // Europe/Berlin: does not exist
  '2024-10-27 01:30:00', // Europe/London: happens twice
  '2024-04-07 02:30:00', // Australia/Sydney: happens twice
  '2024-10-06 02:30:00', // Australia/Sydney: does not exist
  '2024-02-29 12:00:00',
  '2024-12-31 23:59:59.999999',
  '1970-01-01 00:00:00',
  '1900-01-01 00:00:00',
  '2038-01-19 03:14:08',
  'infinity',
  '-infinity',
];
/** The instants of those transitions (with explicit offsets, so the session TimeZone does not matter). */
export const DST_INSTANTS = [
  '2024-03-10 06:59:59+00', '2024-03-10 07:00:00+00', '2024-11-03 05:59:59+00', '2024-11-03 06:00:00+00',
  '2024-03-31 00:59:59+00', '2024-03-31 01:00:00+00', '2024-10-27 00:59:59+00', '2024-10-27 01:00:00+00',
  '2024-04-06 15:59:59+00', '2024-04-06 16:00:00+00', '2024-10-05 15:59:59+00', '2024-10-05 16:00:00+00',
  '1970-01-01 00:00:00+00', '1900-01-01 00:00:00+00', 'infinity', '-infinity',
];

export function edgeDdl(ctx: Pick<DatasetContext, 'major'>): string {
  const generated = ctx.major >= 12 ? ',\n  total numeric(12,2) generated always as (price * qty) stored' : '';
  return `
create table edge_times (
  id integer not null,
  ts timestamp without time zone,
  tstz timestamp with time zone,
  d date,
  created_local timestamp without time zone not null default localtimestamp,
  label text
);

create table edge_no_pk (
  event text not null,
  amount numeric,
  happened_at timestamptz
);

create table edge_replica_full (
  id integer not null,
  payload text,
  updated_at timestamptz
);

create unlogged table edge_unlogged (
  id integer not null,
  cache_key text not null,
  value jsonb
);

create table edge_generated (
  id integer not null,
  price numeric(10,2) not null,
  qty integer not null${generated}
);

create table edge_types (
  id integer not null,
  tags text[],
  scores integer[],
  blob bytea,
  doc jsonb,
  body text,
  null_a text,
  null_b integer,
  null_c timestamptz
);

create table edge_strings (
  id integer not null,
  s text not null,
  note text
);

create schema "EdgeCases";
create table "EdgeCases"."Mixed Case Table" (
  "Id" integer not null,
  "DisplayName" text,
  "select" text,
  "has space" integer,
  "quote""d" text
);

create sequence edge_free_seq;
`;
}

export const EDGE_POST_DDL = `
alter table edge_times add primary key (id);
alter table edge_replica_full add primary key (id);
alter table edge_replica_full replica identity full;
alter table edge_unlogged add primary key (id);
alter table edge_generated add primary key (id);
alter table edge_types add primary key (id);
alter table edge_strings add primary key (id);
create index edge_strings_s_idx on edge_strings (s);
alter table "EdgeCases"."Mixed Case Table" add constraint "Mixed Case Table_pkey" primary key ("Id");
create index "Mixed Case Table_DisplayName_idx" on "EdgeCases"."Mixed Case Table" ("DisplayName");
create materialized view edge_daily_counts as
  select date_trunc('day', tstz) as day, count(*) as n from edge_times where tstz > '-infinity' and tstz < 'infinity' group by 1;
create unique index edge_daily_counts_day_idx on edge_daily_counts (day);
select setval('edge_free_seq', 4242);
`;

export function buildEdge(ctx: DatasetContext): Dataset {
  const { seed } = ctx;
  const p = pools(seed);
  const strings = stringsFor(ctx.encoding);
  const s = (t: string) => hashString('edge.' + t);
  const n = (w: number) => share(ctx.scale, w, 5);
  return {
    name: 'edge',
    preDdl: edgeDdl(ctx),
    postDdl: EDGE_POST_DDL,
    tables: [
      {
        schema: 'public',
        name: 'edge_times',
        columns: ['id', 'ts', 'tstz', 'd', 'created_local', 'label'],
        rows: n(0.2),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('times'), i);
          // The first rows are the boundary cases themselves; then random instants around them.
          const local = i < DST_LOCAL_TIMES.length ? DST_LOCAL_TIMES[i] : isoAt(EPOCH_2024 + r.int(365 * DAY_MS)).replace('T', ' ').replace('Z', '');
          const inst = i < DST_INSTANTS.length ? DST_INSTANTS[i] : isoAt(EPOCH_2024 + r.int(365 * DAY_MS));
          const d = local.includes('infinity') ? local : local.slice(0, 10);
          return [i + 1, local, inst, d, local.includes('infinity') ? '2024-01-01 00:00:00' : local, i < DST_LOCAL_TIMES.length ? 'boundary' : null];
        },
      },
      {
        schema: 'public',
        name: 'edge_no_pk',
        columns: ['event', 'amount', 'happened_at'],
        rows: n(0.15),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('no_pk'), i);
          // Duplicates on purpose: without a key, identical rows cannot be told apart.
          return [r.pick(['signup', 'login', 'logout', 'purchase']), r.chance(0.1) ? null : `${r.int(100000)}.${r.int(100)}`, isoAt(EPOCH_2024 + (r.int(1000) * 60_000))];
        },
      },
      {
        schema: 'public',
        name: 'edge_replica_full',
        columns: ['id', 'payload', 'updated_at'],
        rows: n(0.1),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('full'), i);
          return [i + 1, r.pick(p.sentences), isoAt(EPOCH_2024 + r.int(90 * DAY_MS))];
        },
      },
      {
        schema: 'public',
        name: 'edge_unlogged',
        columns: ['id', 'cache_key', 'value'],
        rows: n(0.05),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('unlogged'), i);
          return [i + 1, `cache:${r.hex(6)}:${i}`, JSON.stringify({ hits: r.int(1000), word: r.pick(p.words) })];
        },
      },
      {
        schema: 'public',
        name: 'edge_generated',
        columns: ['id', 'price', 'qty'],
        rows: n(0.1),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('generated'), i);
          return [i + 1, `${r.int(10000)}.${String(r.int(100)).padStart(2, '0')}`, 1 + r.int(20)];
        },
      },
      {
        schema: 'public',
        name: 'edge_types',
        columns: ['id', 'tags', 'scores', 'blob', 'doc', 'body', 'null_a', 'null_b', 'null_c'],
        rows: n(0.15),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('types'), i);
          const tags = r.chance(0.1) ? [] : [r.pick(strings), r.pick(p.words), r.chance(0.2) ? null : 'with,comma', r.chance(0.3) ? '{brace}' : 'plain'];
          const scores = r.chance(0.1) ? [] : Array.from({ length: 1 + r.int(5) }, () => r.int(2000) - 1000);
          // Every 50th row carries ~20 kB of poorly compressible text: stored out of line (TOAST).
          const body = i % 50 === 0 ? Array.from({ length: 640 }, () => r.hex(16)).join('') : r.chance(0.5) ? r.pick(p.sentences) : null;
          const doc = { id: i + 1, name: r.pick(strings), nested: { list: [1, 2.5, -3e5, null, true], empty: {} }, big: 12345678901234567890, text: r.pick(strings) };
          return [
            i + 1,
            arrayLiteral(tags),
            arrayLiteral(scores),
            r.chance(0.1) ? null : '\\x' + (i % 7 === 0 ? '00ff00' : '') + r.hex(r.int(64)),
            r.chance(0.1) ? null : JSON.stringify(doc),
            body,
            r.chance(0.95) ? null : r.pick(p.words),
            null,
            r.chance(0.7) ? null : isoAt(EPOCH_2024 + r.int(90 * DAY_MS)),
          ];
        },
      },
      {
        schema: 'public',
        name: 'edge_strings',
        columns: ['id', 's', 'note'],
        rows: n(0.15),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('strings'), i);
          // Every corpus string appears at least once, then mixes of them with words.
          const base = i < strings.length ? strings[i] : r.pick(strings) + (r.chance(0.5) ? ' ' + r.pick(p.words) : '');
          return [i + 1, base, r.chance(0.8) ? null : r.pick(strings)];
        },
      },
      {
        schema: 'EdgeCases',
        name: 'Mixed Case Table',
        columns: ['Id', 'DisplayName', 'select', 'has space', 'quote"d'],
        rows: n(0.1),
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('mixed'), i);
          return [i + 1, `${r.pick(p.firstNames)} ${r.pick(p.lastNames)}`, r.pick(p.words), r.chance(0.3) ? null : r.int(100), r.pick(strings)];
        },
      },
    ],
  };
}

export const edge: Preset = {
  name: 'edge',
  description: 'the shapes that break cutovers: no PK, REPLICA IDENTITY FULL, unlogged, generated column, matview, quoted identifiers, unowned sequence, timestamp vs timestamptz at DST boundaries, arrays, bytea, jsonb, TOAST, NULL-heavy and collation-sensitive strings',
  build: buildEdge,
};
