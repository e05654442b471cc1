/** The database fault kinds in the scenario file: what each needs, every problem with its path. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseScenario, loadScenario } from '../../scenarios/load.ts';
import { conflictRecovery, describeFault, scanSubscriberLog } from '../../lab/faults.ts';

const base = `name: t
clusters: { old: { major: 13 }, new: { major: 17 } }
load: { duration: 20s }
faults:
`;

function problems(faults: string): Array<{ path: string; message: string }> {
  try {
    parseScenario(base + faults);
    return [];
  } catch (e: any) {
    return e.problems.map((p: any) => ({ path: p.path, message: p.message }));
  }
}

describe('database faults in scenarios', () => {
  it('accepts each kind with what it needs', () => {
    const s = parseScenario(
      base +
        `  - { kind: ddl, at: 2s, attributes: { sql: "alter table orders add column x int" } }
  - { kind: conflict, phase: catchup, attributes: { table: ledger_entries, mode: ahead, rows: 5 } }
  - { kind: long-transaction, phase: catchup, duration: 10s, attributes: { table: orders } }
  - { kind: burst, at: 5s, duration: 5s, attributes: { table: orders, multiplier: 10 } }
`,
    );
    expect(s.faults.map((f) => f.kind)).toEqual(['ddl', 'conflict', 'long-transaction', 'burst']);
    expect(s.faults[0].attributes.sql).toBe('alter table orders add column x int');
    expect(s.faults[2].durationMs).toBe(10_000);
  });

  it('names every missing or wrong piece with its path', () => {
    const p = problems(`  - { kind: ddl, at: 2s }
  - { kind: conflict, at: 2s, hop: app-old, attributes: { table: orders, mode: later } }
  - { kind: long-transaction, at: 2s, attributes: { table: orders, latency: 5 } }
  - { kind: burst, at: 2s, duration: 2s, attributes: { table: orders, rows: 10, rate: 5 } }
  - { kind: burst, at: 2s, duration: 2s, attributes: { rows: -1 } }
`);
    const paths = p.map((x) => `${x.path}: ${x.message}`);
    expect(paths).toContain('faults.0.attributes.sql: a ddl fault needs attributes.sql');
    expect(paths).toContain('faults.1.hop: a conflict fault happens inside the clusters and has no hop');
    expect(paths.some((x) => x.startsWith('faults.1.attributes.mode: "later" is not a conflict mode'))).toBe(true);
    expect(paths).toContain('faults.2.duration: a long-transaction fault needs a duration');
    expect(paths).toContain('faults.2.attributes.latency: unknown attribute for a long-transaction fault');
    expect(paths).toContain('faults.3.attributes: give one of rows, rate or multiplier (got rows, rate)');
    expect(paths).toContain('faults.4.attributes.table: a burst fault needs attributes.table');
    expect(paths).toContain('faults.4.attributes.rows: must be a number greater than 0');
    // a database fault never asks for a hop
    expect(paths.some((x) => /needs a hop/.test(x))).toBe(false);
  });

  it('the shipped fault scenarios load', async () => {
    for (const k of ['ddl', 'conflict', 'long-transaction', 'burst']) {
      const s = await loadScenario(`scenarios/faults-${k}.yaml`);
      expect(s.faults[0].kind).toBe(k);
    }
    const schema = JSON.parse(readFileSync('scenarios/scenario.schema.json', 'utf8'));
    expect(JSON.stringify(schema)).toContain('long-transaction');
  });
});

describe('conflict recovery text and log scan', () => {
  it('15+: delete-and-enable first (lossless), SKIP with its cost', () => {
    const t = conflictRecovery({ subscription: 'cutover_main', table: 'public.orders', pk: 'id', keys: [7], targetMajor: 16, finishLsn: '0/1A2B' });
    expect(t).toContain('DELETE FROM public.orders WHERE "id" IN (7)');
    expect(t).toContain(`ALTER SUBSCRIPTION "cutover_main" SKIP (lsn = '0/1A2B')`);
    expect(t).toContain('drops the WHOLE old-side transaction');
  });
  it('before 15: deleting the row is the only way', () => {
    const t = conflictRecovery({ subscription: 'cutover_main', table: 'public.t', pk: 'k', keys: ['a'], targetMajor: 14 });
    expect(t).toContain(`IN ('a')`);
    expect(t).not.toContain('SKIP (lsn');
    expect(t).toContain('no ALTER SUBSCRIPTION … SKIP');
  });
  it('finds the error and the finish LSN in a subscriber log', () => {
    const log = `2026-01-01 00:00:00 UTC [9] LOG:  logical replication apply worker for subscription "cutover_main" has started
2026-01-01 00:00:01 UTC [9] ERROR:  duplicate key value violates unique constraint "ledger_pkey"
2026-01-01 00:00:01 UTC [9] DETAIL:  Key (id)=(1000123) already exists.
2026-01-01 00:00:01 UTC [9] CONTEXT:  processing remote data for replication origin "pg_16390" during message type "INSERT" for replication target relation "public.ledger" in transaction 747, finished at 0/1A2B3C4
`;
    expect(scanSubscriberLog(log)).toEqual({ message: 'duplicate key value violates unique constraint "ledger_pkey"', finishLsn: '0/1A2B3C4' });
    expect(scanSubscriberLog('nothing here')).toEqual({});
  });
});

describe('describeFault', () => {
  it('says what a database fault does, in one line', () => {
    expect(describeFault({ kind: 'ddl', atMs: 2000, attributes: { sql: 'alter table orders\n  add column gift boolean' } })).toBe('ddl "alter table orders add column gift boolean" on old at 2000 ms');
    expect(describeFault({ kind: 'burst', phase: 'catchup', durationMs: 5000, attributes: { table: 'orders', rows: 10 } })).toBe('burst on orders at phase catchup for 5000 ms');
    expect(describeFault({ kind: 'latency', hop: 'app-old', atMs: 0 })).toBe('latency on app-old at 0 ms');
  });
});
