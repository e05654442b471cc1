// Issue 12's reproduction on a target without disable_on_error (14): see test/helpers/under-load.ts.
import { underLoadSuite } from '../helpers/under-load.ts';

underLoadSuite(11, 14, false);
