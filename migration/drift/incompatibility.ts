/**
 * Release-note incompatibilities (../shared/REFERENCE.md, "Version incompatibilities worth a check
 * on the old database"): each check applies when the source major is below the release that made
 * the change and the target is at or above it, and runs on the source.
 */
import { finding, rows, type DriftContext, type DriftFinding, type Severity, type Side } from './types.ts';

export interface IncompatibilityCheck {
  /** The major that introduced the change. */
  from: number;
  id: string;
  change: string;
  run(src: Side, tgt: Side, ctx: DriftContext): Promise<Array<{ object: string; old: unknown; new?: unknown; severity?: Severity; message?: string }>>;
  severity: Severity;
  hint: string;
}

/** Pure: checks that apply when moving from `oldMajor` to `newMajor`. */
export function applicableChecks(oldMajor: number, newMajor: number, checks: IncompatibilityCheck[] = INCOMPATIBILITY_CHECKS): IncompatibilityCheck[] {
  return checks.filter((c) => oldMajor < c.from && newMajor >= c.from);
}

const USER_NS = `n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)'`;

/** View definitions and SQL/PL function bodies (user objects), for text searches. */
async function bodies(src: Side): Promise<Array<{ object: string; body: string }>> {
  return rows(src.client, `
    select 'view ' || format('%I.%I', n.nspname, c.relname) as object, pg_get_viewdef(c.oid) as body
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('v','m') and ${USER_NS}
    union all
    select 'function ' || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), coalesce(p.prosrc, '')
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
      where l.lanname not in ('c','internal') and ${USER_NS}
      and not exists (select 1 from pg_depend dep where dep.classid = 'pg_proc'::regclass and dep.objid = p.oid and dep.deptype = 'e')`);
}

function grepBodies(re: RegExp) {
  return async (src: Side) => (await bodies(src)).filter((b) => re.test(stripStrings(b.body))).map((b) => ({ object: b.object, old: excerpt(b.body, re) }));
}

/** Pure: drop comments and string literals so searches only see code. */
export function stripStrings(sql: string): string {
  return sql.replace(/--[^\n]*/g, ' ').replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/'(?:[^']|'')*'/g, "''");
}

function excerpt(body: string, re: RegExp): string {
  const m = re.exec(body);
  if (!m) return body.slice(0, 80);
  const i = Math.max(0, m.index - 30);
  return body.slice(i, m.index + m[0].length + 30).replace(/\s+/g, ' ');
}

async function nonDefaultSettings(src: Side, names: string[]) {
  const r = await rows(src.client, `select name, setting from pg_settings where name = any($1) and source not in ('default', 'override')`, [names]);
  return r.map((x) => ({ object: `setting ${x.name}`, old: x.setting }));
}

