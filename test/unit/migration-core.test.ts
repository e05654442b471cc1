import { describe, expect, it } from 'vitest';
import { isAlreadyExists, libpqEnv, splitSql } from '../../migration/schema-copy.ts';
import { displayName, objectNames, parseTableList, parseTableName, planTables, subStateName, syncSlotPatterns, type CatalogTable } from '../../migration/replication.ts';
import { chunksFromBoundaries, columnExpr, planIntegerChunks, rowExpr } from '../../migration/verify.ts';
import { evaluate, type Facts } from '../../migration/preflight.ts';

describe('splitSql', () => {
  it('keeps dollar quotes, strings, identifiers and comments intact and drops psql meta-commands', () => {
    const text = `\\restrict abc123
SET x = 1;
-- Name: f; Type: FUNCTION; Schema: public; Owner: -
CREATE FUNCTION public.f() RETURNS int AS $fn$ select 1; $fn$ LANGUAGE sql;
-- Name: Order Items; Type: TABLE; Schema: Sch "é"; Owner: -
CREATE TABLE "Sch ""é"""."Order Items" (a text DEFAULT 'x;y', "b;" int /* ; */);
COMMENT ON TABLE t IS E'it\\'s; fine';
\\unrestrict abc123
`;
    const st = splitSql(text);
    expect(st.map((s) => s.sql)).toEqual([
      'SET x = 1;',
      'CREATE FUNCTION public.f() RETURNS int AS $fn$ select 1; $fn$ LANGUAGE sql;',
      `CREATE TABLE "Sch ""é"""."Order Items" (a text DEFAULT 'x;y', "b;" int /* ; */);`,
      `COMMENT ON TABLE t IS E'it\\'s; fine';`,
    ]);
    expect(st[1].object).toBe('FUNCTION public.f');
    expect(st[2].object).toBe('TABLE Sch "é".Order Items');
  });

  it('recognises "already exists" errors and nothing else', () => {
    expect(isAlreadyExists({ code: '42P07' })).toBe(true);
    expect(isAlreadyExists({ code: '42710' })).toBe(true);
    expect(isAlreadyExists({ code: '42601', message: 'syntax error' })).toBe(false);
  });

  it('passes the password to pg_dump through the environment, never argv', () => {
    const env = libpqEnv('postgres://u%20x:p%40ss@10.0.0.1:6543/my%20db?sslmode=require', {});
    expect(env).toMatchObject({ PGHOST: '10.0.0.1', PGPORT: '6543', PGUSER: 'u x', PGPASSWORD: 'p@ss', PGDATABASE: 'my db', PGSSLMODE: 'require' });
  });
});

describe('table names', () => {
  it('parses quoted, unquoted and folded names', () => {
    expect(parseTableName('Orders')).toEqual({ schema: 'public', name: 'orders' });
    expect(parseTableName('"Sch ""Q"" ü"."Order Items"')).toEqual({ schema: 'Sch "Q" ü', name: 'Order Items' });
    expect(parseTableList('a, s."x,y" ,"B"')).toEqual([
      { schema: 'public', name: 'a' },
      { schema: 's', name: 'x,y' },
      { schema: 'public', name: 'B' },
    ]);
    expect(() => parseTableName('a.b.c')).toThrow();
    expect(displayName({ schema: 'public', name: 'Order Items' })).toBe('public."Order Items"');
  });

  it('names objects deterministically and safely', () => {
    expect(objectNames('Crash Run!')).toMatchObject({ publication: 'cutover_crash_run', slot: 'cutover_crash_run', subscription: 'cutover_crash_run' });
    expect(objectNames().slot).toBe('cutover_main');
    expect(syncSlotPatterns('cutover_main', 16390)).toEqual(['pg\\_16390\\_sync\\_%', 'cutover\\_main\\_16390\\_sync\\_%']);
  });

  it('has a human name for every srsubstate', () => {
    expect(['i', 'd', 'f', 's', 'r'].map(subStateName)).toEqual(['initialize', 'data copy', 'copy finished', 'synchronized', 'ready (streaming)']);
    expect(subStateName(null)).toBe('not subscribed');
  });
});

