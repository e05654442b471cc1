import { describe, expect, it } from 'vitest';
import { compareOrders, diffCollation, orderHash, representable, type CollationSnapshot } from '../../migration/drift/collation.ts';
import { diffNulls, diffTableScan, checksumExpr } from '../../migration/drift/data.ts';
import { diffEncodings, unrepresentablePattern } from '../../migration/drift/encoding.ts';
import { applicableChecks, stripStrings } from '../../migration/drift/incompatibility.ts';
import { compareVersions, diffSchema, explainChange, groupFindings, normaliseDeparse, resolutionDifference, sequenceFindings, splitKey, unqualifyCalls, type SchemaSnapshot } from '../../migration/drift/schema.ts';
import { finding } from '../../migration/drift/types.ts';
import { diffScopedSettings, diffServerSettings } from '../../migration/drift/settings.ts';
import { classifyQuery, compareResults, hasTopLevelOrderBy, likelyCause, splitStatements, validateQueries } from '../../migration/drift/shadow.ts';
import { dependsOnZone, diffTimezone, diffTzFingerprints, fingerprintHash } from '../../migration/drift/timezone.ts';

describe('splitStatements', () => {
  it('splits on ; outside quotes, dollar quotes and comments, and drops comment-only pieces', () => {
    const text = `-- header comment
select 1; -- trailing
select ';' as semi, "a;b" from t;
/* block ; comment */
select $$ a ; b $$, $x$;$x$;
-- only a comment;
  `;
    expect(splitStatements(text)).toEqual([
      '-- header comment\nselect 1',
      `-- trailing\nselect ';' as semi, "a;b" from t`,
      '/* block ; comment */\nselect $$ a ; b $$, $x$;$x$',
    ]);
  });
  it('keeps a last statement without ;', () => {
    expect(splitStatements('select 1;\nselect 2')).toEqual(['select 1', 'select 2']);
  });
});

