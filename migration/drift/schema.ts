/**
 * Schema drift: a catalog snapshot of each side (plain data), then a pure diff that says in words
 * what each difference means for the cutover.
 *
 * Coverage is meant to equal `pg_dump --schema-only` plus the globals the database uses
 * (`pg_dumpall --globals-only`: roles, memberships, tablespaces): a dump diff must never find what
 * this misses. Every kind below names the dump statement it stands for.
 *
 * Meaning, not spelling: every snapshot runs inside one read-only transaction with
 * `SET LOCAL search_path = ''` on both sides, so pg_get_expr / pg_get_viewdef / pg_get_indexdef /
 * format_type qualify names the same way on both sides (only pg_catalog stays implicit). An
 * expression that still differs only by the schema of a function it calls resolves to another
 * function on the other side (pgcrypto's gen_random_uuid on 11/12, the built-in on 13+): that is
 * reported once per function, with the objects listed, not once per column.
 *
 * The queries run on every major 11–18; columns that only some majors have are chosen by
 * server_version_num. Names are rendered with format('%I') so keys are stable and unambiguous.
 */
import type { Client } from '../pg.ts';
import { icuLanguageTag } from './collation.ts';
import { finding, rows, type DriftContext, type DriftFinding, type Severity } from './types.ts';

export type Props = Record<string, string | number | boolean | null>;
export const SCHEMA_KINDS = [
  'schema', 'extension', 'role', 'tablespace', 'collation', 'type', 'domain constraint', 'function', 'aggregate', 'cast', 'operator',
  'operator class', 'table', 'column', 'constraint', 'index', 'sequence', 'view', 'trigger', 'event trigger', 'rule', 'policy',
  'statistics', 'publication', 'foreign data wrapper', 'foreign server', 'user mapping', 'text search configuration',
  'text search dictionary', 'default privileges', 'grant', 'column grant', 'function grant', 'type grant', 'schema grant',
  'database grant', 'foreign server grant', 'language', 'access method', 'conversion', 'transform', 'comment',
] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];
export type SchemaSnapshot = Partial<Record<SchemaKind, Record<string, Props>>>;

const USER_NS = `n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'`;
const NOT_EXT = (classid: string, oid: string) =>
  `not exists (select 1 from pg_depend dep where dep.classid = '${classid}'::regclass and dep.objid = ${oid} and dep.deptype = 'e')`;
/** Objects PostgreSQL made itself as part of another (14+ multirange constructors and casts of a range type): pg_dump skips them. */
const NOT_INTERNAL = (classid: string, oid: string) =>
  `not exists (select 1 from pg_depend dep where dep.classid = '${classid}'::regclass and dep.objid = ${oid} and dep.deptype = 'i')`;
/** Identity arguments; 14+ prints procedures' arguments with an explicit IN mode, 11–13 without: IN is the default, drop it. */
const FNARGS = `regexp_replace(pg_get_function_identity_arguments(p.oid), '(^|, )IN ', '\\1', 'g')`;
/** Sorted, comma-joined array (reloptions, proconfig, srvoptions…), null when empty. */
const SORTED = (arr: string) => `(select string_agg(x, ', ' order by x) from unnest(${arr}) x)`;
/** The grantee of an aclexplode row: PUBLIC, "(owner)" for the owner's own rights (so a changed owner shows once), or the role. */
const GRANTEE = (owner: string) => `case when x.grantee = 0 then 'PUBLIC' when x.grantee = ${owner} then '(owner)' else format('%I', pg_get_userbyid(x.grantee)) end`;
/**
 * Every snapshot and re-print runs under the same output settings on both sides: an empty
 * search_path (names qualified the same way), and the date/time output a constant is printed with
 * (a timestamptz partition bound or default prints in the session's DateStyle and TimeZone: the same
 * bound reads '2024-01-01 00:00:00+00' or '01/01/2024 09:00:00 JST' by the connecting session alone).
 */
const SPELLING_SETTINGS = `set local search_path = ''; set local datestyle = 'ISO, YMD'; set local timezone = 'UTC'; set local intervalstyle = 'postgres'`;

/** The cutover's own replication objects (migration/replication.ts objectNames) are not the application's schema. */
const OWN_PUBLICATION = `p.pubname !~ '^cutover_'`;