export const INCOMPATIBILITY_CHECKS: IncompatibilityCheck[] = [
  {
    from: 12, id: 'with-oids', change: 'WITH OIDS tables are gone', severity: 'error',
    hint: 'ALTER TABLE … SET WITHOUT OIDS on the source (and stop reading the oid column) before the migration',
    run: async (src) => src.versionNum >= 120000 ? [] : (await rows(src.client, `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relhasoids and ${USER_NS}`)).map((r) => ({ object: `table ${r.t}`, old: 'WITH OIDS' })),
  },
  {
    from: 12, id: 'abstime', change: 'abstime, reltime and tinterval types are gone', severity: 'error',
    hint: 'ALTER COLUMN … TYPE timestamptz / interval on the source before the migration',
    run: async (src) => (await rows(src.client, `select format('%I.%I.%I', n.nspname, c.relname, a.attname) as col, t.typname from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace join pg_type t on t.oid = a.atttypid
        where a.attnum > 0 and not a.attisdropped and t.typname in ('abstime','reltime','tinterval','_abstime','_reltime','_tinterval') and ${USER_NS}`)).map((r) => ({ object: `column ${r.col}`, old: r.typname })),
  },
  {
    from: 12, id: 'float-output', change: 'float output is shortest-exact by default', severity: 'warning',
    hint: 'compare floats by value, not by their text; set extra_float_digits explicitly in clients that parse float text',
    run: async (src) => {
      const r = await rows(src.client, `select count(*) as n, string_agg(format('%I.%I.%I', n.nspname, c.relname, a.attname), ', ') as cols
        from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where a.attnum > 0 and not a.attisdropped and c.relkind in ('r','p','v','m') and a.atttypid in ('float4'::regtype, 'float8'::regtype) and ${USER_NS}`);
      return r[0].n > 0 ? [{ object: 'float columns', old: String(r[0].cols).slice(0, 300), message: `${r[0].n} float columns print with other digits on 12+ (e.g. 0.1 instead of 0.100000000000000006 with extra_float_digits=3)` }] : [];
    },
  },
  {
    from: 12, id: 'cte-inlining', change: 'CTEs are inlined unless MATERIALIZED (plans change)', severity: 'info',
    hint: 'add AS MATERIALIZED to CTEs whose fencing the plan relied on',
    run: async (src, _tgt, ctx) => {
      const q = ctx.queries.map((s, i) => ({ object: `query #${i + 1}`, old: s.slice(0, 80) })).filter((x, i) => /^\s*with\b/i.test(stripStrings(ctx.queries[i])));
      return [...q, ...(await grepBodies(/\bwith\s+\w+\s+as\s*\(/i)(src))];
    },
  },
  {
    from: 13, id: 'wal-keep-segments', change: 'wal_keep_segments was replaced by wal_keep_size', severity: 'warning',
    hint: 'set wal_keep_size (MB) on the target instead',
    run: (src) => nonDefaultSettings(src, ['wal_keep_segments']),
  },
  {
    from: 14, id: 'md5-passwords', change: 'password_encryption defaults to scram-sha-256', severity: 'warning',
    hint: 're-set these passwords under scram-sha-256 (ALTER ROLE … PASSWORD) before moving clients, or keep md5 in the target pg_hba.conf for now',
    run: async (src, tgt, ctx) => {
      const enc = (await rows(tgt.client, `select setting from pg_settings where name = 'password_encryption'`))[0]?.setting;
      if (enc !== 'scram-sha-256') return [];
      try {
        return (await rows(src.client, `select rolname from pg_authid where rolpassword like 'md5%' order by 1`)).map((r) => ({ object: `role ${r.rolname}`, old: 'md5', new: enc }));
      } catch {
        ctx.note('incompatibility: pg_authid is not readable by this role; md5 passwords were not checked');
        return [];
      }
    },
  },
  {
    from: 14, id: 'postfix-operators', change: 'postfix operators (and ! / !! factorial) are gone', severity: 'error',
    hint: 'replace postfix operators with functions (factorial(n)) in views and functions on the source',
    run: async (src) => [
      ...(await rows(src.client, `select o.oid::regoperator::text as op from pg_operator o join pg_namespace n on n.oid = o.oprnamespace where o.oprright = 0 and o.oprkind = 'r' and ${USER_NS}`)).map((r) => ({ object: `operator ${r.op}`, old: 'postfix' })),
      ...(await grepBodies(/(\d|\))\s*!!?(?!=)|!!\s*\d/)(src)),
    ],
  },
  {
    from: 14, id: 'array-aggregates', change: 'array functions became anycompatible; user aggregates on them must be recreated', severity: 'error',
    hint: 'drop these aggregates before the upgrade and recreate them on the target with anycompatible argument types',
    run: async (src) => (await rows(src.client, `select a.aggfnoid::regprocedure::text as agg, a.aggtransfn::regproc::text as fn from pg_aggregate a join pg_proc p on p.oid = a.aggfnoid join pg_namespace n on n.oid = p.pronamespace
        where a.aggtransfn::regproc::text in ('array_append','array_prepend','array_cat','array_position','array_positions','array_remove','array_replace','width_bucket') and ${USER_NS}`)).map((r) => ({ object: `aggregate ${r.agg}`, old: r.fn })),
  },
  {
    from: 14, id: 'extract-numeric', change: 'EXTRACT returns numeric instead of double precision', severity: 'info',
    hint: 'check callers that expect double precision (formatting, integer division) from EXTRACT',
    run: grepBodies(/\bextract\s*\(/i),
  },
  {
    from: 15, id: 'public-create', change: 'CREATE on schema public is revoked from PUBLIC in new databases', severity: 'warning',
    hint: 'GRANT CREATE ON SCHEMA public TO the roles that create objects there (or to PUBLIC, to keep the old behaviour) on the target',
    run: async (src) => (await rows(src.client, `select has_schema_privilege('public', 'public', 'CREATE') as ok where exists (select 1 from pg_namespace where nspname = 'public')`)).filter((r) => r.ok).map(() => ({ object: 'schema public', old: 'PUBLIC may CREATE', new: 'only the database owner may CREATE (new 15+ databases)' })),
  },
  {
    from: 15, id: 'exclusive-backup', change: 'exclusive backup functions were removed (pg_start_backup/pg_stop_backup → pg_backup_start/pg_backup_stop)', severity: 'error',
    hint: 'use pg_backup_start/pg_backup_stop (non-exclusive) in these functions and in backup scripts',
    run: grepBodies(/\bpg_(start|stop)_backup\b|\bpg_is_in_backup\b|\bpg_backup_start_time\b/i),
  },
  {
    from: 15, id: 'plpython2', change: 'PL/Python 2 was removed', severity: 'error',
    hint: 'port the functions to plpython3u',
    run: async (src) => (await rows(src.client, `select l.lanname, count(p.oid) as n from pg_language l left join pg_proc p on p.prolang = l.oid where l.lanname in ('plpythonu','plpython2u') group by 1`)).map((r) => ({ object: `language ${r.lanname}`, old: `${r.n} functions` })),
  },
  {
    from: 15, id: 'numeric-junk', change: 'junk after numeric literals is rejected (123abc)', severity: 'warning',
    hint: 'put a space between the number and what follows, or quote the value',
    run: grepBodies(/(?<![\w$.])\d+(?:\.\d+)?(?!e[+-]?\d)[a-z_]\w*/i),
  },
  {
    from: 16, id: 'lc-collate', change: 'lc_collate and lc_ctype settings were removed', severity: 'warning',
    hint: 'read the locale from pg_database (datcollate/datctype) instead',
    run: grepBodies(/\blc_(collate|ctype)\b/i),
  },
  {
    from: 16, id: 'removed-settings', change: 'several settings were removed or renamed', severity: 'warning',
    hint: 'drop them from the target configuration (promote_trigger_file → pg_ctl promote/pg_promote, force_parallel_mode → debug_parallel_query, vacuum_defer_cleanup_age → hot_standby_feedback/slots)',
    run: (src) => nonDefaultSettings(src, ['promote_trigger_file', 'force_parallel_mode', 'vacuum_defer_cleanup_age']),
  },
  {
    from: 16, id: 'createrole', change: 'CREATEROLE no longer lets a role manage roles it did not create', severity: 'warning',
    hint: 'grant ADMIN OPTION on the roles these users manage, or use a superuser for role management on the target',
    run: async (src) => (await rows(src.client, `select rolname from pg_roles where rolcreaterole and not rolsuper order by 1`)).map((r) => ({ object: `role ${r.rolname}`, old: 'CREATEROLE' })),
  },
  {
    from: 17, id: 'maintenance-search-path', change: 'maintenance operations use a safe search_path', severity: 'warning',
    hint: 'ALTER FUNCTION … SET search_path = … (or schema-qualify the names inside) for functions used in index expressions, or REINDEX/VACUUM fail on the target',
    run: async (src) => (await rows(src.client, `select distinct format('%I.%I', n.nspname, ic.relname) as idx, p.oid::regprocedure::text as fn
        from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
        join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = i.indexrelid and d.refclassid = 'pg_proc'::regclass
        join pg_proc p on p.oid = d.refobjid join pg_language l on l.oid = p.prolang
        where l.lanname in ('sql','plpgsql') and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) cfg where cfg like 'search_path=%') and ${USER_NS}`)).map((r) => ({ object: `index ${r.idx}`, old: r.fn })),
  },
  {
    from: 17, id: 'old-snapshot-adminpack', change: 'old_snapshot_threshold and adminpack were removed', severity: 'warning',
    hint: 'drop the setting from the configuration and DROP EXTENSION adminpack on the source',
    run: async (src) => [
      ...(await nonDefaultSettings(src, ['old_snapshot_threshold'])),
      ...(await rows(src.client, `select extname from pg_extension where extname = 'adminpack'`)).map((r) => ({ object: `extension ${r.extname}`, old: 'installed' })),
    ],
  },
  {
    // 18 release notes: "Disallow UNLOGGED specification for partitioned tables". Before 18 it was accepted on the
    // parent (and did nothing for its partitions); pg_dump prints it, and the target refuses CREATE UNLOGGED TABLE … PARTITION BY.
    from: 18, id: 'unlogged-partitioned', change: 'UNLOGGED partitioned tables are refused', severity: 'error',
    hint: 'ALTER TABLE … SET LOGGED on the partitioned table on the source (it holds no rows itself), or drop UNLOGGED from the schema before copying it',
    run: async (src) => (await rows(src.client, `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'p' and c.relpersistence = 'u' and ${USER_NS} order by 1`)).map((r) => ({ object: `table ${r.t}`, old: 'UNLOGGED partitioned table',
        message: 'the schema copy stops at its CREATE UNLOGGED TABLE … PARTITION BY' })),
  },
  {
    // 18 release notes: "Deprecate MD5 password authentication" (md5_password_warnings): a role with an MD5 password
    // still logs in on 18 but every login and password change warns, and a later major removes it. Only whether the
    // stored secret starts with md5 is read, never the secret.
    from: 18, id: 'md5-deprecated', change: 'MD5 passwords are deprecated', severity: 'warning',
    hint: 're-set these passwords under scram-sha-256 (SET password_encryption = \'scram-sha-256\'; ALTER ROLE … PASSWORD …) and use scram-sha-256 in pg_hba.conf',
    run: async (src, _tgt, ctx) => {
      try {
        return (await rows(src.client, `select format('%I', rolname) as r from pg_authid where rolpassword like 'md5%' order by 1`)).map((r) => ({ object: `role ${r.r}`, old: 'md5' }));
      } catch {
        ctx.note('incompatibility: pg_authid is not readable by this role; md5 passwords were not checked');
        return [];
      }
    },
  },
  {
    from: 18, id: 'data-checksums', change: 'initdb enables data checksums by default', severity: 'info',
    hint: 'nothing to do for logical replication; physical tools (pg_upgrade) need both sides to match',
    run: async (src, tgt) => {
      const [a] = await rows(src.client, `select setting from pg_settings where name = 'data_checksums'`);
      const [b] = await rows(tgt.client, `select setting from pg_settings where name = 'data_checksums'`);
      return a?.setting !== b?.setting ? [{ object: 'setting data_checksums', old: a?.setting, new: b?.setting }] : [];
    },
  },
];

export async function checkIncompatibility(ctx: DriftContext): Promise<DriftFinding[]> {
  const out: DriftFinding[] = [];
  const checks = applicableChecks(ctx.source.major, ctx.target.major);
  ctx.record('incompatibilityChecks', checks.map((c) => c.id));
  for (const check of checks) {
    for (const hit of await check.run(ctx.source, ctx.target, ctx)) {
      out.push(finding('incompatibility', hit.severity ?? check.severity, hit.object, hit.old ?? null, hit.new ?? null,
        `PostgreSQL ${check.from}: ${check.change}${hit.message ? ` — ${hit.message}` : ''} (${hit.object})`, check.hint));
    }
  }
  return out;
}
