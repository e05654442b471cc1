/**
 * `clusters.provider: external`: a rehearsal on "someone else's servers" — two embedded clusters
 * this test starts and fills like a user's staging pair (a schema with an enum, a view, a function,
 * a role with grants, and data on old; an empty database on new). The shipped scenario
 * examples/staging/staging.yaml runs through the CLI exactly as the README's "Rehearse on staging"
 * says, twice (its reset.sh re-creates the databases between the runs); afterwards both servers
 * hold exactly the user's objects again. An interrupted rehearsal leaves nothing behind either,
 * and `scenario check` refuses what the lab cannot do there (kill a server, several runs without a
 * reset).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPair, sql, cli, type Pair } from '../helpers/clusters.ts';
import { catalog } from '../helpers/external.ts';
import { rehearse } from '../../lab/rehearse/run.ts';
import { parseScenario } from '../../scenarios/load.ts';
import { valueOf } from '../../reports/model.ts';

const REPO = join(import.meta.dirname, '..', '..');
const SCENARIO = join(REPO, 'examples', 'staging', 'staging.yaml');

const USER_SCHEMA = `
create type order_status as enum ('new', 'paid', 'shipped');
create table customers (id bigserial primary key, email text not null unique);
create table orders (id bigserial primary key, customer_id bigint not null references customers (id), status order_status not null default 'new', amount numeric(10,2) not null);
create index orders_customer_idx on orders (customer_id);
create view paid_orders as select * from orders where status = 'paid';
create function order_total(c bigint) returns numeric language sql stable as $$ select coalesce(sum(amount), 0) from orders where customer_id = c $$;
grant select on customers, orders, paid_orders to reporting;
insert into customers (email) select 'c' || g || '@example.com' from generate_series(1, 200) g;
insert into orders (customer_id, status, amount) select 1 + g % 200, (array['new', 'paid', 'shipped'])[1 + g % 3]::order_status, g % 97 + 0.5 from generate_series(1, 2000) g;
`;

/** The user's data: row counts and a checksum of each table, and the sequences (old side). */
async function data(url: string): Promise<string[]> {
  return (await sql(url, `select 'customers ' || count(*) || ' ' || md5(string_agg(c::text, ',' order by id)) as x from customers c
    union all select 'orders ' || count(*) || ' ' || md5(string_agg(o::text, ',' order by id)) from orders o
    union all select 'seq ' || last_value from customers_id_seq union all select 'seq ' || last_value from orders_id_seq`)).map((r) => r.x);
}

const withDb = (url: string, db: string) => Object.assign(new URL(url), { pathname: `/${db}` }).toString();

