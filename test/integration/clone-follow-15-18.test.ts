// Clone-then-follow 15 → 18 under load: pg_upgrade runs with a real PostgreSQL 15 pg_controldata/pg_resetwal where Debian's postgresql-15 is installed (else the lab's pg_control reader; test/helpers/clone-follow.ts).
import { cloneFollowSuite } from '../helpers/clone-follow.ts';

cloneFollowSuite(15, 18);
