/**
 * Schema drift: a catalog snapshot of each side (plain data), then a pure diff. The snapshot
 * queries run on every major 11–18; columns that only newer majors have are chosen by
 * server_version_num. Names are rendered with format('%I') so keys are stable and unambiguous.
 */
import type { Client } from '../pg.ts';
import { finding, rows, type DriftContext, type DriftFinding, type Severity } from './types.ts';

export type Props = Record<string, string | number | boolean | null>;
export type SchemaKind =
  | 'schema' | 'table' | 'column' | 'constraint' | 'index' | 'sequence' | 'view' | 'function' | 'trigger'
  | 'extension' | 'role' | 'grant' | 'schema grant' | 'database grant';
export type SchemaSnapshot = Partial<Record<SchemaKind, Record<string, Props>>>;

const USER_NS = `n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'`;
const NOT_EXT = (classid: string, oid: string) =>
  `not exists (select 1 from pg_depend dep where dep.classid = '${classid}'::regclass and dep.objid = ${oid} and dep.deptype = 'e')`;

export function snapshotQueries(versionNum: number): Record<SchemaKind, string> {
  const generated = versionNum >= 120000 ? `nullif(a.attgenerated, '')` : `null::text`;
  return {
    schema: `select format('%I', n.nspname) as key, case when pg_get_userbyid(n.nspowner) = 'pg_database_owner' then 'pg_database_owner' else pg_get_userbyid(n.nspowner) end as owner
             from pg_namespace n where ${USER_NS} and ${NOT_EXT('pg_namespace', 'n.oid')}`,
    table: `select format('%I.%I', n.nspname, c.relname) as key, c.relkind::text as kind, c.relpersistence::text as persistence,
              pg_get_userbyid(c.relowner) as owner, c.relrowsecurity as row_security
            from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind in ('r','p','v','m','f') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    column: `select format('%I.%I.%I', n.nspname, c.relname, a.attname) as key, format_type(a.atttypid, a.atttypmod) as type,
               pg_get_expr(d.adbin, d.adrelid) as "default", a.attnotnull as not_null,
               case when a.attcollation <> 0 then co.collname end as collation,
               nullif(a.attidentity::text, '') as identity, ${generated} as generated
             from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             left join pg_collation co on co.oid = a.attcollation
             where a.attnum > 0 and not a.attisdropped and c.relkind in ('r','p','v','m','f') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    // NOT NULL became a pg_constraint row in 18; nullability is compared on the column instead.
    constraint: `select format('%I.%I.%I', n.nspname, c.relname, k.conname) as key, pg_get_constraintdef(k.oid) as definition
                 from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
                 where k.contype <> 'n' and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    index: `select format('%I.%I', n.nspname, ic.relname) as key, pg_get_indexdef(i.indexrelid) as definition
            from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
            join pg_class c on c.oid = i.indrelid
            where ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    sequence: `select format('%I.%I', n.nspname, c.relname) as key, format_type(s.seqtypid, null) as type, s.seqstart::text as start,
                 s.seqincrement::text as increment, s.seqmin::text as min, s.seqmax::text as max, s.seqcycle as cycle, s.seqcache::text as cache
               from pg_sequence s join pg_class c on c.oid = s.seqrelid join pg_namespace n on n.oid = c.relnamespace
               where ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    view: `select format('%I.%I', n.nspname, c.relname) as key, regexp_replace(pg_get_viewdef(c.oid), '\\s+', ' ', 'g') as definition
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where c.relkind in ('v','m') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    function: `select format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as key,
                 pg_get_function_result(p.oid) as result, l.lanname as language, p.provolatile::text as volatility,
                 p.prosecdef as security_definer, p.proisstrict as strict, md5(coalesce(p.prosrc, '')) as body,
                 array_to_string(p.proconfig, ',') as config, pg_get_userbyid(p.proowner) as owner
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
               where ${USER_NS} and ${NOT_EXT('pg_proc', 'p.oid')}`,
    // 11 prints EXECUTE PROCEDURE, 12+ EXECUTE FUNCTION for the same trigger.
    trigger: `select format('%I.%I.%I', n.nspname, c.relname, t.tgname) as key, replace(pg_get_triggerdef(t.oid), ' EXECUTE PROCEDURE ', ' EXECUTE FUNCTION ') as definition, t.tgenabled::text as enabled
              from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
              where not t.tgisinternal and ${USER_NS}`,
    extension: `select format('%I', e.extname) as key, e.extversion as version, e.extnamespace::regnamespace::text as schema from pg_extension e`,
    role: `select format('%I', r.rolname) as key, r.rolsuper as superuser, r.rolinherit as inherit, r.rolcreaterole as createrole,
             r.rolcreatedb as createdb, r.rolcanlogin as login, r.rolreplication as replication, r.rolbypassrls as bypassrls,
             r.rolconnlimit as connlimit,
             (select string_agg(g.rolname, ',' order by g.rolname) from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid) as member_of
           from pg_roles r where r.rolname !~ '^pg_'`,
    // The owner's own privileges are written as "owner" so a changed owner shows once (on the table), not per privilege.
    grant: `select format('%I.%I', n.nspname, c.relname) || ' to ' || case when x.grantee = 0 then 'PUBLIC' when x.grantee = c.relowner then '(owner)' else format('%I', pg_get_userbyid(x.grantee)) end
               || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_class c join pg_namespace n on n.oid = c.relnamespace,
                 aclexplode(coalesce(c.relacl, acldefault(case when c.relkind = 'S' then 's' else 'r' end::"char", c.relowner))) x
            where c.relkind in ('r','p','v','m','f','S') and ${USER_NS} and ${NOT_EXT('pg_class', 'c.oid')}`,
    'schema grant': `select format('%I', n.nspname) || ' to ' || case when x.grantee = 0 then 'PUBLIC' when x.grantee = n.nspowner then '(owner)' else format('%I', pg_get_userbyid(x.grantee)) end
               || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
            where ${USER_NS} and ${NOT_EXT('pg_namespace', 'n.oid')}`,
    'database grant': `select format('%I', d.datname) || ' to ' || case when x.grantee = 0 then 'PUBLIC' when x.grantee = d.datdba then '(owner)' else format('%I', pg_get_userbyid(x.grantee)) end
               || ': ' || x.privilege_type as key, x.is_grantable as grantable
            from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) x where d.datname = current_database()`,
  };
}

