// Clone-then-follow 13 → 18 under load (test/helpers/clone-follow.ts), and its refusals.
import { describe, expect, it } from 'vitest';
import { cloneFollowSuite } from '../helpers/clone-follow.ts';
import { cloneSupport } from '../../lab/clone.ts';

cloneFollowSuite(13, 18);

describe('clone-then-follow refuses what it cannot do, naming the missing piece', () => {
  it('a target major without its pg_upgrade', () => {
    expect(() => cloneSupport(13, 17)).toThrow(/needs pg_upgrade 17.*only PostgreSQL 18/);
  });
  it('an old major that is not older; every old major 11–17 has what pg_upgrade needs', () => {
    expect(() => cloneSupport(18, 18)).toThrow(/old major \(18\) must be older/);
    // every major 11–17 has a proven layout; a layout the reader does not know is refused (clone-pg-control.test.ts)
    expect(() => cloneSupport(17, 18)).not.toThrow();
  });
});
