/**
 * Settings drift: database- and role-level settings (pg_db_role_setting, which a schema-only dump
 * misses) and the server settings that change what queries return or how sessions behave.
 * Settings that exist on only one major are left to the incompatibility checks.
 */
import { finding, rows, type DriftContext, type DriftFinding, type Severity, type Side } from './types.ts';

/** Server settings compared, with the severity of a difference. */
export const SERVER_SETTINGS: Record<string, Severity> = {
  search_path: 'error',
  default_transaction_isolation: 'error',
  default_transaction_read_only: 'error',
  bytea_output: 'warning',
  xmloption: 'warning',
  xmlbinary: 'warning',
  // to_tsvector/to_tsquery/plainto_tsquery without a configuration (queries, triggers filling tsvector columns) use it: other lexemes, other rows found.
  default_text_search_config: 'error',
  lc_messages: 'info',
  lc_monetary: 'warning',
  lc_numeric: 'warning',
  lc_time: 'warning',
  statement_timeout: 'warning',
  lock_timeout: 'warning',
  idle_in_transaction_session_timeout: 'warning',
  row_security: 'warning',
  array_nulls: 'warning',
  backslash_quote: 'warning',
  escape_string_warning: 'info',
  quote_all_identifiers: 'warning',
  transform_null_equals: 'warning',
  check_function_bodies: 'info',
  client_min_messages: 'info',
  session_preload_libraries: 'warning',
  shared_preload_libraries: 'warning',
  max_connections: 'warning',
  default_table_access_method: 'warning',
  plan_cache_mode: 'info',
  jit: 'info',
  work_mem: 'info',
  maintenance_work_mem: 'info',
  random_page_cost: 'info',
  effective_cache_size: 'info',
  max_parallel_workers_per_gather: 'info',
  password_encryption: 'info',
  default_toast_compression: 'info',
};

/** Session settings that change what a query resolves to or returns (names lower-cased, as pg_db_role_setting may spell them either way). */
const RESULT_SETTINGS = new Set(['search_path', 'timezone', 'datestyle', 'intervalstyle', 'default_text_search_config', 'default_transaction_isolation',
  'default_transaction_read_only', 'standard_conforming_strings', 'bytea_output', 'extra_float_digits', 'lc_monetary', 'lc_numeric', 'lc_time', 'row_security', 'transform_null_equals', 'xmloption']);

export type ScopedSettings = Record<string, Record<string, string>>; // scope → name → value

export async function dbRoleSettings(side: Side): Promise<ScopedSettings> {
  const r = await rows(
    side.client,
    `select case when s.setrole = 0 then 'database ' || format('%I', d.datname)
                 when s.setdatabase = 0 then 'role ' || format('%I', ro.rolname)
                 else 'role ' || format('%I', ro.rolname) || ' in database ' || format('%I', d.datname) end as scope,
            unnest(s.setconfig) as cfg
     from pg_db_role_setting s left join pg_database d on d.oid = s.setdatabase left join pg_roles ro on ro.oid = s.setrole
     where s.setdatabase = 0 or s.setdatabase = (select oid from pg_database where datname = current_database())`,
  );
  const out: ScopedSettings = {};
  for (const { scope, cfg } of r) {
    const i = cfg.indexOf('=');
    (out[scope] ??= {})[cfg.slice(0, i)] = cfg.slice(i + 1);
  }
  return out;
}

export async function serverSettings(side: Side): Promise<Record<string, string>> {
  const r = await rows(side.client, `select name, setting, unit from pg_settings where name = any($1)`, [Object.keys(SERVER_SETTINGS)]);
  const out: Record<string, string> = {};
  for (const row of r) out[row.name] = row.unit ? `${row.setting} (${row.unit})` : row.setting;
  return out;
}

/** Pure: database/role-level settings that are missing or different on the target. */
export function diffScopedSettings(a: ScopedSettings, b: ScopedSettings, sourceDb: string, targetDb: string): DriftFinding[] {
  const out: DriftFinding[] = [];
  // The two databases may have other names; compare the current database's scope by role.
  const norm = (scope: string, db: string) => scope.replace(`database ${db}`, 'database (current)');
  const na: ScopedSettings = {};
  const nb: ScopedSettings = {};
  for (const [s, v] of Object.entries(a)) na[norm(s, sourceDb)] = v;
  for (const [s, v] of Object.entries(b)) nb[norm(s, targetDb)] = v;
  for (const scope of [...new Set([...Object.keys(na), ...Object.keys(nb)])].sort()) {
    const sa = na[scope] ?? {};
    const sb = nb[scope] ?? {};
    const shown = scope.replace('database (current)', `database ${targetDb}`);
    for (const name of [...new Set([...Object.keys(sa), ...Object.keys(sb)])].sort()) {
      const va = sa[name] ?? null;
      const vb = sb[name] ?? null;
      if (va === vb) continue;
      const missing = vb === null;
      // Set on the target only: a warning, unless the setting changes what the sessions' queries mean or return.
      const changesResults = RESULT_SETTINGS.has(name.toLowerCase());
      out.push(finding('settings', va === null && !changesResults ? 'warning' : 'error', `${shown} setting ${name}`, va, vb,
        missing
          ? `${name} = ${va} is set for ${shown} on the source but not on the target (pg_dump --schema-only does not carry ALTER DATABASE/ROLE … SET)`
          : va === null
            ? `${name} = ${vb} is set for ${shown} on the target only${changesResults ? `: its sessions resolve names, print or compute values differently there than on the source` : ''}`
            : `${name} for ${shown} differs (${va} → ${vb})`,
        `ALTER ${scope.startsWith('role') ? 'ROLE' : 'DATABASE'} … SET ${name} = ${va ?? 'DEFAULT'} on the target (pg_dumpall --globals-only carries role settings)`));
    }
  }
  return out;
}

/** Pure: server settings that differ. */
export function diffServerSettings(a: Record<string, string>, b: Record<string, string>): DriftFinding[] {
  const out: DriftFinding[] = [];
  for (const [name, sev] of Object.entries(SERVER_SETTINGS)) {
    if (!(name in a) || !(name in b) || a[name] === b[name]) continue;
    let severity = sev;
    if (name === 'max_connections') severity = Number.parseInt(b[name]) < Number.parseInt(a[name]) ? 'warning' : 'info';
    out.push(finding('settings', severity, `setting ${name}`, a[name], b[name], `server setting ${name} differs (${a[name]} → ${b[name]})`,
      'set it in the target postgresql.conf (or ALTER SYSTEM) unless the change is intended'));
  }
  return out;
}

export async function checkSettings(ctx: DriftContext): Promise<DriftFinding[]> {
  const [ra, rb, sa, sb] = await Promise.all([dbRoleSettings(ctx.source), dbRoleSettings(ctx.target), serverSettings(ctx.source), serverSettings(ctx.target)]);
  return [...diffScopedSettings(ra, rb, ctx.source.database, ctx.target.database), ...diffServerSettings(sa, sb)];
}
