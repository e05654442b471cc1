/**
 * scenarios/faults-ddl.yaml end to end (13 → 17, k6, DNS switch): ALTER TABLE … ADD COLUMN on the old
 * primary during replication. The report names the effect, apply stops (disable_on_error on 17, seen
 * in the cluster timeline), the switchover refuses or aborts cleanly with the old primary serving,
 * nothing acknowledged is lost and no slot, publication or subscription is left behind. ~35 s.
 */
import { describe, it, expect } from 'vitest';
import { rehearseShipped, expectCleanFaultRun } from '../helpers/db-fault-rehearsal.ts';

describe('rehearse faults-ddl.yaml', () => {
  it('names the effect, refuses or aborts the switchover cleanly, loses nothing, leaves nothing', async () => {
    const { r, run } = await rehearseShipped('scenarios/faults-ddl.yaml');
    const ddl = run.faults.find((f) => f.kind === 'ddl')!;
    expect(ddl.attributes?.sql).toMatch(/add column channel/);
    expect(ddl.effect).toMatch(/column channel \(text\) exists on the source only: apply stops at the next change to public\.app_payments/);
    expect(ddl.outcome).toMatchObject({ breaksApply: true });
    // apply stopped: the 17 subscriber's disable_on_error, in the cluster's own timeline
    expect(run.clusterTimeline!.some((p) => p.applyState === 'disabled' || p.applyState === 'down')).toBe(true);
    // never switched: the switchover refused (preflight) or aborted (catch-up, sentinel) and the old primary kept serving
    expect(run.phases.find((p) => p.name === 'switch')?.outcome ?? 'never').not.toBe('ok');
    expect(run.error).toMatch(/rolled-back|refus|preflight|catch-?up|sentinel/i);
    const tail = run.timeline.slice(-6, -1);
    expect(tail.every((p) => p.okPerSec > 0)).toBe(true);
    expectCleanFaultRun(run);
    expect(r.pass).toBe(false);
    expect(r.report.verdict.reasons.join('\n')).toMatch(/switchover/);
  });
});
