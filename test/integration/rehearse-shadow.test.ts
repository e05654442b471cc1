/**
 * Shadow reads inside a rehearsal: the planted TimeZone drift of scenarios/drift-timezone.yaml
 * (UTC → America/New_York) shows as shadow-read mismatches under the cause "timezone", fails the
 * maxShadowMismatches budget, and is in report.json and report.md.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';

describe('rehearsal with shadow reads', () => {
  it('counts the planted timezone drift under its cause, and the budget fails with it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cutover-shadow-'));
    const r = await rehearse('scenarios/drift-timezone.yaml', { runs: 1, outDir: out, formats: ['json', 'md'], drift: false });
    const sh = r.report.runs[0]!.shadow!;
    expect(sh && !('notMeasured' in sh)).toBe(true);
    if (!sh || 'notMeasured' in sh) return;
    expect(sh.compared).toBe(4);
    expect(sh.byCause.timezone).toBeGreaterThanOrEqual(1);
    expect(sh.perQuery.length).toBe(4);
    const b = r.report.runs[0]!.budgets.find((x) => x.name === 'maxShadowMismatches')!;
    expect(b.pass).toBe(false);
    expect(r.pass).toBe(false);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/### Shadow reads/);
    expect(md).toMatch(/by cause: timezone/);
  }, 300_000);
});
