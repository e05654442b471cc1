/**
 * Kill the switchover process in each phase in turn and resume it: every run completes, nothing
 * acknowledged is lost, no phase before the killed one runs twice. Runs alternate forward and
 * rollback (both with --reverse), so one pair of clusters carries all nine kills. The kill is
 * armed on the child's `phase-start` event (--events-fd 3), as the rehearsal does.
 * Heavy: about two minutes (CUTOVER_HEAVY=1).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';
import { connect } from '../../migration/pg.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { onEvents } from '../../migration/switchover/events.ts';
import { PHASES, readState } from '../../migration/switchover/state.ts';
import { startPair, type Pair, sql, cli } from '../helpers/clusters.ts';

const NAME = 'db.lab.internal';

describe('switchover: kill in each phase, then --resume', () => {
  let pair: Pair;
  let dns: StartedDnsServer;
  let dir: string;
  const ackedSoFar: Array<{ id: number; host: string }> = [];
  let stopWriter = false;
  const events: string[] = [];
  let writer: Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchover-kill-'));
    pair = await startPair(11, 17);
    for (const url of [pair.old.url, pair.new.url]) {
      await sql(url, `create role app login password 'app'`);
      await sql(url, `create table public.t (id bigserial primary key, note text)`);
      await sql(url, `grant select, insert on public.t to app; grant usage on all sequences in schema public to app`);
    }
    await sql(pair.old.url, `insert into public.t (note) select 'seed' from generate_series(1, 50)`);
    await startReplication({ source: pair.old.url, target: pair.new.url });
    await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
    dns = await startDnsServer({ host: '127.0.0.1', records: { [NAME]: { targets: [{ address: pair.old.record.host, weight: 100 }, { address: pair.new.record.host, weight: 0 }] } } });
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.dnsPort}`]);
    writer = (async () => {
      let c: pg.Client | undefined;
      let host = '';
      while (!stopWriter) {
        try {
          if (!c) {
            [host] = await resolver.resolve4(NAME);
            c = new pg.Client({ connectionString: `postgres://app:app@${host}:5432/app`, connectionTimeoutMillis: 2000 });
            c.on('error', () => {});
            await c.connect();
            events.push(`${new Date().toISOString()} connected ${host} pid ${(c as any).processID}`);
          }
          const r = await c.query(`insert into public.t (note) values ('w') returning id`);
          ackedSoFar.push({ id: Number(r.rows[0].id), host, at: new Date().toISOString() } as any);
          await new Promise((res) => setTimeout(res, 20));
        } catch (e: any) {
          events.push(`${new Date().toISOString()} error ${host}: ${e?.message}`);
          await c?.end().catch(() => {});
          c = undefined;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
      await c?.end().catch(() => {});
    })();
  });

  afterAll(async () => {
    stopWriter = true;
    await writer;
    await dns?.close();
    await pair?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [i, phase] of PHASES.entries()) {
    const command = i % 2 === 0 ? 'switchover' : 'rollback';
    it(`${command}: killed in ${phase}, resumed, completes with nothing lost`, async () => {
      const state = join(dir, `run-${i}.json`);
      const base = [command, '--source', pair.old.url, '--target', pair.new.url, '--switch', 'dns', '--dns-admin', dns.adminUrl, '--dns-name', NAME, '--state', state, '--reverse', '--json'];
      const first = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'cutover.mjs'), ...base, '--hold', `${phase}=5000`, '--events-fd', '3'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
      let out = '';
      let killed = false;
      first.stdout!.on('data', (d) => (out += d));
      first.stderr!.on('data', (d) => (out += d));
      onEvents(first.stdio[3] as NodeJS.ReadableStream, (e) => {
        // the state file already says "running" when the event arrives: kill mid-phase
        if (e.type === 'phase-start' && e.phase === phase && !killed) {
          killed = true;
          first.kill('SIGKILL');
        }
      });
      await new Promise((res) => first.on('close', res));
      expect(killed, out).toBe(true);
      expect(readState(state)!.phases.find((p) => p.name === phase)?.status).toBe('running');
      const second = await cli([...base, '--resume']).done;
      expect(second.code, second.out).toBe(0);
      const st = readState(state)!;
      expect(st.kind).toBe('completed');
      for (const p of st.phases) expect(p.attempts, `${p.name}`).toBe(p.name === phase ? 2 : 1);
      // nothing acknowledged is missing on the side traffic now points to
      const now = command === 'switchover' ? pair.new : pair.old;
      await new Promise((r) => setTimeout(r, 1500));
      const acked = ackedSoFar.slice(); // taken before the query: later acks are not in its snapshot
      const ids = new Set((await sql(now.url, `select id from public.t`)).map((r) => Number(r.id)));
      const lost = acked.filter((a) => !ids.has(a.id));
      if (lost.length) {
        const other = command === 'switchover' ? pair.old : pair.new;
        const rows = await sql(other.url, `select id from public.t where id = any($1::int8[])`, [lost.map((l) => l.id)]);
        console.error('LOST', JSON.stringify({ old: pair.old.record.host, lost, onOtherSide: rows, phases: st.phases.map((p) => [p.name, p.startedAt, p.endedAt]) }));
        console.error('EVENTS', events.filter((e) => !/not permitted/.test(e)).slice(-30).join('\n'));
        console.error('ROLES', JSON.stringify(await sql(other.url, `select rolname, rolcanlogin from pg_roles where rolname = 'app'`)), JSON.stringify(st.phases.map((p) => p.changes)));
      }
      expect(lost).toEqual([]);
      expect(acked.some((a) => a.host === now.record.host)).toBe(true);
    });
  }
});
