/**
 * The switchover cannot end in split brain, on a real 13 → 17 pair with the command switch
 * pointing a pointer file (what a slow DNS API would do) and a writer following it:
 * - the reproduction: a switch that takes 6 s going to new, timed out at 2 s. With a
 *   check command: rolled back with traffic on old, or completed with traffic on new — never the
 *   mix, checked after the sleeping command would have finished. Without one: not "rolled back"
 *   (traffic may be on new): stopped with the old side still fenced, then `--abort` resolves it.
 * - abort, then `--abort` again (a no-op) and `--resume` (refused): nothing changes.
 * - a fence blocked on a role-row lock past its timeout: every app role can log in afterwards, the
 *   old primary takes writes, and no late NOLOGIN lands once the lock is released.
 * - a phase failing after the switch (with --reverse): the new side is fenced and the reverse
 *   replication drained before anything moves back; no acknowledged write is lost.
 * - `cutover rollback` on its own (its own forward switchover first), with phase events on fd 3.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../migration/pg.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { parseEvent, type PhaseEvent } from '../../migration/switchover/events.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { readState } from '../../migration/switchover/state.ts';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';

const PW = 'app pw';
const REPO = join(import.meta.dirname, '..', '..');

describe('switchover 13 → 17: no split brain', () => {
  let pair: Pair;
  let dir: string;
  let pointer: string;
  const app = (side: 'old' | 'new') => {
    const u = new URL(pair[side].url);
    u.username = 'app_writer';
    u.password = PW;
    return u.toString();
  };
  const env = () => ({ CUTOVER_SOURCE_URL: pair.old.url, CUTOVER_TARGET_URL: pair.new.url, CUTOVER_PROGRESS: 'silent' });
  const canLogin = (side: 'old' | 'new') => sql(app(side), 'select 1 as ok').then(() => true, (e) => (/not permitted to log in/.test(e.message) ? false : Promise.reject(e)));
  const side = () => readFileSync(pointer, 'utf8').trim();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'no-split-brain-'));
    pointer = join(dir, 'pointer');
    writeFileSync(pointer, 'old\n');
    // the script: moving traffic to new is slow, moving it back is instant; the last call wins
    writeFileSync(join(dir, 'switch.sh'), `#!/bin/sh\n[ "$CUTOVER_SIDE" = new ] && sleep 6\necho "$CUTOVER_SIDE" > ${pointer}\n`);
    chmodSync(join(dir, 'switch.sh'), 0o755);
    pair = await startPair(13, 17);
    for (const url of [pair.old.url, pair.new.url]) {
      await sql(url, `create role app_writer login password '${PW}'`);
      await sql(url, `create table public.items (id bigserial primary key, note text)`);
      await sql(url, `grant select, insert on public.items to app_writer; grant usage on all sequences in schema public to app_writer`);
    }
    await sql(pair.old.url, `insert into public.items (note) select 'seed' from generate_series(1, 20)`);
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
  });

  afterAll(async () => {
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const slowSwitch = (extra: string[]) => ['switchover', '--switch', 'command', '--command', join(dir, 'switch.sh'), '--phase-timeout', 'switch=2000', ...extra, '--json'];

  it('the reproduction with a check command: rolled back with traffic on old, or completed on new — never the mix', async () => {
    const state = join(dir, 'repro.json');
    const r = await cli(slowSwitch(['--check-command', `cat ${pointer}`, '--state', state]), { env: env() }).done;
    const res = JSON.parse(r.stdout);
    await sleep(6500); // the 6 s command would have written the pointer by now, had it survived
    const pair_ = `${res.outcome}/${side()}/${(await canLogin('old')) ? 'old-open' : 'old-fenced'}`;
    expect(['rolled-back/old/old-open', 'completed/new/old-fenced']).toContain(pair_);
    expect(readState(state)!.kind).toBe(res.outcome);
    if (res.outcome === 'rolled-back') await sql(app('old'), `insert into public.items (note) values ('after repro')`);
  });

  it('the reproduction without a check command: never "rolled back" — stopped with old fenced, then --abort with a check resolves it', async () => {
    const state = join(dir, 'repro-nocheck.json');
    const r = await cli(slowSwitch(['--state', state]), { env: env() }).done;
    const res = JSON.parse(r.stdout);
    expect(r.code).toBe(1);
    expect(res.outcome).toBe('stopped');
    expect(res.next).toMatch(/stays fenced/);
    await sleep(6500);
    // the command was killed with its process group: its late write never came
    expect(side()).toBe('old');
    expect(await canLogin('old')).toBe(false);
    const a = await cli(['switchover', '--switch', 'command', '--command', join(dir, 'switch.sh'), '--check-command', `cat ${pointer}`, '--state', state, '--abort', '--json'], { env: env() }).done;
    expect(JSON.parse(a.stdout).outcome, a.stdout + a.stderr).toBe('rolled-back');
    expect(await canLogin('old')).toBe(true);
    await sql(app('old'), `insert into public.items (note) values ('after abort')`);
  });

  it('abort, then --abort again and --resume: a no-op and a refusal; nothing changes on either side', async () => {
    const state = join(dir, 'abort-resume.json');
    const args = ['switchover', '--switch', 'command', '--command', `echo "$CUTOVER_SIDE" > ${pointer}`, '--state', state, '--json'];
    const first = await cli([...args, '--phase-timeout', 'sequences=1'], { env: env() }).done;
    expect(JSON.parse(first.stdout)).toMatchObject({ outcome: 'rolled-back', error: { phase: 'sequences' } });
    const file = readFileSync(state, 'utf8');
    const roles = async () => [await sql(pair.old.url, `select rolname, rolcanlogin, rolconfig from pg_roles order by 1`), await sql(pair.new.url, `select rolname, rolcanlogin, rolconfig from pg_roles order by 1`)];
    const before = await roles();
    const again = await cli([...args, '--abort'], { env: env() }).done;
    expect(JSON.parse(again.stdout).outcome).toBe('rolled-back');
    expect(readFileSync(state, 'utf8')).toBe(file);
    const resumed = await cli([...args, '--resume'], { env: env() }).done;
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toMatch(/refusing --resume: .*rolled back/);
    expect(readFileSync(state, 'utf8')).toBe(file);
    expect(await roles()).toEqual(before);
    expect(side()).toBe('old');
    expect(await canLogin('old')).toBe(true);
    // and options that contradict the state file are refused before anything runs
    const other = await cli(['switchover', '--switch', 'dns', '--dns-admin', 'http://127.0.0.1:1', '--dns-name', 'x', '--state', state, '--abort', '--json'], { env: env() }).done;
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/--switch command, not dns/);
  });

  it('a fence blocked on a role-row lock past its timeout: every app role logs in and old takes writes; no late NOLOGIN', async () => {
    const holder = await connect(pair.old.url);
    await holder.query('begin');
    await holder.query(`alter role app_writer connection limit 100`); // holds app_writer's pg_authid row
    let released = false;
    try {
      const r = await switchover({ source: pair.old.url, target: pair.new.url, switch: new CommandSwitch({ command: `echo "$CUTOVER_SIDE" > ${pointer}` }), stateFile: join(dir, 'fence-lock.json'), timeouts: { fence: 3000 } });
      expect(r).toMatchObject({ outcome: 'rolled-back', error: { phase: 'fence', code: 'TIMEOUT' } });
      // while the lock is still held: the cancelled ALTER did not commit
      expect(await canLogin('old')).toBe(true);
      await sql(app('old'), `insert into public.items (note) values ('fence lock')`);
      await holder.query('rollback');
      released = true;
      await sleep(1000);
      expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app_writer'`)).toEqual([{ rolcanlogin: true }]);
      expect(await sql(pair.old.url, `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`)).toEqual([{ n: 0 }]);
    } finally {
      if (!released) await holder.query('rollback').catch(() => {});
      await holder.end();
    }
  });

  it('a phase failing after the switch (with --reverse): new fenced and the reverse drained before moving back; no acknowledged write lost', async () => {
    const acked: Array<{ id: number; on: string }> = [];
    let stop = false;
    const writer = (async () => {
      let c: pg.Client | undefined;
      let on = '';
      while (!stop) {
        try {
          const want = side();
          if (c && want !== on) {
            await c.end().catch(() => {});
            c = undefined;
          }
          if (!c) {
            on = want;
            c = new pg.Client({ connectionString: app(want as 'old' | 'new'), connectionTimeoutMillis: 2000 });
            c.on('error', () => {});
            await c.connect();
          }
          const row = await c.query(`insert into public.items (note) values ('w') returning id`);
          acked.push({ id: Number(row.rows[0].id), on });
          await sleep(5);
        } catch {
          await c?.end().catch(() => {});
          c = undefined;
          await sleep(20);
        }
      }
      await c?.end().catch(() => {});
    })();
    let r;
    try {
      await sleep(500);
      r = await switchover({
        source: pair.old.url,
        target: pair.new.url,
        reverse: true,
        switch: new CommandSwitch({ command: `echo "$CUTOVER_SIDE" > ${pointer}` }),
        stateFile: join(dir, 'after-switch.json'),
        hooks: {
          onPhase: async (name, event) => {
            if (name !== 'resume' || event !== 'start') return;
            // let the writer follow the pointer to new and write there before the failure
            const t = Date.now();
            while (!acked.some((a) => a.on === 'new') && Date.now() - t < 10_000) await sleep(20);
            throw new Error('injected: the new side fails its check');
          },
        },
      });
      await sleep(500);
    } finally {
      stop = true;
      await writer;
    }
    expect(r.outcome, JSON.stringify(r.undo)).toBe('rolled-back');
    const kinds = r.undo!.map((u) => u.change.kind);
    expect(kinds.indexOf('target-fenced')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('target-fenced')).toBeLessThan(kinds.indexOf('switched-back'));
    expect(kinds.indexOf('reverse-drained')).toBeLessThan(kinds.indexOf('role-login'));
    expect(side()).toBe('old');
    expect(await canLogin('new')).toBe(false);
    expect(acked.some((a) => a.on === 'new')).toBe(true);
    const onOld = new Set((await sql(pair.old.url, `select id from public.items`)).map((x) => Number(x.id)));
    expect(acked.filter((a) => !onOld.has(a.id))).toEqual([]);
    // forward replication carries writes again
    const [{ id }] = await sql(app('old'), `insert into public.items (note) values ('forward again') returning id`);
    const t = Date.now();
    while (!(await sql(pair.new.url, `select 1 from public.items where id = $1`, [id])).length && Date.now() - t < 30_000) await sleep(100);
    expect(await sql(pair.new.url, `select note from public.items where id = $1`, [id])).toEqual([{ note: 'forward again' }]);
  });

  it('cutover rollback, from its own forward switchover: events on fd 3, traffic back on old, new fenced', async () => {
    const fast = ['--switch', 'command', '--command', `echo "$CUTOVER_SIDE" > ${pointer}`, '--reverse', '--json'];
    const child = spawn(process.execPath, [join(REPO, 'bin', 'cutover.mjs'), 'switchover', ...fast, '--state', join(dir, 'fwd.json'), '--events-fd', '3'], { cwd: REPO, env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let ev = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => (ev += d));
    const code = await new Promise((res) => child.on('close', res));
    expect(code, out + err).toBe(0);
    const events: PhaseEvent[] = ev.trim().split('\n').map(parseEvent);
    expect(events.filter((e) => e.type === 'phase-start').map((e) => (e as any).phase)).toEqual(['preflight', 'catchup', 'fence', 'sentinel', 'sequences', 'switch', 'resume', 'postverify', 'reverse']);
    expect(events.at(-1)).toMatchObject({ type: 'run', kind: 'completed' });
    expect(side()).toBe('new');
    await sql(app('new'), `insert into public.items (note) values ('on new')`);

    const back = await cli(['rollback', ...fast, '--state', join(dir, 'back.json')], { env: env() }).done;
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ outcome: 'completed', direction: 'rollback' });
    expect(side()).toBe('old');
    expect(await canLogin('new')).toBe(false);
    const [{ max }] = await sql(pair.new.url, `select max(id)::int8 as max from public.items`);
    const [{ id }] = await sql(app('old'), `insert into public.items (note) values ('back on old') returning id`);
    expect(Number(id)).toBeGreaterThan(Number(max));
  });
});