export function snapshotQueries(versionNum: number): Record<SchemaKind, string> {
  const v = versionNum;
  const generated = v >= 120000 ? `nullif(a.attgenerated::text, '')` : `null::text`;
  const compression = v >= 140000 ? `nullif(a.attcompression::text, '')` : `null::text`;
  const collLocale =
    v >= 170000 ? `coalesce(co.colllocale, co.collcollate)` : v >= 150000 ? `coalesce(co.colliculocale, co.collcollate)` : `co.collcollate`;
  const deterministic = v >= 120000 ? `co.collisdeterministic` : `true`;
  const icuRules = v >= 160000 ? `co.collicurules` : `null::text`;
  const sqlBody = v >= 140000 ? `case when p.prosqlbody is not null then pg_get_function_sqlbody(p.oid) end` : `null::text`;
  const stxTarget = v >= 130000 ? `nullif(coalesce(s.stxstattarget::int, -1), -1)` : `null::int`;
  const viaRoot = v >= 130000 ? `p.pubviaroot` : `false`;
  const pubRelExtra = v >= 150000 ? ` || coalesce(' WHERE ' || pg_get_expr(pr.prqual, pr.prrelid), '') || coalesce(' COLUMNS ' || pr.prattrs::text, '')` : '';
  const pubSchemas = v >= 150000
    ? `(select string_agg(pn.pnnspid::regnamespace::text, ', ' order by 1) from pg_publication_namespace pn where pn.pnpubid = p.oid)`
    : `null::text`;
  const detachPending = v >= 140000 ? `nullif((select bool_or(i.inhdetachpending) from pg_inherits i where i.inhrelid = c.oid), false)` : `null::boolean`;
  // 13+: triggers cloned onto partitions point at their parent (pg_dump skips them); on 11/12 clones are tgisinternal.
  const ownTrigger = v >= 130000 ? `and t.tgparentid = 0` : '';
  const seqUser = `${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`;
  return {
    // CREATE SCHEMA … AUTHORIZATION
    schema: `select format('%I', n.nspname) as key, pg_get_userbyid(n.nspowner) as owner
             from pg_namespace n where ${USER_NS} and ${NOT_EXT('pg_namespace', 'n.oid')}`,
    // CREATE EXTENSION … WITH SCHEMA … VERSION
    extension: `select format('%I', e.extname) as key, e.extversion as version, (select format('%I', nspname) from pg_namespace where oid = e.extnamespace) as schema from pg_extension e`,
    // pg_dumpall --roles-only (passwords are never read)
    role: `select format('%I', r.rolname) as key, r.rolsuper as superuser, r.rolinherit as inherit, r.rolcreaterole as createrole,
             r.rolcreatedb as createdb, r.rolcanlogin as login, r.rolreplication as replication, r.rolbypassrls as bypassrls,
             r.rolconnlimit as connlimit,
             (select string_agg(format('%I', g.rolname), ',' order by g.rolname) from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid) as member_of
           from pg_roles r where r.rolname !~ '^pg_'`,
    // pg_dumpall --tablespaces-only: existence and options (locations differ between hosts by design).
    tablespace: `select format('%I', spcname) as key, ${SORTED('spcoptions')} as options, pg_get_userbyid(spcowner) as owner
                 from pg_tablespace where spcname not in ('pg_default', 'pg_global')`,
    // CREATE COLLATION
    collation: `select format('%I.%I', n.nspname, co.collname) as key, co.collprovider::text as provider, ${collLocale} as locale,
                  nullif(co.collctype, co.collcollate) as ctype, ${deterministic} as deterministic, ${icuRules} as icu_rules, pg_get_userbyid(co.collowner) as owner
                from pg_collation co join pg_namespace n on n.oid = co.collnamespace where ${USER_NS} and ${NOT_EXT('pg_collation', 'co.oid')}`,
    // CREATE TYPE (enum, composite, range, base) and CREATE DOMAIN
    type: `select format('%I.%I', n.nspname, t.typname) as key,
              case t.typtype when 'e' then 'enum' when 'c' then 'composite' when 'r' then 'range' when 'd' then 'domain' when 'b' then 'base' when 'm' then 'multirange' else t.typtype::text end as kind,
              pg_get_userbyid(t.typowner) as owner,
              (select string_agg(quote_literal(e.enumlabel), ', ' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid) as labels,
              (select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) || coalesce(' COLLATE ' || nullif(ac.collname, 'default'), ''), ', ' order by a.attnum)
                 from pg_attribute a left join pg_collation ac on ac.oid = a.attcollation and a.attcollation <> 0
                 where t.typtype = 'c' and a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped) as attributes,
              case when t.typtype = 'd' then format_type(t.typbasetype, t.typtypmod) end as base_type,
              case when t.typtype = 'd' then t.typnotnull end as not_null,
              case when t.typtype = 'd' then pg_get_expr(t.typdefaultbin, 0) end as "default",
              case when t.typtype = 'd' and t.typcollation <> 0 then (select collname from pg_collation where oid = t.typcollation) end as collation,
              (select format_type(r.rngsubtype, null) || coalesce(' COLLATE ' || rc.collname, '') || ' ' || ro.opcname
                      || coalesce(' CANONICAL ' || nullif(r.rngcanonical::regproc::text, '-'), '') || coalesce(' SUBTYPE_DIFF ' || nullif(r.rngsubdiff::regproc::text, '-'), '')
                 from pg_range r join pg_opclass ro on ro.oid = r.rngsubopc left join pg_collation rc on rc.oid = r.rngcollation and r.rngcollation <> 0
                 where r.rngtypid = t.oid) as range
            from pg_type t join pg_namespace n on n.oid = t.typnamespace
            where ${USER_NS} and ${NOT_EXT('pg_type', 't.oid')} and t.typtype in ('e','c','r','d','b')
              and (t.typrelid = 0 or (select relkind from pg_class where oid = t.typrelid) = 'c')
              and not (t.typtype = 'b' and t.typelem <> 0 and t.typlen = -1 and exists (select 1 from pg_type el where el.oid = t.typelem and el.typarray = t.oid))`,
    // ALTER DOMAIN … ADD CONSTRAINT
    'domain constraint': `select format('%I.%I.%I', n.nspname, t.typname, k.conname) as key, regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') as definition, k.convalidated as validated
                          from pg_constraint k join pg_type t on t.oid = k.contypid join pg_namespace n on n.oid = t.typnamespace
                          where k.contypid <> 0 and k.contype <> 'n' and ${USER_NS} and ${NOT_EXT('pg_type', 't.oid')}`,
    // CREATE FUNCTION / PROCEDURE (aggregates: their own kind)
    function: `select format('%I.%I(%s)', n.nspname, p.proname, ${FNARGS}) as key,
                 case p.prokind when 'p' then 'procedure' when 'w' then 'window function' else 'function' end as kind,
                 pg_get_function_result(p.oid) as result, l.lanname as language, p.provolatile::text as volatility,
                 p.prosecdef as security_definer, p.proisstrict as strict, p.proleakproof as leakproof, p.proparallel::text as parallel,
                 p.procost::float8 as cost, p.prorows::float8 as rows,
                 coalesce(${sqlBody}, p.prosrc) as body,
                 ${SORTED('p.proconfig')} as config, pg_get_userbyid(p.proowner) as owner
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
               where p.prokind <> 'a' and ${USER_NS} and ${NOT_EXT('pg_proc', 'p.oid')} and ${NOT_INTERNAL('pg_proc', 'p.oid')}`,
    // CREATE AGGREGATE
    aggregate: `select format('%I.%I(%s)', n.nspname, p.proname, ${FNARGS}) as key,
                  a.aggtransfn::regproc::text as state_function, format_type(a.aggtranstype, null) as state_type, a.agginitval as initial,
                  nullif(a.aggfinalfn::regproc::text, '-') as final_function, nullif(a.aggcombinefn::regproc::text, '-') as combine_function,
                  case a.aggkind when 'n' then 'normal' when 'o' then 'ordered-set' when 'h' then 'hypothetical-set' end as aggregate_kind, nullif(a.aggsortop, 0)::regoperator::text as sort_operator, pg_get_userbyid(p.proowner) as owner
                from pg_aggregate a join pg_proc p on p.oid = a.aggfnoid join pg_namespace n on n.oid = p.pronamespace
                where ${USER_NS} and ${NOT_EXT('pg_proc', 'p.oid')}`,
    // CREATE CAST (user-defined: oids past the bootstrap range)
    cast: `select format_type(c.castsource, null) || ' AS ' || format_type(c.casttarget, null) as key,
             case when c.castfunc = 0 then null else c.castfunc::regprocedure::text end as function,
             case c.castcontext when 'e' then 'explicit' when 'a' then 'on assignment' else 'implicit' end as context,
             case c.castmethod when 'f' then 'function' when 'b' then 'binary coercible' else 'inout' end as method
           from pg_cast c where c.oid >= 16384 and ${NOT_EXT('pg_cast', 'c.oid')} and ${NOT_INTERNAL('pg_cast', 'c.oid')}`,
    // CREATE OPERATOR
    operator: `select o.oid::regoperator::text as key, o.oprcode::regproc::text as function, format_type(o.oprresult, null) as result,
                 nullif(o.oprcom, 0)::regoperator::text as commutator, nullif(o.oprnegate, 0)::regoperator::text as negator,
                 nullif(o.oprrest::regproc::text, '-') as restrict, nullif(o.oprjoin::regproc::text, '-') as "join",
                 o.oprcanhash as hashes, o.oprcanmerge as merges, pg_get_userbyid(o.oprowner) as owner
               from pg_operator o join pg_namespace n on n.oid = o.oprnamespace where ${USER_NS} and ${NOT_EXT('pg_operator', 'o.oid')}`,
    // CREATE OPERATOR CLASS / FAMILY
    'operator class': `select format('%I.%I', n.nspname, oc.opcname) || ' USING ' || am.amname as key, format_type(oc.opcintype, null) as type,
                         oc.opcdefault as "default", format('%I', f.opfname) as family, pg_get_userbyid(oc.opcowner) as owner,
                         (select string_agg(ao.amopstrategy || ':' || ao.amopopr::regoperator::text, ', ' order by ao.amopstrategy) from pg_amop ao where ao.amopfamily = oc.opcfamily and ao.amoplefttype = oc.opcintype) as operators
                       from pg_opclass oc join pg_namespace n on n.oid = oc.opcnamespace join pg_am am on am.oid = oc.opcmethod join pg_opfamily f on f.oid = oc.opcfamily
                       where ${USER_NS} and ${NOT_EXT('pg_opclass', 'oc.oid')}`,
    // CREATE [UNLOGGED|FOREIGN] TABLE … [PARTITION BY …] [INHERITS …] [WITH (…)] [TABLESPACE …]; ALTER TABLE … REPLICA IDENTITY / ENABLE ROW LEVEL SECURITY
    table: `select format('%I.%I', n.nspname, c.relname) as key,
              case c.relkind when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table' else c.relkind::text end as kind,
              c.relpersistence::text as persistence, pg_get_userbyid(c.relowner) as owner,
              c.relrowsecurity as row_security, c.relforcerowsecurity as force_row_security,
              case when c.relkind in ('r','p','m') then c.relreplident::text end
                || coalesce(' ' || (select format('%I', ic.relname) from pg_index ri join pg_class ic on ic.oid = ri.indexrelid where ri.indrelid = c.oid and ri.indisreplident and c.relreplident = 'i'), '') as replica_identity,
              ${SORTED('c.reloptions')} as options,
              (select string_agg(format('%I', t.spcname), '') from pg_tablespace t where t.oid = c.reltablespace) as tablespace,
              case when c.relkind in ('r','m') then coalesce(am.amname, 'heap') when c.relkind = 'p' and c.relam <> 0 then am.amname end as access_method,
              (select string_agg(i.inhparent::regclass::text, ', ' order by i.inhseqno) from pg_inherits i where i.inhrelid = c.oid and not c.relispartition) as inherits,
              case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end as partition_key,
              case when c.relispartition then (select i.inhparent::regclass::text from pg_inherits i where i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid) end as partition_of,
              ${detachPending} as detach_pending,
              case when c.reloftype <> 0 then format_type(c.reloftype, null) end as of_type,
              case when c.relkind = 'm' then c.relispopulated end as populated,
              (select string_agg(format('%I', a.attname), ', ' order by a.attnum) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as column_order,
              (select format('%I', s.srvname) || coalesce(' OPTIONS ' || ${SORTED('ft.ftoptions')}, '') from pg_foreign_table ft join pg_foreign_server s on s.oid = ft.ftserver where ft.ftrelid = c.oid) as foreign_server
            from pg_class c join pg_namespace n on n.oid = c.relnamespace left join pg_am am on am.oid = c.relam
            where c.relkind in ('r','p','v','m','f') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // the columns of CREATE TABLE; ALTER COLUMN … SET STORAGE / COMPRESSION / STATISTICS / OPTIONS
    column: `select format('%I.%I.%I', n.nspname, c.relname, a.attname) as key, format_type(a.atttypid, a.atttypmod) as type,
               case when ${generated} is null then pg_get_expr(d.adbin, d.adrelid) end as "default", a.attnotnull as not_null,
               case when a.attcollation <> 0 and a.attcollation <> t.typcollation then format('%I', co.collname) end as collation,
               nullif(a.attidentity::text, '') as identity,
               case when ${generated} is not null then pg_get_expr(d.adbin, d.adrelid) end as generated,
               case when a.attstorage <> t.typstorage then a.attstorage::text end as storage,
               ${compression} as compression,
               nullif(coalesce(a.attstattarget::int, -1), -1) as statistics,
               ${SORTED('a.attoptions')} as options, ${SORTED('a.attfdwoptions')} as fdw_options
             from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
             join pg_type t on t.oid = a.atttypid
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             left join pg_collation co on co.oid = a.attcollation
             where a.attnum > 0 and not a.attisdropped and c.relkind in ('r','p','v','m','f') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // ALTER TABLE … ADD CONSTRAINT. NOT NULL became a pg_constraint row in 18; nullability is compared on the column.
    // Constraints cloned onto partitions (conparentid) are dumped with their parent only.
    constraint: `select format('%I.%I.%I', n.nspname, c.relname, k.conname) as key,
                   regexp_replace(regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', ''), '( NOT)? DEFERRABLE( INITIALLY (DEFERRED|IMMEDIATE))?', '', 'g') as definition,
                   k.convalidated as validated, k.condeferrable as deferrable, k.condeferred as deferred
                 from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
                 where k.contype <> 'n' and k.conparentid = 0 and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // CREATE [UNIQUE] INDEX … USING method (keys opclass COLLATE …) [INCLUDE] [WITH] [TABLESPACE] [WHERE]
    index: `select format('%I.%I', n.nspname, ic.relname) as key, c.oid::regclass::text as "table", am.amname as method, i.indisunique as "unique", i.indisprimary as "primary",
              regexp_replace(regexp_replace(regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING \\S+ ', ''), ' WHERE .*$', ''), ' WITH \\([^()]*\\)$', '') as keys,
              pg_get_expr(i.indpred, i.indrelid) as predicate, i.indisvalid as valid, i.indisclustered as clustered,
              ${SORTED('ic.reloptions')} as options,
              (select format('%I', t.spcname) from pg_tablespace t where t.oid = ic.reltablespace) as tablespace
            from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
            join pg_class c on c.oid = i.indrelid join pg_am am on am.oid = ic.relam
            where ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // CREATE SEQUENCE … AS … INCREMENT … MINVALUE … MAXVALUE … START … CACHE … [NO] CYCLE; ALTER SEQUENCE … OWNED BY
    sequence: `select format('%I.%I', n.nspname, c.relname) as key, format_type(s.seqtypid, null) as type, s.seqstart::text as start,
                 s.seqincrement::text as increment, s.seqmin::text as min, s.seqmax::text as max, s.seqcycle as cycle, s.seqcache::text as cache,
                 (select format('%s.%I', dc.oid::regclass::text, a.attname) || case when d.deptype = 'i' then ' (identity)' else '' end
                    from pg_depend d join pg_class dc on dc.oid = d.refobjid join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0 and d.deptype in ('a','i') limit 1) as owned_by,
                 pg_get_userbyid(c.relowner) as owner
               from pg_sequence s join pg_class c on c.oid = s.seqrelid join pg_namespace n on n.oid = c.relnamespace
               where ${seqUser}`,
    // CREATE [MATERIALIZED] VIEW … AS (options such as security_barrier live on the table kind)
    view: `select format('%I.%I', n.nspname, c.relname) as key, regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g') as definition
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where c.relkind in ('v','m') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // CREATE TRIGGER; ALTER TABLE … ENABLE [REPLICA|ALWAYS] / DISABLE TRIGGER.  11 prints EXECUTE PROCEDURE, 12+ EXECUTE FUNCTION.
    trigger: `select format('%I.%I.%I', n.nspname, c.relname, t.tgname) as key, replace(pg_get_triggerdef(t.oid), ' EXECUTE PROCEDURE ', ' EXECUTE FUNCTION ') as definition, t.tgenabled::text as enabled
              from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
              where not t.tgisinternal ${ownTrigger} and ${USER_NS}`,
    // CREATE EVENT TRIGGER
    'event trigger': `select format('%I', e.evtname) as key, e.evtevent as event, e.evtfoid::regproc::text as function, e.evtenabled::text as enabled,
                        array_to_string(e.evttags, ', ') as tags, pg_get_userbyid(e.evtowner) as owner
                      from pg_event_trigger e where ${NOT_EXT('pg_event_trigger', 'e.oid')}`,
    // CREATE RULE (a view's own _RETURN rule is its body)
    rule: `select format('%I.%I.%I', n.nspname, c.relname, r.rulename) as key, regexp_replace(pg_get_ruledef(r.oid), '\\s+', ' ', 'g') as definition, r.ev_enabled::text as enabled
           from pg_rewrite r join pg_class c on c.oid = r.ev_class join pg_namespace n on n.oid = c.relnamespace
           where r.rulename <> '_RETURN' and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // CREATE POLICY
    policy: `select format('%I.%I.%I', n.nspname, c.relname, p.polname) as key,
               case p.polcmd when 'r' then 'SELECT' when 'a' then 'INSERT' when 'w' then 'UPDATE' when 'd' then 'DELETE' else 'ALL' end as command,
               p.polpermissive as permissive,
               (select string_agg(case when r = 0 then 'PUBLIC' else format('%I', pg_get_userbyid(r)) end, ', ' order by 1) from unnest(p.polroles) r) as roles,
               pg_get_expr(p.polqual, p.polrelid) as "using", pg_get_expr(p.polwithcheck, p.polrelid) as with_check
             from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
             where ${USER_NS}`,
    // CREATE STATISTICS
    statistics: `select format('%I.%I', n.nspname, s.stxname) as key, pg_get_statisticsobjdef(s.oid) as definition, ${stxTarget} as statistics_target,
                   pg_get_userbyid(s.stxowner) as owner
                 from pg_statistic_ext s join pg_namespace n on n.oid = s.stxnamespace where ${USER_NS}`,
    // CREATE PUBLICATION (the application's own; the cutover's cutover_* ones are not the schema)
    publication: `select format('%I', p.pubname) as key, p.puballtables as all_tables,
                    concat_ws(', ', case when p.pubinsert then 'insert' end, case when p.pubupdate then 'update' end, case when p.pubdelete then 'delete' end, case when p.pubtruncate then 'truncate' end) as publish,
                    ${viaRoot} as via_partition_root,
                    (select string_agg(pr.prrelid::regclass::text${pubRelExtra}, ', ' order by 1) from pg_publication_rel pr where pr.prpubid = p.oid) as tables,
                    ${pubSchemas} as schemas, pg_get_userbyid(p.pubowner) as owner
                  from pg_publication p where ${OWN_PUBLICATION}`,
    // CREATE FOREIGN DATA WRAPPER
    'foreign data wrapper': `select format('%I', w.fdwname) as key, nullif(w.fdwhandler, 0)::regproc::text as handler, nullif(w.fdwvalidator, 0)::regproc::text as validator,
                               ${SORTED('w.fdwoptions')} as options, pg_get_userbyid(w.fdwowner) as owner
                             from pg_foreign_data_wrapper w where ${NOT_EXT('pg_foreign_data_wrapper', 'w.oid')}`,
    // CREATE SERVER
    'foreign server': `select format('%I', s.srvname) as key, format('%I', w.fdwname) as wrapper, s.srvtype as type, s.srvversion as version,
                         ${SORTED('s.srvoptions')} as options, pg_get_userbyid(s.srvowner) as owner
                       from pg_foreign_server s join pg_foreign_data_wrapper w on w.oid = s.srvfdw`,
    // CREATE USER MAPPING: option names only — their values hold passwords.
    'user mapping': `select case when u.umuser = 0 then 'PUBLIC' else format('%I', pg_get_userbyid(u.umuser)) end || ' on ' || format('%I', s.srvname) as key,
                       (select string_agg(split_part(x, '=', 1), ', ' order by 1) from unnest(u.umoptions) x) as option_names
                     from pg_user_mapping u join pg_foreign_server s on s.oid = u.umserver`,
    // CREATE TEXT SEARCH CONFIGURATION … ; ALTER … ADD MAPPING
    'text search configuration': `select format('%I.%I', n.nspname, c.cfgname) as key, c.cfgparser::regclass::text as parser,
                                    (select string_agg(coalesce(tt.alias, m.maptokentype::text) || ':' || m.mapdict::regdictionary::text, ', ' order by m.maptokentype, m.mapseqno)
                                       from pg_ts_config_map m left join ts_token_type(c.cfgparser) tt on tt.tokid = m.maptokentype where m.mapcfg = c.oid) as mapping,
                                    pg_get_userbyid(c.cfgowner) as owner
                                  from pg_ts_config c join pg_namespace n on n.oid = c.cfgnamespace where ${USER_NS} and ${NOT_EXT('pg_ts_config', 'c.oid')}`,
    'text search dictionary': `select format('%I.%I', n.nspname, d.dictname) as key, d.dicttemplate::regclass::text as template, d.dictinitoption as options
                               from pg_ts_dict d join pg_namespace n on n.oid = d.dictnamespace where ${USER_NS} and ${NOT_EXT('pg_ts_dict', 'd.oid')}`,
    // ALTER DEFAULT PRIVILEGES [FOR ROLE …] [IN SCHEMA …] GRANT …
    'default privileges': `select format('for %I', pg_get_userbyid(d.defaclrole)) || coalesce((select format(' in schema %I', nspname) from pg_namespace where oid = d.defaclnamespace), '')
                               || ' on ' || case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' when 'T' then 'types' when 'n' then 'schemas' else d.defaclobjtype::text end
                               || ' to ' || case when x.grantee = 0 then 'PUBLIC' else format('%I', pg_get_userbyid(x.grantee)) end || ': ' || x.privilege_type as key,
                             x.is_grantable as grantable
                           from pg_default_acl d, aclexplode(d.defaclacl) x`,
    // GRANT … ON TABLE / SEQUENCE / VIEW
    grant: `select format('%I.%I', n.nspname, c.relname) || ' to ' || ${GRANTEE('c.relowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_class c join pg_namespace n on n.oid = c.relnamespace,
                 aclexplode(coalesce(c.relacl, acldefault(case when c.relkind = 'S' then 's' else 'r' end::"char", c.relowner))) x
            where c.relkind in ('r','p','v','m','f','S') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // GRANT SELECT (col) ON …
    'column grant': `select format('%I.%I.%I', n.nspname, c.relname, a.attname) || ' to ' || ${GRANTEE('c.relowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
                     from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace, aclexplode(a.attacl) x
                     where a.attacl is not null and a.attnum > 0 and not a.attisdropped and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // GRANT EXECUTE ON FUNCTION (PUBLIC has it by default; a REVOKE shows as a missing grant)
    'function grant': `select format('%I.%I(%s)', n.nspname, p.proname, ${FNARGS}) || ' to ' || ${GRANTEE('p.proowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
                       from pg_proc p join pg_namespace n on n.oid = p.pronamespace, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
                       where ${USER_NS} and ${NOT_EXT('pg_proc', 'p.oid')} and ${NOT_INTERNAL('pg_proc', 'p.oid')}`,
    'type grant': `select format('%I.%I', n.nspname, t.typname) || ' to ' || ${GRANTEE('t.typowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
                   from pg_type t join pg_namespace n on n.oid = t.typnamespace, aclexplode(t.typacl) x
                   where t.typacl is not null and ${USER_NS} and ${NOT_EXT('pg_type', 't.oid')}`,
    'schema grant': `select format('%I', n.nspname) || ' to ' || ${GRANTEE('n.nspowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
            where ${USER_NS} and ${NOT_EXT('pg_namespace', 'n.oid')}`,
    // The two databases may have other names (a copy into another database): the current one is "(this database)".
    'database grant': `select '(this database)' || ' to ' || ${GRANTEE('d.datdba')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) x where d.datname = current_database()`,
    'foreign server grant': `select format('%I', s.srvname) || ' to ' || ${GRANTEE('s.srvowner')} || ': ' || x.privilege_type as key, x.is_grantable as grantable
                             from pg_foreign_server s, aclexplode(s.srvacl) x where s.srvacl is not null`,
    // CREATE [TRUSTED] LANGUAGE (those not installed by an extension, e.g. plpgsql is)
    language: `select format('%I', l.lanname) as key, l.lanpltrusted as trusted, nullif(l.lanplcallfoid, 0)::regproc::text as handler,
                 pg_get_userbyid(l.lanowner) as owner
               from pg_language l where l.lanispl and ${NOT_EXT('pg_language', 'l.oid')}`,
    // CREATE ACCESS METHOD
    'access method': `select format('%I', a.amname) as key, case a.amtype when 'i' then 'index' when 't' then 'table' end as type, a.amhandler::regproc::text as handler
                      from pg_am a where a.oid >= 16384 and ${NOT_EXT('pg_am', 'a.oid')}`,
    // CREATE CONVERSION
    conversion: `select format('%I.%I', n.nspname, c.conname) as key, pg_encoding_to_char(c.conforencoding) || ' TO ' || pg_encoding_to_char(c.contoencoding) as encodings,
                   c.conproc::regproc::text as function, c.condefault as "default"
                 from pg_conversion c join pg_namespace n on n.oid = c.connamespace where ${USER_NS} and ${NOT_EXT('pg_conversion', 'c.oid')}`,
    // CREATE TRANSFORM
    transform: `select format_type(t.trftype, null) || ' LANGUAGE ' || l.lanname as key, nullif(t.trffromsql, 0)::regproc::text as from_sql, nullif(t.trftosql, 0)::regproc::text as to_sql
                from pg_transform t join pg_language l on l.oid = t.trflang where ${NOT_EXT('pg_transform', 't.oid')}`,
    // COMMENT ON … (pg_describe_object names the object; informational only)
    comment: `select pg_describe_object(d.classoid, d.objoid, d.objsubid) as key, md5(d.description) as text_md5
              from pg_description d
              where d.classoid in ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass, 'pg_namespace'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass)
                and d.objoid >= 16384 and not exists (select 1 from pg_depend dep where dep.classid = d.classoid and dep.objid = d.objoid and dep.deptype = 'e')`,
  };
}

/** A sequence that would hand out a value its column already holds (the next INSERT with a default collides). */
export interface SequenceBehind {
  sequence: string;
  column: string;
  next: string;
  max: string;
}

/** Functions that belong to an extension, as `schema.name` → extension. */
export type ExtensionFunctions = Record<string, string>;

export interface SchemaSide {
  snapshot: SchemaSnapshot;
  extensionFunctions: ExtensionFunctions;
  sequencesBehind: SequenceBehind[];
  /** This database has a subscription (it receives rows by logical replication). */
  subscriber: boolean;
  notes: string[];
}

/**
 * Reads one side. One read-only transaction under an empty search_path, so expressions print with
 * the same qualification on both sides whatever the connecting role's search_path is.
 */
export async function schemaSide(c: Client, versionNum: number): Promise<SchemaSide> {
  const notes: string[] = [];
  await c.query('begin isolation level repeatable read read only');
  try {
    await c.query(SPELLING_SETTINGS);
    const snapshot: SchemaSnapshot = {};
    for (const [kind, sql] of Object.entries(snapshotQueries(versionNum)) as [SchemaKind, string][]) {
      const out: Record<string, Props> = {};
      for (const r of await rows(c, sql)) {
        const { key, ...props } = r;
        out[key] = props;
      }
      snapshot[kind] = out;
    }
    const extensionFunctions: ExtensionFunctions = {};
    for (const r of await rows(c, `select format('%I.%I', n.nspname, p.proname) as fn, e.extname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                                     join pg_depend d on d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e' join pg_extension e on e.oid = d.refobjid`))
      extensionFunctions[r.fn] = r.extname;
    const sequencesBehind = await findSequencesBehind(c, notes);
    // A side that subscribes (the target during replication, the source under reverse replication)
    // receives rows with their ids while its sequences stay put: expected until the switchover syncs them.
    const subscriber = (await rows(c, `select count(subname)::int as n from pg_subscription where subdbid = (select oid from pg_database where datname = current_database())`))[0].n > 0;
    return { snapshot, extensionFunctions, sequencesBehind, subscriber, notes };
  } finally {
    await c.query('rollback').catch(() => {});
  }
}

/** Kept for callers that only want the catalog snapshot. */
export async function schemaSnapshot(c: Client, versionNum: number): Promise<SchemaSnapshot> {
  return (await schemaSide(c, versionNum)).snapshot;
}

/**
 * Every integer column fed by a sequence (OWNED BY, identity, or a nextval default), its max and
 * the sequence's next value. Runs inside schemaSide's transaction; each max() under a savepoint
 * and a statement timeout so one huge unindexed column cannot stall or abort the snapshot.
 */
async function findSequencesBehind(c: Client, notes: string[]): Promise<SequenceBehind[]> {
  const fed = await rows(c, `
    with fed as (
      select d.objid as seq, d.refobjid as rel, d.refobjsubid as att from pg_depend d
       where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0 and d.deptype in ('a','i')
      union
      select d.refobjid, ad.adrelid, ad.adnum from pg_depend d join pg_attrdef ad on ad.oid = d.objid
       where d.classid = 'pg_attrdef'::regclass and d.refclassid = 'pg_class'::regclass)
    select sc.oid::regclass::text as seq, tc.oid::regclass::text as tbl, format('%I', a.attname) as col, s.seqincrement::text as inc, s.seqstart::text as start,
           tc.reltuples::float8 as est_rows,
           exists (select 1 from pg_index i where i.indrelid = tc.oid and i.indkey[0] = a.attnum and i.indisvalid and i.indpred is null) as indexed
      from fed join pg_class sc on sc.oid = fed.seq and sc.relkind = 'S' join pg_sequence s on s.seqrelid = sc.oid
      join pg_class tc on tc.oid = fed.rel and tc.relkind in ('r','p') join pg_namespace n on n.oid = tc.relnamespace
      join pg_attribute a on a.attrelid = fed.rel and a.attnum = fed.att and not a.attisdropped
     where a.atttypid in ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype) and ${USER_NS}
       -- CASE: the privilege functions must only ever see sequences and tables (the planner may evaluate quals early).
       and case when sc.relkind = 'S' and tc.relkind in ('r','p') then has_sequence_privilege(sc.oid, 'SELECT') and has_column_privilege(tc.oid, a.attnum, 'SELECT') else false end
     order by 1, 2, 3`);
  const out: SequenceBehind[] = [];
  for (const f of fed) {
    // max() over an unindexed column of a big table is a full scan: not worth it for a drift check.
    if (!f.indexed && Number(f.est_rows) > 1_000_000) {
      notes.push(`schema: sequence ${f.seq} not compared with max(${f.tbl}.${f.col}): the column has no index and the table ~${Math.round(Number(f.est_rows))} rows`);
      continue;
    }
    await c.query('savepoint drift_seq');
    try {
      await c.query(`set local statement_timeout = 10000`);
      // regclass::text is already quoted and qualified under the empty search_path.
      const r = (await c.query(`select (select last_value::text from ${f.seq}) as last, (select is_called from ${f.seq}) as called, (select max(${f.col})::text from ${f.tbl}) as max`)).rows[0];
      await c.query('release savepoint drift_seq');
      if (r.max === null) continue;
      const inc = BigInt(f.inc);
      const next = r.called ? BigInt(r.last) + inc : BigInt(r.last);
      const max = BigInt(r.max.split('.')[0]);
      if (inc > 0n && next <= max) out.push({ sequence: f.seq, column: `${f.tbl}.${f.col}`, next: next.toString(), max: max.toString() });
    } catch (e: any) {
      await c.query('rollback to savepoint drift_seq').catch(() => {});
      notes.push(`schema: could not compare sequence ${f.seq} with max(${f.tbl}.${f.col}): ${e?.message ?? e}`);
    }
  }
  return out;
}

export interface DiffOptions {
  sourceMajor: number;
  targetMajor: number;
  /** Views whose source body was re-printed by the target's deparser: a remaining difference is real. */
  reprinted?: Set<string>;
  /** Functions owned by extensions on each side (to explain a function that resolves differently). */
  extensionFunctions?: { source: ExtensionFunctions; target: ExtensionFunctions };
}

// ---------------------------------------------------------------------------------------------
// Words: what a difference means for the cutover, and what to do
// ---------------------------------------------------------------------------------------------

interface Said {
  severity: Severity;
  message: string;
  hint: string;
}

const DUMP_HINT = 'replay it from the source (pg_dump --schema-only --section=pre-data/post-data shows the exact statement) or change the target to match';
const PERSISTENCE: Record<string, string> = { p: 'LOGGED', u: 'UNLOGGED', t: 'TEMPORARY' };
const REPLIDENT: Record<string, string> = { d: 'DEFAULT (the primary key)', n: 'NOTHING', f: 'FULL', i: 'USING INDEX' };
const VOLATILITY: Record<string, string> = { i: 'IMMUTABLE', s: 'STABLE', v: 'VOLATILE' };
const PARALLEL: Record<string, string> = { s: 'PARALLEL SAFE', r: 'PARALLEL RESTRICTED', u: 'PARALLEL UNSAFE' };
const TRIGGER_ENABLED: Record<string, string> = { O: 'enabled', D: 'disabled', R: 'ENABLE REPLICA (fires only for replicated rows)', A: 'ENABLE ALWAYS (fires for replicated rows too)' };
const STORAGE: Record<string, string> = { p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' };
const ROLE_ABILITY: Record<string, string> = {
  superuser: 'bypass every permission check (SUPERUSER)', inherit: 'use the privileges of the roles it is a member of (INHERIT)', createrole: 'create and alter roles (CREATEROLE)',
  createdb: 'create databases (CREATEDB)', login: 'log in (LOGIN)', replication: 'start replication (REPLICATION)', bypassrls: 'bypass row-level security (BYPASSRLS)',
};
const COLLPROVIDER: Record<string, string> = { c: 'libc', i: 'icu', b: 'builtin', d: 'default' };

function q(v: unknown): string {
  return v === null || v === undefined || v === '' ? 'none' : typeof v === 'string' ? v : JSON.stringify(v);
}
function both(va: unknown, vb: unknown, map?: Record<string, string>): string {
  const m = (x: unknown) => (map && typeof x === 'string' && map[x]) || q(x);
  return `${m(va)} on the source, ${m(vb)} on the target`;
}
function tableOf(key: string): string {
  // schema.table.part → schema.table (identifiers are %I-quoted, so split outside quotes)
  const parts = splitKey(key);
  return parts.slice(0, 2).join('.');
}
/** Splits a %I-quoted dotted name outside double quotes. */
export function splitKey(key: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inq = false;
  for (let i = 0; i < key.length; i++) {
    const ch = key[i];
    if (ch === '"') {
      if (inq && key[i + 1] === '"') {
        cur += '""';
        i++;
        continue;
      }
      inq = !inq;
      cur += ch;
    } else if (ch === '.' && !inq) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}
function lastPart(key: string): string {
  const p = splitKey(key);
  return p[p.length - 1];
}

/** Severity and words for a property that differs on an object present on both sides. */
/** pg_attribute.attcompression letters. */
const COMPRESSION: Record<string, string> = { p: 'pglz', l: 'lz4' };

export function explainChange(kind: SchemaKind, key: string, prop: string, va: unknown, vb: unknown, o: DiffOptions, objects: { source?: Props; target?: Props } = {}): Said {
  const crossMajor = o.sourceMajor !== o.targetMajor;
  const unique = kind === 'index' && !!(objects.source?.unique || objects.target?.unique);
  const diff = both(va, vb);
  const gen = (severity: Severity, what: string, hint = DUMP_HINT): Said => ({ severity, message: what, hint });
  if (prop === 'owner') {
    if (kind === 'schema' && (va === 'pg_database_owner' || vb === 'pg_database_owner'))
      return gen('info', `schema ${key} is owned by ${diff}: PostgreSQL 15 made pg_database_owner the owner of schema public in a new database; nothing changes for the application`, `ALTER SCHEMA ${key} OWNER TO … if you want it identical`);
    return gen(
      'warning',
      `${kind} ${key} is owned by ${diff}: after the cutover ${q(vb)} is the one who may ALTER/DROP it (and VACUUM/ANALYZE it, for tables), and the application role may lack rights it had through ownership`,
      `ALTER ${ownerNoun(kind)} ${key} OWNER TO ${q(va)} on the target`,
    );
  }
  switch (kind) {
    case 'table':
      switch (prop) {
        case 'kind':
          return gen('error', `${key} is a ${diff}: queries, DDL and replication treat the two differently`);
        case 'persistence':
          if (vb === 'u')
            return gen('error', `${key} is UNLOGGED on the target: logical replication skips it and a crash empties it`, `make it LOGGED: ALTER TABLE ${key} SET LOGGED on the target`);
          if (va === 'u')
            return gen('warning', `${key} is UNLOGGED on the source and LOGGED on the target: its rows were never replicated (unlogged tables cannot be published), so the target has only what was copied by hand, and writes to it now go through WAL (slower)`, `copy its rows by hand before the cutover, or ALTER TABLE ${key} SET UNLOGGED on the target if losing them on a crash is acceptable as before`);
          return gen('error', `${key} is ${both(va, vb, PERSISTENCE)}`, DUMP_HINT);
        case 'row_security':
          return vb === false
            ? gen('error', `row-level security is on for ${key} on the source and off on the target: after the cutover every role that can SELECT it sees every row, whatever the policies say`, `ALTER TABLE ${key} ENABLE ROW LEVEL SECURITY on the target`)
            : gen('error', `row-level security is off for ${key} on the source and on on the target: roles without a matching policy see no rows and cannot write any`, `ALTER TABLE ${key} DISABLE ROW LEVEL SECURITY on the target (or add the policies)`);
        case 'force_row_security':
          return gen('error', `FORCE ROW LEVEL SECURITY on ${key} is ${diff}: the table owner ${vb ? 'is now' : 'is no longer'} subject to the policies`, `ALTER TABLE ${key} ${va ? 'FORCE' : 'NO FORCE'} ROW LEVEL SECURITY on the target`);
        case 'replica_identity': {
          const show = (x: unknown) => (typeof x === 'string' ? (REPLIDENT[x[0]] ?? x) + (x.length > 1 ? ` ${x.slice(2)}` : '') : q(x));
          const severe = typeof vb === 'string' && vb[0] === 'n';
          return gen(severe ? 'error' : 'warning', `replica identity of ${key} is ${show(va)} on the source and ${show(vb)} on the target: after the cutover, UPDATE and DELETE on it are published with another key (reverse replication for a rollback${severe ? ' fails: UPDATE/DELETE on a published table without a replica identity are refused' : ' matches rows differently'})`, `ALTER TABLE ${key} REPLICA IDENTITY … on the target as on the source`);
        }
        case 'options':
          return gen('warning', `storage parameters of ${key} are ${diff}: autovacuum, fillfactor or toast behaviour differ after the cutover (bloat, HOT updates, vacuum timing)`, `ALTER TABLE ${key} SET (…) / RESET (…) on the target as on the source`);
        case 'tablespace':
          return gen('warning', `${key} lives in tablespace ${both(va ?? 'the default', vb ?? 'the default')}: disk layout and capacity planning differ`, `ALTER TABLE ${key} SET TABLESPACE … on the target if intended`);
        case 'access_method':
          return gen('warning', `${key} uses table access method ${diff}`, `recreate it USING the source's access method`);
        case 'inherits':
          return gen('error', `${key} inherits from ${diff}: queries on the parent return other rows`, `ALTER TABLE ${key} INHERIT/NO INHERIT … on the target`);
        case 'partition_key':
          return gen('error', `${key} is partitioned by ${diff}: rows land in other partitions and replication into it may fail`, 'recreate the partitioned table with the source\'s partition key');
        case 'partition_of':
          return gen('error', `${key} is a partition ${diff}: rows outside the target's bounds fail to replicate ("no partition of relation … found for row")`, `DETACH and ATTACH PARTITION with the source's bounds on the target`);
        case 'detach_pending':
          return gen('error', `${key} has an unfinished DETACH PARTITION … CONCURRENTLY on the ${vb ? 'target' : 'source'}`, `run ALTER TABLE … DETACH PARTITION ${key} FINALIZE`);
        case 'of_type':
          return gen('error', `${key} is a typed table ${diff}`);
        case 'populated':
          return vb === false
            ? gen('error', `materialized view ${key} is not populated on the target: every SELECT on it fails with "has not been populated" after the cutover (pg_dump --schema-only creates it WITH NO DATA)`, `REFRESH MATERIALIZED VIEW ${key} on the target before the cutover`)
            : gen('info', `materialized view ${key} is populated on the target but not on the source`, 'nothing to do');
        case 'column_order':
          return gen('warning', `the columns of ${key} are in another order (${diff}): SELECT *, INSERT without a column list and COPY without a column list see them differently`, `recreate ${key} on the target with the source's column order (pg_dump --schema-only)`);
        case 'foreign_server':
          return gen('error', `foreign table ${key} reads ${diff}: after the cutover it reads other data`, `ALTER FOREIGN TABLE ${key} OPTIONS (…) / SERVER … on the target`);
      }
      break;
    case 'column': {
      const t = tableOf(key);
      const col = lastPart(key);
      switch (prop) {
        case 'type':
          return gen('error', `${key} is ${diff}: replicated values may not fit or compare the same, and the application reads another type after the cutover`, `ALTER TABLE ${t} ALTER COLUMN ${col} TYPE ${q(va)} on the target`);
        case 'default':
          if (va === null)
            return gen('error', `${key} has DEFAULT ${q(vb)} on the target and none on the source: inserts that omit it store NULL on the source but a value on the target, so the two disagree after the cutover`, `ALTER TABLE ${t} ALTER COLUMN ${col} DROP DEFAULT on the target`);
          if (vb === null)
            return gen('error', `${key} has DEFAULT ${q(va)} on the source and none on the target: after the cutover inserts that omit it store NULL (or fail on NOT NULL)`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET DEFAULT ${q(va)} on the target`);
          return gen('error', `the default of ${key} is ${diff}: inserts that omit it get other values after the cutover`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET DEFAULT ${q(va)} on the target`);
        case 'not_null':
          return va
            ? gen('error', `${key} is NOT NULL on the source but nullable on the target: after the cutover NULLs the source refused are accepted`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET NOT NULL on the target`)
            : gen('error', `${key} is nullable on the source but NOT NULL on the target: replicating a row with NULL there fails and stops replication`, `ALTER TABLE ${t} ALTER COLUMN ${col} DROP NOT NULL on the target`);
        case 'collation':
          return gen('error', `${key} has collation ${both(va ?? 'of its type', vb ?? 'of its type')}: ORDER BY, comparisons, uniqueness and indexes on it behave differently`, `ALTER TABLE ${t} ALTER COLUMN ${col} TYPE … COLLATE ${q(va ?? 'default')} on the target`);
        case 'identity':
          return gen('error', `${key} is an identity column (${both(va, vb, { a: 'GENERATED ALWAYS', d: 'BY DEFAULT' })}): inserts that rely on it ${vb === null ? 'get NULL' : 'behave differently'} after the cutover`, `ALTER TABLE ${t} ALTER COLUMN ${col} ADD/DROP/SET GENERATED … on the target`);
        case 'generated':
          return gen('error', `${key} is generated ${diff}: ${vb === null ? 'the target stores what replication sends instead of computing it' : va === null ? 'replication into a generated column fails' : 'the target computes other values'}`, `recreate the column on the target as on the source`);
        case 'storage':
          return gen('info', `${key} has storage ${both(va ?? 'of its type', vb ?? 'of its type', STORAGE)}: only TOAST behaviour (size, speed) differs`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET STORAGE … on the target`);
        case 'compression':
          return gen('info', `${key} compresses TOAST values with ${both(va ?? 'the default (default_toast_compression)', vb ?? 'the default (default_toast_compression)', COMPRESSION)}: size and speed only`,
            `ALTER TABLE ${t} ALTER COLUMN ${col} SET COMPRESSION ${va ? COMPRESSION[String(va)] ?? va : 'DEFAULT'} on the target`);
        case 'statistics':
          return gen('warning', `${key} has a statistics target of ${both(va ?? 'the default', vb ?? 'the default')}: the planner's estimates (and plans) for it differ`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET STATISTICS ${q(va ?? -1)} on the target, then ANALYZE`);
        case 'options':
          return gen('warning', `${key} has attribute options (n_distinct…) ${diff}: plans may differ`, `ALTER TABLE ${t} ALTER COLUMN ${col} SET (…) on the target`);
        case 'fdw_options':
          return gen('error', `foreign column ${key} has options ${diff}: it maps to another remote column`, `ALTER FOREIGN TABLE ${t} ALTER COLUMN ${col} OPTIONS (…) on the target`);
      }
      break;
    }
    case 'constraint': {
      const t = tableOf(key);
      const name = lastPart(key);
      switch (prop) {
        case 'definition':
          return gen('error', `constraint ${key} checks something else (${diff}): rows one side accepts the other refuses, so replication can stop on them and the application sees other errors after the cutover`, `ALTER TABLE ${t} DROP CONSTRAINT ${name}, ADD CONSTRAINT ${name} ${q(va)} on the target`);
        case 'validated':
          return vb === false
            ? gen('warning', `constraint ${key} is NOT VALID on the target: rows that break it may exist there and the planner cannot rely on it`, `ALTER TABLE ${t} VALIDATE CONSTRAINT ${name} on the target`)
            : gen('info', `constraint ${key} is NOT VALID on the source and validated on the target`, 'nothing to do: the target is stricter, and every replicated row passed it');
        case 'deferrable':
          return gen('error', `constraint ${key} is ${va ? 'DEFERRABLE on the source but not on the target: transactions that rely on checking it at commit fail at the statement' : `DEFERRABLE${objects.target?.deferred ? ' INITIALLY DEFERRED' : ''} only on the target: ${objects.target?.deferred ? 'a violation is reported at COMMIT instead of at the statement, so the application sees its errors elsewhere' : 'a transaction may SET CONSTRAINTS … DEFERRED there and commit what the source refuses at the statement'}`}`, `ALTER TABLE ${t} ALTER CONSTRAINT ${name} ${va ? `DEFERRABLE INITIALLY ${objects.source?.deferred ? 'DEFERRED' : 'IMMEDIATE'}` : 'NOT DEFERRABLE'} on the target`);
        case 'deferred':
          return gen('error', `constraint ${key} is INITIALLY ${va ? 'DEFERRED' : 'IMMEDIATE'} on the source and ${vb ? 'DEFERRED' : 'IMMEDIATE'} on the target: the application's transactions see violations at another moment`, `ALTER TABLE ${t} ALTER CONSTRAINT ${name} INITIALLY ${va ? 'DEFERRED' : 'IMMEDIATE'} on the target`);
      }
      break;
    }
    case 'index':
      switch (prop) {
        case 'valid':
          return vb === false
            ? gen('error', `index ${key} is INVALID on the target (a failed CREATE INDEX CONCURRENTLY): queries do not use it${' '}and, if unique, it does not enforce uniqueness for the planner`, `REINDEX INDEX CONCURRENTLY ${key} on the target`)
            : gen('warning', `index ${key} is INVALID on the source and valid on the target`, 'nothing to do on the target; REINDEX it on the source');
        case 'unique':
          return gen('error', `index ${key} is ${va ? 'UNIQUE on the source but not on the target: duplicates the source refuses are accepted after the cutover' : 'UNIQUE only on the target: replicating rows the source allowed can fail and stop replication'}`, `recreate it on the target as on the source (DROP INDEX, CREATE ${va ? 'UNIQUE ' : ''}INDEX …)`);
        case 'primary':
          return gen('error', `index ${key} is ${va ? '' : 'not '}the primary key on the source and ${vb ? '' : 'not '}on the target`, DUMP_HINT);
        case 'method':
          return gen('error', `index ${key} uses ${diff}: it supports other operators (and ordering), so the queries it served may not use it`, 'recreate it on the target USING the source\'s method');
        case 'keys':
          // A unique index over other keys enforces another rule: rows the source accepts can be refused (replication stops), or duplicates it refuses accepted.
          if (unique)
            return gen('error', `unique index ${key} has other keys, operator classes or collations (${diff}): it enforces uniqueness of something else, so replicated rows the source accepted can be refused (stopping replication) and duplicates the source refuses are accepted after the cutover`, `DROP INDEX ${key} and CREATE UNIQUE INDEX it on the target exactly as on the source`);
          return gen('warning', `index ${key} has other keys, operator classes or collations (${diff}): queries that used it on the source (LIKE 'x%' with text_pattern_ops, a COLLATE, an expression) may not use it on the target`, 'recreate it on the target exactly as on the source');
        case 'predicate':
          if (unique)
            return gen('error', `unique index ${key} is partial with ${both(va ?? 'no WHERE', vb ?? 'no WHERE')}: it enforces uniqueness over other rows, so replicated rows the source accepted can be refused (stopping replication) and duplicates the source refuses are accepted after the cutover`, `DROP INDEX ${key} and CREATE UNIQUE INDEX it on the target with the source's WHERE`);
          return gen('warning', `index ${key} is partial with ${both(va ?? 'no WHERE', vb ?? 'no WHERE')}: it covers other rows, so queries that used it on the source may scan instead`, 'recreate it on the target with the source\'s WHERE');
        case 'table':
          return gen('error', `index ${key} is on ${diff}`, DUMP_HINT);
        case 'clustered':
          return gen('info', `index ${key} is ${va ? '' : 'not '}the CLUSTER index on the source and ${vb ? '' : 'not '}on the target`, `ALTER TABLE … CLUSTER ON ${key} on the target if you run CLUSTER`);
        case 'options':
          return gen('info', `index ${key} has storage parameters ${diff}`, `ALTER INDEX ${key} SET (…) on the target`);
        case 'tablespace':
          return gen('warning', `index ${key} lives in tablespace ${both(va ?? 'the default', vb ?? 'the default')}`, `ALTER INDEX ${key} SET TABLESPACE … on the target if intended`);
      }
      break;
    case 'sequence':
      switch (prop) {
        case 'type':
          return gen('error', `sequence ${key} is ${diff}: it runs out at another value`, `ALTER SEQUENCE ${key} AS ${q(va)} on the target`);
        case 'increment':
          return gen('error', `sequence ${key} increments by ${diff}: ids after the cutover step differently (and may collide with ids an application reserves in blocks)`, `ALTER SEQUENCE ${key} INCREMENT BY ${q(va)} on the target`);
        case 'min':
        case 'max':
          return gen('error', `sequence ${key} has ${prop === 'min' ? 'MINVALUE' : 'MAXVALUE'} ${diff}: it runs out ${prop === 'max' ? 'at another value' : 'differently'}`, `ALTER SEQUENCE ${key} ${prop === 'min' ? 'MINVALUE' : 'MAXVALUE'} ${q(va)} on the target`);
        case 'cycle':
          return gen('error', `sequence ${key} is ${va ? 'CYCLE on the source and NO CYCLE on the target: where the source wraps around, the target fails with "reached maximum value"' : 'NO CYCLE on the source and CYCLE on the target: where the source fails, the target wraps around and hands out used values'}`, `ALTER SEQUENCE ${key} ${va ? 'CYCLE' : 'NO CYCLE'} on the target`);
        case 'cache':
          return gen('info', `sequence ${key} caches ${diff} values per session: only how many values a crash or disconnect skips`, `ALTER SEQUENCE ${key} CACHE ${q(va)} on the target`);
        case 'start':
          return gen('info', `sequence ${key} has START ${diff}: only matters for ALTER SEQUENCE … RESTART`, `ALTER SEQUENCE ${key} START WITH ${q(va)} on the target`);
        case 'owned_by':
          return gen('warning', `sequence ${key} is owned by ${both(va ?? 'no column', vb ?? 'no column')}: dropping the column or table drops it on one side only, and the cutover's sequence sync may match it to another column`, `ALTER SEQUENCE ${key} OWNED BY ${q(va ?? 'NONE')} on the target`);
      }
      break;
    case 'view':
      if (o.reprinted?.has(key))
        return gen('error', `the body of ${key} differs (${diff}, both printed by the target's PostgreSQL ${o.targetMajor}): the view returns other rows or columns after the cutover`, `CREATE OR REPLACE VIEW ${key} on the target with the source's body`);
      return crossMajor
        ? gen('warning', `the body of ${key} prints differently (${diff}): PostgreSQL ${o.targetMajor} may only print the same query another way, or the view really selects something else`, 'read both definitions; if they mean the same, nothing to do, else CREATE OR REPLACE VIEW on the target with the source\'s body')
        : gen('error', `the body of ${key} differs (${diff}): the view returns other rows or columns after the cutover`, `CREATE OR REPLACE VIEW ${key} on the target with the source's body`);
    case 'function':
    case 'aggregate':
      switch (prop) {
        case 'body':
          return gen('error', `${key} runs other code on the two sides (${diff}): after the cutover callers get the target's behaviour`, `CREATE OR REPLACE the ${kind} on the target from the source (pg_dump --schema-only)`);
        case 'volatility':
          return gen('warning', `${key} is ${both(va, vb, VOLATILITY)}: the planner may evaluate it a different number of times (and IMMUTABLE is required to use it in an index)`, `ALTER FUNCTION ${key} ${VOLATILITY[String(va)] ?? ''} on the target`);
        case 'strict':
          return gen('error', `${key} is ${va ? 'STRICT' : 'not STRICT'} on the source and ${vb ? 'STRICT' : 'not STRICT'} on the target: with a NULL argument one side returns NULL without running and the other runs the body`, `ALTER FUNCTION ${key} ${va ? 'STRICT' : 'CALLED ON NULL INPUT'} on the target`);
        case 'security_definer':
          return gen('error', `${key} is ${va ? 'SECURITY DEFINER' : 'SECURITY INVOKER'} on the source and ${vb ? 'SECURITY DEFINER' : 'SECURITY INVOKER'} on the target: it runs with other privileges, so calls fail with permission denied or can do more than intended`, `ALTER FUNCTION ${key} SECURITY ${va ? 'DEFINER' : 'INVOKER'} on the target`);
        case 'config':
          return gen('error', `${key} sets ${both(va ?? 'nothing', vb ?? 'nothing')} when it runs (SET clauses): it resolves names or behaves under other settings${String(va ?? vb).includes('search_path') ? ' — a SECURITY DEFINER function without its SET search_path can be hijacked' : ''}`, `ALTER FUNCTION ${key} SET … / RESET … on the target as on the source`);
        case 'leakproof':
          return gen('warning', `${key} is ${va ? '' : 'not '}LEAKPROOF on the source and ${vb ? '' : 'not '}on the target: security-barrier views and row-level security plan differently`, `ALTER FUNCTION ${key} ${va ? '' : 'NOT '}LEAKPROOF on the target`);
        case 'parallel':
          return gen('warning', `${key} is ${both(va, vb, PARALLEL)}: queries calling it get other (parallel or serial) plans`, `ALTER FUNCTION ${key} ${PARALLEL[String(va)] ?? ''} on the target`);
        case 'cost':
        case 'rows':
          return gen('info', `${key} has planner ${prop.toUpperCase()} ${diff}: plans that call it may differ`, `ALTER FUNCTION ${key} ${prop.toUpperCase()} ${q(va)} on the target`);
        default:
          return gen('error', `${key}: ${prop.replace(/_/g, ' ')} is ${diff}: callers get other results or errors after the cutover`, `CREATE OR REPLACE the ${kind} on the target from the source`);
      }
    case 'trigger':
      if (prop === 'enabled') {
        const what = `trigger ${key} is ${both(va, vb, TRIGGER_ENABLED)}`;
        const t = tableOf(key);
        const name = lastPart(key);
        const fix = `ALTER TABLE ${t} ${va === 'D' ? 'DISABLE TRIGGER' : va === 'R' ? 'ENABLE REPLICA TRIGGER' : va === 'A' ? 'ENABLE ALWAYS TRIGGER' : 'ENABLE TRIGGER'} ${name} on the target`;
        if (vb === 'D') return gen('error', `${what}: after the cutover it does not fire for the application's writes (audit rows, derived columns, notifications are lost)`, fix);
        if (vb === 'R') return gen('error', `${what}: after the cutover it does not fire for the application's writes, only for replicated ones`, fix);
        if (vb === 'A') return gen('error', `${what}: during replication it fires again on the target for every replicated row, so its effects are applied twice (once on the source, once on the target)`, fix);
        if (va === 'A' || va === 'R')
          return gen('warning', `${what}: the target fires it for local writes only, so wherever the target applies replicated rows (a subscription of its own, a fallback that replicates back into it) it no longer fires for them as the source's ENABLE ${va === 'A' ? 'ALWAYS' : 'REPLICA'} does`, fix);
        return gen('warning', `${what}: after the cutover it fires where the source never fires it`, fix);
      }
      return gen('error', `trigger ${key} is defined differently (${diff}): it fires at another time, for other rows, or calls another function`, `DROP TRIGGER and CREATE TRIGGER on the target as on the source`);
    case 'event trigger':
      return prop === 'enabled'
        ? gen('error', `event trigger ${key} is ${both(va, vb, { O: 'enabled', D: 'disabled', R: 'replica only', A: 'always' })}: DDL auditing or guards behave differently after the cutover`, `ALTER EVENT TRIGGER ${key} ENABLE/DISABLE on the target`)
        : gen('error', `event trigger ${key}: ${prop} is ${diff}`, DUMP_HINT);
    case 'rule':
      return gen('error', `rule ${key} ${prop === 'enabled' ? `is ${both(va, vb, TRIGGER_ENABLED)}` : `rewrites queries differently (${diff})`}: INSERT/UPDATE/DELETE on ${tableOf(key)} do other things after the cutover`, DUMP_HINT);
    case 'policy':
      return gen('error', `row-level security policy ${key}: ${prop === 'using' ? 'USING' : prop === 'with_check' ? 'WITH CHECK' : prop} is ${diff}: after the cutover roles see or may write other rows`, `ALTER POLICY ${lastPart(key)} ON ${tableOf(key)} … on the target as on the source`);
    case 'type':
      switch (prop) {
        case 'labels': {
          const la = parseLabels(va);
          const lb = parseLabels(vb);
          if (la.length === lb.length && [...la].sort().join() === [...lb].sort().join())
            return gen('error', `enum ${key} has the same labels in another order (${diff}): ORDER BY and comparisons (<, >) on its columns sort differently`, `recreate the enum on the target with the source's order (ALTER TYPE … ADD VALUE … BEFORE/AFTER cannot move a label)`);
          const missing = la.filter((x) => !lb.includes(x));
          const extra = lb.filter((x) => !la.includes(x));
          return gen('error', `enum ${key} differs (${diff})${missing.length ? `: replicating a row with ${missing.join(', ')} fails on the target and stops replication` : ''}${extra.length ? `${missing.length ? '; ' : ': '}the target also accepts ${extra.join(', ')}` : ''}`, missing.length ? `ALTER TYPE ${key} ADD VALUE ${missing[0]} on the target (in the source's position)` : DUMP_HINT);
        }
        case 'attributes':
          return gen('error', `composite type ${key} has other attributes (${diff}): functions and columns of that type read other fields`, `ALTER TYPE ${key} ADD/DROP/ALTER ATTRIBUTE … on the target`);
        case 'range':
          return gen('error', `range type ${key} is built on ${diff}: its values order or normalise differently`, 'recreate the range type on the target as on the source');
        case 'base_type':
          return gen('error', `domain ${key} is over ${diff}`, 'recreate the domain on the target as on the source');
        case 'not_null':
          return gen('error', `domain ${key} is ${va ? 'NOT NULL on the source only' : 'NOT NULL on the target only: replicating a NULL fails'}`, `ALTER DOMAIN ${key} ${va ? 'SET' : 'DROP'} NOT NULL on the target`);
        case 'default':
          return gen('error', `domain ${key} has DEFAULT ${diff}: columns of that type get other values when an insert omits them`, `ALTER DOMAIN ${key} SET DEFAULT … on the target`);
        case 'collation':
          return gen('error', `domain ${key} has collation ${diff}: sorting and comparing its values differ`, 'recreate the domain with the source\'s collation');
        case 'kind':
          return gen('error', `type ${key} is a ${diff}`, DUMP_HINT);
      }
      break;
    case 'domain constraint':
      return prop === 'validated'
        ? gen(vb === false ? 'warning' : 'info', `domain constraint ${key} is ${va ? 'validated' : 'NOT VALID'} on the source and ${vb ? 'validated' : 'NOT VALID'} on the target`, `ALTER DOMAIN ${tableOf(key)} VALIDATE CONSTRAINT ${lastPart(key)} on the target`)
        : gen('error', `domain constraint ${key} checks something else (${diff}): values one side accepts the other refuses`, `ALTER DOMAIN ${tableOf(key)} DROP CONSTRAINT …, ADD CONSTRAINT … on the target`);
    case 'collation':
      return gen('error', `collation ${key} has ${prop === 'provider' ? 'provider' : prop.replace(/_/g, ' ')} ${prop === 'provider' ? both(va, vb, COLLPROVIDER) : diff}: text using it sorts and compares differently (and its indexes need a REINDEX)`, 'recreate the collation on the target as on the source, then REINDEX what uses it');
    case 'cast':
      return gen('error', `cast ${key}: ${prop} is ${diff}: expressions convert values differently (or not implicitly) after the cutover`, DUMP_HINT);
    case 'operator':
    case 'operator class':
      return gen('error', `${kind} ${key}: ${prop.replace(/_/g, ' ')} is ${diff}: expressions and indexes using it behave differently`, DUMP_HINT);
    case 'statistics':
      return gen('warning', `extended statistics ${key}: ${prop.replace(/_/g, ' ')} is ${diff}: the planner's estimates, and so plans, differ`, `recreate it on the target (DROP STATISTICS, CREATE STATISTICS …) and ANALYZE`);
    case 'extension':
      if (prop === 'version') {
        const newer = compareVersions(String(vb ?? ''), String(va ?? '')) > 0;
        return newer
          ? gen('info', `extension ${key} is version ${diff}: usually the default that comes with PostgreSQL ${o.targetMajor}; check its release notes for functions the application calls`, 'nothing to do unless its release notes say otherwise')
          : gen('warning', `extension ${key} is version ${diff}: functions or behaviour the application uses on the source may be missing on the target`, `ALTER EXTENSION ${key} UPDATE TO '${q(va)}' on the target`);
      }
      return gen('warning', `extension ${key} is installed in schema ${diff}: schema-qualified calls to its functions (and objects using them) resolve differently`, `ALTER EXTENSION ${key} SET SCHEMA ${q(va)} on the target`);
    case 'role':
      if (prop === 'connlimit') return gen('warning', `role ${key} has a connection limit of ${both(va === -1 ? 'none' : va, vb === -1 ? 'none' : vb)}: the application may be refused connections after the cutover`, `ALTER ROLE ${key} CONNECTION LIMIT ${q(va)} on the target`);
      if (prop === 'member_of') return gen('error', `role ${key} is a member of ${diff}: it has other privileges through those roles after the cutover`, `GRANT/REVOKE the role memberships on the target (pg_dumpall --roles-only shows them)`);
      {
        const can = ROLE_ABILITY[prop] ?? prop;
        return gen('error', `role ${key} ${vb ? 'can' : 'cannot'} ${can} on the target but ${va ? 'can' : 'cannot'} on the source: after the cutover it ${vb ? 'has more power than intended' : 'fails where it used to work'}`, `ALTER ROLE ${key} ${va ? '' : 'NO'}${prop.toUpperCase()} on the target`);
      }
    case 'tablespace':
      return gen('warning', `tablespace ${key}: ${prop} is ${diff}`, `ALTER TABLESPACE ${key} SET (…) on the target`);
    case 'publication':
      return gen('error', `publication ${key}: ${prop.replace(/_/g, ' ')} is ${diff}: consumers subscribed to it get other changes after the cutover`, `ALTER PUBLICATION ${key} … on the target as on the source`);
    case 'foreign data wrapper':
    case 'foreign server':
      return gen('error', `${kind} ${key}: ${prop} is ${diff}: foreign tables through it reach another place or behave differently`, `ALTER ${kind === 'foreign server' ? 'SERVER' : 'FOREIGN DATA WRAPPER'} ${key} OPTIONS (…) on the target`);
    case 'user mapping':
      return gen('error', `user mapping ${key} sets options ${diff} (values not read: they hold passwords): foreign tables may fail to connect`, `ALTER USER MAPPING FOR … SERVER … OPTIONS (…) on the target`);
    case 'text search configuration':
    case 'text search dictionary':
      return gen('error', `${kind} ${key}: ${prop} is ${diff}: to_tsvector/to_tsquery produce other lexemes, so full-text searches find other rows (and stored tsvectors no longer match new ones)`, DUMP_HINT);
    case 'language':
    case 'access method':
    case 'conversion':
    case 'transform':
      return gen('error', `${kind} ${key}: ${prop.replace(/_/g, ' ')} is ${diff}: functions, indexes or conversions using it behave differently`, DUMP_HINT);
    case 'comment':
      return gen('info', `the comment on ${key} differs`, 'COMMENT ON … on the target if you rely on comments');
    case 'grant':
    case 'column grant':
    case 'function grant':
    case 'type grant':
    case 'schema grant':
    case 'database grant':
    case 'foreign server grant':
    case 'default privileges':
      return gen('warning', `${kind} ${key} is ${va ? 'WITH GRANT OPTION' : 'without GRANT OPTION'} on the source and ${vb ? 'WITH GRANT OPTION' : 'without'} on the target: the grantee may${vb ? '' : ' no longer'} pass the privilege on`, `GRANT … WITH GRANT OPTION / REVOKE GRANT OPTION FOR … on the target`);
    case 'schema':
      break;
  }
  return gen('error', `${kind} ${key}: ${prop.replace(/_/g, ' ')} is ${diff}`, DUMP_HINT);
}

function parseLabels(v: unknown): string[] {
  return typeof v === 'string' && v ? v.split(', ') : [];
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.\-]/).map((x) => Number(x));
  const pb = b.split(/[.\-]/).map((x) => Number(x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) return a.localeCompare(b);
    if (x !== y) return x - y;
  }
  return 0;
}

function ownerNoun(kind: SchemaKind): string {
  switch (kind) {
    case 'table': return 'TABLE';
    case 'function': return 'FUNCTION';
    case 'aggregate': return 'AGGREGATE';
    case 'type': return 'TYPE';
    case 'sequence': return 'SEQUENCE';
    case 'operator': return 'OPERATOR';
    case 'operator class': return 'OPERATOR CLASS';
    case 'collation': return 'COLLATION';
    case 'statistics': return 'STATISTICS';
    case 'publication': return 'PUBLICATION';
    case 'foreign server': return 'SERVER';
    case 'foreign data wrapper': return 'FOREIGN DATA WRAPPER';
    case 'text search configuration': return 'TEXT SEARCH CONFIGURATION';
    case 'event trigger': return 'EVENT TRIGGER';
    case 'tablespace': return 'TABLESPACE';
    default: return kind.toUpperCase();
  }
}

/** Severity and words for an object present on the source and missing on the target. */
/** Extensions used for diagnosis only (drift itself may create amcheck): missing ones do not break the application. */
const DIAGNOSTIC_EXTENSIONS = new Set(['amcheck', 'pageinspect', 'pg_buffercache', 'pgstattuple', 'pg_visibility', 'pg_walinspect']);

export function explainMissing(kind: SchemaKind, key: string, props: Props): Said {
  const m = (severity: Severity, why: string, hint = DUMP_HINT): Said => ({ severity, message: `${kind} ${key} exists on the source but not on the target: ${why}`, hint });
  switch (kind) {
    case 'extension':
      return DIAGNOSTIC_EXTENSIONS.has(key)
        ? m('warning', 'a diagnostic extension; the application does not need it, your runbooks may', `CREATE EXTENSION ${key} on the target if you use it`)
        : m('error', `functions, types and operators it provides are missing, so objects and queries using them fail`, `CREATE EXTENSION ${key}${props.schema ? ` WITH SCHEMA ${props.schema}` : ''} on the target`);
    case 'table':
      if (typeof props.partition_of === 'string')
        return m('error', `it is a partition of ${props.partition_of}: replicated rows in those bounds land in the parent's DEFAULT partition if the target has one (and then block attaching the partition later), or stop replication with "no partition of relation … found for row"`,
          `CREATE TABLE ${key} PARTITION OF ${props.partition_of} on the target (before rows of that range arrive), or replay it from pg_dump --schema-only`);
      return m('error', `its rows are not replicated and every query on it fails after the cutover`, 'run the schema copy again (cutover replicate start copies pre-data) or replay it from pg_dump --schema-only');
    case 'column':
      return m('error', 'replication of the table stops on the first change (the target lacks the column), and queries naming it fail', `ALTER TABLE ${tableOf(key)} ADD COLUMN ${lastPart(key)} ${props.type ?? ''} on the target`);
    case 'index':
      return m('error', props.unique ? 'uniqueness it enforces is not enforced on the target, and queries it served scan instead' : 'queries it served scan the table instead (slow after the cutover)', 'apply the post-data section (cutover replicate start does after the initial sync) or CREATE INDEX as on the source');
    case 'constraint':
      return m('error', String(props.definition ?? '').startsWith('FOREIGN KEY') ? 'referential integrity is not enforced on the target' : 'rows the source refuses are accepted on the target', 'apply the post-data section or ALTER TABLE … ADD CONSTRAINT as on the source');
    case 'sequence':
      return m('error', 'inserts that take their id from it fail after the cutover', 'replay it from pg_dump --schema-only; the cutover sequence sync then sets its value');
    case 'view':
      return m('error', 'queries on it fail after the cutover', 'CREATE VIEW on the target from the source');
    case 'function':
    case 'aggregate':
      return m('error', 'calls to it, and defaults, triggers or views using it, fail after the cutover', `CREATE the ${kind} on the target from the source`);
    case 'trigger':
      return m('error', "it does not fire for the application's writes after the cutover (audit rows, derived values, notifications are lost)", 'CREATE TRIGGER on the target as on the source');
    case 'event trigger':
      return m('error', 'DDL auditing or guards it implements are gone after the cutover', 'CREATE EVENT TRIGGER on the target as on the source');
    case 'rule':
      return m('error', 'the statements it rewrites run unrewritten after the cutover', 'CREATE RULE on the target as on the source');
    case 'policy':
      return m('error', 'with row-level security on, roles it admitted see no rows; with PERMISSIVE policies gone the table may be closed or open', 'CREATE POLICY on the target as on the source');
    case 'role':
      return m('error', 'connections as it fail after the cutover and objects cannot be owned by or granted to it', 'create the role on the target with the same attributes (pg_dumpall --roles-only)');
    case 'grant':
    case 'column grant':
    case 'function grant':
    case 'type grant':
    case 'schema grant':
    case 'database grant':
    case 'foreign server grant':
      if (kind === 'schema grant' && key === 'public to PUBLIC: CREATE')
        return m('warning', 'PostgreSQL 15 no longer lets every role create objects in schema public; roles that create tables there (migrations, temp tables in public) fail', 'GRANT CREATE ON SCHEMA public TO the roles that need it on the target');
      return m('error', 'the grantee gets "permission denied" after the cutover', 'replay the grants from the source (pg_dump --schema-only includes GRANT/REVOKE)');
    case 'default privileges':
      return m('error', 'objects created after the cutover do not get this grant, so the grantee cannot use new tables/sequences', 'ALTER DEFAULT PRIVILEGES … GRANT … on the target as on the source');
    case 'publication':
      // The schema copy leaves publications out on purpose (a slot cannot move: consumers re-subscribe to the new primary anyway).
      return m('warning', 'consumers subscribed to it (CDC, replicas) have nothing to follow on the new primary until it is created there; the schema copy leaves publications out on purpose, since their slots cannot move', 'CREATE PUBLICATION on the target as on the source when you re-point the consumers (each with a new slot), after the switchover');
    case 'tablespace':
      return m('error', 'objects placed in it cannot be created on the target', 'CREATE TABLESPACE on the target (its location is the target host\'s)');
    case 'comment':
      return m('info', 'documentation only', 'COMMENT ON … on the target if you rely on comments');
    case 'statistics':
      return m('warning', 'the planner estimates correlated columns badly without it, so plans may be worse after the cutover', 'CREATE STATISTICS on the target as on the source, then ANALYZE');
    case 'user mapping':
      return m('error', 'foreign tables on that server fail to connect for that role', 'CREATE USER MAPPING on the target (with the credentials, which drift does not read)');
    case 'text search configuration':
    case 'text search dictionary':
      return m('error', 'full-text functions and indexes naming it fail', DUMP_HINT);
    default:
      return m('error', 'objects and queries that use it fail after the cutover', DUMP_HINT);
  }
}

/** Severity and words for an object only the target has. */
export function explainExtra(kind: SchemaKind, key: string, props: Props): Said {
  const m = (severity: Severity, why: string, hint = 'drop it on the target if it is not intended, or check that the application expects it'): Said => ({ severity, message: `${kind} ${key} exists on the target but not on the source: ${why}`, hint });
  switch (kind) {
    case 'column':
      return m('warning', props.not_null && props.default === null && props.generated === null ? 'it is NOT NULL without a default, so replicating an insert fails' : 'INSERT without a column list and SELECT * see another shape');
    case 'constraint':
      return m('warning', 'rows the source accepts may be refused when replicated, stopping replication');
    case 'trigger':
      return m('warning', "it fires for the application's writes after the cutover (not during replication unless ENABLE ALWAYS/REPLICA)");
    case 'policy':
      return m('warning', 'roles may see or write fewer rows after the cutover');
    case 'index':
      return m(props.unique ? 'warning' : 'info', props.unique ? 'a UNIQUE index the source does not have can refuse replicated rows and stop replication' : 'extra write cost only');
    case 'grant':
    case 'column grant':
    case 'function grant':
    case 'schema grant':
    case 'database grant':
    case 'type grant':
    case 'foreign server grant':
    case 'default privileges':
      return m('warning', 'the grantee can do more on the target than on the source', 'REVOKE it on the target unless intended');
    case 'comment':
      return m('info', 'documentation only');
    default:
      return m('info', 'nothing on the source uses it');
  }
}

// ---------------------------------------------------------------------------------------------
// Functions that resolve differently
// ---------------------------------------------------------------------------------------------

/** Properties that hold expressions (they can call functions a search_path would resolve). */
const EXPRESSION_PROPS = new Set(['default', 'generated', 'definition', 'keys', 'predicate', 'using', 'with_check', 'body', 'partition_key', 'partition_of']);

/** Function calls in an expression as `schema.name` ('' for an unqualified call, i.e. pg_catalog under the empty search_path). */
const CALL = /(?:("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\.)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*\(/gi;

/**
 * Spellings that differ between majors' deparsers for the same parse tree, rewritten to one form.
 * Only applied when the majors differ; each rule names the change it absorbs.
 */
const DEPARSE_RULES: Array<[RegExp, string]> = [
  // 11–13 print the implicit name → text cast around SQL value functions; 14+ does not.
  [/\((CURRENT_USER|SESSION_USER|CURRENT_ROLE|USER|CURRENT_CATALOG|CURRENT_SCHEMA)\)::(text|name)/g, '$1'],
  // 11 prints EXECUTE PROCEDURE, 12+ EXECUTE FUNCTION.
  [/ EXECUTE PROCEDURE /g, ' EXECUTE FUNCTION '],
];
export function normaliseDeparse(expr: string): string {
  let out = expr.replace(/\s+/g, ' ').trim();
  for (const [re, to] of DEPARSE_RULES) out = out.replace(re, to);
  return out;
}

/** The expression with the schema of every function call removed. */
export function unqualifyCalls(expr: string): string {
  return expr.replace(CALL, (_m, _s, name) => `${name}(`);
}

function calls(expr: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of expr.matchAll(CALL)) out.set(m[2], m[1] ?? 'pg_catalog');
  return out;
}

/** Functions known to do the same thing wherever they resolve. */
const SAME_BEHAVIOUR: Record<string, string> = {
  gen_random_uuid: 'both return a random (version 4) UUID; PostgreSQL 13 made it built in, pgcrypto\'s copy stays for old code',
};

interface Resolution {
  fn: string;
  source: string;
  target: string;
}

/** For two expressions that differ only by the schema of function calls: which functions, and where each side resolves them. */
export function resolutionDifference(a: string, b: string): Resolution[] | null {
  if (a === b || unqualifyCalls(a) !== unqualifyCalls(b)) return null;
  const ca = calls(a);
  const cb = calls(b);
  const out: Resolution[] = [];
  for (const [fn, sa] of ca) {
    const sb = cb.get(fn);
    if (sb !== undefined && sb !== sa) out.push({ fn, source: sa, target: sb });
  }
  return out.length ? out : null;
}

// ---------------------------------------------------------------------------------------------
// The diff
// ---------------------------------------------------------------------------------------------

/** Pure: every difference between two catalog snapshots as findings, one cause across many objects grouped. */
export function diffSchema(src: SchemaSnapshot, tgt: SchemaSnapshot, o: DiffOptions): DriftFinding[] {
  const out: DriftFinding[] = [];
  const resolutions = new Map<string, { r: Resolution; objects: string[] }>();
  const missingTables = new Set(Object.keys(src.table ?? {}).filter((k) => !(k in (tgt.table ?? {}))));
  const missingFns = new Set([...Object.keys(src.function ?? {}), ...Object.keys(src.aggregate ?? {})].filter((k) => !(k in (tgt.function ?? {})) && !(k in (tgt.aggregate ?? {}))));
  const missingTypes = new Set(Object.keys(src.type ?? {}).filter((k) => !(k in (tgt.type ?? {}))));
  const missingSchemas = new Set(Object.keys(src.schema ?? {}).filter((k) => !(k in (tgt.schema ?? {}))));
  const extraTables = new Set(Object.keys(tgt.table ?? {}).filter((k) => !(k in (src.table ?? {}))));
  // A missing table already explains its missing columns, constraints, grants…; a missing schema its objects.
  const under = (set: Set<string>, key: string) => [...set].some((t) => key.startsWith(t + '.') || key.startsWith(t + ' ') || key.startsWith(t + '('));
  const explained = (kind: SchemaKind, key: string) =>
    (kind === 'index' && missingTables.has(String(src.index?.[key]?.table))) ||
    (kind !== 'schema' && under(missingSchemas, key)) ||
    (kind !== 'table' && under(missingTables, key)) ||
    ((kind === 'function grant') && under(missingFns, key)) ||
    ((kind === 'type grant' || kind === 'domain constraint') && under(missingTypes, key));
  for (const kind of SCHEMA_KINDS) {
    const a = src[kind] ?? {};
    const b = tgt[kind] ?? {};
    for (const key of Object.keys(a).sort()) {
      const object = `${kind} ${key}`;
      if (!(key in b)) {
        if (explained(kind, key)) continue;
        const s = explainMissing(kind, key, a[key]);
        out.push(finding('schema', s.severity, object, a[key], null, s.message, s.hint));
        continue;
      }
      const pa = a[key];
      const pb = b[key];
      for (const prop of [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort()) {
        const va = pa[prop] ?? null;
        const vb = pb[prop] ?? null;
        if (va === vb) continue;
        // An ICU locale written language_REGION on an old major, canonicalised to language-REGION by 16+.
        if (kind === 'collation' && prop === 'locale' && pa.provider === 'i' && pb.provider === 'i' && typeof va === 'string' && typeof vb === 'string' && icuLanguageTag(va) === icuLanguageTag(vb)) continue;
        if (typeof va === 'string' && typeof vb === 'string' && EXPRESSION_PROPS.has(prop)) {
          // Same expression, printed by two majors' deparsers.
          if (o.sourceMajor !== o.targetMajor && normaliseDeparse(va) === normaliseDeparse(vb)) continue;
          const res = resolutionDifference(va, vb);
          if (res) {
            for (const r of res) {
              const k = `${r.fn}\u0000${r.source}\u0000${r.target}`;
              const g = resolutions.get(k) ?? { r, objects: [] };
              g.objects.push(`${object}${prop === 'definition' || prop === 'body' ? '' : ` ${prop}`}`);
              resolutions.set(k, g);
            }
            continue;
          }
        }
        // One cause, one finding: DEFERRABLE changed explains INITIALLY DEFERRED changing with it; a missing or extra
        // column (its own finding) explains the column order changing.
        if (kind === 'constraint' && prop === 'deferred' && (pa.deferrable ?? null) !== (pb.deferrable ?? null)) continue;
        if (kind === 'table' && prop === 'column_order' && typeof va === 'string' && typeof vb === 'string' && !sameColumnSet(va, vb)) continue;
        // Bodies can be long: show the first line that differs, not the whole text; a text search mapping: the tokens that differ.
        const [ea, eb] = prop === 'body' && typeof va === 'string' && typeof vb === 'string' ? firstDifferingLine(va, vb)
          : kind === 'text search configuration' && prop === 'mapping' ? differingMappings(va, vb) : [va, vb];
        const s = explainChange(kind, key, prop, ea, eb, o, { source: pa, target: pb });
        out.push(finding('schema', s.severity, object, { [prop]: ea }, { [prop]: eb }, s.message, s.hint));
      }
    }
    for (const key of Object.keys(b).sort()) {
      if (key in a) continue;
      if (kind !== 'table' && (under(extraTables, key) || (kind === 'index' && extraTables.has(String(b[key].table))))) continue;
      // 17 added the MAINTAIN privilege (owners hold it): a source before 17 cannot have it.
      if (o.sourceMajor < 17 && /grant$|^default privileges$/.test(kind) && key.endsWith(': MAINTAIN')) continue;
      const s = explainExtra(kind, key, b[key]);
      out.push(finding('schema', s.severity, `${kind} ${key}`, null, b[key], s.message, s.hint));
    }
  }
  for (const { r, objects } of resolutions.values()) out.push(resolutionFinding(r, objects, o));
  return groupFindings(out);
}

/** Pure: the first line where two texts differ, as `line N: …` on each side (trimmed to 120 characters). */
/** Two column lists (`a, b, c`) naming the same columns, perhaps in another order. */
export function sameColumnSet(a: string, b: string): boolean {
  const set = (x: string) => x.split(', ').sort().join(', ');
  return set(a) === set(b);
}

/** A text search configuration's mapping (`token:dict, …`), reduced to the tokens mapped differently on the two sides. */
export function differingMappings(a: unknown, b: unknown): [string | null, string | null] {
  const parse = (v: unknown) => {
    const m = new Map<string, string[]>();
    for (const e of typeof v === 'string' && v ? v.split(', ') : []) {
      const i = e.indexOf(':');
      const token = e.slice(0, i);
      m.set(token, [...(m.get(token) ?? []), e.slice(i + 1)]);
    }
    return m;
  };
  const ma = parse(a);
  const mb = parse(b);
  const tokens = [...new Set([...ma.keys(), ...mb.keys()])].filter((t) => (ma.get(t) ?? []).join(' ') !== (mb.get(t) ?? []).join(' '));
  const show = (m: Map<string, string[]>) => tokens.map((t) => `${t}:${m.has(t) ? m.get(t)!.join(' ') : '(unmapped)'}`).join(', ') || null;
  return tokens.length ? [show(ma), show(mb)] : [a as string | null, b as string | null];
}

export function firstDifferingLine(a: string, b: string): [string, string] {
  const la = a.split('\n');
  const lb = b.split('\n');
  let i = 0;
  while (i < Math.max(la.length, lb.length) && la[i] === lb[i]) i++;
  const cut = (x: string | undefined) => (x === undefined ? '(no such line)' : x.trim().length > 120 ? x.trim().slice(0, 119) + '…' : x.trim());
  return [`line ${i + 1}: ${cut(la[i])}`, `line ${i + 1}: ${cut(lb[i])}`];
}

function resolutionFinding(r: Resolution, objects: string[], o: DiffOptions): DriftFinding {
  const where = (schema: string, side: 'source' | 'target') => {
    const ext = o.extensionFunctions?.[side]?.[`${schema}.${r.fn}`];
    return schema === 'pg_catalog' ? `the built-in pg_catalog.${r.fn}` : `${schema}.${r.fn}${ext ? ` (from extension ${ext})` : ''}`;
  };
  const same = SAME_BEHAVIOUR[r.fn.replace(/"/g, '')];
  const list = objects.slice(0, 5).join(', ') + (objects.length > 5 ? `, … (${objects.length} in all)` : '');
  const f = finding(
    'schema',
    same ? 'info' : 'warning',
    `function ${r.fn}() resolution`,
    `${r.source}.${r.fn}`,
    `${r.target}.${r.fn}`,
    `${r.fn}() resolves to ${where(r.source, 'source')} on the source and to ${where(r.target, 'target')} on the target, in ${objects.length} expression(s): ${list}. ` +
      (same ? `Same behaviour: ${same}.` : 'The two functions may behave differently.'),
    same
      ? `nothing to do; after the cutover you may drop the extension's copy once nothing references ${r.source}.${r.fn}`
      : `check that ${r.target}.${r.fn} does what ${r.source}.${r.fn} does, or schema-qualify the call on the target`,
  );
  f.objects = objects;
  return f;
}

/**
 * One cause across many objects is one finding: the same kind of object, the same property and the
 * same change (or the same kind missing / extra with the same consequence). The finding names the
 * first object and carries them all in `objects`.
 */
export function groupFindings(list: DriftFinding[], min = 3): DriftFinding[] {
  const groups = new Map<string, DriftFinding[]>();
  const order: string[] = [];
  list.forEach((f, i) => {
    if (f.objects) {
      groups.set(`#${i}`, [f]);
      order.push(`#${i}`);
      return;
    }
    const kind = kindOf(f.object);
    const changed = f.old !== null && f.new !== null;
    // A change groups only when the values are the same everywhere (they do not name the object).
    const k = f.category + '\u0000' + (changed
      ? `c\u0000${kind}\u0000${f.severity}\u0000${JSON.stringify(f.old)}\u0000${JSON.stringify(f.new)}\u0000${f.message.split(f.object.slice(kind.length + 1)).join('…')}`
      : `${f.old === null ? 'x' : 'm'}\u0000${kind}\u0000${f.severity}\u0000${f.message.split(f.object.slice(kind.length + 1)).join('…')}`);
    if (!groups.has(k)) order.push(k);
    groups.set(k, [...(groups.get(k) ?? []), f]);
  });
  const out: DriftFinding[] = [];
  for (const k of order) {
    const g = groups.get(k)!;
    if (g.length < min) {
      out.push(...g);
      continue;
    }
    const kind = kindOf(g[0].object);
    const objects = g.map((f) => f.object);
    const names = objects.map((x) => x.slice(kind.length + 1));
    const list = names.slice(0, 5).join(', ') + (names.length > 5 ? `, … (${names.length} in all)` : '');
    const first = g[0];
    const changed = first.old !== null && first.new !== null;
    const message = changed
      ? `${g.length} ${plural(kind)} have the same difference — ${first.message.split(names[0]).join('each')} — ${list}`
      : `${g.length} ${plural(kind)} ${first.old === null ? 'exist on the target but not on the source' : 'exist on the source but not on the target'}: ${list}. ${whyOf(first)}`;
    const hint = first.hint.split(names[0]).join('each of them');
    const f = finding(first.category, first.severity, `${kind} ${names[0]} (+${g.length - 1} more)`, changed ? first.old : null, changed ? first.new : null, message, hint);
    f.objects = objects;
    out.push(f);
  }
  return out;
}

/** The consequence part of a missing/extra message ("<object> exists on … but not on …: <why>"). */
function whyOf(f: DriftFinding): string {
  for (const side of ['exists on the target but not on the source: ', 'exists on the source but not on the target: ']) {
    const prefix = `${f.object} ${side}`;
    if (f.message.startsWith(prefix)) return f.message.slice(prefix.length);
  }
  return f.message;
}

/** The noun before an object's name: a schema kind, or (other categories) the words before the first dotted name. */
function kindOf(object: string): string {
  let best = '';
  for (const k of SCHEMA_KINDS) if (object.startsWith(k + ' ') && k.length > best.length) best = k;
  if (best) return best;
  const m = /(?:"(?:[^"]|"")*"|[^\s".]+)(?:\.(?:"(?:[^"]|"")*"|[^\s".]+))+/.exec(object);
  return m && m.index > 0 ? object.slice(0, m.index).trim() : object.split(' ')[0];
}
function plural(kind: string): string {
  return (SCHEMA_KINDS as readonly string[]).includes(kind) ? `${kind}s` : `"${kind} …" objects`;
}

/**
 * Findings for sequences that would hand out a value their column already holds. On a side that
 * receives rows by logical replication this is expected (sequences are not replicated) until the
 * switchover syncs them: a warning. On a side that does not, the next insert taking a default
 * collides: an error on the target (after the cutover that is where the application writes), a
 * warning on the source (the application's problem today; the cutover's sync takes the column's
 * max on the target, so it does not carry over).
 */
export function sequenceFindings(side: 'source' | 'target', list: SequenceBehind[], subscriber = side === 'target'): DriftFinding[] {
  const grouped = list.map((s) => {
    const what = `on the ${side}, sequence ${s.sequence} would hand out ${s.next} next but ${s.column} already holds ${s.max}`;
    const fix = `SELECT setval('${s.sequence.replace(/'/g, "''")}', (SELECT max(${lastPart(s.column)}) FROM ${tableOf(s.column)})) on the ${side}`;
    const v = { next: s.next, max: s.max };
    if (subscriber)
      return finding('schema', 'warning', `sequence ${s.sequence}`, side === 'source' ? v : null, side === 'target' ? v : null,
        `${what}: this side receives rows by logical replication, which does not move sequences, so inserts here fail with duplicate keys until the sequences are synced`,
        `the switchover syncs sequences before writes move (cutover switchover), or ${fix}`);
    return side === 'target'
      ? finding('schema', 'error', `sequence ${s.sequence}`, null, v, `${what}: after the cutover the next insert that takes a default fails with a duplicate key`, fix)
      : finding('schema', 'warning', `sequence ${s.sequence}`, v, null, `${what}: rows were inserted with explicit ids, so the next insert there that takes a default collides (the cutover's sequence sync uses the column's max on the target, so it does not carry over)`, fix);
  });
  if (grouped.length < 3) return grouped;
  // One cause (this side's sequences were not moved), many sequences: one finding listing them.
  const first = grouped[0];
  const why = first.message.slice(first.message.indexOf(': ') + 2);
  const f = finding('schema', first.severity, `${first.object} (+${grouped.length - 1} more)`, null, null,
    `on the ${side}, ${grouped.length} sequences would hand out values their columns already hold (${list3(list)}): ${why}`,
    first.hint.replace(/SELECT setval\(.*\) on the (source|target)/, `setval each of them to its column's max on the ${side}`));
  f.objects = grouped.map((g) => g.object);
  return [f];
}

function list3(list: SequenceBehind[]): string {
  const shown = list.slice(0, 5).map((s) => `${s.sequence} next ${s.next}, ${s.column} max ${s.max}`).join('; ');
  return list.length > 5 ? `${shown}; … (${list.length} in all)` : shown;
}

/**
 * Views whose bodies print differently across majors (16 stopped qualifying unambiguous columns,
 * for one): the target's own deparser renders the source's body in a temporary view inside a
 * transaction that is rolled back, so both sides are printed by the same server. Returns the
 * source bodies as the target prints them; a body the target cannot even create is left as is.
 */
export async function redeparseOnTarget(c: Client, bodies: Record<string, string>): Promise<{ rendered: Record<string, string>; failed: string[] }> {
  const rendered: Record<string, string> = {};
  const failed: string[] = [];
  const keys = Object.keys(bodies);
  if (!keys.length) return { rendered, failed };
  await c.query('begin');
  try {
    await c.query(SPELLING_SETTINGS);
    for (const [i, key] of keys.entries()) {
      await c.query('savepoint drift_view');
      try {
        const name = `cutover_drift_view_${i}`;
        await c.query(`create temporary view ${name} as ${bodies[key].replace(/;\s*$/, '')}`);
        const r = await c.query(`select regexp_replace(pg_get_viewdef($1::regclass), '\\s+', ' ', 'g') as d`, [`pg_temp.${name}`]);
        rendered[key] = r.rows[0].d;
        await c.query('release savepoint drift_view');
      } catch {
        await c.query('rollback to savepoint drift_view').catch(() => {});
        failed.push(key);
      }
    }
  } finally {
    await c.query('rollback').catch(() => {});
  }
  return { rendered, failed };
}

interface ReprintItem {
  kind: 'column' | 'constraint' | 'index' | 'policy' | 'domain constraint' | 'function';
  key: string;
  prop: string;
  /** The table copied to the temporary table `t` first (none for domains and functions). */
  table: string | null;
  /** Statements that put the source's expression on the temporary copy `t` of the table. */
  apply: (t: string) => string[];
  /** A query returning the expression as the target prints it, in column `v`. */
  read: (t: string) => string;
}

/** Which cross-major expression differences can be re-printed by the target, and how. */
export function reprintItems(a: SchemaSnapshot, b: SchemaSnapshot): ReprintItem[] {
  const out: ReprintItem[] = [];
  const differs = (kind: SchemaKind, key: string, prop: string) => {
    const va = a[kind]?.[key]?.[prop];
    const vb = b[kind]?.[key]?.[prop];
    return typeof va === 'string' && typeof vb === 'string' && va !== vb ? va : null;
  };
  // a column's default or generation expression, as the target prints it
  const attrdefRead = (col: string) => (t: string) =>
    `select pg_get_expr(d.adbin, d.adrelid) as v from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum where d.adrelid = '${t}'::regclass and format('%I', a.attname) = '${col.replace(/'/g, "''")}'`;
  for (const key of Object.keys(a.column ?? {})) {
    const v = differs('column', key, 'default');
    if (!v) continue;
    const col = lastPart(key);
    out.push({ kind: 'column', key, prop: 'default', table: tableOf(key), apply: (t) => [`alter table ${t} alter column ${col} set default ${v}`],
      read: attrdefRead(col) });
  }
  for (const key of Object.keys(a.column ?? {})) {
    // A stored generated column: the LIKE copy has a plain column; replace it by one generated with the source's expression.
    const v = differs('column', key, 'generated');
    const type = a.column![key].type;
    if (!v || typeof type !== 'string') continue;
    const col = lastPart(key);
    out.push({ kind: 'column', key, prop: 'generated', table: tableOf(key),
      apply: (t) => [`alter table ${t} drop column ${col}`, `alter table ${t} add column ${col} ${type} generated always as (${v}) stored`],
      read: attrdefRead(col) });
  }
  for (const key of Object.keys(a['domain constraint'] ?? {})) {
    // A domain constraint: on a temporary domain over the same base type.
    const v = differs('domain constraint', key, 'definition');
    const base = a.type?.[tableOf(key)]?.base_type;
    if (!v || !v.startsWith('CHECK ') || typeof base !== 'string') continue;
    out.push({ kind: 'domain constraint', key, prop: 'definition', table: null,
      apply: () => [`create domain pg_temp.cutover_drift_d as ${base} constraint cutover_drift_c ${v}`],
      read: () => `select regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '') as v from pg_constraint k where k.contypid = 'pg_temp.cutover_drift_d'::regtype and k.conname = 'cutover_drift_c'` });
  }
  for (const key of Object.keys(a.function ?? {})) {
    // An SQL-standard body (BEGIN ATOMIC … END / RETURN …, 14+) is stored parsed and printed by each server's deparser:
    // re-create it as a temporary function on the target and read it back.
    const v = differs('function', key, 'body');
    const fa = a.function![key];
    const fb = b.function?.[key];
    const args = /^(?:"(?:[^"]|"")*"|[^."(]+)\.(?:"(?:[^"]|"")*"|[^."(]+)\((.*)\)$/s.exec(key)?.[1];
    const standard = (x: unknown) => typeof x === 'string' && /^(BEGIN ATOMIC\b|RETURN\b)/.test(x);
    if (!v || !fb || fa.language !== 'sql' || !standard(v) || !standard(fb.body) || args === undefined) continue;
    const head = fa.kind === 'procedure' ? `create procedure pg_temp.cutover_drift_f(${args})` : `create function pg_temp.cutover_drift_f(${args}) returns ${fa.result}`;
    out.push({ kind: 'function', key, prop: 'body', table: null,
      apply: () => [`${head} language sql ${v}`],
      read: () => `select pg_get_function_sqlbody(p.oid) as v from pg_proc p where p.proname = 'cutover_drift_f' and p.pronamespace = pg_my_temp_schema()` });
  }
  for (const key of Object.keys(a.constraint ?? {})) {
    const v = differs('constraint', key, 'definition');
    if (!v || !v.startsWith('CHECK ')) continue;
    out.push({ kind: 'constraint', key, prop: 'definition', table: tableOf(key), apply: (t) => [`alter table ${t} add constraint cutover_drift_c ${v} not valid`],
      read: (t) => `select regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', '') as v from pg_constraint where conrelid = '${t}'::regclass and conname = 'cutover_drift_c'` });
  }
  for (const key of Object.keys(a.index ?? {})) {
    const ia = a.index![key];
    const ib = b.index?.[key];
    if (!ib || typeof ia.table !== 'string' || ia.table !== ib.table || ia.method !== ib.method) continue;
    for (const prop of ['keys', 'predicate'] as const) {
      if (!differs('index', key, prop)) continue;
      const keys = String(ia.keys);
      out.push({ kind: 'index', key, prop, table: ia.table, apply: (t) => [`create index cutover_drift_i on ${t} using ${ia.method} ${keys}${ia.predicate ? ` where ${ia.predicate}` : ''}`],
        read: (t) => prop === 'keys'
          ? `select regexp_replace(regexp_replace(regexp_replace(pg_get_indexdef(i.indexrelid), '^.*? USING \\S+ ', ''), ' WHERE .*$', ''), ' WITH \\([^()]*\\)$', '') as v from pg_index i where i.indrelid = '${t}'::regclass`
          : `select pg_get_expr(i.indpred, i.indrelid) as v from pg_index i where i.indrelid = '${t}'::regclass` });
    }
  }
  for (const key of Object.keys(a.policy ?? {})) {
    for (const prop of ['using', 'with_check'] as const) {
      const v = differs('policy', key, prop);
      if (!v) continue;
      out.push({ kind: 'policy', key, prop, table: tableOf(key), apply: (t) => [`create policy cutover_drift_p on ${t} ${prop === 'using' ? `using (${v})` : `with check (${v})`}`],
        read: (t) => `select pg_get_expr(${prop === 'using' ? 'polqual' : 'polwithcheck'}, polrelid) as v from pg_policy where polrelid = '${t}'::regclass` });
    }
  }
  return out;
}

