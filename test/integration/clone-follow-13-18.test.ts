// Clone-then-follow 13 → 18 under load (test/helpers/clone-follow.ts), and its refusals.
import { describe, expect, it } from 'vitest';
import { cloneFollowSuite } from '../helpers/clone-follow.ts';
import { cloneSupport } from '../../lab/clone.ts';

cloneFollowSuite(13, 18);

describe('clone-then-follow refuses what it cannot do, naming the missing piece', () => {
  it('a target major without its pg_upgrade', () => {
    expect(() => cloneSupport(13, 17)).toThrow(/needs pg_upgrade 17.*only PostgreSQL 18/);
  });
  it('an old major without pg_controldata/pg_resetwal and without a verified pg_control layout', () => {
    const e = (() => {
      try {
        cloneSupport(17, 18);
      } catch (x) {
        return x as any;
      }
    })();
    if (!e) return; // a full PostgreSQL 17 install is on this machine
    expect(e.code).toBe('TOOL_MISSING');
    expect(e.message).toContain("pg_controldata and pg_resetwal");
    expect(e.hint).toContain('postgresql-17');
  });
});
