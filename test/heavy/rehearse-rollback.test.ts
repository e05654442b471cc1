/**
 * Heavy (CUTOVER_HEAVY=1): scenarios/rollback-under-load.yaml end to end (13 → 17, k6, DNS switch):
 * switch with reverse replication, 5 s on the new primary under load, `cutover rollback` back to
 * the old one. Both legs measured on their own; nothing acknowledged lost on either; nothing left
 * behind. ~90 s.
 */
import { describe, it, expect } from 'vitest';
import { valueOf } from '../../reports/model.ts';
import { rehearseShipped, expectPassOrOnlySaturated } from '../helpers/db-fault-rehearsal.ts';

describe('rehearse rollback-under-load.yaml', () => {
  it('rolls back under load over the reverse replication; each leg has its own figures, nothing lost', async () => {
    const { r, run } = await rehearseShipped('scenarios/rollback-under-load.yaml');
    expect(run.error).toBeUndefined();
    expect(run.phases.find((p) => p.name === 'reverse')?.outcome).toBe('ok');
    const rb = run.rollback!;
    expect(rb.error).toBeUndefined();
    expect(rb.phases.find((p) => p.name === 'resume')?.outcome).toBe('ok');
    // the rollback came after the forward cutover, with the wait in between
    const fwdResume = run.phases.find((p) => p.name === 'resume')!;
    expect(rb.phases[0].startMs).toBeGreaterThan(fwdResume.endMs + 4_000);
    // every write acknowledged on either side is on the old primary at the end; the new one took none after the rollback's fence
    expect(rb.lostWrites).toBe(0);
    expect(rb.splitBrainWrites).toBe(0);
    expect(valueOf(rb.downtimeMs)).toEqual(expect.any(Number));
    expect(run.budgets.filter((b) => b.name.startsWith('rollback')).map((b) => b.name).sort()).toEqual(['rollbackErrorWindowMs', 'rollbackLostWrites', 'rollbackSplitBrainWrites', 'rollbackStallMs']);
    expect(run.lostWrites).toBe(0);
    expect(run.splitBrainWrites).toBe(0);
    // the reverse replication is what the clean-up found and removed
    expect(run.cleanup?.remaining).toEqual([]);
    expect(run.cleanup?.dropped.join(' ')).toMatch(/cutover_main_reverse/);
    expect(run.clusterTimeline!.length).toBeGreaterThan(30);
    expectPassOrOnlySaturated(r);
  });
});
