/**
 * load.during: sync on a real rehearsal: the load starts before replication, so the initial copy,
 * post-data, catch-up and the switch run under the sample workload (INSERTs and UPDATEs); the report carries the sync and
 * post-data durations under load, and the writes acknowledged while the copy ran are on the new
 * primary afterwards (the loss check covers them like any other).
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';
import { renderMarkdown } from '../../reports/markdown.ts';

describe('rehearsal with load.during: sync', () => {
  it('copies, applies post-data and switches under load, and loses nothing written during the copy', async () => {
    const r = await rehearse('test/fixtures/scenarios/load-during-sync.yaml', { outDir: mkdtempSync(join(tmpdir(), 'cutover-sync-')), formats: ['json', 'md'], drift: false });
    const run = r.report.runs[0];
    expect(run.error, run.error).toBeUndefined();
    expect(r.report.scenario.load.during).toBe('sync');
    expect(run.replication).toMatchObject({ underLoad: true, syncMs: expect.any(Number), postDataMs: expect.any(Number) });
    const rep = run.replication!;
    const syncEnd = (rep.syncMs as number) + (rep.postDataMs as number);
    // acknowledged writes completed while the copy and post-data ran (they precede the sync's end)
    const duringSync = run.timeline.filter((p) => p.tMs < syncEnd).reduce((n, p) => n + p.okPerSec, 0);
    // (the timeline's seconds that began before the sync ended: a 50k-row sync can take under a second)
    expect(duringSync).toBeGreaterThan(0);
    expect(run.lostWrites).toBe(0);
    // the load outlasted the cutover, so its windows were measured
    expect(run.downtimeMs).toEqual(expect.any(Number));
    expect(run.splitBrainWrites).toBe(0);
    // the switch came after post-data, under the same load
    const fence = run.phases.find((p) => p.name === 'fence')!;
    expect(fence.startMs).toBeGreaterThan(syncEnd);
    expect(run.phases.find((p) => p.name === 'resume')?.outcome).toBe('ok');
    expect(r.report.aggregate.syncMs).toMatchObject({ n: 1 });
    expect(renderMarkdown(r.report)).toMatch(/\| sync \(copy \+ catch-up\) \|/);
  });
});
