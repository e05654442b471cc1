/**
 * The fault matrix, default-suite part (13 → 17, k6, DNS switch, one golden snapshot for every
 * case, 20 writes/s, 16 s loads; ~20–30 s a case): combinations the shipped scenarios do not try —
 * two faults at once, toxics other than latency, a fault at the readiness phase, one that outlasts
 * the run, one at a phase the run never reaches, a server killed for good. Each case must end
 * within its bound with the right verdict naming the fault, figures measured or "not measured,
 * because …", and nothing left behind (test/helpers/fault-matrix.ts). The full matrix is
 * test/heavy/fault-matrix-full.test.ts (CUTOVER_HEAVY=1).
 */
import { describe, it } from 'vitest';
import { expectPromiseKept, runCase, type MatrixCase } from '../helpers/fault-matrix.ts';

const DEFAULT_MATRIX: MatrixCase[] = [
  // the new pool cannot connect right after the flip (the slots are taken as the switch runs)
  { name: 'connections on new at switch', faults: ['{ kind: connections, phase: switch, duration: 4s, attributes: { side: new } }'], verdict: 'either' },
  // two at once: latency on the app's new hop while the new server is killed in the catch-up
  {
    name: 'latency app-new + kill new at catchup',
    faults: ['{ kind: latency, hop: app-new, phase: catchup, duration: 4s, attributes: { latency: 200 } }', '{ kind: kill, target: new, phase: catchup, duration: 3s }'],
    verdict: 'either',
  },
  // two at once: the apply worker behind a lock on new while the old server hangs, at the fence
  {
    name: 'lock on new + pause old at fence',
    faults: ['{ kind: lock, phase: fence, duration: 3s, attributes: { side: new, table: orders } }', '{ kind: pause, target: old, phase: fence, duration: 3s }'],
    verdict: 'either',
  },
  // the replication link reset between the fence and the sentinel (17 subscriber: disable_on_error
  // disables it on the broken stream): the sentinel wait sees in the subscriber's log that the link
  // was lost, not an apply error, and enables it again — the cutover goes on, its fence held longer
  // (a GO when that fits the budget; a NO-GO names the fault and what stopped it)
  {
    name: 'reset_peer on replication at fence',
    faults: ['{ kind: reset_peer, hop: replication, phase: fence, duration: 2s }'],
    verdict: 'either',
    reason: /sentinel|disabled|rolled-back|error window|stall/,
  },
  // a partition that outlasts the run: the outage never ends while the load runs — not measured, never a pass
  { name: 'partition app-new at switch, longer than the run', faults: ['{ kind: partition, hop: app-new, phase: switch, duration: 10m }'], verdict: 'no-go', reason: /had not ended when the load did|no request succeeded/ },
  // a phase the run never reaches (no reverse replication): the fault never fired, so the run did not rehearse it
  { name: 'latency at reverse (never reached)', faults: ['{ kind: latency, hop: app-old, phase: reverse, duration: 1s }'], verdict: 'no-go', reason: /never fired: the switchover never started phase reverse/, applied: 'none' },
  // the old server killed for good at the sentinel: aborted, and still nothing left behind
  { name: 'kill old at sentinel, not restarted', faults: ['{ kind: kill, target: old, phase: sentinel }'], verdict: 'no-go', reason: /switchover/ },
  // slot lost at the readiness phase (a phase name the scenario could not say before)
  { name: 'slot-loss at readiness', faults: ['{ kind: slot-loss, phase: readiness }'], verdict: 'no-go', reason: /lost|slot|sentinel|disabled|switchover/ },
  // toxics other than latency, on the app's new hop right after the switch
  { name: 'timeout on app-new at resume', faults: ['{ kind: timeout, hop: app-new, phase: resume, duration: 2s, attributes: { timeout: 500 } }'], verdict: 'either' },
];

describe('fault matrix (default suite)', () => {
  for (const c of DEFAULT_MATRIX)
    it(c.name, async () => {
      const res = await runCase(c);
      const fig = (v: unknown) => (typeof v === 'number' ? `${v} ms` : 'not measured');
      console.info(`[fault matrix] ${c.name}: ${res.r.pass ? 'GO' : 'NO-GO'}, downtime ${fig(res.run.downtimeMs)}${res.r.pass ? '' : ` — ${res.r.report.verdict.reasons[0] ?? ''}`}${res.run.phases.filter((p) => /enabled again/.test(p.detail ?? '')).map((p) => ` (${p.name}: ${p.detail})`).join('')}`);
      await expectPromiseKept(c, res);
    }, 300_000);
});
