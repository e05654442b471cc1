// Clone-then-follow 11 → 18 under load: the lab's pg_control reader stands in for PostgreSQL 11's pg_controldata/pg_resetwal (test/helpers/clone-follow.ts).
import { cloneFollowSuite } from '../helpers/clone-follow.ts';

cloneFollowSuite(11, 18);
