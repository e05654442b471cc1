/**
 * Issue 20's hardening as the switchover engine runs it, on a real 11 → 17 pair: the same server
 * twice is refused before a state file exists (exit 2); an application writing as a superuser
 * makes preflight refuse with nothing changed, `allowUnfenced` lets it through with a warning; the
 * command switch sees none of our secrets and its run is stored redacted; postverify excuses rows
 * the new side lost to app DELETEs; a rollback after `--fence-scope database` leaves the old
 * database writable again.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectNames } from '../../migration/replication.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { allChanges, readState } from '../../migration/switchover/state.ts';
import { cli, startReplicatedItemsPair, sql, type Pair } from '../helpers/clusters.ts';

const TOKEN = 'tok-Secret-4711-value';

describe('switchover hardening wired in (issue 20), 11 → 17', () => {
  let pair: Pair;
  let dir: string;
  /** An "application" connected as the admin (super)user: the fence cannot reach it. */
  let rogue: pg.Client;
  const appUrl = (url: string) => {
    const u = new URL(url);
    u.username = 'app';
    u.password = 'app';
    return u.toString();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchover-harden-'));
    pair = await startReplicatedItemsPair(11, 17);
    rogue = new pg.Client({ connectionString: pair.old.url, application_name: 'billing-app' });
    rogue.on('error', () => {});
    await rogue.connect();
  });

  afterAll(async () => {
    await rogue?.end().catch(() => {});
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the same server twice: exit 2 before any state file is written', async () => {
    const state = join(dir, 'same.json');
    await expect(switchover({ source: pair.old.url, target: pair.old.url, switch: new CommandSwitch({ command: 'true' }), stateFile: state })).rejects.toMatchObject({ code: 'USAGE', exitCode: 2 });
    const r = await cli(['switchover', '--source', pair.old.url, '--target', pair.old.url, '--switch', 'command', '--command', 'true', '--state', state]).done;
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/same database/);
    expect(existsSync(state)).toBe(false);
  });

  it('an app connected as a superuser makes preflight refuse (dry run too); nothing is changed', async () => {
    const base = { source: pair.old.url, target: pair.new.url, switch: new CommandSwitch({ command: 'true' }), appRoles: ['app'] };
    const dry = await switchover({ ...base, dryRun: true, stateFile: join(dir, 'dry.json') });
    expect(dry.error?.code).toBe('PRECONDITION');
    expect(dry.error?.hint).toMatch(/--allow-unfenced/);
    const r = await switchover({ ...base, stateFile: join(dir, 'refused.json') });
    expect(r.ok).toBe(false);
    expect(r.error?.phase).toBe('preflight');
    expect(r.error?.message).toMatch(/superuser.*billing-app/);
    const st = readState(join(dir, 'refused.json'))!;
    expect(allChanges(st)).toEqual([]);
    expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: true }]);
    expect(await sql(pair.old.url, `select to_regclass('public.cutover_sentinel') is null as none`)).toEqual([{ none: true }]);
    // the rogue session was left alone
    expect((await rogue.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('--allow-unfenced lets it through with a warning; the command sees no secret and is stored redacted; an app DELETE on new does not fail postverify', async () => {
    const state = join(dir, 'forward.json');
    const saved = { url: process.env.CUTOVER_SOURCE_URL, tok: process.env.MY_API_TOKEN };
    process.env.CUTOVER_SOURCE_URL = pair.old.url;
    process.env.MY_API_TOKEN = TOKEN;
    const { me } = (await sql(pair.old.url, `select current_user as me`))[0];
    const rev = objectNames('main_reverse').subscription;
    try {
      const r = await switchover({
        source: pair.old.url,
        target: pair.new.url,
        switch: new CommandSwitch({ command: 'echo "url=${CUTOVER_SOURCE_URL:-none} tok=${MY_API_TOKEN} to=${CUTOVER_TO_HOST}:${CUTOVER_TO_PORT}"' }),
        appRoles: ['app'],
        allowUnfenced: [me],
        fence: 'read-only',
        fenceScope: 'database',
        reverse: true,
        stateFile: state,
        hooks: {
          onPhase: async (name, event) => {
            if (name !== 'postverify') return;
            // hold the reverse replication so the old side keeps the rows: the deficit is real
            if (event === 'start') {
              await sql(pair.old.url, `begin read write; alter subscription ${rev} disable; commit`);
              await sql(appUrl(pair.new.url), `delete from public.items where id <= 5`);
            } else await sql(pair.old.url, `begin read write; alter subscription ${rev} enable; commit`);
          },
        },
      });
      expect(r.outcome, JSON.stringify(r.error)).toBe('completed');
      expect(r.warnings?.join('\n')).toMatch(new RegExp(`role ${me} \\(superuser\\).*billing-app.*--allow-unfenced`));
      const text = readFileSync(state, 'utf8');
      const st = readState(state)!;
      const pv = st.phases.find((p) => p.name === 'postverify')!;
      expect((pv.detail?.warnings as string[]).join('\n')).toMatch(/items"?: 5 row\(s\) fewer on the target, explained by 5 DELETE/);
      const sw = st.phases.find((p) => p.name === 'switch')!.detail!.switched as { stdout: string };
      expect(sw.stdout).toContain(`url=none`);
      expect(sw.stdout).toContain(`to=${pair.new.record.host}:${pair.new.record.port}`);
      expect(text).not.toContain(TOKEN);
      // the old database is read-only for every new session (database-scope fence)
      await expect(sql(appUrl(pair.old.url), `insert into public.items (note) values ('late')`)).rejects.toThrow(/read-only/);
    } finally {
      process.env.CUTOVER_SOURCE_URL = saved.url;
      if (saved.url === undefined) delete process.env.CUTOVER_SOURCE_URL;
      process.env.MY_API_TOKEN = saved.tok;
      if (saved.tok === undefined) delete process.env.MY_API_TOKEN;
    }
  });

  const dbReadOnly = async (url: string) =>
    (await sql(url, `select coalesce(array_to_string(s.setconfig, ','), '') as c from pg_database d left join pg_db_role_setting s on s.setdatabase = d.oid and s.setrole = 0 where d.datname = current_database()`))[0].c.includes('default_transaction_read_only=on');

  it('a rollback whose switch fails is undone: the old database is fenced (read-only) again', async () => {
    expect(await dbReadOnly(pair.old.url)).toBe(true);
    const r = await switchover({
      source: pair.new.url,
      target: pair.old.url,
      direction: 'rollback',
      name: 'main_reverse',
      reverseName: 'main',
      // fails moving to old (traffic stays on new), succeeds switching back to new in the undo
      switch: new CommandSwitch({ command: '[ "$CUTOVER_SIDE" = new ] || exit 3' }),
      appRoles: ['app'],
      stateFile: join(dir, 'rollback-failed.json'),
    });
    expect(r.outcome, JSON.stringify(r.undo)).toBe('rolled-back');
    const undo = r.undo?.find((u) => u.change.kind === 'target-database-opened');
    expect(undo?.outcome).toBe('ok');
    expect(await dbReadOnly(pair.old.url)).toBe(true);
    await expect(sql(appUrl(pair.old.url), `insert into public.items (note) values ('not yet')`)).rejects.toThrow(/read-only/);
  });

  it('a rollback after --fence-scope database leaves the old database writable again', async () => {
    await rogue.end();
    const state = join(dir, 'rollback.json');
    const r = await switchover({
      source: pair.new.url,
      target: pair.old.url,
      direction: 'rollback',
      name: 'main_reverse',
      reverseName: 'main',
      switch: new CommandSwitch({ command: 'true' }),
      appRoles: ['app'],
      stateFile: state,
    });
    expect(r.outcome, JSON.stringify(r.error)).toBe('completed');
    expect(allChanges(readState(state)!).filter((c) => c.kind === 'target-database-opened')).toEqual([{ kind: 'target-database-opened', database: 'app', setting: 'default_transaction_read_only', previous: 'on' }]);
    expect(await sql(pair.old.url, `select count(*)::int as n from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where d.datname = current_database() and s.setrole = 0 and array_to_string(s.setconfig, ',') like '%default_transaction_read_only%'`)).toEqual([{ n: 0 }]);
    const [row] = await sql(appUrl(pair.old.url), `insert into public.items (note) values ('after rollback') returning id`);
    expect(Number(row.id)).toBeGreaterThan(0);
  });

  it('default discovery takes the roles of this database only, not every login role of the cluster', async () => {
    await sql(pair.old.url, `create role other_app login`); // serves another database of the cluster
    const r = await switchover({ source: pair.old.url, target: pair.new.url, switch: new CommandSwitch({ command: 'true' }), dryRun: true, stateFile: join(dir, 'discover.json') });
    expect(r.error).toBeUndefined();
    expect(r.appRoles).toContain('app');
    expect(r.appRoles).not.toContain('other_app');
  });
});
