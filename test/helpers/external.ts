/** Helpers for the external-provider tests. */
import { sql } from './clusters.ts';

/** What a user would compare: every object of the database (and the cluster's roles), by name. Independent of the lab's own ledger. */
export async function catalog(url: string): Promise<Record<string, string[]>> {
  const list = async (q: string) => (await sql(url, q)).map((r) => Object.values(r).join(' ')).sort();
  return {
    databases: await list(`select datname from pg_database`),
    roles: await list(`select rolname, rolcanlogin, rolsuper, rolreplication from pg_roles`),
    publications: await list(`select pubname from pg_publication`),
    subscriptions: await list(`select subname from pg_subscription`),
    slots: await list(`select slot_name from pg_replication_slots`),
    origins: await list(`select roname from pg_replication_origin`),
    relations: await list(`select n.nspname, c.relname, c.relkind, coalesce(c.relacl, acldefault(case c.relkind when 'S' then 's'::"char" else 'r'::"char" end, c.relowner))::text from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'`),
    functions: await list(`select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema')`),
    types: await list(`select t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'`),
    extensions: await list(`select extname, extversion from pg_extension`),
    schemas: await list(`select nspname from pg_namespace where nspname !~ '^pg_temp' and nspname !~ '^pg_toast_temp'`),
    roleSettings: await list(`select coalesce(setrole::regrole::text, '-'), setconfig::text from pg_db_role_setting`),
  };
}

