/**
 * Issue 19's "done when": a rehearsal with initialSync: clone passes. scenarios/clone-13-18.yaml:
 * the new cluster is old's upgraded physical copy at the slot's LSN, the load runs through the
 * clone (load.during: sync), and every write acknowledged meanwhile is on the new primary.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';

describe('rehearsal with initialSync: clone (13 → 18)', () => {
  it('builds the new side by clone-then-follow under load, switches, loses nothing and passes', async () => {
    const lines: string[] = [];
    const r = await rehearse('scenarios/clone-13-18.yaml', { outDir: mkdtempSync(join(tmpdir(), 'cutover-clone-')), formats: ['json'], log: (l) => lines.push(l) });
    const run = r.report.runs[0];
    expect(run.error, run.error).toBeUndefined();
    expect(run.replication).toMatchObject({ underLoad: true, initialSync: 'clone', postDataMs: 0, clone: { lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/), upgradeMs: expect.any(Number) } });
    const log = lines.join('\n');
    expect(log).toContain('pg_upgrade 18 13 → 18');
    expect(log).not.toContain('schema copy');
    // writes acknowledged while the clone ran
    const syncEnd = run.replication!.syncMs as number;
    expect(run.timeline.filter((p) => p.tMs + 1000 <= syncEnd).reduce((n, p) => n + p.okPerSec, 0)).toBeGreaterThan(20);
    expect(run.lostWrites).toBe(0);
    expect(run.splitBrainWrites).toBe(0);
    expect(run.duplicateWrites).toBe(0);
    expect(r.report.environment.newVersion).toMatch(/^18\./);
    expect(run.pass).toBe(true);
    expect(r.report.verdict.pass).toBe(true);
  });
});
