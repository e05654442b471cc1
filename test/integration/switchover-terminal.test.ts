/**
 * Terminal states stay terminal, and going back never unfences old first (13 → 17, command switch
 * writing a pointer file, a writer following it):
 * - abort, then `--abort` again (a no-op) and `--resume` (refused): nothing changes; options that
 *   contradict the state file are refused.
 * - a fence blocked on a role-row lock past its timeout: every app role can log in afterwards, the
 *   old primary takes writes, and no late NOLOGIN lands once the lock is released.
 * - a phase failing after the switch (with --reverse): the new side is fenced and the reverse
 *   replication drained before anything moves back; no acknowledged write is lost.
 * - `cutover rollback` on its own (its own forward switchover first), with phase events on fd 3.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../migration/pg.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { DnsSwitch } from '../../migration/switch/dns.ts';
import { onEvents, type PhaseEvent } from '../../migration/switchover/events.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { cli, sql, type Pair } from '../helpers/clusters.ts';
import { startPointerLab, type PointerLab } from '../helpers/pointer-lab.ts';

const REPO = join(import.meta.dirname, '..', '..');
const TITLE = 'switchover 13 → 17: terminal states and the point of no return';

describe(TITLE, () => {
  let lab: PointerLab;
  let pair: Pair;
  let dir: string;
  let pointer: string;
  let app: PointerLab['app'];
  let env: PointerLab['env'];
  let canLogin: PointerLab['canLogin'];
  let side: PointerLab['side'];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  beforeAll(async () => {
    lab = await startPointerLab();
    ({ pair, dir, pointer, app, env, canLogin, side } = lab);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('abort, then --abort again and --resume: a no-op and a refusal; nothing changes on either side', async () => {
    const state = join(dir, 'abort-resume.json');
    const args = ['switchover', '--switch', 'command', '--command', `echo "$CUTOVER_SIDE" > ${pointer}`, '--state', state, '--json'];
    const first = await switchover({ source: pair.old.url, target: pair.new.url, switch: new CommandSwitch({ command: `echo "$CUTOVER_SIDE" > ${pointer}` }), stateFile: state, timeouts: { sequences: 1 } });
    expect(first).toMatchObject({ outcome: 'rolled-back', error: { phase: 'sequences' } });
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
    await expect(switchover({ source: pair.old.url, target: pair.new.url, switch: new DnsSwitch({ adminUrl: 'http://127.0.0.1:1', name: 'x' }), stateFile: state, abort: true, fence: 'read-only' })).rejects.toMatchObject({
      code: 'STATE',
      message: expect.stringMatching(/--switch command, not dns; it used --fence terminate, not read-only/),
    });
    expect(readFileSync(state, 'utf8')).toBe(file);
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
    const events: PhaseEvent[] = [];
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    onEvents(child.stdio[3] as NodeJS.ReadableStream, (e) => events.push(e));
    const code = await new Promise((res) => child.on('close', res));
    expect(code, out + err).toBe(0);
    expect(events.filter((e) => e.type === 'phase-start').map((e) => (e as any).phase)).toEqual(['preflight', 'catchup', 'readiness', 'fence', 'sentinel', 'sequences', 'switch', 'resume', 'postverify', 'reverse']);
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
