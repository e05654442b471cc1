/**
 * provider external, bad input: what users really point a staging rehearsal at. Each case is
 * refused before anything is changed (exit 2 through the CLI), naming what, where (the field and
 * URL, password masked, or the table) and the fix — and afterwards every server holds exactly what
 * it held before (the inventory helper of rehearse-external.test.ts).
 *
 * Servers: a 13 → 17 pair filled like a user's staging pair, a 17 on 127.0.0.1 (reached as
 * localhost and as 127.0.0.1), a 13 with wal_level replica.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPair, startCluster, sql, cli, type Pair } from '../helpers/clusters.ts';
import { catalog } from '../helpers/external.ts';
import { freePort } from '../../lab/net.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

const USER_SCHEMA = `
create table customers (id bigserial primary key, email text not null unique);
create table orders (id bigserial primary key, customer_id bigint not null references customers (id), amount numeric(10,2) not null);
insert into customers (email) select 'c' || g || '@example.com' from generate_series(1, 50) g;
insert into orders (customer_id, amount) select 1 + g % 50, g % 97 + 0.5 from generate_series(1, 200) g;
`;
const withDb = (url: string, db: string) => Object.assign(new URL(url), { pathname: `/${db}` }).toString();
const withUser = (url: string, user: string, password: string) => Object.assign(new URL(url), { username: user, password }).toString();
const withHost = (url: string, host: string) => Object.assign(new URL(url), { hostname: host }).toString();

describe('external servers: bad input is refused before anything is changed (exit 2)', () => {
  let pair: Pair;
  let local: StartedCluster & { tmp: string };
  let replica: StartedCluster & { tmp: string };
  let tmp: string;
  const servers = () => [pair.old.url, pair.new.url, local.url, replica.url];
  let before: Array<Record<string, string[]>[]> = [];
  /** Every database of every server, by the user's inventory. */
  const everything = async () => {
    const out: Record<string, string[]>[][] = [];
    for (const url of servers()) {
      const dbs = (await sql(url, `select datname from pg_database where not datistemplate order by 1`)).map((r) => r.datname as string);
      out.push(await Promise.all(dbs.map((d) => catalog(withDb(url, d)))));
    }
    return out;
  };

  /** A one-run external scenario file (13 → 17 unless told), the URLs taken from the environment. */
  const scenarioFile = (name: string, extra = '', majors = [13, 17]) => {
    const f = join(tmp, `${name}.yaml`);
    writeFileSync(f, `name: ${name}\nruns: 1\nclusters:\n  provider: external\n  old: { major: ${majors[0]}, url: "\${T_OLD_URL}" }\n  new: { major: ${majors[1]}, url: "\${T_NEW_URL}" }\nload: { rate: 20, duration: 6s, switchAt: 3s }\n${extra}`);
    return f;
  };
  const rehearse = async (file: string, old: string, neu: string) => {
    const out = mkdtempSync(join(tmp, 'out-'));
    const r = await cli(['rehearse', file, '--out', out, '--format', 'json', '--no-drift'], { env: { T_OLD_URL: old, T_NEW_URL: neu } }).done;
    // refused up front: no run folder, no report
    expect(readdirSync(out), r.out).toEqual([]);
    return r;
  };
  const PW = 'Secr3t-pass-word';

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ext-more-'));
    pair = await startPair(13, 17, { old: { password: PW }, new: { password: PW } });
    local = await startCluster({ major: 17, host: '127.0.0.1', port: await freePort('127.0.0.1'), password: PW });
    replica = await startCluster({ major: 13, publisher: false, password: PW });
    await sql(pair.old.url, `create database shop`);
    await sql(withDb(pair.old.url, 'shop'), USER_SCHEMA + `create table audit_log (at timestamptz default now(), msg text); create table "Event Log" (msg text)`);
    await sql(pair.new.url, `create database shop`);
    await sql(pair.new.url, `create database taken`);
    await sql(withDb(pair.new.url, 'taken'), `create table customers (id int primary key); create view paid as select 1 as x`);
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create role stager login password '${PW}'`);
    await sql(replica.url, `create database shop`);
    await sql(local.url, `create database shop`);
    before = await everything();
  }, 180_000);
  afterAll(async () => {
    await pair?.destroy();
    await local?.destroy();
    await replica?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('each is one clear error: what, where, how to fix; the servers untouched', async () => {
    const shop = { old: withDb(pair.old.url, 'shop'), new: withDb(pair.new.url, 'shop') };
    const file = scenarioFile('bad');
    const cases: Array<{ name: string; file?: string; old: string; new: string; expect: RegExp[] }> = [
      { name: 'unreachable port', old: Object.assign(new URL(shop.old), { port: '1' }).toString(), new: shop.new, expect: [/clusters\.old\.url \(\$\{T_OLD_URL\} = postgres:\/\/postgres:\*\*\*@127\.0\.0\.\d+:1\/shop\): cannot connect .* connection refused/, /listen_addresses, port, firewall/] },
      { name: 'wrong password', old: shop.old, new: withUser(shop.new, 'postgres', 'not-the-password'), expect: [/clusters\.new\.url .*rejected the login/, /check the user and password in clusters\.new\.url/] },
      { name: 'database does not exist', file: scenarioFile('nodb'), old: withDb(pair.old.url, 'nosuch'), new: withDb(pair.new.url, 'nosuch'), expect: [/clusters\.old\.url .*\/nosuch\): the old server database does not exist/, /clusters\.new\.url .*database does not exist/, /create the database first or fix the database name/] },
      { name: 'same server, localhost vs 127.0.0.1', file: scenarioFile('same', '', [17, 17]), old: withDb(withHost(local.url, 'localhost'), 'shop'), new: withDb(local.url, 'shop'), expect: [/clusters\.old\.url and clusters\.new\.url reach the same server .*database "shop" on both: postgres:\/\/postgres:\*\*\*@localhost:\d+\/shop and postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/shop/, /point clusters\.new\.url at the new server/] },
      { name: 'wal_level not logical', old: withDb(replica.url, 'shop'), new: shop.new, expect: [/clusters\.old\.url .*: wal_level is replica; logical replication needs logical/, /ALTER SYSTEM SET wal_level = logical on the old server/] },
      { name: 'not superuser, no REPLICATION', old: withUser(shop.old, 'stager', PW), new: withUser(shop.new, 'stager', PW), expect: [/connects as role "stager", which is not a superuser: on the old server .*REPLICATION, which it lacks/, /on the new server the rehearsal creates the subscription \(superuser, or on PostgreSQL 16\+ pg_create_subscription, which it lacks, with CREATE on the database\)/, /GRANT pg_create_subscription TO "stager"/] },
    ];
    for (const c of cases) {
      const r = await rehearse(c.file ?? file, c.old, c.new);
      expect(r.code, `${c.name}\n${r.out}`).toBe(2);
      expect(r.stderr, c.name).toMatch(/error\[CONFIG\]: scenario \w+: the external servers are not ready for a rehearsal; nothing was changed on either/);
      for (const re of c.expect) expect(r.stderr, c.name).toMatch(re);
      expect(r.stderr, c.name).toContain('hint:');
      expect(r.out, c.name).not.toContain(PW);
      expect(r.out, c.name).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(await everything()).toEqual(before);
  }, 240_000);

  it('tables without a key are named (with the fix); a collision on new names the objects', async () => {
    const r = await rehearse(scenarioFile('nokey'), withDb(pair.old.url, 'shop'), withDb(pair.new.url, 'shop'));
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toMatch(/2 table\(s\) on the old server have neither a primary key nor a replica identity: public\."Event Log", public\.audit_log/);
    expect(r.stderr).toMatch(/ALTER TABLE public\."Event Log" REPLICA IDENTITY FULL/);
    // only the listed tables count; new's database "taken" holds a customers table and a view
    await sql(pair.old.url, `create database taken`);
    try {
      await sql(withDb(pair.old.url, 'taken'), `create table customers (id int primary key); create table orders (id int primary key); create view paid as select 1 as x`);
      const t = await rehearse(scenarioFile('taken', 'migration: { tables: [public.customers, public.orders] }\n'), withDb(pair.old.url, 'taken'), withDb(pair.new.url, 'taken'));
      expect(t.code, t.out).toBe(2);
      expect(t.stderr).toMatch(/the new server's database already holds 2 object\(s\) the schema copy would create: table public\.customers, view public\.paid/);
      expect(t.stderr).not.toMatch(/neither a primary key/);
    } finally {
      await sql(pair.old.url, `drop database taken`);
    }
    expect(await everything()).toEqual(before);
  }, 120_000);

  it('${VAR} not set and two database names: scenario check and rehearse exit 2 with the field and line', async () => {
    const file = scenarioFile('unset');
    for (const args of [['scenario', 'check', file], ['rehearse', file, '--out', mkdtempSync(join(tmp, 'o-'))]]) {
      const r = await cli(args, { env: { T_OLD_URL: withDb(pair.old.url, 'shop'), T_NEW_URL: '' } }).done;
      expect(r.code, r.out).toBe(2);
      expect(r.stderr).toMatch(/clusters\.new\.url \(line 6, col \d+\): names the environment variable T_NEW_URL, which is not set/s);
      expect(r.stderr).toMatch(/export T_NEW_URL=/);
    }
    const r = await cli(['rehearse', file, '--out', mkdtempSync(join(tmp, 'o-'))], { env: { T_OLD_URL: withDb(pair.old.url, 'shop'), T_NEW_URL: withDb(pair.new.url, 'other') } }).done;
    expect(r.code, r.out).toBe(2);
    expect(r.stderr).toMatch(/names database other, the old URL names shop/);
    expect(r.out).not.toContain(PW);
    expect(await everything()).toEqual(before);
  }, 120_000);
});

const REPO = join(import.meta.dirname, '..', '..');

describe('external servers: the proxy and pgbouncer switches, and your own app (CLI, 13 → 17)', () => {
  let pair: Pair;
  let tmp: string;
  let env: Record<string, string>;
  let before: { old: Record<string, string[]>; new: Record<string, string[]> };
  const snapshot = async () => ({ old: await catalog(env.T_OLD_URL), new: await catalog(env.T_NEW_URL) });
  const customers = async () => (await sql(env.T_OLD_URL, `select count(*) || ' ' || md5(string_agg(c::text, ',' order by id)) as x from customers c`))[0].x;
  const orders = async () => (await sql(env.T_OLD_URL, `select count(*)::int as n from orders`))[0].n as number;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'ext-switch-'));
    // old logs through the collector (its log readable through SQL), new to stderr (not readable so)
    pair = await startPair(13, 17, { old: { gucs: { logging_collector: true, log_min_messages: 'info', log_connections: true } } });
    await sql(pair.old.url, `create database shop`);
    await sql(withDb(pair.old.url, 'shop'), readFileSync(join(REPO, 'examples', 'apps', 'schema.sql'), 'utf8'));
    await sql(withDb(pair.old.url, 'shop'), `insert into customers (email) select 'c' || g || '@example.com' from generate_series(1, 100) g`);
    await sql(pair.new.url, `create database shop`);
    env = { T_OLD_URL: withDb(pair.old.url, 'shop'), T_NEW_URL: withDb(pair.new.url, 'shop') };
    before = await snapshot();
  }, 180_000);
  afterAll(async () => {
    await pair?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const base = (name: string, extra: string) =>
    `name: ${name}\nruns: 1\nclusters:\n  provider: external\n  old: { major: 13, url: "\${T_OLD_URL}" }\n  new: { major: 17, url: "\${T_NEW_URL}" }\nbudgets: { maxErrorWindow: 15s, maxStall: 15s }\n${extra}`;
  const cases: Array<{ name: string; yaml: string; ownApp?: boolean }> = [
    { name: 'proxy', yaml: base('ext-proxy', 'load: { rate: 20, duration: 10s, switchAt: 4s }\nmigration: { switch: proxy }\n') },
    { name: 'pgbouncer', yaml: base('ext-pgbouncer', 'load: { rate: 20, duration: 10s, switchAt: 4s }\nmigration: { switch: pgbouncer }\n') },
    {
      name: 'own app (Python, dns)',
      ownApp: true,
      yaml: base(
        'ext-own-app',
        `app:\n  command: /usr/bin/python3 app.py\n  cwd: ${join(REPO, 'examples', 'apps', 'python')}\n  healthPath: /health\n  readyTimeout: 30s\nack:\n  query: select id::text from orders where id::text = any($1)\nload:\n  script: ${join(REPO, 'examples', 'apps', 'orders.js')}\n  rate: 20\n  duration: 10s\n  switchAt: 4s\nmigration: { switch: dns, dnsTtl: 1s }\n`,
      ),
    },
  ];
  const canOwnApp = process.getuid?.() === 0 && existsSync('/usr/lib/python3/dist-packages/psycopg2');

  for (const c of cases)
    it.skipIf(c.ownApp && !canOwnApp)(`${c.name}: passes, 0 lost, both servers as before`, async () => {
      const file = join(tmp, `${c.name.split(' ')[0]}.yaml`);
      writeFileSync(file, c.yaml);
      const out = mkdtempSync(join(tmp, 'out-'));
      const ordersBefore = await orders();
      const customersBefore = await customers();
      const p = await cli(['rehearse', file, '--out', out, '--format', 'json', '--no-drift'], { env }).done;
      console.info(`[external ${c.name}] exit ${p.code}\n${p.stdout.split('\n').slice(0, 4).join('\n')}`);
      const run = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).runs[0];
      expect(run.error ?? '', p.out.slice(-3000)).toBe('');
      expect(run.lostWrites, p.out.slice(-2000)).toBe(0);
      expect(run.cleanup.remaining).toEqual([]);
      // a saturated shared machine may fail a budget; a crash or a loss never passes
      expect([0, 1]).toContain(p.code);
      expect(await snapshot()).toEqual(before);
      // server logs: old's window collected through SQL (superuser), new's reason given — never silently nothing
      expect(run.serverLogs).toHaveLength(2);
      expect(run.serverLogs[0]).toMatch(/^old: server log collected: old-server\.log \(\d+ bytes of log\/postgresql-[^ ]+\.log( and log\/postgresql-[^ ]+\.log)*, the run's window, passwords masked\)/); // a run across a log rotation (midnight) reads both files
      expect(run.serverLogs[1]).toBe("new: server log not collected: logging_collector is off: the server writes its log to stderr or syslog, which SQL cannot read (set logging_collector = on, or take the log from the host for the run's window)");
      const oldLog = readFileSync(join(out, 'run-1', 'old-server.log'), 'utf8');
      expect(oldLog).toMatch(/connection authorized: user=cutover_app/);
      expect(oldLog).not.toContain(decodeURIComponent(new URL(env.T_OLD_URL).password));
      expect(existsSync(join(out, 'run-1', 'new-server.log'))).toBe(false);
      expect(await customers()).toBe(customersBefore);
      // the sample app writes only its own tables (removed); your own app's rows on old stay (README: what stays changed)
      if (c.ownApp) expect(await orders()).toBeGreaterThan(ordersBefore);
      else expect(await orders()).toBe(ordersBefore);
    }, 240_000);
});