export async function schemaSnapshot(c: Client, versionNum: number): Promise<SchemaSnapshot> {
  const snap: SchemaSnapshot = {};
  for (const [kind, sql] of Object.entries(snapshotQueries(versionNum)) as [SchemaKind, string][]) {
    const out: Record<string, Props> = {};
    for (const r of await rows(c, sql)) {
      const { key, ...props } = r;
      out[key] = props;
    }
    snap[kind] = out;
  }
  return snap;
}

export interface DiffOptions {
  sourceMajor: number;
  targetMajor: number;
}

const HINTS: Partial<Record<SchemaKind, string>> = {
  column: 'make the target column match the source (ALTER TABLE … ALTER COLUMN), or replay the schema from the source with pg_dump --schema-only',
  grant: 'replay the grants from the source (pg_dump --schema-only includes GRANT/REVOKE; roles come from pg_dumpall --roles-only)',
  'schema grant': 'GRANT the schema privilege on the target as on the source',
  'database grant': 'GRANT the database privilege on the target as on the source',
  role: 'create the role on the target with the same attributes (pg_dumpall --roles-only)',
  extension: 'CREATE EXTENSION / ALTER EXTENSION … UPDATE on the target',
};

function hintFor(kind: SchemaKind): string {
  return HINTS[kind] ?? 'replay the schema from the source (pg_dump --schema-only) or change the target to match';
}

/** Severity when an object of this kind exists on the source but not on the target. */
/** Extensions used for diagnosis only (drift itself may create amcheck): missing ones do not break the application. */
const DIAGNOSTIC_EXTENSIONS = new Set(['amcheck', 'pageinspect', 'pg_buffercache', 'pgstattuple', 'pg_visibility', 'pg_walinspect']);