describe('classifyQuery', () => {
  it('accepts reads', () => {
    for (const q of ['select 1', '-- c\nSELECT * from t', '(select 1) union (select 2)', 'with x as (select 1) select * from x', 'values (1)', 'table t', `select 'delete from t'`, 'select "update" from t'])
      expect(classifyQuery(q), q).toEqual({ read: true });
  });
  it('refuses writes and locks', () => {
    for (const q of ['insert into t values (1)', 'update t set a = 1', 'delete from t', 'with d as (delete from t returning *) select * from d', 'select * from t for update', 'select * into t2 from t', 'select 1; drop table t', 'create table x (a int)', 'select nextval(\'s\')', 'truncate t', 'set search_path = x', ''])
      expect(classifyQuery(q).read, q).toBe(false);
  });
  it('validateQueries names the query', () => {
    expect(() => validateQueries(['select 1', 'delete from t'])).toThrow(/query #2 \(delete from t\) is not a read/);
  });
});

describe('hasTopLevelOrderBy', () => {
  it('sees only the outer ORDER BY', () => {
    expect(hasTopLevelOrderBy('select * from t order by a')).toBe(true);
    expect(hasTopLevelOrderBy('select row_number() over (order by a) from t')).toBe(false);
    expect(hasTopLevelOrderBy('select * from (select * from t order by a) s')).toBe(false);
    expect(hasTopLevelOrderBy(`select 'order by' from t -- order by a`)).toBe(false);
  });
});

describe('compareResults and likelyCause', () => {
  const a = [['co-op'], ['coop'], ['Zürich']];
  const b = [['Zürich'], ['co-op'], ['coop']];
  it('ignores order when the query does not order', () => {
    expect(compareResults(a, b, false)).toMatchObject({ sameRows: true, sameOrder: true });
  });
  it('reports order differences for ordered queries, blaming collation for text', () => {
    const d = compareResults(a, b, true);
    expect(d).toMatchObject({ sameRows: true, sameOrder: false, firstDifference: 0 });
    expect(likelyCause(d, a)).toMatch(/collation/);
  });
  it('names timezone, float and NULL causes', () => {
    const tz = compareResults([['1', '2024-01-01 00:00:00+00']], [['1', '2023-12-31 19:00:00-05']], true);
    expect(tz.onlySource).toEqual([['1', '2024-01-01 00:00:00+00']]);
    expect(likelyCause(tz, [])).toMatch(/timezone/);
    expect(likelyCause(compareResults([['0.10000000000000001']], [['0.1']], false), [])).toMatch(/float/);
    expect(likelyCause(compareResults([[null]], [['n/a']], false), [])).toMatch(/NULL/);
  });
  it('counts duplicates as a multiset', () => {
    const d = compareResults([['x'], ['x']], [['x']], false);
    expect(d.sameRows).toBe(false);
    expect(d.onlySource).toEqual([['x']]);
  });
});

describe('collation corpus comparison', () => {
  it('finds the first moved string and is stable', () => {
    expect(compareOrders(['a', 'b', 'c'], ['a', 'b', 'c'])).toBeNull();
    expect(compareOrders(['a', 'B', 'c'], ['a', 'c', 'B'])).toMatchObject({ index: 1, moved: 2 });
    expect(orderHash(['a', 'b'])).toBe(orderHash(['a', 'b']));
    expect(orderHash(['a', 'b'])).not.toBe(orderHash(['b', 'a']));
  });
  it('knows what LATIN1 can hold', () => {
    expect(representable('Zürich', 'LATIN1')).toBe(true);
    expect(representable('Ω', 'LATIN1')).toBe(false);
    expect(representable('😀', 'UTF8')).toBe(true);
    expect(representable('x', 'EUC_JP')).toBeUndefined();
  });
});

describe('diffSchema', () => {
  const base = (): SchemaSnapshot => ({
    table: { 'public.t': { kind: 'r', persistence: 'p', owner: 'app', row_security: false } },
    column: { 'public.t.note': { type: 'text', default: null, not_null: false, collation: 'default', identity: null, generated: null } },
    grant: { 'public.t to reader: SELECT': { grantable: false } },
    'schema grant': { 'public to PUBLIC: CREATE': { grantable: false }, 'public to PUBLIC: USAGE': { grantable: false } },
    view: { 'public.v': { definition: 'SELECT 1;' } },
  });
  it('is empty for identical snapshots', () => {
    expect(diffSchema(base(), base(), { sourceMajor: 11, targetMajor: 17 })).toEqual([]);
  });
  it('reports an added default and a removed grant as errors, the 15+ public CREATE as a warning', () => {
    const t = base();
    t.column!['public.t.note'].default = `'n/a'::text`;
    delete t.grant!['public.t to reader: SELECT'];
    delete t['schema grant']!['public to PUBLIC: CREATE'];
    t.view!['public.v'].definition = ' SELECT 2;';
    const f = diffSchema(base(), t, { sourceMajor: 11, targetMajor: 17 });
    expect(f.find((x) => x.object === 'column public.t.note')).toMatchObject({ severity: 'error', old: { default: null }, new: { default: `'n/a'::text` } });
    expect(f.find((x) => x.object === 'grant public.t to reader: SELECT')).toMatchObject({ severity: 'error' });
    expect(f.find((x) => x.object === 'schema grant public to PUBLIC: CREATE')).toMatchObject({ severity: 'warning' });
    // Across majors a view body may only print differently: a warning to read, not an error.
    expect(f.find((x) => x.object === 'view public.v')).toMatchObject({ severity: 'warning' });
    expect(diffSchema(base(), { ...base(), view: { 'public.v': { definition: ' SELECT 1; ' } } }, { sourceMajor: 11, targetMajor: 17 })).toEqual([]);
  });
  it('folds everything under a missing table into one finding', () => {
    const t = base();
    delete t.table!['public.t'];
    delete t.column!['public.t.note'];
    delete t.grant!['public.t to reader: SELECT'];
    const withIndex = (x: SchemaSnapshot) => ({ ...x, index: { 'public.t_note_idx': { table: 'public.t', keys: '(note)' } } });
    const f = diffSchema(withIndex(base()), t, { sourceMajor: 17, targetMajor: 17 });
    expect(f.map((x) => x.object)).toEqual(['table public.t']);
  });
});

describe('schema drift in words', () => {
  const o = { sourceMajor: 11, targetMajor: 15 };
  it('says what UNLOGGED on the target means, with no catalog codes', () => {
    const s = explainChange('table', 'public.payments', 'persistence', 'p', 'u', o);
    expect(s).toMatchObject({ severity: 'error' });
    expect(s.message).toBe('public.payments is UNLOGGED on the target: logical replication skips it and a crash empties it');
    expect(s.hint).toMatch(/make it LOGGED: ALTER TABLE public.payments SET LOGGED/);
  });
  it('grades triggers by what they do during and after the cutover', () => {
    expect(explainChange('trigger', 'public.t.audit', 'enabled', 'O', 'D', o)).toMatchObject({ severity: 'error', message: expect.stringMatching(/disabled on the target: after the cutover it does not fire/) });
    expect(explainChange('trigger', 'public.t.audit', 'enabled', 'O', 'A', o).message).toMatch(/applied twice/);
    expect(explainChange('trigger', 'public.t.audit', 'enabled', 'O', 'A', o).hint).toBe('ALTER TABLE public.t ENABLE TRIGGER audit on the target');
  });
  it('an enum with the same labels in another order is about sorting', () => {
    expect(explainChange('type', 'public.mood', 'labels', "'a', 'b'", "'b', 'a'", o).message).toMatch(/same labels in another order/);
    expect(explainChange('type', 'public.mood', 'labels', "'a', 'b'", "'a'", o).message).toMatch(/replicating a row with 'b' fails/);
  });
  it('a newer extension version on the newer major is info, an older one a warning', () => {
    expect(explainChange('extension', 'citext', 'version', '1.5', '1.6', o).severity).toBe('info');
    expect(explainChange('extension', 'hstore', 'version', '1.5', '1.4', o).severity).toBe('warning');
    expect(compareVersions('1.10', '1.9')).toBeGreaterThan(0);
  });
  it('splits quoted dotted names', () => {
    expect(splitKey('public."a.b".c')).toEqual(['public', '"a.b"', 'c']);
    expect(splitKey('"x""y".t')).toEqual(['"x""y"', 't']);
  });
});

describe('expressions compared by meaning', () => {
  it('sees a function that resolves to another schema, and only that', () => {
    expect(unqualifyCalls('public.gen_random_uuid()')).toBe('gen_random_uuid()');
    expect(resolutionDifference('public.gen_random_uuid()', 'gen_random_uuid()')).toEqual([{ fn: 'gen_random_uuid', source: 'public', target: 'pg_catalog' }]);
    expect(resolutionDifference("public.f(1) + 1", 'f(2) + 1')).toBeNull();
    expect(resolutionDifference('now()', 'now()')).toBeNull();
  });
  it('groups one resolution across many objects into one info finding that lists them', () => {
    const snap = (expr: string): SchemaSnapshot => ({ column: Object.fromEntries(Array.from({ length: 43 }, (_, i) => [`public.t${i}.id`, { type: 'uuid', default: expr }])) });
    const f = diffSchema(snap('public.gen_random_uuid()'), snap('gen_random_uuid()'), { sourceMajor: 11, targetMajor: 15, extensionFunctions: { source: { 'public.gen_random_uuid': 'pgcrypto' }, target: {} } });
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ severity: 'info', object: 'function gen_random_uuid() resolution' });
    expect(f[0].objects).toHaveLength(43);
    expect(f[0].objects![0]).toBe('column public.t0.id default');
    expect(f[0].message).toMatch(/public\.gen_random_uuid \(from extension pgcrypto\) on the source and to the built-in pg_catalog\.gen_random_uuid on the target, in 43 expression/);
    // An unknown function that moved is a warning: behaviour may differ.
    expect(diffSchema(snap('ext.f()'), snap('f()'), { sourceMajor: 11, targetMajor: 15 })[0].severity).toBe('warning');
  });
  it('absorbs known deparser spellings across majors only', () => {
    expect(normaliseDeparse('(email = (CURRENT_USER)::text)')).toBe(normaliseDeparse('(email = CURRENT_USER)'));
    const p = (using: string): SchemaSnapshot => ({ policy: { 'public.t.p': { using } } });
    expect(diffSchema(p('(email = (CURRENT_USER)::text)'), p('(email = CURRENT_USER)'), { sourceMajor: 11, targetMajor: 15 })).toEqual([]);
    expect(diffSchema(p('(a = 1)'), p('(a = 2)'), { sourceMajor: 11, targetMajor: 15 })[0].severity).toBe('error');
  });
  it('groups the same change across many objects, and keeps a few apart', () => {
    const many = Array.from({ length: 4 }, (_, i) => finding('schema', 'error', `table public.t${i}`, { persistence: 'p' }, { persistence: 'u' }, `public.t${i} is UNLOGGED on the target: x`, `ALTER TABLE public.t${i} SET LOGGED`));
    const g = groupFindings(many);
    expect(g).toHaveLength(1);
    expect(g[0].object).toBe('table public.t0 (+3 more)');
    expect(g[0].objects).toEqual(['table public.t0', 'table public.t1', 'table public.t2', 'table public.t3']);
    expect(g[0].message).toMatch(/^4 tables have the same difference/);
    expect(groupFindings(many.slice(0, 2))).toHaveLength(2);
    // Other categories too: the same collation change on many columns (quoted names included) is one finding.
    const cols = ['public."Order Items".name', 'public.a.b', 'public.c.d'].map((c) => finding('collation', 'error', `column ${c}`, 'libc:C', 'icu:en-US', `column ${c} sorts differently on the target; it is indexed`, `REINDEX the indexes on ${c}`));
    const gc = groupFindings(cols);
    expect(gc).toHaveLength(1);
    expect(gc[0]).toMatchObject({ category: 'collation', object: 'column public."Order Items".name (+2 more)', hint: 'REINDEX the indexes on each of them' });
    expect(gc[0].message).toMatch(/^3 columns have the same difference — column each sorts differently/);
    const tz = ['public.a.x', 'public.b.y', 'public.c.z'].map((c) => finding('timezone', 'error', `default of column ${c}`, 'now()', 'now()', `the default of ${c} depends on TimeZone`, 'x'));
    expect(groupFindings(tz)[0].message).toMatch(/^3 "default of column …" objects have the same difference/);
    // Different messages (another consequence) never group.
    expect(groupFindings([...cols.slice(0, 2), finding('collation', 'error', 'column public.e.f', 'libc:C', 'icu:en-US', 'column public.e.f is not indexed', 'x')])).toHaveLength(3);
  });
  it('sequence behind its column: a warning where rows arrive by replication, an error on a target that does not subscribe', () => {
    const s = { sequence: 'public.t_id_seq', column: 'public.t.id', next: '3', max: '500' };
    expect(sequenceFindings('target', [s], true)[0]).toMatchObject({ severity: 'warning', object: 'sequence public.t_id_seq', message: expect.stringMatching(/does not move sequences/) });
    expect(sequenceFindings('target', [s], false)[0]).toMatchObject({ severity: 'error', message: expect.stringMatching(/^on the target, sequence public.t_id_seq would hand out 3 next but public.t.id already holds 500: after the cutover/) });
    expect(sequenceFindings('source', [s], false)[0]).toMatchObject({ severity: 'warning', hint: "SELECT setval('public.t_id_seq', (SELECT max(id) FROM public.t)) on the source" });
    // Under reverse replication the source subscribes: expected, a warning.
    expect(sequenceFindings('source', [s], true)[0].severity).toBe('warning');
    // Many sequences, one cause: one finding listing them.
    const many = ['a', 'b', 'c', 'd'].map((x) => ({ sequence: `public.${x}_id_seq`, column: `public.${x}.id`, next: '1', max: '9' }));
    const g = sequenceFindings('target', many, true);
    expect(g).toHaveLength(1);
    expect(g[0]).toMatchObject({ severity: 'warning', object: 'sequence public.a_id_seq (+3 more)', objects: many.map((m) => `sequence ${m.sequence}`) });
    expect(g[0].message).toMatch(/^on the target, 4 sequences would hand out values their columns already hold \(public.a_id_seq next 1, public.a.id max 9; .*\): this side receives rows by logical replication/);
    expect(g[0].hint).toMatch(/setval each of them to its column's max on the target/);
  });
});

