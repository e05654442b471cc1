/**
 * Faults from a scenario's schedule: Toxiproxy toxics on a hop (app-old, app-new, replication)
 * and process faults (kill -9 of the old or new postmaster, the sample app, the switchover).
 * A fault fires at a time after the load started (`atMs`) or when the switchover enters a phase,
 * and lasts `durationMs` (then it is removed: toxic deleted, proxy re-enabled, killed server
 * restarted). Every fault that fired is recorded for the report.
 */
import { addToxic, type ToxicKind } from './toxiproxy.ts';
import type { Lab } from './lab.ts';
import type { Clock } from '../migration/progress.ts';

export type FaultKind = ToxicKind | 'kill';
export type Hop = 'app-old' | 'app-new' | 'replication';
export type KillTarget = 'old' | 'new' | 'app' | 'switchover';

export interface FaultSpec {
  kind: FaultKind;
  hop?: Hop;
  target?: KillTarget;
  /** ms after the load started. */
  atMs?: number;
  /** fire when the switchover enters this phase. */
  phase?: string;
  durationMs?: number;
  attributes?: Record<string, number>;
  stream?: 'upstream' | 'downstream';
}

export interface AppliedFault {
  kind: FaultKind;
  hop?: Hop;
  target?: KillTarget;
  atMs: number;
  durationMs?: number;
  attributes?: Record<string, number>;
  phase?: string;
  error?: string;
}

export interface FaultHandlers {
  /** kill -9 the sample app (and bring it back after durationMs). */
  killApp?: () => Promise<void>;
  restartApp?: () => Promise<void>;
  /** kill -9 the switchover process; the runner resumes it from its state file. */
  killSwitchover?: () => Promise<void>;
}

export class FaultInjector {
  readonly applied: AppliedFault[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private undo = new Set<() => Promise<void>>();
  /** Removals of faults that have a duration (they end with the load at the latest). */
  private timedUndo = new Set<() => Promise<void>>();
  private t0 = 0;
  private stopped = false;

  constructor(
    private readonly lab: Lab,
    private readonly faults: readonly FaultSpec[],
    private readonly handlers: FaultHandlers = {},
    private readonly clock: Clock = { now: () => Date.now() },
    private readonly log: (s: string) => void = () => {},
  ) {}

  /** Arm the time-based faults; t0 is the load start. */
  start(t0 = this.clock.now()): void {
    this.t0 = t0;
    for (const f of this.faults) {
      if (f.atMs === undefined || f.phase) continue;
      const delay = Math.max(0, t0 + f.atMs - this.clock.now());
      this.later(delay, () => this.fire(f));
    }
  }

  /** Called by the switchover's phase hook. */
  async onPhase(phase: string): Promise<void> {
    await Promise.all(this.faults.filter((f) => f.phase === phase).map((f) => this.fire(f)));
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) void fn();
    }, ms);
    this.timers.add(t);
  }

  private async fire(f: FaultSpec): Promise<void> {
    const rec: AppliedFault = { kind: f.kind, hop: f.hop, target: f.target, atMs: this.clock.now() - this.t0, durationMs: f.durationMs, attributes: f.attributes, phase: f.phase };
    this.applied.push(rec);
    try {
      const remove = await this.apply(f);
      this.log(`fault: ${describeFault(f)} at +${rec.atMs} ms`);
      if (remove) {
        this.undo.add(remove);
        if (f.durationMs !== undefined) {
          const timed = async () => {
            if (!this.undo.delete(remove)) return;
            this.timedUndo.delete(timed);
            await remove().catch((e) => (rec.error = `removing: ${e?.message ?? e}`));
          };
          this.timedUndo.add(timed);
          this.later(f.durationMs, timed);
        }
      }
    } catch (e: any) {
      rec.error = e?.message ?? String(e);
      this.log(`fault ${describeFault(f)} could not be applied: ${rec.error}`);
    }
  }

  private async apply(f: FaultSpec): Promise<(() => Promise<void>) | undefined> {
    if (f.kind === 'kill') {
      switch (f.target) {
        case 'old':
        case 'new': {
          const c = f.target === 'old' ? this.lab.old : this.lab.new;
          if (!c.kill || !c.restart) throw new Error(`the ${this.lab.record.provider} provider cannot kill a postmaster`);
          await c.kill();
          return () => c.restart!();
        }
        case 'app':
          if (!this.handlers.killApp) throw new Error('no sample app to kill in this run');
          await this.handlers.killApp();
          return this.handlers.restartApp;
        case 'switchover':
          if (!this.handlers.killSwitchover) throw new Error('the switchover does not run as a separate process in this run');
          await this.handlers.killSwitchover();
          return undefined;
        default:
          throw new Error(`kill needs a target: old, new, app or switchover`);
      }
    }
    if (!this.lab.toxiproxy) throw new Error('Toxiproxy is not running in this lab');
    if (!f.hop) throw new Error(`${f.kind} needs a hop: app-old, app-new or replication`);
    return addToxic(this.lab.toxiproxy, f.hop, f.kind, f.attributes ?? {}, f.stream ?? 'downstream');
  }

  /**
   * Fire nothing more (the load is over), but leave the active faults as they are: a fault that
   * lasts "until the end of the run" (a killed server not restarted) must still hold while the
   * run is measured; one with a duration ends now. clear() removes the rest afterwards.
   */
  async cancelPending(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // a fault with a duration would have been removed by its timer: remove it now
    const timed = [...this.timedUndo];
    this.timedUndo.clear();
    await Promise.allSettled(timed.map((u) => u()));
  }

  /** Cancel pending faults and remove the active ones (servers restarted, proxies re-enabled). */
  async clear(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const undo = [...this.undo];
    this.undo.clear();
    this.timedUndo.clear();
    await Promise.allSettled(undo.map((u) => u()));
  }
}

export function describeFault(f: FaultSpec): string {
  const where = f.kind === 'kill' ? `kill -9 ${f.target}` : `${f.kind} on ${f.hop}`;
  const when = f.phase ? `at phase ${f.phase}` : `at ${f.atMs ?? 0} ms`;
  return `${where} ${when}${f.durationMs !== undefined ? ` for ${f.durationMs} ms` : ''}`;
}