describe('rehearsing on external servers (provider external, 13 → 17)', () => {
  let pair: Pair;
  let env: Record<string, string>;
  let before: { old: Record<string, string[]>; new: Record<string, string[]>; oldAdmin: Record<string, string[]>; data: string[] };
  const snapshot = async () => ({ old: await catalog(env.STAGING_OLD_URL), new: await catalog(env.STAGING_NEW_URL), oldAdmin: await catalog(pair.old.url), data: await data(env.STAGING_OLD_URL) });
  /** Both servers' catalogs and the user's rows are exactly as before the rehearsal. */
  const expectUntouched = async () => {
    const after = await snapshot();
    expect(after.old).toEqual(before.old);
    expect(after.new).toEqual(before.new);
    expect(after.data).toEqual(before.data);
  };

  beforeAll(async () => {
    pair = await startPair(13, 17);
    // the user's servers: a role of their own on both, their schema and data in a template on old
    // (what reset.sh restores from), the database itself a copy of it; an empty database on new
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create role reporting nologin`);
    await sql(pair.old.url, `create database shop_template`);
    await sql(withDb(pair.old.url, 'shop_template'), USER_SCHEMA);
    await sql(pair.old.url, `create database shop template shop_template`);
    await sql(pair.new.url, `create database shop`);
    env = { STAGING_OLD_URL: withDb(pair.old.url, 'shop'), STAGING_NEW_URL: withDb(pair.new.url, 'shop') };
    // the library reads them from this process's environment (the CLI runs get them passed)
    Object.assign(process.env, env);
    before = await snapshot();
  }, 180_000);
  afterAll(async () => {
    await pair?.destroy();
  });

  it('README: scenario check, then two runs with a reset between them; afterwards the servers hold exactly their own objects again', async () => {
    const out = mkdtempSync(join(tmpdir(), 'staging-'));
    const check = await cli(['scenario', 'check', SCENARIO], { env }).done;
    expect(check.code, check.out).toBe(0);
    expect(check.stdout).toContain('url: ${STAGING_OLD_URL}');

    const p = await cli(['rehearse', SCENARIO, '--out', out, '--format', 'json,md'], { env }).done;
    console.info(`[staging rehearsal] exit ${p.code}\n${p.stdout.split('\n').slice(0, 4).join('\n')}`);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.runs).toHaveLength(2);
    for (const run of report.runs) {
      // measured, on the user's servers (a saturated shared machine may fail a budget, never crash a run)
      expect(run.error ?? '', p.out).toBe('');
      expect(valueOf(run.lostWrites)).toBe(0);
      expect(run.cleanup.remaining).toEqual([]);
    }
    expect([0, 1]).toContain(p.code);
    // run 2 started from the reset: its output is kept, with no password in it
    expect(readFileSync(join(out, 'run-2', 'reset.log'), 'utf8')).toMatch(/reset: shop re-created on both servers\n# exit 0/);
    expect(existsSync(join(out, 'run-1', 'reset.log'))).toBe(false);
    // the ledger names what the lab made: its role and replication on old, the schema copy on new
    const ledger = JSON.parse(readFileSync(join(out, 'run-1', 'external-ledger.json'), 'utf8'));
    expect(ledger.old.createdByTheLab).toEqual(expect.arrayContaining(['role cutover_app', 'publication cutover_main', 'table public.cutover_app_writes']));
    expect(ledger.new.createdByTheLab).toEqual(expect.arrayContaining(['table public.orders', 'view public.paid_orders', 'type public.order_status', 'function public.order_total(c bigint)']));
    expect(ledger.old.createdByTheLab).not.toContain('table public.orders');
    expect(ledger.remaining).toEqual([]);

    const after = await snapshot();
    expect(after.old).toEqual(before.old);
    expect(after.new).toEqual(before.new);
    expect(after.oldAdmin).toEqual(before.oldAdmin);
    expect(after.data).toEqual(before.data);

    // no password of the user's servers in anything the rehearsal wrote or printed
    const passwords = [env.STAGING_OLD_URL, env.STAGING_NEW_URL].map((u) => decodeURIComponent(new URL(u).password));
    const files = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : [join(d, f)]));
    for (const f of files(out)) for (const pw of passwords) expect(readFileSync(f, 'utf8').includes(pw), f).toBe(false);
    for (const pw of passwords) expect(p.out + check.out).not.toContain(pw);
  }, 600_000);

  it('an interrupted rehearsal (abort signal) leaves nothing behind', async () => {
    const ac = new AbortController();
    const out = mkdtempSync(join(tmpdir(), 'staging-abort-'));
    const r = await rehearse(SCENARIO, {
      runs: 1,
      outDir: out,
      formats: ['json'],
      drift: false,
      signal: ac.signal,
      // while the schema copy's post-data runs on the new server: the teardown races a step that creates objects
      onProgress: (e) => void (e.step === 'post-data' && ac.abort()),
    });
    expect(ac.signal.aborted).toBe(true);
    expect(r.pass).toBe(false);
    expect(r.report.runs[0]!.error).toMatch(/interrupted/);
    expect(r.report.runs[0]!.cleanup?.remaining ?? []).toEqual([]);
    // it was interrupted with the lab's objects in place: the replication and the schema copy were removed
    const ledger = JSON.parse(readFileSync(join(out, 'run-1', 'external-ledger.json'), 'utf8'));
    expect(ledger.removed).toEqual(expect.arrayContaining(['role cutover_app on old', 'publication cutover_main on the source', 'table public.customers on new']));
    expect(ledger.remaining).toEqual([]);
    await expectUntouched();
  }, 300_000);

  it('SIGTERM under load (CLI): exit 143, and nothing of the lab left on the servers', async () => {
    const run = cli(['rehearse', SCENARIO, '--runs', '1', '--no-drift', '--out', mkdtempSync(join(tmpdir(), 'staging-term-')), '--format', 'json'], { env: { ...env, CI: '1' } });
    let err = '';
    run.child.stderr.on('data', (d) => (err += d));
    const t0 = Date.now();
    while (!/"step":"load"/.test(err) && run.child.exitCode === null && Date.now() - t0 < 180_000) await new Promise((r) => setTimeout(r, 100));
    expect(err).toMatch(/"step":"load"/);
    // the app role, the sample app's tables, the replication and the schema copy are all in place now
    expect((await sql(env.STAGING_OLD_URL, `select count(*)::int as n from pg_publication where pubname = 'cutover_main'`))[0].n).toBe(1);
    run.child.kill('SIGTERM');
    const { code } = await run.done;
    expect(code, err.slice(-1500)).toBe(143);
    expect(err).toMatch(/interrupted \(SIGTERM\): tearing the lab down/);
    await expectUntouched();
  }, 300_000);

  /** The shipped scenario, once, with a dataset asked for (and other URLs when given). */
  const withDataset = (urls?: { old: string; new: string }) => {
    let text = readFileSync(SCENARIO, 'utf8').replace(/^runs: 2$/m, 'runs: 1') + 'dataset: { preset: payments, scale: 500 }\n';
    if (urls) text = text.replace('"${STAGING_OLD_URL}"', `"${urls.old}"`).replace('"${STAGING_NEW_URL}"', `"${urls.new}"`);
    return parseScenario(text, SCENARIO);
  };

  it('a dataset is never seeded into a database that holds data: refused, nothing touched', async () => {
    const r = await rehearse(withDataset(), { runs: 1, outDir: mkdtempSync(join(tmpdir(), 'staging-seed-')), formats: ['json'], drift: false });
    expect(r.report.runs[0]!.error).toMatch(/asks to seed dataset payments into the old server, whose database already holds 2 table\(s\) \(public\.customers, public\.orders\)/);
    expect(r.pass).toBe(false);
    await expectUntouched();
  }, 120_000);

  it('asked for, a dataset is seeded into an empty database — and removed with the rest of what the lab made', async () => {
    for (const url of [pair.old.url, pair.new.url]) await sql(url, `create database empty_db`);
    const urls = { old: withDb(pair.old.url, 'empty_db'), new: withDb(pair.new.url, 'empty_db') };
    const empty = { old: await catalog(urls.old), new: await catalog(urls.new) };
    const out = mkdtempSync(join(tmpdir(), 'staging-seeded-'));
    const r = await rehearse(withDataset(urls), { runs: 1, outDir: out, formats: ['json'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error ?? '').toBe('');
    expect(valueOf(run.lostWrites)).toBe(0);
    const ledger = JSON.parse(readFileSync(join(out, 'run-1', 'external-ledger.json'), 'utf8'));
    expect(ledger.old.createdByTheLab).toEqual(expect.arrayContaining(['table public.accounts', 'table public.payments']));
    expect({ old: await catalog(urls.old), new: await catalog(urls.new) }).toEqual(empty);
  }, 300_000);
});

describe('scenario check and rehearse refuse what the lab cannot do on external servers', () => {
  const scenario = (extra: string, runs = 1) =>
    `name: x\nruns: ${runs}\nclusters:\n  provider: external\n  old: { major: 13, url: "postgres://u@127.0.0.1:5432/shop" }\n  new: { major: 17, url: "postgres://u@127.0.0.1:5433/shop" }\n${extra}`;
  const problems = (text: string) => {
    try {
      parseScenario(text, '<scenario>');
      return [];
    } catch (e: any) {
      return (e.problems ?? []) as Array<{ path: string; message: string; line?: number; hint?: string }>;
    }
  };

  it('a kill of old or new is refused with the reason and its line; a kill of the app or the switchover is not', () => {
    const p = problems(scenario(`faults:\n  - { kind: kill, target: app, at: 2s }\n  - kind: kill\n    target: new\n    at: 5s\n`));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatchObject({ path: 'faults.1.target', line: 10 });
    expect(p[0]!.message).toMatch(/kill of the new server stops a Postgres process: with provider external the lab does not run the servers/);
    expect(p[0]!.hint).toMatch(/partition, reset_peer/);
  });

  it('more than one run needs clusters.reset — in scenario check and in rehearse', async () => {
    const p = problems(scenario('', 3));
    expect(p.map((x) => x.path)).toEqual(['runs']);
    expect(p[0]!.message).toMatch(/3 runs on external servers need a way back to the starting point/);
    expect(problems(scenario('', 1))).toEqual([]);
    // rehearse --runs 2 on a one-run scenario: refused before anything connects
    const s = parseScenario(scenario(''), '<scenario>');
    const err = await rehearse(s, { runs: 2, outDir: mkdtempSync(join(tmpdir(), 'staging-refused-')) }).catch((e) => e);
    expect(err.code).toBe('CONFIG');
    expect(err.message).toMatch(/2 runs on external servers need a way back/);
    expect(err.hint).toMatch(/clusters\.reset/);
  });

  it('reset, preset none and ${VAR} URLs are checked too; the dataset defaults to none', () => {
    expect(problems(`name: x\nclusters:\n  old: { major: 13 }\n  new: { major: 17 }\n  reset: { command: ./reset.sh }\n`).map((x) => x.path)).toEqual(['clusters.reset']);
    expect(problems(`name: x\nclusters:\n  old: { major: 13 }\n  new: { major: 17 }\ndataset: { preset: none }\n`).map((x) => x.path)).toEqual(['dataset.preset']);
    const unset = problems(scenario('').replace('"postgres://u@127.0.0.1:5432/shop"', '"${CUTOVER_TEST_UNSET_URL}"'));
    expect(unset.map((x) => `${x.path}: ${x.message}`)).toEqual(['clusters.old.url: names the environment variable CUTOVER_TEST_UNSET_URL, which is not set']);
    expect(problems(scenario('').replace('5433/shop', '5433/other')).map((x) => x.path)).toEqual(['clusters.new.url']);
    expect(parseScenario(scenario(''), '<scenario>').dataset.preset).toBe('none');
    expect(parseScenario(scenario('dataset: { preset: payments, scale: 500 }\n'), '<scenario>').dataset.preset).toBe('payments');
  });
});