describe('timezone', () => {
  const s = { TimeZone: 'UTC', DateStyle: 'ISO, MDY', IntervalStyle: 'postgres', timezone_abbreviations: 'Default', extra_float_digits: '0', standard_conforming_strings: 'on' };
  it('names the setting and the zone-dependent objects', () => {
    const objs = { timestampColumns: ['public.t.at'], expressions: [{ object: 'default of column public.t.at', expr: '(now())::timestamp without time zone' }] };
    const f = diffTimezone(s, { ...s, TimeZone: 'America/New_York', extra_float_digits: '1' }, objs, 11, 17);
    expect(f.find((x) => x.object === 'setting TimeZone')?.severity).toBe('error');
    expect(f.find((x) => x.object === 'setting extra_float_digits')?.severity).toBe('info');
    expect(f.find((x) => x.object === 'default of column public.t.at')?.severity).toBe('error');
    expect(f.find((x) => x.object === 'column public.t.at')?.severity).toBe('warning');
    expect(diffTimezone(s, { ...s, TimeZone: 'Etc/UTC' }, objs, 17, 17).every((x) => x.severity === 'info')).toBe(true);
  });
  it('recognises zone-dependent expressions', () => {
    for (const e of ['(now())::timestamp without time zone', 'LOCALTIMESTAMP', 'CURRENT_DATE', "date_trunc('day'::text, now())", '(created_at)::date']) expect(dependsOnZone(e), e).toBe(true);
    for (const e of ['now()', "'x'::text", 'nextval(\'s\'::regclass)']) expect(dependsOnZone(e), e).toBe(false);
  });
  it('compares tz fingerprints', () => {
    const a = { UTC: '0,0', 'Europe/Berlin': '3600,7200', 'America/Foo': '1,1' };
    expect(diffTzFingerprints(a, { ...a }, ['UTC'])).toEqual([]);
    expect(fingerprintHash(a)).toBe(fingerprintHash({ 'America/Foo': '1,1', 'Europe/Berlin': '3600,7200', UTC: '0,0' }));
    const f = diffTzFingerprints(a, { ...a, 'Europe/Berlin': '3600,3600' }, ['Europe/Berlin']);
    expect(f[0]).toMatchObject({ severity: 'error', object: 'time zone Europe/Berlin' });
  });
});

