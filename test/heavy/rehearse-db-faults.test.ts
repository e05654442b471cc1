/**
 * Heavy (CUTOVER_HEAVY=1): the shipped database-fault scenarios end to end (13 → 17, k6, DNS switch),
 * each with zero lost acknowledged writes and nothing left behind. faults-ddl.yaml is in the default
 * suite (test/integration/rehearse-ddl.test.ts). ~40–60 s each.
 */
import { describe, it, expect } from 'vitest';
import { rehearseShipped, expectCleanFaultRun, expectPassOrOnlySaturated } from '../helpers/db-fault-rehearsal.ts';

describe('rehearse the database-fault scenarios', () => {
  it('conflict: detected from the subscriber, recovery named with the LSN, switchover refused or aborted cleanly', async () => {
    const { r, run } = await rehearseShipped('scenarios/faults-conflict.yaml');
    const c = run.faults.find((f) => f.kind === 'conflict')!;
    expect(c.effect).toMatch(/made on the new side of public\.ledger_entries/);
    expect(c.detection?.detected).toBe(true);
    expect(c.detection?.via.join(' ')).toMatch(/apply_error_count|disabled/);
    expect(c.detection?.message).toMatch(/duplicate key value violates unique constraint/);
    expect(c.recovery).toMatch(/DELETE FROM public\.ledger_entries WHERE "id" IN \(\d+\)/);
    // 17 subscriber: SKIP is offered, with the LSN the log gave
    expect(c.recovery).toContain(`SKIP (lsn = '${c.detection!.finishLsn}')`);
    expect(run.phases.find((p) => p.name === 'switch')?.outcome ?? 'never').not.toBe('ok');
    expect(run.error).toBeDefined();
    expectCleanFaultRun(run);
    expect(r.report.verdict.pass).toBe(false);
  });

  it('long-transaction: the terminate fence ends it (not lost: never acknowledged), its outcome recorded', async () => {
    const { r, run } = await rehearseShipped('scenarios/faults-long-transaction.yaml');
    const lt = run.faults.find((f) => f.kind === 'long-transaction')!;
    expect(lt.phase).toBe('catchup');
    expect(lt.outcome).toMatchObject({ outcome: 'terminated', rowsWritten: 10, rowsCommitted: 0 });
    expect(lt.effect).toMatch(/terminated after \d+ ms \(0 of 10 row\(s\) committed\)/);
    expect(run.phases.find((p) => p.name === 'resume')?.outcome).toBe('ok');
    expect(run.error).toBeUndefined();
    expectCleanFaultRun(run);
    expectPassOrOnlySaturated(r);
  });

  it('burst: lag above the gate during the catch-up, the switchover waits and proceeds, never switching with lag', async () => {
    const { r, run } = await rehearseShipped('scenarios/faults-burst.yaml');
    const gate = 262_144;
    const b = run.faults.find((f) => f.kind === 'burst')!;
    expect(b.outcome).toMatchObject({ rowsWritten: expect.any(Number) });
    expect((b.outcome as { rowsWritten: number }).rowsWritten).toBeGreaterThan(1000);
    const catchup = run.phases.find((p) => p.name === 'catchup')!;
    expect(catchup.outcome).toBe('ok');
    // the gate was tested: some second before the catch-up ended had lag above it …
    const before = run.clusterTimeline!.filter((p) => p.tMs <= catchup.endMs);
    expect(Math.max(...before.map((p) => p.lagBytes ?? 0))).toBeGreaterThan(gate);
    // … and the switch went through only once the sentinel proved every write had arrived (lag at
    // the fence is recorded, not asserted: a writer still active between the gate and the fence adds to it)
    expect(run.switchover?.lagAtFenceBytes).toEqual(expect.any(Number));
    expect(run.phases.find((p) => p.name === 'sentinel')?.outcome).toBe('ok');
    expect(run.phases.find((p) => p.name === 'resume')?.outcome).toBe('ok');
    expect(run.error).toBeUndefined();
    expectCleanFaultRun(run);
    expectPassOrOnlySaturated(r);
  });
});