describe('planTables', () => {
  const t = (name: string, extra: Partial<CatalogTable> = {}): CatalogTable => ({ oid: 1, schema: 'public', name, relkind: 'r', partitioned: false, isPartition: false, hasPk: true, replicaIdentity: 'd', estimatedRows: 0, ...extra });
  const catalog = [t('a'), t('nokey', { hasPk: false }), t('full', { hasPk: false, replicaIdentity: 'f' }), t('root', { relkind: 'p', partitioned: true, hasPk: false }), t('leaf', { isPartition: true })];
  it('publishes roots on 13+ and leaves before, and refuses tables without a key', () => {
    const p13 = planTables(catalog, undefined, { sourceMajor: 13, copyData: true });
    expect(p13.tables.map((x) => x.name)).toEqual(['a', 'nokey', 'full', 'root']);
    expect(p13.problems).toHaveLength(1);
    expect(p13.problems[0]).toContain('public.nokey');
    const p11 = planTables(catalog, [{ name: 'a', copyData: false }, { name: 'leaf' }], { sourceMajor: 11, copyData: true });
    expect(p11.tables).toEqual([
      { schema: 'public', name: 'a', copyData: false, rowFilter: undefined },
      { schema: 'public', name: 'leaf', copyData: true, rowFilter: undefined },
    ]);
    expect(planTables(catalog, [{ name: 'root' }], { sourceMajor: 11, copyData: true }).problems[0]).toContain('partitioned');
    expect(planTables(catalog, [{ name: 'missing' }], { sourceMajor: 16, copyData: true }).problems[0]).toContain('missing');
  });

  it('marks back-filled tables (not copied) and attaches row filters, also without a table list', () => {
    const p = planTables([t('a'), t('b'), t('c')], undefined, { sourceMajor: 16, copyData: true, backfill: [{ schema: 'public', name: 'b' }], rowFilters: [{ schema: 'public', name: 'c', where: 'id > 5' }] });
    expect(p.problems).toEqual([]);
    expect(p.tables).toEqual([
      { schema: 'public', name: 'a', copyData: true, rowFilter: undefined },
      { schema: 'public', name: 'b', copyData: false, rowFilter: undefined, backfill: true },
      { schema: 'public', name: 'c', copyData: true, rowFilter: 'id > 5' },
    ]);
  });

  it('refuses a back-fill without a primary key, and a filter or back-fill for a table not replicated', () => {
    const p = planTables(catalog, [{ name: 'a' }], { sourceMajor: 16, copyData: true, backfill: [{ schema: 'public', name: 'full' }, { schema: 'public', name: 'zz' }], rowFilters: [{ schema: 'public', name: 'full', where: 'true' }] });
    expect(p.problems).toEqual([
      'row filter for public.full: the table is not replicated (not on the source, or left out by the table list)',
      '--skip-copy public.full: the table is not replicated (not on the source, or left out by the table list)',
      '--skip-copy public.zz: the table is not replicated (not on the source, or left out by the table list)',
    ]);
    expect(planTables(catalog, undefined, { sourceMajor: 16, copyData: true, backfill: [{ schema: 'public', name: 'full' }] }).problems).toContain(
      '--skip-copy public.full: the table has no primary key, which the back-fill needs (INSERT … ON CONFLICT by key, in key chunks)',
    );
  });
});

describe('chunk planning', () => {
  it('covers the whole key space with open ends', () => {
    expect(planIntegerChunks(1n, 100n, 100, 1000)).toEqual([{ lower: null, upper: null }]);
    const c = planIntegerChunks(1n, 1000n, 1000, 250);
    expect(c).toHaveLength(4);
    expect(c[0]).toEqual({ lower: null, upper: ['251'] });
    expect(c[3]).toEqual({ lower: ['751'], upper: null });
    for (let i = 1; i < c.length; i++) expect(c[i].lower).toEqual(c[i - 1].upper);
    const big = planIntegerChunks(9007199254740993n, 9007199254741993n, 1001, 500);
    expect(big[0].upper).toEqual(['9007199254741326']);
    expect(chunksFromBoundaries([['5', 'a'], ['9', 'b']])).toEqual([
      { lower: null, upper: ['5', 'a'] },
      { lower: ['5', 'a'], upper: ['9', 'b'] },
      { lower: ['9', 'b'], upper: null },
    ]);
  });

  it('renders floats by their bits and quotes every column', () => {
    expect(columnExpr({ name: 'f"x', type: 'double precision', base: 'float8', collatable: false })).toBe('float8send("f""x")');
    expect(rowExpr([{ name: 'id', type: 'integer', base: 'int4', collatable: false }, { name: 'Näme', type: 'text', base: 'text', collatable: true }])).toBe('ROW("id", "Näme")::text');
  });
});

