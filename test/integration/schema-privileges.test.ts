/**
 * Owners and grants travel with the schema copy when the target has the roles they name; when it
 * lacks them they are left out and the CLI names the missing roles and the fix; `--copy-roles`
 * creates the roles first. Drift on the result then has no grant findings. 13 → 17, real servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';
import { drift } from '../../migration/drift/index.ts';

let pair: Pair;

// MAINTAIN (17+) is a privilege the owner has implicitly on the newer side: not a difference.
const aclOf = async (url: string) =>
  await sql(url, `select c.relname, pg_get_userbyid(c.relowner) as owner,
      (select array_agg(case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end || '=' || a.privilege_type order by 1)
         from aclexplode(c.relacl) a where a.privilege_type <> 'MAINTAIN') as acl
    from pg_class c where c.relname in ('orders', 'orders_id_seq') order by 1`);

beforeAll(async () => {
  pair = await startPair(13, 17);
  await sql(pair.old.url, `create role "Reporting Team"; create role app_owner;
    create table public.orders (id bigserial primary key, total numeric);
    alter table public.orders owner to app_owner; alter sequence public.orders_id_seq owner to app_owner;
    grant select on public.orders to "Reporting Team"`);
});

afterAll(async () => {
  await pair?.destroy();
});

describe('owners and grants in the schema copy', () => {
  it('without the roles on the target: the schema is copied without them, the missing roles are named, nothing half-applied', async () => {
    const r = await cli(['replicate', 'start', '--name', 'p1', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/owners and grants were NOT copied: the target lacks the role\(s\) Reporting Team, app_owner/);
    expect(r.out).toMatch(/--copy-roles/);
    const acl = await aclOf(pair.new.url);
    expect(acl.find((x) => x.relname === 'orders')).toMatchObject({ acl: null, owner: expect.not.stringMatching(/^app_owner$/) });
    expect((await cli(['replicate', 'stop', '--name', 'p1', '--source', pair.old.url, '--target', pair.new.url]).done).code).toBe(0);
    await sql(pair.new.url, `drop table public.orders`);
  });

  it('--copy-roles: roles first, then owners and grants exactly as on the source; drift finds no grant or owner difference', async () => {
    const r = await cli(['replicate', 'start', '--name', 'p2', '--copy-roles', '--source', pair.old.url, '--target', pair.new.url]).done;
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/NOT copied/);
    expect(await aclOf(pair.new.url)).toEqual(await aclOf(pair.old.url));
    const found = await drift({ source: pair.old.url, target: pair.new.url, categories: ['schema'] });
    const about = found.findings.filter((f: any) => /grant|owner|privilege/i.test(`${f.kind ?? ''} ${f.object ?? ''} ${f.message ?? ''}`) && f.severity === 'error');
    expect(about).toEqual([]);
    expect((await cli(['replicate', 'stop', '--name', 'p2', '--source', pair.old.url, '--target', pair.new.url]).done).code).toBe(0);
  });
});
