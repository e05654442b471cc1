/**
 * The switchover cannot end in split brain (13 → 17, command switch writing a pointer file):
 * - the reproduction: a switch that takes 4 s going to new, timed out at 2 s. With a
 *   check command: rolled back with traffic on old, or completed with traffic on new — never the
 *   mix, checked after the sleeping command would have finished. Without one: not "rolled back"
 *   (traffic may be on new): stopped with the old side still fenced, then `--abort` resolves it.
 * - the same with a proxy switch whose Toxiproxy API is slowed past the timeout by a latency toxic.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToxic, startToxiproxy } from '../../lab/toxiproxy.ts';
import { ProxySwitch } from '../../migration/switch/proxy.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { readState } from '../../migration/switchover/state.ts';
import { cli, sql, type Pair } from '../helpers/clusters.ts';
import { startPointerLab, type PointerLab } from '../helpers/pointer-lab.ts';

const TITLE = 'switchover 13 → 17: a timed-out switch is resolved, never split';

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

  const slowSwitch = (extra: string[]) => ['switchover', '--switch', 'command', '--command', lab.script, '--phase-timeout', 'switch=2000', ...extra, '--json'];

  it('the reproduction with a check command: rolled back with traffic on old, or completed on new — never the mix', async () => {
    const state = join(dir, 'repro.json');
    const r = await cli(slowSwitch(['--check-command', `cat ${pointer}`, '--state', state]), { env: env() }).done;
    const res = JSON.parse(r.stdout);
    await sleep(4500); // the 4 s command would have written the pointer by now, had it survived
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
    await sleep(4500);
    // the command was killed with its process group: its late write never came
    expect(side()).toBe('old');
    expect(await canLogin('old')).toBe(false);
    const a = await cli(['switchover', '--switch', 'command', '--command', lab.script, '--check-command', `cat ${pointer}`, '--state', state, '--abort', '--json'], { env: env() }).done;
    expect(JSON.parse(a.stdout).outcome, a.stdout + a.stderr).toBe('rolled-back');
    expect(await canLogin('old')).toBe(true);
    await sql(app('old'), `insert into public.items (note) values ('after abort')`);
  });

  it('a proxy switch whose API is slowed past the switch timeout by a latency toxic: rolled back on old or completed on new, never the mix', async () => {
    const tp = await startToxiproxy({ logFile: join(dir, 'toxiproxy.log') });
    try {
      const oldUp = `${pair.old.record.host}:${pair.old.record.port}`;
      const newUp = `${pair.new.record.host}:${pair.new.record.port}`;
      const db = await tp.proxy('db', oldUp);
      // Toxiproxy in front of its own API: every call 2.5 s late; the switch (a probe, then the move) outlasts its 4 s
      const slow = await tp.proxy('slow-api', `${tp.record.host}:${tp.record.port}`);
      await addToxic(tp, 'slow-api', 'latency', { latency: 2500 }, 'upstream');
      const r = await switchover({ source: pair.old.url, target: pair.new.url, switch: new ProxySwitch({ apiUrl: `http://${slow.host}:${slow.port}`, name: 'db' }), stateFile: join(dir, 'proxy-slow.json'), timeouts: { switch: 4000 } });
      await sleep(3000); // a delayed API call would have landed by now
      const upstream = (await (await fetch(`${tp.record.apiUrl}/proxies/db`)).json()).upstream;
      const where = upstream === oldUp ? 'old' : upstream === newUp ? 'new' : upstream;
      expect(['rolled-back/old/old-open', 'completed/new/old-fenced']).toContain(`${r.outcome}/${where}/${(await canLogin('old')) ? 'old-open' : 'old-fenced'}`);
      expect(r.error?.phase).toBe(r.outcome === 'rolled-back' ? 'switch' : undefined);
      // through the proxy, the app reaches a primary that takes its writes
      const u = new URL(app(where));
      u.hostname = db.host;
      u.port = String(db.port);
      await sql(u.toString(), `insert into public.items (note) values ('through the proxy')`);
    } finally {
      await tp.stop();
    }
  });
});
