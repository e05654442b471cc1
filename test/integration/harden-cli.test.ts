/**
 * Issue 20 on real servers through the real CLI: the same server twice, connections from the
 * environment (CUTOVER_*_URL, PGPASSWORD, a password file, a service) reaching pg_dump and the
 * subscription, and bad input ending with exit 2 and a hint before anything is changed.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, sql, startPair, type Pair } from '../helpers/clusters.ts';

const PW = 'pa@ss%w0rd \'q';
let pair: Pair;
let src: string;
let tgt: string;
let tmp: string;

const run = async (args: string[], env: NodeJS.ProcessEnv = {}) => cli(args, { env: { CUTOVER_SOURCE_URL: '', CUTOVER_TARGET_URL: '', PGPASSWORD: '', PGSERVICE: '', ...env } }).done;
const noPassword = (url: string) => {
  const u = new URL(url);
  u.password = '';
  return u.toString();
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cutover-harden-'));
  pair = await startPair(13, 17, { old: { password: PW }, new: { password: PW } });
  src = pair.old.url;
  tgt = pair.new.url;
  await sql(src, `create table public.items (id int primary key, v text); insert into items select g, 'v' || g from generate_series(1, 100) g;
                  create table public."Mixed" (id int primary key); create view public.v_items as select * from items`);
  await sql(src, `create database other`);
});

afterAll(async () => {
  await pair?.destroy();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the same server twice', () => {
  it('preflight --source X --target X exits 2 and says why', async () => {
    const r = await run(['preflight', '--source', src, '--target', src]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/same database "app" on the same server \(system_identifier \d+\)/);
    expect(r.out).not.toContain(PW);
  });

  it('another database of the same cluster is refused too (the fence is cluster-wide)', async () => {
    const other = new URL(src);
    other.pathname = '/other';
    const r = await run(['verify', '--source', src, '--target', other.toString()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/two databases \("app" and "other"\) of the same PostgreSQL cluster/);
  });

  it('drift and replicate start refuse it, and replicate creates nothing', async () => {
    expect((await run(['drift', '--source', tgt, '--target', tgt])).code).toBe(2);
    const r = await run(['replicate', 'start', '--source', src, '--target', src, '--timeout', '30']);
    expect(r.code).toBe(2);
    expect(await sql(src, `select pubname from pg_publication`)).toEqual([]);
    expect(await sql(src, `select slot_name from pg_replication_slots`)).toEqual([]);
  });
});

describe('bad input: exit 2 with a hint, nothing changed', () => {
  it('numbers', async () => {
    for (const args of [
      // (every other bad number: test/unit/options.test.ts, no process per case)
      ['verify', '--source', src, '--target', tgt, '--chunk-rows', '0'],
      ['replicate', 'start', '--source', src, '--target', tgt, '--timeout', 'abc'],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/error\[USAGE\]: --(chunk-rows|timeout) must be/);
      expect(r.stderr).toContain('hint:');
      expect(r.stderr).not.toMatch(/at .*\.ts:\d+/); // no stack trace
    }
  });

  it('URLs: a literal % in the password, a missing --target', async () => {
    const pct = await run(['preflight', '--source', 'postgres://app:50%off@127.0.0.1/db', '--target', tgt]);
    expect(pct.code).toBe(2);
    expect(pct.stderr).toMatch(/not a valid percent-escape/);
    expect(pct.stderr).toContain('%25');
    expect(pct.stderr).not.toContain('50%off');
    const missing = await run(['preflight', '--source', src]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--target is required/);
    expect(missing.stderr).toContain('CUTOVER_TARGET_URL');
  });

  it('--tables nosuchtable says no such table before the schema is copied', async () => {
    const r = await run(['replicate', 'start', '--source', src, '--target', tgt, '--tables', 'nosuchtable,mixed,v_items', '--timeout', '60']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such table public.nosuchtable on the source');
    expect(r.stderr).toContain('no such table public.mixed on the source (did you mean public."Mixed"?)');
    expect(r.stderr).toContain('public.v_items is a view, not a table');
    expect(await sql(tgt, `select relname from pg_class where relname in ('items','Mixed')`)).toEqual([]);
  });

  it('--name that does not map one-to-one is refused, for stop too', async () => {
    for (const name of ['数据']) { // the other forms: test/unit/options.test.ts
      const r = await run(['replicate', 'stop', '--source', src, '--target', tgt, '--name', name]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(/--name .* cannot be used: /);
    }
  });
});

describe('connections from the environment', () => {
  it('CUTOVER_*_URL with PGPASSWORD reach pg_dump and the subscription', async () => {
    const env = { CUTOVER_SOURCE_URL: noPassword(src), CUTOVER_TARGET_URL: noPassword(tgt), PGPASSWORD: PW };
    const r = await run(['replicate', 'start', '--tables', 'items', '--timeout', '120', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.out).not.toContain(PW);
    // the subscription's own connection (the target's worker) authenticated: rows arrived
    expect((await sql(tgt, `select count(*)::int as n from items`))[0].n).toBe(100);
    const stop = await run(['replicate', 'stop'], env);
    expect(stop.code, stop.stderr).toBe(0);
  });

  it('a password file (PGPASSFILE) and a service (--source service=…)', async () => {
    const o = new URL(src);
    const n = new URL(tgt);
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
    const passfile = join(tmp, 'pgpass');
    writeFileSync(passfile, `${o.hostname}:${o.port}:*:postgres:${esc(PW)}\n${n.hostname}:*:app:postgres:${esc(PW)}\n`);
    chmodSync(passfile, 0o600);
    const services = join(tmp, 'pg_service.conf');
    writeFileSync(services, `[old]\nhost=${o.hostname}\nport=${o.port}\ndbname=app\nuser=postgres\n`);
    const r = await run(['verify', '--source', "service=old application_name='cut \\'over'", '--target', noPassword(tgt), '--tables', 'items', '--json'], { PGPASSFILE: passfile, PGSERVICEFILE: services });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
  });
});

describe('the subscription password stays out of the target server log', () => {
  it('a failing CREATE SUBSCRIPTION is logged without its statement', async () => {
    const secret = 'WrongButSecret-x9';
    const bad = new URL(src);
    bad.password = secret;
    const r = await run(['replicate', 'start', '--source', src, '--target', tgt, '--tables', '"Mixed"', '--source-conninfo', bad.toString(), '--timeout', '60', '--name', 'leak']);
    expect(r.code).not.toBe(0);
    expect(r.out).not.toContain(secret);
    const log = readFileSync(pair.new.record.logFile!, 'utf8');
    expect(log).toMatch(/could not connect to the publisher/);
    expect(log).not.toContain(secret);
    expect(await sql(src, `select pubname from pg_publication where pubname = 'cutover_leak'`)).toEqual([]);
  });
});

describe('replicate start checks the target before copying the schema', () => {
  it('a target table that already holds rows stops it with exit 2, nothing created', async () => {
    expect((await sql(tgt, `select count(*)::int as n from items`))[0].n).toBe(100); // from the env test above
    const r = await run(['replicate', 'start', '--source', src, '--target', tgt, '--tables', 'items', '--name', 'again', '--timeout', '60']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/target table\(s\) already hold rows: public\.items/);
    expect(r.stderr).toMatch(/--skip-copy/);
    expect(await sql(src, `select pubname from pg_publication where pubname = 'cutover_again'`)).toEqual([]);
  });
});
