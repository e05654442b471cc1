/**
 * The JVM order service (PgJDBC + HikariCP, the JVM's default 30 s name cache) rehearsed behind the
 * DNS switch: what its driver and resolver do to the downtime, with nothing lost.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';
import { valueOf } from '../../reports/model.ts';

const REPO = join(import.meta.dirname, '..', '..');
const why = process.getuid?.() !== 0 ? 'needs root (lab DNS on port 53)' : spawnSync('mvn', ['-v']).status !== 0 ? 'Maven is not installed' : '';

describe.skipIf(!!why)('rehearsing your own JVM app', () => {
  it('loses no acknowledged write, and its downtime is measured from its own requests', async () => {
    const r = await rehearse(join(REPO, 'scenarios', 'own-app-jvm.yaml'), { runs: 1, outDir: join(REPO, 'out', 'test-own-app-jvm'), formats: ['json', 'md'], drift: false });
    const run = r.report.runs[0]!;
    expect(run.error ?? '').toBe('');
    expect(valueOf(run.lostWrites)).toBe(0);
    expect(valueOf(run.splitBrainWrites)).toBe(0);
    expect(typeof valueOf(run.downtimeMs)).toBe('number');
  }, 900_000);
});
