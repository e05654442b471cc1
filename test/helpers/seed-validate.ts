/**
 * Postgres judges what a seed loaded: every CHECK and FK of the given schemas dropped, re-added
 * NOT VALID and VALIDATEd (a plain re-add where partitioned tables do not allow NOT VALID), domain
 * constraints likewise, every table REINDEXed (a duplicate in a unique index fails it), and no index
 * left invalid (a partitioned index re-created ON ONLY would be).
 */
import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quoteIdent, withClient, withDatabase, type Client } from '../../migration/pg.ts';
import { startCluster } from './clusters.ts';

/**
 * One cluster per major for a seeder test file, started in beforeAll and removed in afterAll, with a
 * scratch folder: `freshDb` creates a database on the major's cluster and returns its URL.
 */
export function seedClusters(majors: number[], prefix: string): { tmp: string; freshDb: (major: number, name: string) => Promise<string> } {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const clusters: Record<number, Awaited<ReturnType<typeof startCluster>>> = {};
  beforeAll(async () => {
    const started = await Promise.all(majors.map((m) => startCluster({ major: m }, join(tmp, `pg${m}`))));
    majors.forEach((m, i) => (clusters[m] = started[i]));
  }, 240_000);
  afterAll(async () => {
    await Promise.allSettled(Object.values(clusters).map((c) => c.destroy()));
    rmSync(tmp, { recursive: true, force: true });
  });
  const freshDb = async (major: number, name: string): Promise<string> => {
    await withClient(clusters[major].url, (c) => c.query(`create database ${quoteIdent(name)}`));
    return withDatabase(clusters[major].url, name);
  };
  return { tmp, freshDb };
}

export async function validateEverything(c: Client, schemas: string[] = ['public']): Promise<{ checks: number; fks: number; domains: number; reindexed: number; invalidIndexes: string[] }> {
  const cons = await c.query<{ rel: string; name: string; def: string; type: string; partitioned: boolean }>(
    `select con.conrelid::regclass::text as rel, con.conname as name, pg_get_constraintdef(con.oid) as def, con.contype as type,
            (cl.relkind = 'p' or exists (select 1 from pg_class p where p.oid = con.confrelid and p.relkind = 'p')) as partitioned
       from pg_constraint con join pg_class cl on cl.oid = con.conrelid join pg_namespace n on n.oid = cl.relnamespace
      where n.nspname = any($1) and con.contype in ('c', 'f') and not cl.relispartition and con.conparentid = 0 and con.conislocal order by 1, 2`,
    [schemas],
  );
  let checks = 0;
  let fks = 0;
  for (const k of cons.rows) {
    await c.query(`alter table ${k.rel} drop constraint ${quoteIdent(k.name)}`);
    if (k.partitioned) await c.query(`alter table ${k.rel} add constraint ${quoteIdent(k.name)} ${k.def}`);
    else {
      await c.query(`alter table ${k.rel} add constraint ${quoteIdent(k.name)} ${k.def} not valid`);
      await c.query(`alter table ${k.rel} validate constraint ${quoteIdent(k.name)}`);
    }
    if (k.type === 'c') checks++;
    else fks++;
  }
  const doms = await c.query<{ dom: string; name: string; def: string }>(
    `select t.oid::regtype::text as dom, con.conname as name, pg_get_constraintdef(con.oid) as def from pg_constraint con join pg_type t on t.oid = con.contypid
      join pg_namespace n on n.oid = t.typnamespace where n.nspname = any($1) and con.contype = 'c'`,
    [schemas],
  );
  for (const d of doms.rows) {
    await c.query(`alter domain ${d.dom} drop constraint ${quoteIdent(d.name)}`);
    await c.query(`alter domain ${d.dom} add constraint ${quoteIdent(d.name)} ${d.def} not valid`);
    await c.query(`alter domain ${d.dom} validate constraint ${quoteIdent(d.name)}`);
  }
  const tables = await c.query<{ rel: string }>(`select c.oid::regclass::text as rel from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = any($1) and c.relkind in ('r', 'm') and (c.relkind = 'r' or c.relispopulated)`, [schemas]);
  for (const t of tables.rows) await c.query(`reindex table ${t.rel}`);
  const invalid = await c.query<{ n: string }>(`select i.indexrelid::regclass::text as n from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname = any($1) and not i.indisvalid order by 1`, [schemas]);
  return { checks, fks, domains: doms.rows.length, reindexed: tables.rows.length, invalidIndexes: invalid.rows.map((r) => r.n) };
}

/** A DDL for a major: the lines between "--@min N" and "--@end" are left out below N. */
export function ddlFor(text: string, major: number): string {
  return text.replace(/^--@min (\d+)\n([\s\S]*?)^--@end\n/gm, (_, n, body) => (major >= Number(n) ? body : ''));
}

/** Row counts of every plain table of the schemas (ONLY: an inheritance parent without its children). */
export async function tableCounts(c: Client, schemas: string[]): Promise<Record<string, number>> {
  const t = await c.query<{ q: string; name: string; k: string }>(
    `select format('%I.%I', n.nspname, c.relname) as q, c.relname as name, c.relkind as k from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = any($1) and c.relkind in ('r', 'p') and not c.relispartition order by 1`,
    [schemas],
  );
  const out: Record<string, number> = {};
  for (const { q, name, k } of t.rows) out[name] = Number((await c.query(`select count(*)::int as n from ${k === 'r' ? 'only ' : ''}${q}`)).rows[0].n);
  return out;
}