function missingSeverity(kind: SchemaKind, key: string): Severity {
  if (kind === 'extension' && DIAGNOSTIC_EXTENSIONS.has(key)) return 'warning';
  // 15+ no longer lets PUBLIC create in schema public: a release-note change, reported as incompatibility too.
  if (kind === 'schema grant' && key === 'public to PUBLIC: CREATE') return 'warning';
  return 'error';
}

function extraSeverity(kind: SchemaKind): Severity {
  return kind === 'column' || kind === 'constraint' || kind === 'trigger' ? 'warning' : 'info';
}

function changedSeverity(kind: SchemaKind, prop: string, o: DiffOptions): Severity {
  const crossMajor = o.sourceMajor !== o.targetMajor;
  switch (kind) {
    case 'column':
      return 'error';
    case 'view':
      // pg_get_viewdef's deparse changes between majors; the same view may print differently.
      return crossMajor ? 'info' : 'warning';
    case 'extension':
      return prop === 'version' ? 'warning' : 'info';
    case 'sequence':
      return prop === 'cache' || prop === 'start' ? 'info' : 'error';
    case 'role':
      return prop === 'connlimit' ? 'warning' : 'error';
    case 'schema':
      // 15+ makes pg_database_owner the owner of schema public.
      return 'info';
    case 'table':
    case 'function':
      return prop === 'owner' ? 'warning' : prop === 'body' || prop === 'config' ? 'warning' : 'error';
    case 'grant':
    case 'schema grant':
    case 'database grant':
      return 'warning';
    default:
      return 'error';
  }
}

/** Pure: every difference between two catalog snapshots as findings. */
export function diffSchema(src: SchemaSnapshot, tgt: SchemaSnapshot, o: DiffOptions): DriftFinding[] {
  const out: DriftFinding[] = [];
  const kinds = new Set<SchemaKind>([...Object.keys(src), ...Object.keys(tgt)] as SchemaKind[]);
  for (const kind of kinds) {
    const a = src[kind] ?? {};
    const b = tgt[kind] ?? {};
    // A missing table already explains its missing columns, constraints, grants…
    const missingTables = new Set(Object.keys(src.table ?? {}).filter((k) => !(k in (tgt.table ?? {}))));
    const underMissingTable = (key: string) => [...missingTables].some((t) => key.startsWith(t + '.') || key.startsWith(t + ' '));
    for (const key of Object.keys(a).sort()) {
      if (!(key in b)) {
        if (kind !== 'table' && underMissingTable(key)) continue;
        out.push(finding('schema', missingSeverity(kind, key), `${kind} ${key}`, a[key], null, `${kind} ${key} exists on the source but not on the target`, hintFor(kind)));
        continue;
      }
      const pa = a[key];
      const pb = b[key];
      for (const prop of [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort()) {
        const va = pa[prop] ?? null;
        const vb = pb[prop] ?? null;
        if (va === vb) continue;
        out.push(
          finding('schema', changedSeverity(kind, prop, o), `${kind} ${key}`, { [prop]: va }, { [prop]: vb }, `${kind} ${key}: ${prop} differs (source ${show(va)}, target ${show(vb)})`, hintFor(kind)),
        );
      }
    }
    for (const key of Object.keys(b).sort()) {
      if (key in a) continue;
      out.push(finding('schema', extraSeverity(kind), `${kind} ${key}`, null, b[key], `${kind} ${key} exists on the target but not on the source`, 'drop it on the target if it is not intended, or check that the application expects it'));
    }
  }
  return out;
}

function show(v: unknown): string {
  return v === null ? 'none' : JSON.stringify(v);
}

export async function checkSchema(ctx: DriftContext): Promise<DriftFinding[]> {
  const [a, b] = await Promise.all([schemaSnapshot(ctx.source.client, ctx.source.versionNum), schemaSnapshot(ctx.target.client, ctx.target.versionNum)]);
  return diffSchema(a, b, { sourceMajor: ctx.source.major, targetMajor: ctx.target.major });
}
