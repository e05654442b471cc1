/**
 * The faults of a real night on real clusters (13 → 17): pause (SIGSTOP/SIGCONT of a server's
 * whole process tree), lock (what waits behind LOCK TABLE on either side), connections (the free
 * slots taken, the app refused), slot-loss (the slot's WAL lost; the switchover refuses to switch).
 * The switchover runs through the library with the FaultInjector on its phase hook, as the
 * rehearsal wires it: the old primary hung in the catch-up must end cleanly (switched or aborted
 * with the reason), never hang. Nothing is left behind: no stopped process, no cutover*
 * slot/publication/subscription, settings restored, the throwaway role dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplicatedItemsPair, sql, type Pair } from '../helpers/clusters.ts';
import { objectNames, stopReplication } from '../../migration/replication.ts';
import { CommandSwitch } from '../../migration/switch/command.ts';
import { switchover } from '../../migration/switchover/run.ts';
import { allChanges, readState } from '../../migration/switchover/state.ts';
import { FaultInjector, FaultNotApplied, type FaultSpec } from '../../lab/faults.ts';
import { processState, processTree, stoppedPids } from '../../lab/night-faults.ts';
import type { Lab } from '../../lab/lab.ts';
import { until } from '../helpers/until.ts';

const asLab = (p: Pair) => ({ old: p.old, new: p.new, record: { provider: 'embedded' } }) as unknown as Lab;
const appUrl = (url: string) => Object.assign(new URL(url), { username: 'app', password: 'app' }).toString();

/** Fire one fault now through the injector (as a phase would), return the record and the injector. */
async function fire(lab: Lab, spec: FaultSpec) {
  const inj = new FaultInjector(lab, [{ ...spec, phase: 'catchup' }]);
  inj.start();
  await inj.onPhase('catchup');
  return { inj, rec: inj.applied[0] };
}

async function expectNothingLeft(p: Pair) {
  expect(await sql(p.old.url, `select slot_name from pg_replication_slots where slot_name like 'cutover%'`)).toEqual([]);
  expect(await sql(p.old.url, `select pubname from pg_publication where pubname like 'cutover%'`)).toEqual([]);
  expect(await sql(p.new.url, `select subname from pg_subscription where subname like 'cutover%'`)).toEqual([]);
  for (const c of [p.old, p.new]) if (c.record.pid) for (const pid of processTree(c.record.pid)) expect(processState(pid)).not.toBe('T');
  expect(stoppedPids()).toEqual([]);
}