describe('settings', () => {
  it('reports a database-level setting the target lacks', () => {
    const f = diffScopedSettings({ 'database app': { search_path: 'app, public' } }, {}, 'app', 'app2');
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ category: 'settings', severity: 'error', object: 'database app2 setting search_path', old: 'app, public', new: null });
  });
  it('grades server settings', () => {
    expect(diffServerSettings({ search_path: 'a', jit: 'off' }, { search_path: 'b', jit: 'on' }).map((x) => x.severity)).toEqual(['error', 'info']);
  });
});

describe('data', () => {
  const col = (name: string, o: Partial<{ notNull: boolean; default: string | null }> = {}) => ({ name, type: 'text', notNull: false, default: null, generated: false, ...o });
  it('flags the NULL→default trap', () => {
    const src = { key: 'public.t', schema: 'public', name: 't', columns: [col('note')] };
    const tgt = { ...src, columns: [col('note', { default: "'n/a'::text" })] };
    const f = diffNulls(src, tgt, { rows: 3, nulls: { note: 2 }, checksum: null }, { rows: 0, nulls: { note: 0 }, checksum: null });
    expect(f[0]).toMatchObject({ category: 'data', severity: 'error', object: 'column public.t.note' });
    expect(diffNulls(src, tgt, { rows: 3, nulls: { note: 0 }, checksum: null }, null)).toEqual([]);
    const nn = { ...src, columns: [col('note', { notNull: true })] };
    expect(diffNulls(src, nn, { rows: 3, nulls: { note: 1 }, checksum: null }, null)[0].message).toMatch(/NOT NULL/);
  });
  it('compares counts and checksums', () => {
    expect(diffTableScan('t', { rows: 1, nulls: {}, checksum: 'a' }, { rows: 1, nulls: {}, checksum: 'a' })).toEqual([]);
    expect(diffTableScan('t', { rows: 1, nulls: {}, checksum: 'a' }, { rows: 2, nulls: {}, checksum: 'a' })[0].message).toMatch(/1 rows on the source and 2/);
    expect(diffTableScan('t', { rows: 1, nulls: {}, checksum: 'a' }, { rows: 1, nulls: {}, checksum: 'b' })[0].message).toMatch(/different contents/);
    expect(checksumExpr({ name: 'F', type: 'double precision', notNull: false, default: null, generated: false })).toBe('float8send("F")');
  });
});

