/**
 * Clone-then-follow under load from the other old majors (the default suite runs 11 → 18 and
 * 13 → 18): 12 (pg_control layout 1201), 15 (Debian's real pg_controldata/pg_resetwal 15 where
 * postgresql-15 is installed, else layout 1300) and 17 (layout 1700). test/helpers/clone-follow.ts.
 */
import { cloneFollowSuite } from '../helpers/clone-follow.ts';

for (const old of [12, 15, 17]) cloneFollowSuite(old, 18);
