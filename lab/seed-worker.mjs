// Bootstrap of a seed generator thread (lab/seed-worker.ts): the package is TypeScript run through
// tsx, and a worker thread does not inherit the main thread's loader.
import { register } from 'tsx/esm/api';
register();
await import('./seed-worker.ts');
