/**
 * Per-table control inside a whole rehearsal (16 → 18): test/fixtures/scenarios/table-control.yaml
 * back-fills payments from the slot's snapshot (migration.skipCopy) and shards ledger_entries by
 * a row filter (migration.rowFilters). The run must pass: drift before the switch compares only the
 * shard's rows, the switchover's post-verify counts only them on the source, nothing is lost.
 */
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { rehearse } from '../../lab/rehearse/run.ts';
import { valueOf } from '../../reports/model.ts';

const REPO = join(import.meta.dirname, '..', '..');
const why = process.getuid?.() !== 0 ? 'needs root (lab DNS on port 53, private mount namespace)' : '';
if (why) console.warn(`[skip] table-control rehearsal: ${why}`);

describe.skipIf(!!why)('a rehearsal with a back-filled table and a row-filter shard (16 → 18)', () => {
  it('passes, with the back-fill and the shard in its log', async () => {
    const lines: string[] = [];
    const r = await rehearse(join(REPO, 'test', 'fixtures', 'scenarios', 'table-control.yaml'), { runs: 1, outDir: join(REPO, 'out', 'test-table-control'), formats: ['json'], log: (l) => lines.push(l) });
    const run = r.report.runs[0];
    expect(run.error ?? '', lines.slice(-20).join('\n')).toBe('');
    expect(valueOf(run.lostWrites)).toBe(0);
    expect(lines.join('\n')).toMatch(/back-fill public\.payments: (\d+) of \1 snapshot row\(s\) read, \1 inserted, 0 already there; count check ok/);
    // drift before the switch ran its data category over the shard without a finding on it
    const before = r.report.drift.before;
    expect(Array.isArray(before)).toBe(true);
    expect((before as Array<{ category: string; object: string }>).filter((f) => f.category === 'data')).toEqual([]);
    expect(run.phases.find((p) => p.name === 'postverify')?.outcome).toBe('ok');
  }, 600_000);
});
