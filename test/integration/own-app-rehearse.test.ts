/**
 * A whole rehearsal of a user's own application (the Python order service), its own k6 script and
 * its own table: the shipped scenario scenarios/own-app-python.yaml, through the library entry.
 */
import { describe, it, expect } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';

import { valueOf } from '../../reports/model.ts';

const REPO = join(import.meta.dirname, '..', '..');
const why = process.getuid?.() !== 0 ? 'needs root (lab DNS on port 53, private mount namespace)' : !existsSync('/usr/lib/python3/dist-packages/psycopg2') ? 'python3-psycopg2 is not installed (npm run setup installs it)' : '';
if (why) console.warn(`[skip] own-app rehearsal: ${why}`);

describe.skipIf(!!why)('rehearsing your own app (Python + psycopg2, DNS switch)', () => {
  it('reports lost/duplicate/split-brain figures for the app’s own table from its ack.query', async () => {
    const out = join(REPO, 'out', 'test-own-app');
    const r = await rehearse(join(REPO, 'scenarios', 'own-app-python.yaml'), { runs: 1, outDir: out, formats: ['json', 'md'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error ?? '').toBe('');
    // measured (numbers, not "not measured"), from the orders table
    expect(valueOf(run.lostWrites)).toBe(0);
    expect(valueOf(run.duplicateWrites)).toBe(0);
    expect(valueOf(run.splitBrainWrites)).toBe(0);
    expect(valueOf(run.requests)?.ok).toBeGreaterThan(100);
    // the app's own output and the resolv.conf it was given are kept with the run
    expect(readFileSync(join(out, 'run-1', 'app-resolv.conf'), 'utf8')).toMatch(/^nameserver 127\.0\.0\.\d+$/m);
    expect(existsSync(join(out, 'run-1', 'app.log'))).toBe(true);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/own-app-python/);
  }, 300_000);

  it('scenario check: your own app without ack.query or its own script is refused with the fix', async () => {
    const { parseScenario } = await import('../../scenarios/load.ts');
    const text = `name: x\nclusters: { old: { major: 13 }, new: { major: 17 } }\napp: { command: ./run.sh }\n`;
    let err: any;
    try {
      parseScenario(text, '<scenario>');
    } catch (e) {
      err = e;
    }
    const paths = (err?.problems ?? []).map((p: any) => p.path);
    expect(paths).toContain('ack');
    expect(paths).toContain('load.script');
  });
});

// Bad input at rehearsal level. The proxy switch needs no name resolution, so no root either.
const whyBad = !existsSync('/usr/lib/python3/dist-packages/psycopg2') ? 'python3-psycopg2 is not installed (npm run setup installs it)' : '';
if (whyBad) console.warn(`[skip] own-app bad-input rehearsals: ${whyBad}`);

describe.skipIf(!!whyBad)('rehearsing your own app: bad input (Python + psycopg2, proxy switch)', () => {
  const fixture = (f: string) => join(REPO, 'test', 'fixtures', 'scenarios', f);
  const labDirs = async () => {
    const { paths } = await import('../../lab/paths.ts');
    const { readdirSync } = await import('node:fs');
    return existsSync(paths.labs()) ? readdirSync(paths.labs()).filter((d) => d.includes(`-${process.pid}-`)) : [];
  };

  it('an app that exits during the run: reported as such with its last output lines, NO-GO, nothing left running', async () => {
    const out = join(REPO, 'out', 'test-own-app-exits');
    const r = await rehearse(fixture('own-app-exits.yaml'), { runs: 1, outDir: out, formats: ['json', 'md'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error).toMatch(/^the app exited during the load \(signal SIGKILL\); its last output lines: .*order service: fatal: simulated crash/);
    expect(run.pass).toBe(false);
    expect(r.pass).toBe(false);
    expect(r.report.verdict.reasons.join('\n')).toMatch(/run 1 the app exited during the load/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/the app exited during the load/);
    expect(run.cleanup?.remaining).toEqual([]);
    expect(await labDirs()).toEqual([]);
  }, 300_000);

  it('an ack.query with a syntax error: the run stops before the load with the query and the Postgres message, not measured, nothing left behind', async () => {
    const out = join(REPO, 'out', 'test-own-app-bad-ack');
    const r = await rehearse(fixture('own-app-bad-ack.yaml'), { runs: 1, outDir: out, formats: ['json'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error).toMatch(/^crashed in step "app schema": the scenario's ack\.query `select id::text frm orders where id::text = any\(\$1\)` failed on the old primary at [\d.]+:\d+\/app: syntax error at or near "orders" \(SQLSTATE 42601\)/);
    expect(r.pass).toBe(false);
    expect(valueOf(run.lostWrites)).toBeUndefined();
    expect(JSON.stringify(run.lostWrites)).toMatch(/not measured|ack\.query/);
    // k6 never started: the load did not run for a check that could not have judged it
    expect(existsSync(join(out, 'run-1', 'app.log'))).toBe(false);
    expect(await labDirs()).toEqual([]);
  }, 300_000);
});