describe('encoding and incompatibility', () => {
  it('grades encoding pairs', () => {
    expect(diffEncodings('UTF8', 'UTF8', 'app')).toBeNull();
    expect(diffEncodings('UTF8', 'LATIN1', 'app')?.severity).toBe('error');
    expect(diffEncodings('LATIN1', 'UTF8', 'app')?.severity).toBe('warning');
    expect(diffEncodings('SQL_ASCII', 'UTF8', 'app')?.severity).toBe('error');
    expect(unrepresentablePattern('UTF8', 'LATIN1')).toBeTruthy();
  });
  it('selects the release-note checks between two majors', () => {
    const ids = (a: number, b: number) => applicableChecks(a, b).map((c) => c.id);
    expect(ids(11, 17)).toContain('with-oids');
    expect(ids(11, 17)).toContain('maintenance-search-path');
    expect(ids(11, 17)).not.toContain('data-checksums');
    expect(ids(15, 16)).toEqual(['lc-collate', 'removed-settings', 'createrole']);
    expect(ids(17, 17)).toEqual([]);
    expect(ids(17, 18)).toEqual(['unlogged-partitioned', 'md5-deprecated', 'data-checksums']);
    expect(stripStrings(`select 'pg_start_backup' -- pg_stop_backup\n`)).not.toMatch(/backup/);
  });
});

