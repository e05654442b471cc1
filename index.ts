/**
 * cutover-lab as a library: what the CLI does, as functions that return plain results.
 *
 *   import { rehearse } from 'cutover-lab';
 *   const r = await rehearse('scenarios/quickstart.yaml', { runs: 3 });
 *   expect(r.downtime?.p95Ms).toBeLessThan(2000); // undefined when no run could be trusted
 */
export { rehearse, type RehearsalResult, type RehearseOptions } from './lab/rehearse/run.ts';
export { loadScenario, parseScenario } from './scenarios/load.ts';
export type { Scenario } from './scenarios/schema.ts';
export { startLab, labUp, labDown, labStatus, type Lab, type LabSpec } from './lab/lab.ts';
export { doctor } from './lab/doctor.ts';
export { preflight } from './migration/preflight.ts';
export { copySchema } from './migration/schema-copy.ts';
export { startReplication, stopReplication, replicationStatus, waitForSync, lag } from './migration/replication.ts';
export { verify } from './migration/verify.ts';
export { drift } from './migration/drift/index.ts';
export { switchover } from './migration/switchover/run.ts';
export { CutoverError } from './migration/errors.ts';
export type { Report } from './reports/model.ts';