describe('preflight findings', () => {
  const side = {
    versionNum: 110022, major: 11, walLevel: 'logical', rdsLogicalReplication: null, maxReplicationSlots: 10, usedSlots: 0, maxWalSenders: 10, usedSenders: 0,
    maxWorkerProcesses: 16, maxLogicalWorkers: 8, maxSyncWorkers: 2, isSuperuser: true, canReplicate: true, canSubscribe: true, encoding: 'UTF8', collate: 'C', ctype: 'C',
    extensions: [{ name: 'plpgsql', version: '1.0' }], available: [{ name: 'plpgsql', version: '1.0' }], cutoverSlots: [],
  };
  const facts = (over: { source?: any; target?: any; dump?: any } = {}): Facts => ({
    source: { ...side, noKey: [], identityFull: [], unlogged: [], matviews: [], foreign: [], partitionedRoots: [], generated: [], largeObjects: 0, sequences: 0, withOids: [], removedTypes: [], notOwned: [], longTransactions: [], preparedXacts: 0, plpython2: false, ...over.source },
    target: { ...side, versionNum: 170004, major: 17, nonEmptyTables: [], ...over.target },
    dump: over.dump ?? { ok: true, path: '/usr/bin/pg_dump', version: '15.20' },
  });
  const errors = (f: Facts) => evaluate(f).filter((x) => x.severity === 'error').map((x) => x.id);

  it('is clean for a healthy pair', () => {
    expect(errors(facts())).toEqual([]);
  });

  it('flags each planted problem with the right severity', () => {
    const f = evaluate(
      facts({
        source: { walLevel: 'replica', noKey: [{ schema: 'public', name: 'No Key', identity: 'd' }], unlogged: [{ schema: 'public', name: 'u' }], matviews: [{ schema: 'public', name: 'mv' }], extensions: [{ name: 'postgis', version: '3.4' }], canReplicate: false, encoding: 'LATIN1' },
      }),
    );
    const by = (id: string) => f.find((x) => x.id === id);
    expect(by('source.wal_level')?.severity).toBe('error');
    expect(by('table.no_primary_key')).toMatchObject({ severity: 'error', object: 'public."No Key"' });
    expect(by('table.unlogged')?.severity).toBe('warning');
    expect(by('table.materialized_view')?.severity).toBe('warning');
    expect(by('extension.missing')?.severity).toBe('error');
    expect(by('source.privilege_replication')?.severity).toBe('error');
    expect(by('database.encoding')?.severity).toBe('warning');
    for (const x of f) expect(x.hint).toBeTypeOf('string');
  });

  it('uses rds.logical_replication on RDS and checks direction and tools', () => {
    expect(errors(facts({ source: { walLevel: 'replica', rdsLogicalReplication: '0' } }))).toEqual(['source.rds_logical_replication']);
    expect(errors(facts({ source: { walLevel: 'replica', rdsLogicalReplication: 'on' } }))).toEqual([]);
    expect(errors(facts({ source: { major: 17, versionNum: 170000 }, target: { major: 16 } }))).toContain('version.downgrade');
    expect(errors(facts({ dump: { ok: false, message: 'no pg_dump ≥ 17', hint: 'install postgresql-client-17' } }))).toEqual(['tool.pg_dump']);
    expect(errors(facts({ target: { canSubscribe: false } }))).toEqual(['target.privilege_subscription']);
  });
});

describe('dumpTool', () => {
  it('names the client to install when the source is newer than every pg_dump found', async () => {
    const { dumpTool } = await import('../../migration/schema-copy.ts');
    const e = await dumpTool(99).catch((x) => x);
    expect(e.code).toBe('TOOL_MISSING');
    expect(e.hint).toContain('postgresql-client-99');
  });
});