describe('diffCollation', () => {
  const snap = (descriptor: string, version: string | null = null, actual: string | null = null): CollationSnapshot => ({
    database: { name: 'app', provider: descriptor.split(':')[0], collate: 'x', ctype: 'x', locale: descriptor.split(':')[1], descriptor, version, actualVersion: actual },
    columns: { 'public.t.name': { collname: 'default', descriptor, indexed: true } },
    collations: { default: { descriptor, collname: 'default', version, actualVersion: actual } },
  });
  const fp = (order: string[]) => ({ corpusSize: order.length, hashes: { default: orderHash(order) }, orders: { default: order } });
  it('is quiet for identical sides', () => {
    expect(diffCollation(snap('libc:C.UTF-8'), fp(['A', 'a']), snap('libc:C.UTF-8'), fp(['A', 'a']))).toEqual([]);
  });
  it('errors on a different order, naming the database and the columns', () => {
    const f = diffCollation(snap('libc:C.UTF-8'), fp(['A', 'a']), snap('icu:en-US'), fp(['a', 'A']));
    expect(f.map((x) => [x.severity, x.object])).toEqual([['error', 'database app default collation'], ['error', 'column public.t.name']]);
    expect(f[1].message).toMatch(/indexed/);
  });
  it('warns when only the names differ, and when a recorded version is stale', () => {
    const f = diffCollation(snap('libc:C.UTF-8'), fp(['A', 'a']), snap('libc:C', '1', '2'), fp(['A', 'a']));
    expect(f.map((x) => x.severity)).toEqual(['warning', 'warning', 'warning']);
    expect(f[2].message).toMatch(/recorded with version 1 but the target's library now reports 2/);
  });
});

describe('function bodies', () => {
  it('show the first differing line, not the whole body', async () => {
    const { firstDifferingLine } = await import('../../migration/drift/schema.ts');
    expect(firstDifferingLine('begin\n  x := 1;\nend', 'begin\n  x := 2;\nend')).toEqual(['line 2: x := 1;', 'line 2: x := 2;']);
    const snap = (body: string): SchemaSnapshot => ({ function: { 'public.f()': { body } } });
    const f = diffSchema(snap('select 1'), snap('select 2'), { sourceMajor: 17, targetMajor: 17 });
    expect(f[0]).toMatchObject({ severity: 'error', old: { body: 'line 1: select 1' }, new: { body: 'line 1: select 2' } });
    expect(f[0].message).toMatch(/public\.f\(\) runs other code on the two sides \(line 1: select 1 on the source, line 1: select 2 on the target\)/);
  });
});

describe('re-printing expressions on the target', () => {
  it('plans a temporary copy of the table for each differing default, CHECK, index key/predicate and policy', async () => {
    const { reprintItems } = await import('../../migration/drift/schema.ts');
    const a: SchemaSnapshot = {
      column: { 'app."T".c': { default: "'x'::character varying" } },
      constraint: { 'app."T".ck': { definition: 'CHECK ((c > 0))' }, 'app."T".fk': { definition: 'FOREIGN KEY (c) REFERENCES app.u(id)' } },
      index: { 'app.i': { table: 'app."T"', method: 'btree', keys: '(lower(c))', predicate: '(c IS NOT NULL)' } },
      policy: { 'app."T".p': { using: '(c = (CURRENT_USER)::text)', with_check: null } },
    };
    const b: SchemaSnapshot = {
      column: { 'app."T".c': { default: "'x'::varchar" } },
      constraint: { 'app."T".ck': { definition: 'CHECK (c > 0)' }, 'app."T".fk': { definition: 'FOREIGN KEY (c) REFERENCES app.v(id)' } },
      index: { 'app.i': { table: 'app."T"', method: 'btree', keys: '(lower((c)::text))', predicate: '(c IS NOT NULL)' } },
      policy: { 'app."T".p': { using: '(c = CURRENT_USER)', with_check: null } },
    };
    const items = reprintItems(a, b);
    expect(items.map((i) => `${i.kind} ${i.key} ${i.prop} on ${i.table}`)).toEqual([
      'column app."T".c default on app."T"',
      'constraint app."T".ck definition on app."T"',
      'index app.i keys on app."T"',
      'policy app."T".p using on app."T"',
    ]);
    expect(items[0].apply('pg_temp.t')).toEqual([`alter table pg_temp.t alter column c set default 'x'::character varying`]);
    expect(items[2].apply('pg_temp.t')).toEqual(['create index cutover_drift_i on pg_temp.t using btree (lower(c)) where (c IS NOT NULL)']);
  });
});