/**
 * Expressions (defaults, CHECKs, index keys and predicates, policies) that print differently across
 * majors, re-printed by the target's deparser: the source's expression is put on a temporary copy
 * of its table (CREATE TEMP TABLE … (LIKE …)) inside a transaction that is rolled back, then read
 * back. What then matches the target is the same expression spelled by two deparsers.
 */
export async function reprintExpressionsOnTarget(c: Client, items: ReprintItem[]): Promise<Map<ReprintItem, string>> {
  const out = new Map<ReprintItem, string>();
  if (!items.length) return out;
  await c.query('begin');
  try {
    await c.query(SPELLING_SETTINGS);
    for (const item of items) {
      await c.query('savepoint drift_expr');
      try {
        const t = 'pg_temp.cutover_drift_t';
        if (item.table) await c.query(`create temporary table cutover_drift_t (like ${item.table})`);
        for (const stmt of item.apply(t)) await c.query(stmt);
        const r = await c.query(item.read(t));
        if (r.rows[0] && typeof r.rows[0].v === 'string') out.set(item, r.rows[0].v);
      } catch {
        /* the target cannot even take the source's expression: leave the difference as it is */
      }
      await c.query('rollback to savepoint drift_expr').catch(() => {});
    }
  } finally {
    await c.query('rollback').catch(() => {});
  }
  return out;
}

