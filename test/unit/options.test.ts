/** Option parsing and connection strings (issue 20): pure logic, no servers. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { integer, parseOptions, replicationName, replicationNameProblem, rowFilters, seconds, tables, wordList } from '../../cli/options.ts';
import { checkServerVersion, checkUrl, parseConninfo, resolveConnection, sameServerReason, toConninfo, type ServerIdentity } from '../../migration/pg.ts';
import { objectNames } from '../../migration/replication.ts';
import { CutoverError } from '../../migration/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cutover-options-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const usage = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CutoverError);
    expect((e as CutoverError).exitCode).toBe(2);
    return (e as CutoverError).message;
  }
  throw new Error('did not throw');
};

describe('replication names map one-to-one onto object names', () => {
  it.each(['数据', 'é', '...', '---', 'a-b', 'a b', 'Main', 'ORDERS', '_main', 'main_', 'x'.repeat(43), ''])('refuses %j', (name) => {
    expect(replicationNameProblem(name)).not.toBeNull();
  });
  it.each(['main', 'a_b', 'orders2', 'x'.repeat(42), '0'])('accepts %j, and it names its own objects', (name) => {
    expect(replicationNameProblem(name)).toBeNull();
    expect(objectNames(name).name).toBe(name);
    expect(objectNames(name).slot).toBe(`cutover_${name}`);
  });
  it('the parser says why', () => {
    expect(usage(() => parseOptions({ name: replicationName() }, { name: 'a-b' }))).toMatch(/would become "a_b", the same objects as --name a_b/);
    expect(parseOptions({ name: replicationName() }, {}).name).toBe('main');
  });
});

describe('numbers and lists', () => {
  const schema = { chunkRows: integer('--chunk-rows', { min: 1, default: 50_000 }), timeout: seconds('--timeout', { default: 60 }), t: tables('--tables'), c: wordList('--categories', ['schema', 'data'] as const) };
  it('defaults and good values', () => {
    expect(parseOptions(schema, {})).toEqual({ chunkRows: 50_000, timeout: 60, t: undefined, c: undefined });
    expect(parseOptions(schema, { chunkRows: '10', timeout: '1.5', t: 'a,"B c".d', c: 'data' })).toEqual({ chunkRows: 10, timeout: 1.5, t: [{ schema: 'public', name: 'a' }, { schema: 'B c', name: 'd' }], c: ['data'] });
  });
  it.each([
    [{ chunkRows: 'abc' }, /--chunk-rows must be a whole number/],
    [{ chunkRows: '0' }, /--chunk-rows must be a whole number ≥ 1/],
    [{ chunkRows: '1e3' }, /--chunk-rows must be a whole number/],
    [{ timeout: 'abc' }, /--timeout must be a number of seconds/],
    [{ timeout: '0' }, /--timeout must be a number of seconds > 0/],
    [{ timeout: '99999999999' }, /--timeout must be a number of seconds/],
    [{ t: ',' }, /--tables is empty/],
    [{ t: '"unterminated' }, /--tables: unterminated quote/],
    [{ c: 'schema,nope' }, /--categories: unknown "nope"/],
  ])('%j', (raw, re) => {
    expect(usage(() => parseOptions(schema, raw))).toMatch(re);
  });
  it('reports every bad option at once', () => {
    expect(usage(() => parseOptions(schema, { chunkRows: 'x', timeout: 'y' }))).toMatch(/2 options are wrong/);
  });
});

describe('connection strings', () => {
  const env = { HOME: tmp, PGSERVICEFILE: join(tmp, 'none'), PGSYSCONFDIR: tmp } as NodeJS.ProcessEnv;
  it('a literal % in a password, a bad URL, an unknown parameter: USAGE with a hint', () => {
    expect(usage(() => checkUrl('postgres://u:50%off@h/db', '--source'))).toMatch(/password in --source contains a % that is not a valid percent-escape/);
    expect(usage(() => resolveConnection('postgres://u:50%off@h/db', '--source', env))).not.toContain('50%off');
    expect(usage(() => resolveConnection('http://h/db', '--source', env))).toMatch(/must start with postgres/);
    expect(usage(() => resolveConnection('localhost:5432', '--source', env))).toMatch(/neither a postgres/);
    expect(usage(() => resolveConnection('host=h passwort=x', '--source', env))).toMatch(/unknown connection parameter "passwort"/);
    expect(usage(() => resolveConnection("host=h password='x", '--source', env))).toMatch(/unterminated quoted value/);
    expect(usage(() => resolveConnection('host=h port=99999', '--source', env))).toMatch(/not a TCP port/);
  });
  it('conninfo with escaped quotes and an IPv6 host becomes a URL and back without loss', () => {
    const url = resolveConnection("host=::1 port=5433 dbname='my db' user=app password='it\\'s @%/x'", '--source', env);
    expect(new URL(url).hostname).toBe('[::1]');
    const kv = parseConninfo(toConninfo(url));
    expect(kv).toEqual({ host: '::1', port: '5433', dbname: 'my db', user: 'app', password: "it's @%/x" });
  });
  it('a URL with an IPv6 host: conninfo without brackets', () => {
    expect(parseConninfo(toConninfo('postgres://u:p@[::1]:5432/db')).host).toBe('::1');
  });
  it('fills the password from PGPASSWORD, else the password file (escapes, wildcards, 0600 only)', () => {
    expect(new URL(resolveConnection('postgres://app@h:5432/db', 's', { ...env, PGPASSWORD: 'p@ss' })).password).toBe('p%40ss');
    const pf = join(tmp, 'pgpass');
    writeFileSync(pf, `# comment\nother:*:*:*:nope\nh:5432:*:app:a\\:b\\\\c\n`);
    chmodSync(pf, 0o600);
    const url = resolveConnection('postgres://app@h:5432/db', 's', { ...env, PGPASSFILE: pf });
    expect(parseConninfo(toConninfo(url)).password).toBe('a:b\\c');
    chmodSync(pf, 0o644);
    expect(new URL(resolveConnection('postgres://app@h:5432/db', 's', { ...env, PGPASSFILE: pf })).password).toBe('');
    // the URL's own password wins
    expect(new URL(resolveConnection('postgres://app:mine@h/db', 's', { ...env, PGPASSWORD: 'env' })).password).toBe('mine');
  });
  it('a service (service= or PGSERVICE); explicit keys override it', () => {
    const sf = join(tmp, 'services.conf');
    writeFileSync(sf, `[old]\nhost=10.0.0.1\nport=6432\ndbname=app\nuser=svc\n\n[new]\nhost=10.0.0.2\n`);
    const e = { ...env, PGSERVICEFILE: sf };
    const kv = parseConninfo(toConninfo(resolveConnection('service=old dbname=other', 's', e)));
    expect(kv).toMatchObject({ host: '10.0.0.1', port: '6432', dbname: 'other', user: 'svc' });
    expect(new URL(resolveConnection('postgres:///x', 's', { ...e, PGSERVICE: 'new', PGUSER: 'u' })).hostname).toBe('10.0.0.2');
    expect(usage(() => resolveConnection('service=nope', 's', e))).toMatch(/service "nope" is not in/);
  });
});

describe('the same server twice', () => {
  const id = (o: Partial<ServerIdentity> = {}): ServerIdentity => ({ systemIdentifier: '7300000000000000001', database: 'app', versionNum: 170004, version: '17.4', inRecovery: false, instance: '2026-01-01 port 5432', ...o });
  it('same cluster and database; another database; a standby; a copy of the data directory', () => {
    expect(sameServerReason(id(), id())).toMatch(/same database "app"/);
    expect(sameServerReason(id(), id({ database: 'other' }))).toMatch(/two databases/);
    expect(sameServerReason(id(), id({ instance: 'x port 5432', inRecovery: true }))).toMatch(/physical standby/);
    expect(sameServerReason(id(), id({ instance: 'x port 5432' }))).toBeNull();
    expect(sameServerReason(id(), id({ systemIdentifier: '2' }))).toBeNull();
    // system_identifier not readable: the postmaster tells
    expect(sameServerReason(id({ systemIdentifier: null }), id({ systemIdentifier: null }))).toMatch(/same postmaster/);
    expect(sameServerReason(id({ systemIdentifier: null }), id({ systemIdentifier: null, instance: 'y' }))).toBeNull();
  });
  it('a server older than 10 is named by its version', () => {
    expect(() => checkServerVersion(id({ versionNum: 90624, version: '9.6.24' }), 'source')).toThrow(/the source runs PostgreSQL 9\.6\.24; logical replication needs PostgreSQL 10 or newer/);
    expect(() => checkServerVersion(id(), 'source')).not.toThrow();
  });
});

describe('lab names are one folder and no other', () => {
  it.each(['.', '..', '.hidden', '-x', 'a/b', 'Lab', 'ü', '', 'x'.repeat(65)])('refuses %j', async (name) => {
    const { labNameProblem } = await import('../../lab/lab.ts');
    expect(labNameProblem(name)).not.toBeNull();
  });
  it.each(['default', 'pg11-to-17', 'a.b_c', '0'])('accepts %j', async (name) => {
    const { labNameProblem, readLab } = await import('../../lab/lab.ts');
    expect(labNameProblem(name)).toBeNull();
    expect(() => readLab(name)).not.toThrow();
  });
  it('readLab("..") is a USAGE error, not the parent folder', async () => {
    const { readLab } = await import('../../lab/lab.ts');
    expect(() => readLab('..')).toThrow(/invalid lab name "\.\."/);
  });
});

describe('post-verify counts after a switch', async () => {
  const { judgePostverifyCounts } = await import('../../migration/verify.ts');
  it('an app DELETE on the new primary is not a failed cutover; missing rows without DELETEs are', () => {
    const r = judgePostverifyCounts([
      { table: 'a', source: 100, target: 100, targetDeletes: 0 },
      { table: 'b', source: 100, target: 98, targetDeletes: 2 },
      { table: 'c', source: 100, target: 90, targetDeletes: 2 },
      { table: 'd', source: 100, target: 99 },
      { table: 'e', source: 100, target: 150 },
    ]);
    expect(r.ok).toBe(false);
    expect(r.warnings).toEqual(['b: 2 row(s) fewer on the target, explained by 2 DELETE(s) there since the switch']);
    expect(r.failures.map((f) => f.split(' ')[0])).toEqual(['c', 'd']);
  });
});

describe('verify() checks its options before connecting', async () => {
  const { verify } = await import('../../migration/verify.ts');
  it.each([{ chunkRows: 0 }, { chunkRows: NaN }, { parallel: 0 }, { sampleRows: -1 }, { olderThan: { column: 'ts', seconds: NaN } }])('%j', async (o) => {
    await expect(verify({ source: 'postgres://x@127.0.0.1:1/db', target: 'postgres://x@127.0.0.1:2/db', ...o } as any)).rejects.toMatchObject({ code: 'USAGE', exitCode: 2 });
  });
});

describe('the subscription conninfo (forServer)', () => {
  it('keeps passfile= (a file on the subscriber host) and adds no password; without it, the password is filled', () => {
    const env = { PGPASSWORD: 'from-env', HOME: '/nonexistent' } as NodeJS.ProcessEnv;
    const kv = parseConninfo(toConninfo(resolveConnection('host=old user=rep dbname=app passfile=/var/lib/postgresql/.pgpass', 'c', env, { forServer: true })));
    expect(kv.passfile).toBe('/var/lib/postgresql/.pgpass');
    expect(kv.password).toBeUndefined();
    expect(parseConninfo(toConninfo(resolveConnection('host=old user=rep dbname=app', 'c', env, { forServer: true }))).password).toBe('from-env');
  });
});

describe('golden remove --scenario', async () => {
  const { goldenRemoveSchema } = await import('../../cli/commands/golden.ts');
  it('an empty name is refused (it removed every copy)', () => {
    expect(usage(() => parseOptions(goldenRemoveSchema, { scenario: '' }))).toMatch(/--scenario is empty/);
    expect(parseOptions(goldenRemoveSchema, { scenario: 'quickstart' }).scenario).toBe('quickstart');
    expect(parseOptions(goldenRemoveSchema, {}).scenario).toBeUndefined();
  });
});

describe('a Unix-socket host', () => {
  it('travels as ?host= and comes back out in conninfo', () => {
    const url = resolveConnection('host=/var/run/postgresql port=5433 dbname=app user=u', 's', { HOME: '/nonexistent' } as NodeJS.ProcessEnv);
    expect(new URL(url).searchParams.get('host')).toBe('/var/run/postgresql');
    expect(parseConninfo(toConninfo(url))).toMatchObject({ host: '/var/run/postgresql', port: '5433', dbname: 'app', user: 'u' });
  });
});

describe('--row-filter table:where', () => {
  const schema = { f: rowFilters('--row-filter') };
  it('splits at the first colon outside quotes, repeatable', () => {
    expect(parseOptions(schema, { f: [`orders:region = 'eu:west'`, `"Odd:Name".t: id > 0`] }).f).toEqual([
      { schema: 'public', name: 'orders', where: `region = 'eu:west'` },
      { schema: 'Odd:Name', name: 't', where: 'id > 0' },
    ]);
    expect(parseOptions(schema, {}).f).toBeUndefined();
  });
  it('refuses a missing clause and two filters for one table', () => {
    expect(usage(() => parseOptions(schema, { f: ['orders'] }))).toMatch(/--row-filter: row filter "orders": expected table:where-clause/);
    expect(usage(() => parseOptions(schema, { f: ['orders: a > 1', 'public.orders: b > 1'] }))).toMatch(/two filters for public\.orders/);
  });
});
