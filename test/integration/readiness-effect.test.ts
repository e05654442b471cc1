/**
 * The readiness phase's effect on the first seconds after the switch, measured the way the report
 * measures it (issue 19 item 2): scenarios/readiness-effect.yaml rehearsed twice on real servers
 * (13 → 17, real k6 through the sample app, DNS switch) — with readiness, the first 10 s after the
 * switch look like the calm interval; without it (no statistics on the new primary, autovacuum
 * off there), the app's "latest ledger entries" read gets the plan that walks the primary key and
 * the figure shows it.
 */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';
import { loadScenario } from '../../scenarios/load.ts';
import { valueOf } from '../../reports/model.ts';

const REPO = join(import.meta.dirname, '..', '..');
const why = process.getuid?.() !== 0 ? 'needs root (lab DNS on port 53, private mount namespace)' : '';
if (why) console.warn(`[skip] readiness effect: ${why}`);

describe.skipIf(!!why)('readiness on vs off: the first 10 s after the switch (13 → 17)', () => {
  it('without readiness the first seconds are many times the calm latency; with it they are not', async () => {
    const s = await loadScenario(join(REPO, 'scenarios', 'readiness-effect.yaml'));
    const on = await rehearse(s, { runs: 1, outDir: join(REPO, 'out', 'test-readiness-on'), formats: ['json', 'md'], drift: false });
    const off = await rehearse({ ...s, migration: { ...s.migration, readiness: false } }, { runs: 1, outDir: join(REPO, 'out', 'test-readiness-off'), formats: ['json', 'md'], drift: false });
    const a = valueOf(on.report.runs[0].afterSwitch);
    const b = valueOf(off.report.runs[0].afterSwitch);
    expect(on.report.runs[0].error ?? '', JSON.stringify(on.report.runs[0].afterSwitch)).toBe('');
    expect(a, JSON.stringify(on.report.runs[0].afterSwitch)).toBeDefined();
    expect(b, JSON.stringify(off.report.runs[0].afterSwitch)).toBeDefined();
    expect(a!.readiness).toBe(true);
    expect(b!.readiness).toBe(false);
    // the same calm interval on the old primary (analysed there) in both rehearsals
    expect(a!.first.count).toBeGreaterThan(200);
    expect(b!.first.count).toBeGreaterThan(200);
    // most requests are the read: without statistics its median alone is many times the calm one
    expect(b!.ratio.p50!).toBeGreaterThan(5);
    expect(a!.ratio.p50!).toBeLessThan(3);
    expect(b!.ratio.p50!).toBeGreaterThan(3 * a!.ratio.p50!);
    expect(b!.first.p50).toBeGreaterThan(10); // ms: the backward walk over 300,000 rows
    // nothing was lost either way, and the aggregate carries the ratio
    expect(valueOf(on.report.runs[0].lostWrites)).toBe(0);
    expect(valueOf(off.report.runs[0].lostWrites)).toBe(0);
    expect(valueOf(off.report.aggregate.afterSwitchRatioP50)?.median).toBe(b!.ratio.p50);
  }, 600_000);
});