export async function checkSchema(ctx: DriftContext): Promise<DriftFinding[]> {
  const a = await schemaSide(ctx.source.client, ctx.source.versionNum);
  const b = await schemaSide(ctx.target.client, ctx.target.versionNum);
  for (const n of [...a.notes, ...b.notes]) ctx.note(n);
  const reprinted = new Set<string>();
  if (ctx.source.major !== ctx.target.major) {
    const differ: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.snapshot.view ?? {}))
      if (b.snapshot.view?.[k] && typeof v.definition === 'string' && v.definition !== b.snapshot.view[k].definition) differ[k] = v.definition;
    const { rendered } = await redeparseOnTarget(ctx.target.client, differ);
    // Re-printed by the target: equal means the same view; different is now a real difference (one deparser).
    for (const [k, d] of Object.entries(rendered)) {
      a.snapshot.view![k] = { ...a.snapshot.view![k], definition: d };
      reprinted.add(k);
    }
    const items = reprintItems(a.snapshot, b.snapshot);
    const printed = await reprintExpressionsOnTarget(ctx.target.client, items);
    let same = 0;
    for (const [item, v] of printed) {
      if (v !== b.snapshot[item.kind]![item.key][item.prop]) continue;
      a.snapshot[item.kind]![item.key] = { ...a.snapshot[item.kind]![item.key], [item.prop]: v };
      same++;
    }
    if (items.length) ctx.note(`schema: ${items.length} expressions print differently across majors; ${printed.size} re-printed by the target's deparser, ${same} of them then the same`);
    if (Object.keys(differ).length) ctx.note(`schema: ${Object.keys(differ).length} view bodies print differently across majors; ${Object.keys(rendered).length} re-printed by the target's deparser, ${Object.keys(rendered).filter((k) => rendered[k] === b.snapshot.view![k].definition).length} of them then the same`);
  }
  ctx.record('schemaObjects', {
    source: Object.fromEntries(Object.entries(a.snapshot).map(([k, v]) => [k, Object.keys(v ?? {}).length])),
    target: Object.fromEntries(Object.entries(b.snapshot).map(([k, v]) => [k, Object.keys(v ?? {}).length])),
  });
  return [
    ...diffSchema(a.snapshot, b.snapshot, { sourceMajor: ctx.source.major, targetMajor: ctx.target.major, reprinted, extensionFunctions: { source: a.extensionFunctions, target: b.extensionFunctions } }),
    ...sequenceFindings('source', a.sequencesBehind, a.subscriber),
    ...sequenceFindings('target', b.sequencesBehind, b.subscriber),
  ];
}
