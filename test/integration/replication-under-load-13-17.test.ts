// Issue 12's reproduction on a target with disable_on_error (17): see test/helpers/under-load.ts.
import { underLoadSuite } from '../helpers/under-load.ts';

underLoadSuite(13, 17, true);