describe('night faults 13 → 17: injectors', () => {
  let pair: Pair;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'faults-night-'));
    pair = await startReplicatedItemsPair(13, 17);
  }, 180_000);
  afterAll(async () => {
    try {
      if (pair) {
        await stopReplication({ source: pair.old.url, target: pair.new.url }).catch(() => {});
        await expectNothingLeft(pair);
      }
    } finally {
      await pair?.destroy();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('pause: the new server hangs (every process stopped, connections get no answer) and is resumed by clear()', async () => {
    const { inj, rec } = await fire(asLab(pair), { kind: 'pause', target: 'new', durationMs: 600_000 });
    expect(rec.error).toBeUndefined();
    try {
    const tree = processTree(pair.new.record.pid!);
    expect(tree.length).toBeGreaterThan(2);
    // stopped, or a backend that exited just before and waits for its stopped postmaster to reap it
    for (const pid of tree) expect(['T', 'Z', null]).toContain(processState(pid));
    expect(processState(pair.new.record.pid!)).toBe('T');
    expect(rec.effect).toMatch(/stopped \(SIGSTOP\)/);
    // hung, not dead: the kernel still accepts the TCP connection, Postgres never answers
    const c = new pg.Client({ connectionString: pair.new.url, connectionTimeoutMillis: 1500 });
    c.on('error', () => {});
    await expect(c.connect()).rejects.toThrow(/timeout|terminated/i);
    await c.end().catch(() => {});
    await inj.clear();
    for (const pid of tree) expect(processState(pid)).not.toBe('T');
    } finally {
      await inj.clear();
    }
    expect(rec.outcome).toMatchObject({ resumed: true });
    expect(await sql(pair.new.url, `select 1 as one`)).toEqual([{ one: 1 }]);
  }, 60_000);

  it('pause: the timer resumes it after its duration; a pause of a process that is not there is not applied', async () => {
    const { rec } = await fire(asLab(pair), { kind: 'pause', target: 'old', durationMs: 1000 });
    expect(rec.error).toBeUndefined();
    await until(async () => (stoppedPids().length === 0 ? true : undefined), 30_000, 'resumed after the duration');
    expect(await sql(pair.old.url, `select 1 as one`)).toEqual([{ one: 1 }]);
    const fake = { old: { record: { pid: 2 ** 22 + 7 } }, new: pair.new, record: { provider: 'embedded' } } as unknown as Lab;
    const { rec: bad } = await fire(fake, { kind: 'pause', target: 'old', durationMs: 1000 });
    expect(bad.error).toMatch(/pause fault could not be applied: .* is not running/);
    const { rec: docker } = await fire({ ...asLab(pair), record: { provider: 'docker' } } as unknown as Lab, { kind: 'pause', target: 'new', durationMs: 1000 });
    expect(docker.error).toMatch(/docker provider does not run the new server/);
  }, 60_000);

  it('lock on new: the apply worker waits behind it (named in the effect), rows arrive once released', async () => {
    const { inj, rec } = await fire(asLab(pair), { kind: 'lock', durationMs: 600_000, attributes: { side: 'new', table: 'items' } });
    expect(rec.error).toBeUndefined();
    try {
      await sql(pair.old.url, `insert into public.items (note) values ('behind the lock')`);
      // the apply worker is seen waiting on the lock
      await until(async () => ((await sql(pair.new.url, `select 1 from pg_locks where not granted and relation = 'public.items'::regclass`)).length ? true : undefined), 20_000, 'apply waiting');
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      await inj.clear();
    }
    expect(rec.effect).toMatch(/LOCK TABLE public\.items IN ACCESS EXCLUSIVE MODE held on the new side for \d+ ms: waited: .*logical replication.*Lock\/relation/);
    expect((rec.outcome as any).maxWaiting).toBeGreaterThanOrEqual(1);
    await until(async () => ((await sql(pair.new.url, `select 1 from public.items where note = 'behind the lock'`)).length ? true : undefined), 60_000, 'row applied after the lock');
  }, 90_000);

  it('lock on old: the app role\'s write waits behind it; a bad table is not applied', async () => {
    const { inj, rec } = await fire(asLab(pair), { kind: 'lock', durationMs: 600_000, attributes: { side: 'old', table: 'public.items', mode: 'row exclusive' } });
    expect(rec.error).toBeUndefined();
    // ROW EXCLUSIVE does not block writes: nothing waits
    await sql(appUrl(pair.old.url), `insert into public.items (note) values ('not blocked')`);
    await inj.clear();
    expect(rec.effect).toMatch(/ROW EXCLUSIVE MODE .* nothing waited behind it/);
    const { inj: inj2, rec: rec2 } = await fire(asLab(pair), { kind: 'lock', durationMs: 600_000, attributes: { side: 'old', table: 'items', mode: 'share' } });
    const app = new pg.Client({ connectionString: appUrl(pair.old.url) });
    app.on('error', () => {});
    await app.connect();
    const write = app.query(`insert into public.items (note) values ('waited')`);
    await until(async () => ((await sql(pair.old.url, `select 1 from pg_stat_activity where usename = 'app' and wait_event_type = 'Lock'`)).length ? true : undefined), 30_000, 'app waiting');
    await new Promise((r) => setTimeout(r, 600));
    await inj2.clear();
    await write;
    await app.end();
    expect(rec2.effect).toMatch(/waited: 1 × app .*waiting on Lock\/relation/);
    const { rec: bad } = await fire(asLab(pair), { kind: 'lock', durationMs: 1000, attributes: { side: 'old', table: 'no_such_table' } });
    expect(bad.error).toMatch(/lock fault could not be applied: table public\.no_such_table does not exist on the old primary/);
  }, 120_000);

  it('connections on new: the free slots are taken, the app is refused, and all comes back after', async () => {
    const { inj, rec } = await fire(asLab(pair), { kind: 'connections', durationMs: 600_000, attributes: { side: 'new', reserved: 0 } });
    expect(rec.error).toBeUndefined();
    const taken = (rec.outcome as any).taken as number;
    const max = (rec.outcome as any).maxConnections as number;
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(max);
    expect(rec.effect).toMatch(new RegExp(`^${taken} free connection slot\\(s\\) of the new side taken`));
    const role = (await sql(pair.new.url, `select rolname from pg_roles where rolname like 'lab_fault_conn_%'`))[0].rolname;
    const held = (await sql(pair.new.url, `select count(*)::int as n from pg_stat_activity where usename = $1`, [role]))[0].n;
    // a slot freed after the count (a backend of an earlier test still exiting) is taken again
    expect(held).toBeGreaterThanOrEqual(taken);
    // the app is refused: at once, or after the top-up took a slot that was freed meanwhile
    let refused = '';
    await until(async () => (refused = await sql(appUrl(pair.new.url), `select 1`).then(() => '', (e) => String(e?.message ?? e))) || undefined, 10_000, 'the app refused');
    expect(refused).toMatch(/too many clients|remaining connection slots/);
    await inj.clear();
    expect(await sql(appUrl(pair.new.url), `select 1 as one`)).toEqual([{ one: 1 }]);
    expect(await sql(pair.new.url, `select rolname from pg_roles where rolname like 'lab_fault_conn_%'`)).toEqual([]);
    // reserved: that many are left free
    const { inj: inj2, rec: rec2 } = await fire(asLab(pair), { kind: 'connections', durationMs: 600_000, attributes: { side: 'new', reserved: 2 } });
    // a backend of the app's last check may still be exiting when the second fill counts: one slot of slack
    const taken2 = (rec2.outcome as any).taken as number;
    expect(taken2).toBeLessThanOrEqual(taken - 2);
    expect(taken2).toBeGreaterThanOrEqual(taken - 3);
    // the two reserved slots are really free: the app holds both at once
    const two = [new pg.Client({ connectionString: appUrl(pair.new.url) }), new pg.Client({ connectionString: appUrl(pair.new.url) })];
    for (const c of two) c.on('error', () => {});
    await Promise.all(two.map((c) => c.connect()));
    expect((await Promise.all(two.map((c) => c.query(`select 1 as one`)))).map((r) => r.rows)).toEqual([[{ one: 1 }], [{ one: 1 }]]);
    await Promise.all(two.map((c) => c.end()));
    await inj2.clear();
  }, 120_000);

  it('the switchover with the old primary paused (SIGSTOP) in the catch-up ends cleanly, never hangs', async () => {
    const inj = new FaultInjector(asLab(pair), [{ kind: 'pause', target: 'old', phase: 'catchup', durationMs: 4000 }]);
    inj.start();
    const stateFile = join(dir, 'pause.json');
    const r = await switchover({
      source: pair.old.url,
      target: pair.new.url,
      switch: new CommandSwitch({ command: 'true' }),
      appRoles: ['app'],
      lag: { timeoutMs: 60_000 },
      timeouts: { readiness: 60_000 } as any,
      stateFile,
      hooks: { onPhase: async (name: string, event: string) => void (event === 'start' ? await inj.onPhase(name) : undefined) },
    } as any);
    await inj.clear();
    expect(inj.applied[0].error).toBeUndefined();
    expect((inj.applied[0].outcome as any).resumed).toBe(true);
    expect(stoppedPids()).toEqual([]);
    if (r.ok) {
      // proceeded once the old primary answered again: the app is fenced on old
      expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: false }]);
    } else {
      // aborted with the reason, nothing half-switched: old still serving the app
      expect(r.error?.message).toBeTruthy();
      expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: true }]);
    }
    expect(readState(stateFile)).toBeTruthy();
  }, 180_000);
});

