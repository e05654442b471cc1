// Clone-then-follow 17 → 18 under load: the lab's pg_control reader (layout 1700) stands in for PostgreSQL 17's pg_controldata/pg_resetwal (test/helpers/clone-follow.ts).
import { cloneFollowSuite } from '../helpers/clone-follow.ts';

cloneFollowSuite(17, 18);
