/**
 * Heavy: the fault scenario end to end — reset_peer on app→old during the switch, kill -9 of the
 * switchover process at the sentinel phase, resumed from its state file. Zero lost acknowledged writes.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';

describe('rehearsal under faults', () => {
  it('survives a reset hop and a killed switchover with nothing lost', async () => {
    const r = await rehearse('scenarios/faults-reset-and-kill.yaml', { outDir: mkdtempSync(join(tmpdir(), 'cutover-faults-')), formats: ['json'], drift: false });
    const run = r.report.runs[0];
    expect(run.error).toBeUndefined();
    expect(run.faults.map((f) => `${f.kind}:${f.hop ?? f.target}`).sort()).toEqual(['kill:switchover', 'reset_peer:app-old']);
    expect(run.phases.find((p) => p.name === 'resume')?.outcome).toBe('ok');
    expect(run.requests).toMatchObject({ ok: expect.any(Number) });
    expect((run.requests as { ok: number }).ok).toBeGreaterThan(1000);
    expect(run.lostWrites).toBe(0);
    expect(run.splitBrainWrites).toBe(0);
    expect(r.pass).toBe(true);
  });
});