describe('night faults 13 → 17: slot-loss', () => {
  let pair: Pair;
  let dir: string;
  let keepBefore: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'faults-night-slot-'));
    pair = await startReplicatedItemsPair(13, 17);
    keepBefore = (await sql(pair.old.url, `select current_setting('max_slot_wal_keep_size') as v`))[0].v;
  }, 180_000);
  afterAll(async () => {
    try {
      if (pair) {
        const stop = await stopReplication({ source: pair.old.url, target: pair.new.url }).catch((e) => ({ complete: false, e }));
        expect((stop as any).complete).toBe(true);
        await expectNothingLeft(pair);
      }
    } finally {
      await pair?.destroy();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the slot is lost; the switchover refuses to switch with the reason; the setting is restored', async () => {
    // the slot is lost before the switchover starts (as by a night's WAL pile-up)
    const { inj, rec } = await fire(asLab(pair), { kind: 'slot-loss', attributes: { size: 1 } });
    try {
      expect(rec.error).toBeUndefined();
      expect(rec.effect).toMatch(/wal_status lost/);
      expect(rec.recovery).toMatch(/from scratch/);
      expect((await sql(pair.old.url, `select wal_status from pg_replication_slots where slot_name = $1`, [objectNames().slot]))[0].wal_status).toBe('lost');
      expect(await sql(pair.old.url, `select current_setting('max_slot_wal_keep_size') as v`)).toEqual([{ v: '1MB' }]);
      const stateFile = join(dir, 'slot.json');
      const r = await switchover({
        source: pair.old.url,
        target: pair.new.url,
        switch: new CommandSwitch({ command: 'true' }),
        appRoles: ['app'],
        lag: { timeoutMs: 30_000 },
        timeouts: { readiness: 60_000 } as any,
        stateFile,
      } as any);
      expect(r.ok).toBe(false);
      expect(r.error?.message).toMatch(/lost/i);
      // nothing half-switched: the app still writes on old
      expect(await sql(pair.old.url, `select rolcanlogin from pg_roles where rolname = 'app'`)).toEqual([{ rolcanlogin: true }]);
      await sql(appUrl(pair.old.url), `insert into public.items (note) values ('old still serving')`);
    } finally {
      await inj.clear();
    }
    expect(rec.outcome).toMatchObject({ restored: true });
    await until(async () => ((await sql(pair.old.url, `select current_setting('max_slot_wal_keep_size') as v`))[0].v === keepBefore ? true : undefined), 10_000, 'setting restored');
  }, 180_000);

  it('slot-loss refused with the reason when there is no slot', async () => {
    // the slot of another replication name does not exist
    const { loseSlot } = await import('../../lab/night-faults.ts');
    const e = await loseSlot({ oldUrl: pair.old.url, newUrl: pair.new.url, slot: 'cutover_nosuch', subscription: 'cutover_nosuch' }).catch((x) => x);
    expect(e).toBeInstanceOf(FaultNotApplied);
    expect(e.message).toMatch(/no replication slot cutover_nosuch/);
    expect(await sql(pair.old.url, `select current_setting('max_slot_wal_keep_size') as v`)).toEqual([{ v: keepBefore }]);
  });
});
