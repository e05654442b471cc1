/**
 * Plan, then apply: `planSwitchover` decides (purely, no database) which phases run, what each will
 * do in words an operator can check, their timeouts and, given a state file, which are already done.
 * `--dry-run` prints this; run.ts applies it.
 */
import { PHASES, isPhaseDone, phaseRecord, type PhaseName, type SwitchoverState } from './state.ts';

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
  const [oldName, newName] = direction === 'forward' ? ['old primary (source)', 'new primary (target)'] : ['new primary (now the source)', 'old primary (rollback target)'];
  const toSide = direction === 'forward' ? 'new' : 'old';
  const roles = o.appRoles?.length ? `app roles ${o.appRoles.join(', ')}` : 'app roles (discovered: every login role except superusers, replication roles and the admin role)';
  const fenceAction: Record<FenceStrategyName, string> = {
    terminate: `on the ${oldName}: ALTER ROLE … NOLOGIN for ${roles} (previous rolcanlogin recorded), pg_terminate_backend their sessions, check that none is left`,
    'read-only': `on the ${oldName}: ALTER ROLE … SET default_transaction_read_only = on for ${roles} (previous setting recorded), terminate their sessions so the setting applies, check that none is left`,
    pause: `writes are held by the ${o.switch} switch (pooler PAUSE) — nothing is changed on the ${oldName}`,
  };
  const text: Record<PhaseName, [string, string]> = {
    preflight: [`check both servers answer, subscription ${o.subscription} on the ${newName} is enabled and its slot active, take the switchover advisory lock on the ${oldName}, resolve the ${roles}`, 'nothing to undo (read-only checks; the lock is released when the run ends)'],
    catchup: [`wait until replication lag is ≤ ${o.lag.maxBytes} bytes and ≤ ${o.lag.maxSeconds} s (give up after ${o.lag.timeoutMs} ms)`, 'nothing to undo'],
    fence: [fenceAction[o.fence], o.fence === 'pause' ? 'the switch resumes the pooler' : 'restore LOGIN / the previous setting for each role, as recorded'],
    sentinel: [`insert a marker row into cutover_sentinel on the ${oldName} (table created on both sides and added to publication ${o.publication} if absent), wait until it is visible on the ${newName}; records the latency`, 'the marker row stays (harmless)'],
    sequences: [`setval every sequence on the ${newName} to max(source last_value + ${o.sequenceBuffer}, max of the column it feeds + 1); verify target ≥ source`, 'nothing to undo: sequences only move forward'],
    switch: [
      `${o.reverse ? `swap the replication direction before any traffic reaches the ${newName}: drop subscription ${o.subscription} (and its slot), start ${o.reverseSubscription} (${newName} → ${oldName}, copy_data = false); then ` : ''}give the app roles LOGIN on the ${newName} where an earlier run fenced them (recorded); move traffic to the ${toSide} side with the ${o.switch} switch`,
      `switch traffic back to the ${direction === 'forward' ? 'old' : 'new'} side${o.reverse ? `; drop ${o.reverseSubscription} and start ${o.subscription} again with copy_data = false (nothing was written on the fenced side)` : ''}; fence again the app roles opened on the target`,
    ],
    resume: [o.fence === 'pause' ? `resume the pooler so held queries run on the ${newName}` : `check the ${newName} answers, is not in recovery and takes a write (else: switch back while the ${oldName} is intact)`, 'switch back'],
    postverify: [`compare row counts of the published tables and check sequences on the ${newName} ≥ the ${oldName}`, 'nothing to undo (read-only)'],
    reverse: [
      `prove the reverse replication ${o.reverseSubscription} (started in the switch phase) carries writes: a marker row written on the ${newName} must appear on the ${oldName}, so \`cutover rollback\` loses nothing`,
      'nothing to undo (traffic already moved; stop it with `cutover replicate stop`)',
    ],
  };
  const steps: PlanStep[] = PHASES.map((phase) => {
    const rec = state && phaseRecord(state, phase);
    return {
      phase,
      action: text[phase][0],
      undo: text[phase][1],
      timeoutMs: phase === 'catchup' ? Math.max(o.timeouts.catchup, o.lag.timeoutMs) : o.timeouts[phase],
      ...(phase === 'reverse' && !o.reverse ? { skip: 'reverse replication not requested (--reverse)' } : {}),
      done: isPhaseDone(state, phase),
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
