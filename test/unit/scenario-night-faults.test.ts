/** The faults of a real night in the scenario file: pause, lock, connections, slot-loss. */
import { describe, expect, it } from 'vitest';
import { parseScenario, loadScenario } from '../../scenarios/load.ts';
import { describeFault, FaultInjector } from '../../lab/faults.ts';
import { normaliseLockMode, describeWaiters } from '../../lab/night-faults.ts';
import { faultsAsInjected } from '../../lab/rehearse/steps.ts';

const base = (old = 13) => `name: t
clusters: { old: { major: ${old} }, new: { major: 17 } }
load: { duration: 20s }
faults:
`;

function problems(faults: string, old = 13): Array<{ path: string; message: string; line?: number }> {
  try {
    parseScenario(base(old) + faults);
    return [];
  } catch (e: any) {
    return e.problems.map((p: any) => ({ path: p.path, message: p.message, line: p.line }));
  }
}

describe('night faults in scenarios', () => {
  it('accepts each kind with what it needs', () => {
    const s = parseScenario(
      base() +
        `  - { kind: pause, target: old, phase: catchup, duration: 5s }
  - { kind: lock, phase: preflight, duration: 5s, attributes: { side: new, table: orders, mode: row exclusive } }
  - { kind: connections, at: 2s, duration: 5s, attributes: { side: old, reserved: 2 } }
  - { kind: slot-loss, at: 3s }
`,
    );
    expect(s.faults.map((f) => f.kind)).toEqual(['pause', 'lock', 'connections', 'slot-loss']);
    expect(describeFault({ kind: 'pause', target: 'old', phase: 'catchup', durationMs: 5000 })).toBe('pause (SIGSTOP) old at phase catchup for 5000 ms');
  });

  it('after the load ended nothing fires: a phase fault then is recorded as never fired, not applied without its removal', async () => {
    let killed = 0;
    const inj = new FaultInjector({} as never, [{ kind: 'kill', target: 'switchover', phase: 'postverify' }], { killSwitchover: async () => void killed++ });
    inj.start();
    await inj.cancelPending();
    await inj.onPhase('postverify');
    expect(killed).toBe(0);
    expect(inj.applied.map((f) => f.error)).toEqual(['never fired: phase postverify started after the load had ended']);
  });

  it('a fault may fire at any switchover phase, readiness included; a phase that does not exist is named', () => {
    const s = parseScenario(base() + `  - { kind: pause, target: new, phase: readiness, duration: 2s }\n  - { kind: latency, hop: app-new, phase: readiness, duration: 2s }\n`);
    expect(s.faults.map((f) => f.phase)).toEqual(['readiness', 'readiness']);
    expect(problems(`  - { kind: pause, target: new, phase: warmup, duration: 2s }\n`)).toEqual([expect.objectContaining({ path: 'faults.0.phase' })]);
  });

  it('names every missing or wrong piece with its path and line', () => {
    const p = problems(`  - { kind: pause, at: 2s }
  - { kind: pause, at: 2s, duration: 1s, target: switchover }
  - { kind: lock, at: 2s, duration: 1s, attributes: { side: both, mode: sideways } }
  - { kind: connections, at: 2s, hop: app-old, attributes: { side: new, reserved: -1 } }
  - { kind: slot-loss, at: 2s, target: old, attributes: { size: 0, table: orders } }
`);
    const all = p.map((x) => `${x.path}: ${x.message}`);
    expect(all).toContain('faults.0.target: a pause fault needs a target');
    expect(all.some((x) => x.startsWith('faults.0.duration: a pause fault needs a duration'))).toBe(true);
    expect(all).toContain('faults.1.target: a pause stops a process of the lab: switchover cannot be paused');
    expect(all).toContain('faults.2.attributes.side: "both" is not a side');
    expect(all).toContain('faults.2.attributes.mode: "sideways" is not a lock mode');
    expect(all).toContain('faults.2.attributes.table: a lock fault needs attributes.table');
    expect(all).toContain('faults.3.hop: a connections fault happens inside the lab\'s processes and has no hop');
    expect(all).toContain('faults.3.attributes.reserved: must be a whole number of connections, 0 or more');
    expect(all).toContain('faults.3.duration: a connections fault needs a duration');
    expect(all.some((x) => x.startsWith('faults.4.target: target is only for kinds kill and pause'))).toBe(true);
    expect(all).toContain('faults.4.attributes.size: must be a whole number of megabytes, 1 or more');
    expect(all).toContain('faults.4.attributes.table: unknown attribute for a slot-loss fault');
    // each problem points at its line in the file (faults start at line 5)
    const line = (path: string) => p.find((x) => x.path.startsWith(path))?.line;
    expect(line('faults.0')).toBe(5);
    expect(line('faults.2.attributes')).toBe(7);
    expect(line('faults.4')).toBe(9);
  });

  it('refuses slot-loss before PostgreSQL 13 with the reason', () => {
    const p = problems(`  - { kind: slot-loss, at: 2s }\n`, 12);
    expect(p.some((x) => x.path === 'faults.0.kind' && /13 or newer.*max_slot_wal_keep_size/.test(x.message))).toBe(true);
  });

  it('lock modes: any case and spacing, the eight of Postgres only', () => {
    expect(normaliseLockMode(undefined)).toBe('ACCESS EXCLUSIVE');
    expect(normaliseLockMode('share  row exclusive')).toBe('SHARE ROW EXCLUSIVE');
    expect(() => normaliseLockMode('exclusive; drop table x')).toThrow(/not a lock mode/);
    expect(describeWaiters([])).toBe('nothing waited behind it');
    expect(describeWaiters([{ pid: 1, role: 'app', application: 'k6', backendType: 'client backend', waitEvent: 'Lock/relation', query: null }])).toBe('waited: 1 × app (k6) waiting on Lock/relation');
  });

  it('the shipped night fault scenarios load', async () => {
    for (const k of ['pause', 'lock', 'connections', 'slot-loss']) {
      const s = await loadScenario(`scenarios/faults-${k}.yaml`);
      expect(s.faults[0].kind).toBe(k);
    }
  });

  it('a night fault that never fired is recorded with the reason (the run is a NO-GO, like every kind)', () => {
    const s = parseScenario(
      base() +
        `  - { kind: pause, target: old, phase: reverse, duration: 5s }
  - { kind: slot-loss, phase: postverify }
`,
    );
    const inj = faultsAsInjected(s, [], 20_000);
    expect(inj.map((f) => f.error)).toEqual(['never fired: the switchover never started phase reverse', 'never fired: the switchover never started phase postverify']);
  });
});
