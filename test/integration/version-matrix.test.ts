/**
 * The version matrix, sampled for the default suite: the two newest sources onto the newest
 * target (16 → 18, 17 → 18), small data, each replicate → verify → switchover → reverse. Both
 * need a pg_dump of 17 or newer, which only the lab's client tools give this machine kind (Debian's
 * client stops at 15): the test fails if the schema copy falls back to an older one. The whole
 * matrix (11–17 → 18 and 16 → 17) is test/heavy/version-matrix.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/clusters.ts';
import { rehearsePair } from '../helpers/version-matrix.ts';
import { ensureClientTools, CLIENT_TOOLS } from '../../lab/binaries.ts';

describe('version matrix (sample)', () => {
  it('doctor, in its own process, names the lab client pg_dump for the schema copy', async () => {
    const tools = await ensureClientTools();
    const { code, stdout } = await cli(['doctor', '--json']).done;
    expect([0, 1]).toContain(code); // 1 only when something unrelated (k6, …) is missing
    const r = JSON.parse(stdout);
    expect(r.clientTools).toMatchObject({ version: CLIENT_TOOLS.version, cached: true });
    expect(r.pgDump.maxSourceMajor).toBeGreaterThanOrEqual(CLIENT_TOOLS.major);
    expect(r.pgDump.path).toBe(tools.path('pg_dump'));
    expect(r.pgTools.find((t: any) => t.name === 'psql').path).toBe(tools.path('psql'));
  });

  it.each([
    [16, 18],
    [17, 18],
  ])('%i → %i: replicate, verify, switchover with reverse replication', async (oldMajor, newMajor) => {
    const o = await rehearsePair(oldMajor, newMajor, { scale: 2000 });
    expect(o.findings.error).toEqual([]);
    expect(o.pgDump).toMatch(/^18\./);
    expect(o.verifyOk).toBe(true);
    expect(o.mismatchedTables).toEqual([]);
    expect(o.switchover.error).toBeUndefined();
    expect(o.switchover.outcome).toBe('completed');
    expect(o.dnsOnNew).toBe(true);
    expect(o.countsMatch).toBe(true);
    expect(o.reverseCarried).toBe(true);
    console.log(`${oldMajor} → ${newMajor}: ${JSON.stringify(o.ms)} findings ${JSON.stringify(o.findings)}`);
  });
});
