import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadScenario, parseScenario, ScenarioError } from '../../scenarios/load.ts';
import { durationToMs, scenarioJsonSchema, JSON_SCHEMA_FILE } from '../../scenarios/schema.ts';
import { CutoverError } from '../../migration/errors.ts';

const SCENARIOS = join(import.meta.dirname, '../../scenarios');

const base = () => ({
  name: 't',
  clusters: { old: { major: 13 }, new: { major: 17 } },
});

/** Every problem of a scenario object as "path: message". */
function problemsOf(obj: unknown): string[] {
  return problemsOfText(stringify(obj));
}
function problemsOfText(text: string): string[] {
  try {
    parseScenario(text, 'x.yaml');
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}
function hintsOf(obj: unknown): Record<string, string | undefined> {
  try {
    parseScenario(stringify(obj), 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return Object.fromEntries(e.problems.map((p) => [p.path, p.hint]));
    throw e;
  }
  return {};
}

describe('shipped scenarios', () => {
  const files = readdirSync(SCENARIOS).filter((f) => f.endsWith('.yaml'));
  it('includes the required ones', () => {
    for (const f of ['quickstart', 'govuk-notify', 'knock-incremental', 'drift-timezone', 'drift-collation', 'drift-encoding']) expect(files).toContain(`${f}.yaml`);
  });
  it.each(files)('%s is valid', async (f) => {
    const s = await loadScenario(join(SCENARIOS, f));
    expect(s.name).toBe(f.replace(/\.yaml$/, ''));
  });
  it('quickstart normalises durations to ms and fills defaults', async () => {
    const s = await loadScenario(join(SCENARIOS, 'quickstart.yaml'));
    expect(s.load).toMatchObject({ durationMs: 20_000, switchAtMs: 8000, rate: 100, retry: 'none' });
    // the script is resolved once, to an absolute path (the scenario's folder first, then the project root)
    expect(s.load.script).toBe(join(SCENARIOS, '..', 'load', 'writes.js'));
    expect(s.app).toBe('sample');
    expect(s.ack).toBeNull();
    expect(s.migration).toMatchObject({ dnsTtlMs: 1000, switch: 'dns', fence: 'terminate', lag: { maxBytes: 1048576, maxSeconds: 5, timeoutMs: 60_000 } });
    expect(s.budgets).toMatchObject({ maxErrorWindowMs: 5000, maxStallMs: 5000, allowedDrift: 'warning' });
    expect(s.clusters.old).toEqual({ major: 13, locale: 'C.UTF-8', encoding: 'UTF8', localeProvider: 'libc', icuLocale: null, timezone: 'UTC', gucs: {}, image: null, url: null, dataChecksums: null });
    expect(s.runs).toBe(3);
    expect(s.faults).toEqual([]);
  });
});

describe('defaults and durations', () => {
  it('fills every default from a minimal file', () => {
    const s = parseScenario(stringify(base()));
    expect(s).toMatchObject({ runs: 1, seed: 42, description: '', dataset: { preset: 'payments', scale: 1000, ddl: null, generators: {} } });
    expect(s.load.switchAtMs).toBe(10_000); // half of the default 20 s
    expect(s.migration).toMatchObject({ publication: 'all', tables: null, sequenceBuffer: 1000, reverseReplication: false, dnsTtlMs: 1000 });
  });
  it('a k6 script that exists neither beside the scenario nor in the project is named with both places', () => {
    expect(problemsOf({ ...base(), load: { script: 'nope.js' } })[0]).toMatch(/^load\.script: k6 script nope\.js not found/);
  });
  it('a missing script is reported together with the other problems of the file, not after them', () => {
    const problems = problemsOf({ ...base(), app: { command: './x' }, load: { script: 'nope.js' } });
    expect(problems.some((p) => p.startsWith('ack:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('load.script: k6 script nope.js not found'))).toBe(true);
  });
  it('image only with the docker provider', () => {
    expect(problemsOf({ ...base(), clusters: { old: { major: 13, image: 'lab' }, new: { major: 17 } } })).toContain('clusters.old.image: image is only used with provider docker (provider is embedded)');
  });
  it('load.during: cutover by default, sync on request, nothing else', () => {
    expect(parseScenario(stringify(base())).load.during).toBe('cutover');
    expect(parseScenario(stringify({ ...base(), load: { during: 'sync' } })).load.during).toBe('sync');
    expect(problemsOf({ ...base(), load: { during: 'copy' } })).toEqual(['load.during: "copy" is not one of the allowed values']);
    expect(hintsOf({ ...base(), load: { during: 'copy' } })['load.during']).toBe('use one of: cutover, sync');
  });

  it('parses duration forms', () => {
    expect(durationToMs('500ms')).toBe(500);
    expect(durationToMs('20s')).toBe(20_000);
    expect(durationToMs('1.5s')).toBe(1500);
    expect(durationToMs('2m')).toBe(120_000);
    expect(durationToMs('1h')).toBe(3_600_000);
    expect(durationToMs(250)).toBe(250);
    expect(durationToMs('20 seconds')).toBeUndefined();
    expect(durationToMs(-1)).toBeUndefined();
  });
  it('normalises faults', () => {
    const s = parseScenario(stringify({ ...base(), faults: [{ kind: 'latency', hop: 'app-old', at: '5s', duration: '2s', attributes: { latency: 200, jitter: 50 } }, { kind: 'kill', target: 'old', phase: 'switch' }] }));
    expect(s.faults[0]).toEqual({ kind: 'latency', hop: 'app-old', target: null, atMs: 5000, phase: null, durationMs: 2000, attributes: { latency: 200, jitter: 50 } });
    expect(s.faults[1]).toMatchObject({ kind: 'kill', target: 'old', atMs: null, phase: 'switch', durationMs: 0 });
  });
  it('accepts utf-8 spelled as UTF-8 and resolves a relative ddl against the file', () => {
    const s = parseScenario(stringify({ ...base(), clusters: { old: { major: 13, encoding: 'utf-8' }, new: { major: 17 } }, dataset: { preset: 'custom', ddl: 'schema.sql' } }), '/some/dir/s.yaml');
    expect(s.clusters.old.encoding).toBe('UTF8');
    expect(s.dataset.ddl).toBe('/some/dir/schema.sql');
  });
});

describe('YAML errors', () => {
  it('reports a syntax error with line and column', () => {
    try {
      parseScenario('name: x\n  bad: [\n', 'broken.yaml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScenarioError);
      const err = e as ScenarioError;
      expect(err.code).toBe('CONFIG');
      expect(err.exitCode).toBe(2);
      expect(err.problems[0]).toMatchObject({ message: 'invalid YAML: Nested mappings are not allowed in compact mappings', line: 1, col: 7 });
      expect(err.message).toContain('scenario broken.yaml has');
      expect(err.message).toContain('(line 1, col 7): invalid YAML');
    }
  });
  it('one syntax mistake is one problem, not one per line the parser could not place (issue 20)', () => {
    const err = (() => {
      try {
        parseScenario('name: x\n  bad: : y\n', 'broken.yaml');
      } catch (e) {
        return e as ScenarioError;
      }
    })()!;
    expect(err.problems).toHaveLength(1);
    expect(err.message.match(/invalid YAML/g)).toHaveLength(1);
    expect(err.problems[0].hint).toMatch(/2 more error\(s\) after it/);
  });
  it('reports duplicate keys', () => {
    expect(problemsOfText('name: a\nname: b\n')).toEqual([': invalid YAML: Map keys must be unique']);
  });
  it('rejects a file that is not a mapping', () => {
    expect(problemsOfText('- 1\n- 2\n')).toEqual([': the file must be a YAML mapping (got a list)']);
    expect(problemsOfText('')).toEqual([': the file must be a YAML mapping (got null)']);
  });
});

describe('schema errors', () => {
  it('requires name and clusters', () => {
    expect(problemsOf({})).toEqual(['name: is required', 'clusters: is required']);
    expect(hintsOf({}).clusters).toBe('add clusters: { old: { major: 13 }, new: { major: 17 } }');
  });
  it('rejects unknown keys, with a suggestion and the key position', () => {
    expect(problemsOf({ ...base(), rnus: 3 })).toEqual(['rnus: unknown key']);
    expect(hintsOf({ ...base(), rnus: 3 }).rnus).toMatch(/^did you mean "runs"\?/);
    expect(problemsOf({ ...base(), clusters: { old: { major: 13, majr: 1 }, new: { major: 17 } } })).toEqual(['clusters.old.majr: unknown key']);
    try {
      parseScenario('name: t\nclusters:\n  old: { major: 13 }\n  new: { major: 17, colour: red }\n');
    } catch (e) {
      expect((e as ScenarioError).problems[0]).toMatchObject({ path: 'clusters.new.colour', line: 4 });
    }
  });
  it('rejects majors outside 11–18 and non-numbers', () => {
    expect(problemsOf({ ...base(), clusters: { old: { major: 10 }, new: { major: 19 } } })).toEqual(['clusters.old.major: must be between 11 and 18 (got 10)', 'clusters.new.major: must be between 11 and 18 (got 19)']);
    expect(hintsOf({ ...base(), clusters: { old: { major: 10 }, new: { major: 17 } } })['clusters.old.major']).toBe('supported PostgreSQL majors are 11 to 18');
    expect(problemsOf({ ...base(), clusters: { old: { major: 'fifteen' }, new: { major: 17.5 } } })).toEqual([
      'clusters.old.major: must be a PostgreSQL major version, an integer from 11 to 18 (got string "fifteen")',
      'clusters.new.major: must be a PostgreSQL major version, an integer from 11 to 18 (got number 17.5)',
    ]);
    expect(problemsOf({ ...base(), clusters: { old: {}, new: { major: 17 } } })).toEqual(['clusters.old.major: is required']);
  });
  it('rejects wrong types', () => {
    expect(problemsOf({ ...base(), runs: 'three' })).toEqual(['runs: must be a number (got string "three")']);
    expect(problemsOf({ ...base(), runs: 0 })).toEqual(['runs: must be at least 1 (got 0)']);
    expect(problemsOf({ ...base(), load: 5 })).toEqual(['load: must be a mapping (got number 5)']);
    expect(problemsOf({ ...base(), faults: { kind: 'latency' } })).toEqual(['faults: must be a list (got a mapping)']);
    expect(problemsOf({ ...base(), clusters: { old: { major: 13, gucs: { work_mem: ['x'] } }, new: { major: 17 } } })).toEqual([
      'clusters.old.gucs.work_mem: a setting value must be a string, number or boolean (got a list)',
    ]);
  });
  it('rejects values outside an enum, listing the allowed ones', () => {
    expect(problemsOf({ ...base(), dataset: { preset: 'paymentz' } })).toEqual(['dataset.preset: "paymentz" is not one of the allowed values']);
    expect(hintsOf({ ...base(), dataset: { preset: 'paymentz' } })['dataset.preset']).toBe('use one of: payments, notifications, edge, custom, none');
    expect(problemsOf({ ...base(), clusters: { old: { major: 13, encoding: 'KLINGON' }, new: { major: 17 } } })).toEqual(['clusters.old.encoding: "KLINGON" is not one of the allowed values']);
    expect(problemsOf({ ...base(), budgets: { allowedDrift: 'some' } })).toEqual(['budgets.allowedDrift: "some" is not one of the allowed values']);
  });
  it('rejects a scale of zero', () => {
    expect(problemsOf({ ...base(), dataset: { scale: 0 } })).toEqual(['dataset.scale: must be greater than 0 (got 0)']);
    expect(hintsOf({ ...base(), dataset: { scale: 0 } })['dataset.scale']).toBe('scale is roughly the total number of rows to seed, e.g. 5000');
  });
  it('rejects malformed durations', () => {
    expect(problemsOf({ ...base(), load: { duration: '20 seconds' } })).toEqual(['load.duration: must be a duration such as "500ms", "20s", "2m", "1h" or a number of milliseconds (got "20 seconds")']);
    expect(problemsOf({ ...base(), budgets: { maxStall: -5 } })).toEqual(['budgets.maxStall: must not be negative (got -5)']);
    expect(problemsOf({ ...base(), load: { duration: true } })).toEqual(['load.duration: must be a duration such as "500ms", "20s", "2m", "1h" or a number of milliseconds (got boolean true)']);
    // a bare number is milliseconds: a load shorter than a second was never meant
    expect(problemsOf({ ...base(), load: { duration: 30 } })).toEqual(['load.duration: the load would last 30 ms: a bare number is milliseconds, and no cutover fits in under a second']);
    expect(hintsOf({ ...base(), load: { duration: 30 } })['load.duration']).toBe('write the unit: duration: 30s (or 2m)');
    expect(problemsOf({ ...base(), load: { duration: 30_000 } })).toEqual([]);
  });
  it('rejects a bad name and readRatio', () => {
    expect(problemsOf({ ...base(), name: 'my scenario' })).toEqual(['name: must be letters, digits, ".", "_" or "-" (it names folders and reports) (got "my scenario")']);
    expect(problemsOf({ ...base(), load: { readRatio: 1.5 } })).toEqual(['load.readRatio: must be between 0 and 1 (got 1.5)']);
  });
});

describe('cross-field rules', () => {
  const cl = (old: object, nw: object, provider?: string) => ({ ...base(), clusters: { ...(provider ? { provider } : {}), old: { major: 13, ...old }, new: { major: 17, ...nw } } });
  it('icu needs 15+, builtin needs 17+, icuLocale needs icu or builtin', () => {
    expect(problemsOf(cl({ localeProvider: 'icu' }, { localeProvider: 'builtin', major: 16 }))).toEqual([
      'clusters.old.localeProvider: icu as the default locale provider needs PostgreSQL 15 or newer (major is 13)',
      'clusters.new.localeProvider: the builtin locale provider needs PostgreSQL 17 or newer (major is 16)',
    ]);
    expect(problemsOf(cl({ icuLocale: 'de-DE' }, {}))).toEqual(['clusters.old.icuLocale: icuLocale is only used with localeProvider icu or builtin']);
    expect(problemsOf(cl({}, { localeProvider: 'builtin', icuLocale: 'de-DE' }))).toEqual(['clusters.new.icuLocale: "de-DE" is not a builtin locale']);
    expect(problemsOf(cl({}, { localeProvider: 'icu', encoding: 'SQL_ASCII', locale: 'C' }))).toEqual(['clusters.new.encoding: ICU collations cannot be used with encoding SQL_ASCII']);
  });
  it('encoding must match the locale', () => {
    expect(problemsOf(cl({ encoding: 'LATIN1' }, {}))).toEqual(['clusters.old.encoding: encoding LATIN1 does not match locale C.UTF-8 (a UTF-8 locale)']);
    expect(problemsOf(cl({}, { locale: 'en_US.ISO-8859-1' }))).toEqual(['clusters.new.encoding: encoding UTF8 does not match locale en_US.ISO-8859-1 (a single-byte locale)']);
    expect(problemsOf(cl({ encoding: 'LATIN1', locale: 'C' }, {}))).toEqual([]);
    expect(problemsOf(cl({ encoding: 'SQL_ASCII' }, {}))).toEqual([]);
  });
  it('external needs a postgres:// url per cluster; others take none', () => {
    expect(problemsOf(cl({}, { url: 'mysql://x' }, 'external'))).toEqual(['clusters.old.url: provider external needs the URL of each cluster', 'clusters.new.url: must be a postgres:// connection URL']);
    expect(problemsOf(cl({ url: 'postgres://a@b/c' }, {}))).toEqual(['clusters.old.url: url is only used with provider external (provider is embedded)']);
    expect(problemsOf(cl({ url: 'postgres://a@b/c' }, { url: 'postgresql://a@d/c' }, 'external'))).toEqual([]);
  });
  it('the new major is not older than the old one', () => {
    expect(problemsOf(cl({ major: 16 }, { major: 14 }))).toEqual(['clusters.new.major: the new cluster (14) is older than the old one (16)']);
  });
  it('dataset: custom needs ddl or fromUrl; ddl only with custom; generators are checked', () => {
    expect(problemsOf({ ...base(), dataset: { preset: 'custom' } })).toEqual(['dataset.ddl: preset custom needs a DDL file or an existing database']);
    expect(problemsOf({ ...base(), dataset: { ddl: 'x.sql' } })).toEqual(['dataset.ddl: ddl is only used with preset custom (preset is payments)']);
    expect(problemsOf({ ...base(), dataset: { fromUrl: 'postgres://x' } })).toEqual(['dataset.fromUrl: fromUrl is only used with preset custom (preset is payments)']);
    expect(problemsOf({ ...base(), dataset: { preset: 'custom', ddl: 'a.sql', fromUrl: 'postgres://x' } })).toEqual(['dataset.fromUrl: give either ddl or fromUrl, not both']);
    expect(problemsOf({ ...base(), dataset: { generators: { 'accounts.email': 'faker.internet.email', email: 'faker.nope.nope', 'a.b': 'Math.random' } } })).toEqual([
      'dataset.generators.email: "email" does not name a column',
      'dataset.generators.email: "faker.nope.nope" is not a faker method',
      'dataset.generators.a.b: "Math.random" is not a faker method',
    ]);
  });
  it('the switch happens before the load ends', () => {
    expect(problemsOf({ ...base(), load: { duration: '10s', switchAt: '10s' } })).toEqual(['load.switchAt: the switch (10000 ms) would start after the load ends (10000 ms)']);
  });
  it('faults: time or phase, hop or target, known attributes, inside the load', () => {
    const f = (...faults: object[]) => problemsOf({ ...base(), faults });
    expect(f({ kind: 'latency', hop: 'app-old' })).toEqual(['faults.0.at: a fault needs a time (at) or a cutover phase (phase)']);
    expect(f({ kind: 'latency', hop: 'app-old', at: '1s', phase: 'switch' })).toEqual(['faults.0.phase: give either at or phase, not both']);
    expect(f({ kind: 'kill', hop: 'app-old', at: '1s' })).toEqual(['faults.0.target: a kill fault needs a target', 'faults.0.hop: a kill fault has a target, not a hop']);
    expect(f({ kind: 'reset_peer', target: 'old', at: '1s' })).toEqual(['faults.0.hop: a reset_peer fault needs a hop', 'faults.0.target: target is only for kinds kill and pause']);
    expect(f({ kind: 'latency', hop: 'replication', at: '1s', attributes: { latncy: 5 } })).toEqual(['faults.0.attributes.latncy: unknown attribute for a latency fault']);
    expect(f({ kind: 'partition', hop: 'app-new', at: '30s' })).toEqual(['faults.0.at: the fault starts at 30000 ms, after the load ends (20000 ms)']);
    expect(f({ kind: 'flood', hop: 'app-new', at: '1s' })).toEqual(['faults.0.kind: "flood" is not one of the allowed values']);
    expect(f({ kind: 'latency', hop: 'app-old', at: '1s' }, { kind: 'bandwidth', hop: 'nowhere', at: '1s' })).toEqual(['faults.1.hop: "nowhere" is not one of the allowed values']);
  });
  it('migration: command switch needs its command; pause fence needs pgbouncer; incremental with no tables', () => {
    expect(problemsOf({ ...base(), migration: { switch: 'command' } })).toEqual(['migration.switchCommand: switch: command needs the command to run']);
    expect(problemsOf({ ...base(), migration: { switchCommand: 'x.sh' } })).toEqual(['migration.switchCommand: switchCommand is only used with switch: command (switch is dns)']);
    expect(problemsOf({ ...base(), migration: { fence: 'pause' } })).toEqual(['migration.fence: fence: pause holds writes in the pooler and needs switch: pgbouncer']);
    expect(problemsOf({ ...base(), migration: { publication: 'incremental', tables: [] } })).toEqual(['migration.tables: an incremental publication needs at least one table']);
  });
});

describe('all problems at once', () => {
  it('lists every problem with its path in one CONFIG error (exit 2)', () => {
    const text = ['name: bad name', 'runs: 0', 'clusters:', '  old: { major: 19 }', '  new: { majr: 12 }', 'dataset: { preset: custom, scale: 0 }', 'migration: { fence: pause }', ''].join('\n');
    try {
      parseScenario(text, 'bad.yaml');
      expect.unreachable();
    } catch (e) {
      const err = e as ScenarioError;
      expect(err).toBeInstanceOf(CutoverError);
      expect(err.code).toBe('CONFIG');
      expect(err.exitCode).toBe(2);
      expect(err.problems.map((p) => p.path)).toEqual(['name', 'runs', 'clusters.old.major', 'clusters.new.major', 'clusters.new.majr', 'dataset.scale', 'migration.fence']);
      expect(err.message.split('\n')[0]).toBe('scenario bad.yaml has 7 problems:');
      expect(err.message).toContain('  - clusters.old.major (line 4, col 17): must be between 11 and 18 (got 19)\n      hint: supported PostgreSQL majors are 11 to 18');
      expect(err.hint).toBe('fix the problems above, then re-check with: cutover scenario check bad.yaml');
      expect(JSON.parse(JSON.stringify(err)).problems).toHaveLength(7);
    }
  });
  it('a missing file is a CONFIG error naming the path', async () => {
    await expect(loadScenario('/nonexistent/s.yaml')).rejects.toThrow('cannot read scenario /nonexistent/s.yaml: no such file');
  });
});

describe('JSON Schema', () => {
  it('scenario.schema.json is up to date (regenerate: npx tsx scenarios/write-schema.ts)', () => {
    const onDisk = JSON.parse(readFileSync(JSON_SCHEMA_FILE, 'utf8'));
    expect(onDisk).toEqual(scenarioJsonSchema());
  });
  it('describes the file as written: durations as text, unknown keys refused', () => {
    const js = scenarioJsonSchema() as any;
    expect(js.additionalProperties).toBe(false);
    expect(js.required).toEqual(['name', 'clusters']);
    expect(js.properties.load.properties.duration.default).toBe('20s');
    expect(js.properties.clusters.properties.old.properties.major).toMatchObject({ type: 'integer', minimum: 11, maximum: 18 });
  });
});

describe('migration.rowFilters and migration.skipCopy', () => {
  it('row filters need a 15+ old cluster, and are carried through normalised', () => {
    expect(problemsOf({ ...base(), migration: { rowFilters: { orders: "region = 'eu'" } } })).toEqual(['migration.rowFilters: row filters need a PostgreSQL 15+ publisher (clusters.old.major is 13)']);
    const s = parseScenario(stringify({ name: 't', clusters: { old: { major: 16 }, new: { major: 18 } }, migration: { rowFilters: { orders: "region = 'eu'" }, skipCopy: ['events'] } }), 't.yaml');
    expect(s.migration.rowFilters).toEqual({ orders: "region = 'eu'" });
    expect(s.migration.skipCopy).toEqual(['events']);
    expect(problemsOf({ ...base(), migration: { rowFilters: { orders: '' } } })[0]).toMatch(/^migration\.rowFilters\.orders: must be an SQL condition/);
  });
});
