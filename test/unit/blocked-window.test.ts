/** The write-blocked window part by part (lab/rehearse/measure-run.ts blockedWindow), on hand-made logs. */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { blockedWindow, measureRun, aggregate, type PhaseTiming } from '../../lab/rehearse/measure-run.ts';
import { validateReport, aggregateRuns } from '../../reports/model.ts';
import { renderMarkdown } from '../../reports/markdown.ts';
import { renderHtml } from '../../reports/html.ts';
import { parseScenario } from '../../scenarios/load.ts';
import type { OpOutcome } from '../../load/measure.ts';

const T0 = 1_700_000_000_000;
const phases: PhaseTiming[] = [
  { name: 'fence', startMs: T0 + 4_000, endMs: T0 + 4_150, outcome: 'ok' },
  { name: 'sentinel', startMs: T0 + 4_150, endMs: T0 + 4_250, outcome: 'ok' },
  { name: 'sequences', startMs: T0 + 4_250, endMs: T0 + 4_300, outcome: 'ok' },
  { name: 'switch', startMs: T0 + 4_300, endMs: T0 + 5_320, outcome: 'ok' },
  { name: 'resume', startMs: T0 + 5_320, endMs: T0 + 5_340, outcome: 'ok' },
];
/** One write every 10 ms for 10 s; writes starting in [failFrom, failTo) fail. */
function ops(failFrom: number, failTo: number): OpOutcome[] {
  const out: OpOutcome[] = [];
  for (let t = 0; t < 10_000; t += 10) out.push({ id: `w${t}`, kind: 'write', startMs: T0 + t, endMs: T0 + t + 3, status: t >= failFrom && t < failTo ? 'fail' : 'ok' });
  return out;
}

describe('blockedWindow', () => {
  it('splits a dns cutover into the phases, the change, the re-resolve, the re-connect and the failures after resume', () => {
    // the record changed 20 ms into the switch (then its 1 s TTL wait); the app moved 600 ms later, first ack 40 ms after that
    const b = blockedWindow({ phases, ops: ops(4_000, 4_940), switchChangedAtMs: T0 + 4_320, appAddressChangesMs: [T0 + 4_920] }, 'dns', T0 + 4_943);
    expect(b).toEqual({ fenceMs: 150, sentinelMs: 100, sequencesMs: 50, switchMs: 20, swapMs: { notMeasured: expect.stringContaining('no reverse replication') }, switchWaitMs: 1000, resumeMs: 20, reResolveMs: 600, reconnectMs: 23, afterResumeMs: 0 });
    // with reverse replication, the swap's share of the change is its own part
    expect(blockedWindow({ phases, ops: ops(4_000, 4_940), switchChangedAtMs: T0 + 4_320, switchSwapMs: 12.4, appAddressChangesMs: [T0 + 4_920] }, 'dns', T0 + 4_943).swapMs).toBe(12);
  });

  it('failures going on after resume are counted from its end', () => {
    const b = blockedWindow({ phases, ops: ops(4_000, 6_000), switchChangedAtMs: T0 + 4_320, appAddressChangesMs: [T0 + 5_990] }, 'dns', T0 + 6_003);
    expect(b.afterResumeMs).toBe(663);
    expect(b.reResolveMs).toBe(1670);
  });

  it('says why a part is missing: a user app does not report its move, a pgbouncer switch has no name, a phase that did not run', () => {
    const own = blockedWindow({ phases, ops: ops(4_000, 4_900), switchChangedAtMs: T0 + 4_320, appAddressChangesMs: undefined }, 'dns', T0 + 4_903);
    expect(own.reResolveMs).toEqual({ notMeasured: expect.stringContaining('does not report when it moved') });
    expect(own.reconnectMs).toEqual(own.reResolveMs);
    const pgb = blockedWindow({ phases, ops: ops(0, 0), switchChangedAtMs: T0 + 5_320 }, 'pgbouncer', undefined);
    expect(pgb.reResolveMs).toEqual({ notMeasured: expect.stringContaining('no name to re-resolve') });
    expect(pgb.reconnectMs).toBe(3); // the first write that started after the change
    expect(pgb.afterResumeMs).toBe(0);
    const noSeq = blockedWindow({ phases: phases.filter((p) => p.name !== 'sequences'), ops: ops(0, 0) }, 'dns', undefined);
    expect(noSeq.sequencesMs).toEqual({ notMeasured: 'the switchover did not complete its sequences phase' });
    expect(noSeq.reResolveMs).toEqual({ notMeasured: expect.stringContaining('does not report') });
  });

  it('is in the run and its medians in the aggregate; a saturated run stays out of the medians', () => {
    const scenario = parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\nmigration: { switch: dns }\nbudgets: { maxErrorWindow: 5s }`, 't.yaml');
    const obs = (changedAfterMs: number) => {
      const log = ops(4_000, 4_300 + changedAfterMs + 10);
      return { index: 1, loadStartMs: T0, loadEndMs: T0 + 10_000, startedAt: new Date(T0).toISOString(), durationMs: 12_000, ops: log, droppedAt: [], presentIds: log.filter((x) => x.status === 'ok').map((x) => x.id), phases, faults: [], requestedPerSec: 100, switchChangedAtMs: T0 + 4_320, appAddressChangesMs: [T0 + 4_300 + changedAfterMs] };
    };
    const runs = [measureRun(obs(400), scenario), measureRun(obs(600), scenario), measureRun(obs(800), scenario)];
    expect(runs.map((r) => r.blockedWindow?.reResolveMs)).toEqual([380, 580, 780]);
    expect(aggregate(runs).blockedWindowMs?.reResolveMs?.median).toBe(580);
    const saturated = { ...runs[2], saturation: { ...(runs[2].saturation as any), saturated: true } };
    expect(aggregate([runs[0], runs[1], saturated]).blockedWindowMs?.reResolveMs?.median).toBe(480); // (380 + 580) / 2: the saturated 780 left out
  });

  it('the renderers show each part with its median, and say "not measured" with the reason where a run has none', () => {
    const report = validateReport(JSON.parse(readFileSync('test/fixtures/report.json', 'utf8')), 'fixture');
    const why = { notMeasured: 'the app does not report when it moved to the new address' };
    report.runs = report.runs.map((r, i) => ({ ...r, blockedWindow: { fenceMs: 100 + i, sentinelMs: 90, sequencesMs: 40, switchMs: 10, switchWaitMs: 1000, resumeMs: 15, reResolveMs: i === 0 ? why : 600, reconnectMs: 30, afterResumeMs: 0 } }));
    report.aggregate = aggregateRuns(report.runs);
    const valid = validateReport(JSON.parse(JSON.stringify(report)), 'with breakdown');
    const md = renderMarkdown(valid);
    expect(md).toContain('### Write-blocked window, part by part');
    expect(md).toMatch(/\| switch: its own wait \(dns: the TTL\) \| 1\.00 s \|/);
    expect(md).toContain('not measured: the app does not report when it moved');
    const html = renderHtml(valid);
    expect(html).toContain('<section id="blocked-window">');
    expect(html).toContain('title="the app does not report when it moved to the new address"');
  });
});
