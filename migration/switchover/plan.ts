/**
 * Plan, then apply: `planSwitchover` decides (purely, no database) which phases run, what each will
 * do in words an operator can check, their timeouts and, given a state file, which are already done.
 * `--dry-run` prints this; run.ts applies it.
 */
import { SWITCHOVER_PHASES } from './phases.ts';
import { isPhaseDone, phaseRecord, type PhaseName, type SwitchoverState } from './state.ts';

export type FenceStrategyName = 'terminate' | 'read-only' | 'pause';

export interface PlanOptions {
  direction?: 'forward' | 'rollback';
  /** Name of the switch strategy (dns, proxy, pgbouncer, command, …). */
  switch: string;
  fence: FenceStrategyName;
  /** Given app roles; undefined = discovered at run time. */
  appRoles?: string[];
  lag: { maxBytes: number; maxSeconds: number; timeoutMs: number };
  sequenceBuffer: number;
  reverse: boolean;
  /** Readiness of the target before the fence (default on). */
  readiness?: boolean;
  warmup?: boolean;
  subscription: string;
  publication: string;
  reverseSubscription: string;
  reversePublication: string;
  timeouts: PhaseTimeouts;
}

export type PhaseTimeouts = Record<PhaseName, number>;

export const DEFAULT_TIMEOUTS: PhaseTimeouts = {
  preflight: 60_000,
  catchup: 300_000,
  readiness: 600_000,
  fence: 30_000,
  sentinel: 60_000,
  sequences: 120_000,
  switch: 60_000,
  resume: 30_000,
  postverify: 120_000,
  reverse: 60_000,
};

export interface PlanStep {
  phase: PhaseName;
  /** What the phase will do, for a person. */
  action: string;
  /** How it is undone if the run aborts at or after it. */
  undo: string;
  timeoutMs: number;
  /** Not part of this run (with the reason). */
  skip?: string;
  /** Already done ok/skipped in the given state: a resumed run does not repeat it. */
  done: boolean;
  /** Was running when the last process stopped: it is re-run (phases are idempotent). */
  interrupted: boolean;
}

export interface Plan {
  direction: 'forward' | 'rollback';
  steps: PlanStep[];
  /** First phase a run (or a resumed run) will execute; undefined when everything is done. */
  startAt?: PhaseName;
}

export function planSwitchover(o: PlanOptions, state?: SwitchoverState): Plan {
  const direction = o.direction ?? 'forward';
  // the words come from the phase objects themselves: what is planned is what runs
  const steps: PlanStep[] = SWITCHOVER_PHASES.map((phase) => {
    const rec = state && phaseRecord(state, phase.name);
    const text = phase.plan({ ...o, direction });
    return {
      phase: phase.name,
      action: text.action,
      undo: text.undo,
      timeoutMs: phase.name === 'catchup' ? Math.max(o.timeouts.catchup, o.lag.timeoutMs) : o.timeouts[phase.name],
      ...(phase.name === 'reverse' && !o.reverse ? { skip: 'reverse replication not requested (--reverse)' } : {}),
      ...(phase.name === 'readiness' && o.readiness === false ? { skip: 'readiness turned off (--no-readiness)' } : {}),
      done: isPhaseDone(state, phase.name),
      interrupted: rec?.status === 'running',
    };
  });
  const startAt = steps.find((s) => !s.done)?.phase;
  return { direction, steps, startAt };
}

/** The plan as lines a person reads (dry-run output). */
export function describePlan(plan: Plan): string {
  const lines = [`switchover plan (${plan.direction}):`];
  plan.steps.forEach((s, i) => {
    const mark = s.done ? '[done]   ' : s.skip ? '[skip]   ' : s.interrupted ? '[re-run] ' : '[todo]   ';
    lines.push(`${String(i + 1).padStart(2)}. ${mark}${s.phase.padEnd(10)} ${s.skip ? s.skip : s.action}`);
    if (!s.skip && !s.done) lines.push(`               timeout ${Math.round(s.timeoutMs / 1000)} s; undo: ${s.undo}`);
  });
  if (plan.startAt) lines.push(`a run starts at phase ${plan.startAt}`);
  else lines.push('every phase is done: nothing to run');
  return lines.join('\n');
}
