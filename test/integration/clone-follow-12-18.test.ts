// Clone-then-follow 12 → 18 under load: the lab's pg_control reader (layout 1201) stands in for PostgreSQL 12's pg_controldata/pg_resetwal (test/helpers/clone-follow.ts).
import { cloneFollowSuite } from '../helpers/clone-follow.ts';

cloneFollowSuite(12, 18);
