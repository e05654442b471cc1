/**
 * Heavy (CUTOVER_HEAVY=1): the full fault matrix — every fault kind at the switchover phases it can
 * meet, every toxic on every hop, two faults at once, faults that outlast the run or fire at a
 * phase the run never reaches — on the same small rehearsal as the default-suite part
 * (test/integration/fault-matrix.test.ts; checks in test/helpers/fault-matrix.ts). ~20–80 s a case.
 */
import { describe, it } from 'vitest';
import { expectPromiseKept, runCase, type MatrixCase } from '../helpers/fault-matrix.ts';

const toxic = (kind: string, hop: string, phase: string, attrs = ''): MatrixCase => ({
  name: `${kind} on ${hop} at ${phase}`,
  faults: [`{ kind: ${kind}, hop: ${hop}, phase: ${phase}, duration: 2s${attrs ? `, attributes: { ${attrs} }` : ''} }`],
  verdict: 'either',
});

const TOXICS: Array<[string, string]> = [
  ['latency', 'latency: 300'],
  ['bandwidth', 'rate: 1'],
  ['timeout', 'timeout: 500'],
  ['reset_peer', 'timeout: 0'],
  ['slicer', 'average_size: 16, size_variation: 8, delay: 20'],
  ['limit_data', 'bytes: 2048'],
];

const FULL_MATRIX: MatrixCase[] = [
  // every toxic on every hop, at the phase where that hop matters most
  ...TOXICS.flatMap(([kind, attrs]) => [toxic(kind, 'app-old', 'catchup', attrs), toxic(kind, 'app-new', 'switch', attrs), toxic(kind, 'replication', 'sentinel', attrs)]),
  toxic('partition', 'replication', 'catchup'),
  toxic('partition', 'app-old', 'fence'),
  // every process fault at a phase it can meet
  ...['preflight', 'catchup', 'readiness', 'fence', 'sentinel', 'sequences', 'switch', 'resume', 'postverify'].map((phase): MatrixCase => ({ name: `kill switchover at ${phase}`, faults: [`{ kind: kill, target: switchover, phase: ${phase} }`], verdict: 'either' })),
  ...['catchup', 'sentinel', 'switch'].map((phase): MatrixCase => ({ name: `pause old at ${phase}`, faults: [`{ kind: pause, target: old, phase: ${phase}, duration: 3s }`], verdict: 'either' })),
  ...['catchup', 'switch', 'resume'].map((phase): MatrixCase => ({ name: `pause new at ${phase}`, faults: [`{ kind: pause, target: new, phase: ${phase}, duration: 3s }`], verdict: 'either' })),
  { name: 'pause app at resume', faults: ['{ kind: pause, target: app, phase: resume, duration: 3s }'], verdict: 'either' },
  { name: 'pause new at switch, longer than the run', faults: ['{ kind: pause, target: new, phase: switch, duration: 10m }'], verdict: 'no-go', reason: /had not ended when the load did|not measured|switchover/ },
  { name: 'kill new at postverify, not restarted', faults: ['{ kind: kill, target: new, phase: postverify }'], verdict: 'no-go' },
  { name: 'kill app at switch', faults: ['{ kind: kill, target: app, phase: switch, duration: 2s }'], verdict: 'either' },
  // database faults at phases the shipped scenarios do not try
  { name: 'ddl at sequences', faults: [`{ kind: ddl, phase: sequences, attributes: { sql: 'alter table orders add column gift boolean' } }`], verdict: 'either' },
  { name: 'ddl at catchup', faults: [`{ kind: ddl, phase: catchup, attributes: { sql: 'alter table orders add column gift boolean' } }`], verdict: 'either' },
  { name: 'conflict at readiness', faults: ['{ kind: conflict, phase: readiness, duration: 20s, attributes: { table: orders, mode: now } }'], verdict: 'no-go' },
  { name: 'long-transaction at fence', faults: ['{ kind: long-transaction, phase: fence, duration: 5s, attributes: { table: orders } }'], verdict: 'either' },
  { name: 'burst at sentinel', faults: ['{ kind: burst, phase: sentinel, duration: 3s, attributes: { table: orders, rate: 500 } }'], verdict: 'either' },
  { name: 'lock on old at switch', faults: ['{ kind: lock, phase: switch, duration: 3s, attributes: { side: old, table: orders } }'], verdict: 'either' },
  { name: 'lock on new at sentinel', faults: ['{ kind: lock, phase: sentinel, duration: 3s, attributes: { side: new, table: app_payments } }'], verdict: 'either' },
  { name: 'connections on old at catchup', faults: ['{ kind: connections, phase: catchup, duration: 3s, attributes: { side: old } }'], verdict: 'either' },
  { name: 'connections on new at resume, longer than the run', faults: ['{ kind: connections, phase: resume, duration: 10m, attributes: { side: new } }'], verdict: 'either' },
  { name: 'slot-loss at catchup', faults: ['{ kind: slot-loss, phase: catchup }'], verdict: 'no-go' },
  // two at once
  { name: 'latency app-new + kill switchover at switch', faults: ['{ kind: latency, hop: app-new, phase: switch, duration: 2s, attributes: { latency: 200 } }', '{ kind: kill, target: switchover, phase: switch }'], verdict: 'either' },
  { name: 'connections on old + latency app-old at catchup', faults: ['{ kind: connections, phase: catchup, duration: 3s, attributes: { side: old } }', '{ kind: latency, hop: app-old, phase: catchup, duration: 3s, attributes: { latency: 100 } }'], verdict: 'either' },
  { name: 'pause old + kill switchover at fence', faults: ['{ kind: pause, target: old, phase: fence, duration: 3s }', '{ kind: kill, target: switchover, phase: fence }'], verdict: 'either' },
  { name: 'burst + reset_peer on replication at catchup', faults: ['{ kind: burst, phase: catchup, duration: 3s, attributes: { table: orders, rate: 300 } }', '{ kind: reset_peer, hop: replication, phase: catchup, duration: 1s }'], verdict: 'either' },
  // faults by time, one of them after the load ended
  { name: 'latency by time + one due after the load', faults: ['{ kind: latency, hop: app-old, at: 3s, duration: 1s, attributes: { latency: 200 } }', '{ kind: lock, at: 15s, duration: 1s, attributes: { side: old, table: orders } }'], verdict: 'either', applied: 'any' },
  // the way back: faults while the reverse replication is set up
  { name: 'latency on replication at reverse', faults: ['{ kind: latency, hop: replication, phase: reverse, duration: 2s, attributes: { latency: 200 } }'], verdict: 'either', migration: 'reverseReplication: true' },
];

describe.skipIf(!process.env.CUTOVER_HEAVY)('fault matrix (full)', () => {
  for (const c of FULL_MATRIX)
    it(c.name, async () => {
      const res = await runCase(c);
      await expectPromiseKept(c, res);
    }, 400_000);
});
