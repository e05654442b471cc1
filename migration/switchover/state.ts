/**
 * The switchover state file: plain data told apart by `kind`, changed only through the pure
 * transition functions below (each illegal move has its own error), and written atomically
 * (tmp + rename) after every phase start and end so that a killed run can be resumed or undone.
 *
 * Every side effect a phase makes is recorded in its `changes` before or right after it is made,
 * with enough detail to undo it (the previous rolcanlogin, the previous setting, the previous
 * sequence value, which side the switch pointed at). The abort path reads only this file.
 *
 * Terminal kinds stay terminal: `completed` and `rolled-back` never reopen; `failed` (an abort
 * that could not undo everything) only takes another `--abort`; `stopped` (past the point of no
 * return, traffic is or may be on the new side, and going back is not possible) only goes
 * forward again (`--resume`). Undone phases end `aborted`, so nothing undone still counts as done.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { CutoverError } from '../errors.ts';

export const PHASES = ['preflight', 'catchup', 'readiness', 'fence', 'sentinel', 'sequences', 'switch', 'resume', 'postverify', 'reverse'] as const;
export type PhaseName = (typeof PHASES)[number];
export type Outcome = 'ok' | 'failed' | 'aborted' | 'skipped';
export type Side = 'old' | 'new';

/** One thing a phase changed, with what is needed to undo it. */
export type Change =
  | { kind: 'role-login'; role: string; previous: boolean }
  | { kind: 'role-setting'; role: string; setting: string; previous: string | null }
  | { kind: 'database-setting'; database: string; setting: string; previous: string | null }
  | { kind: 'sessions-terminated'; pids: number[] }
  /** Rollback: an app role left fenced on the target by the forward run, opened again. */
  | { kind: 'target-opened'; role: string; previousLogin: boolean; previousReadOnly: string | null }
  /**
   * Rollback after `--fence-scope database`: the target's (old primary's) database default
   * `default_transaction_read_only` lifted; an abort sets it back ON THE TARGET (not a
   * `database-setting`: those are unfenced on the run's source).
   */
  | { kind: 'target-database-opened'; database: string; setting: 'default_transaction_read_only'; previous: string }
  | { kind: 'table-created'; side: Side; table: string }
  | { kind: 'publication-table-added'; publication: string; table: string }
  | { kind: 'subscription-refreshed'; subscription: string }
  | { kind: 'sentinel-row'; token: string }
  | { kind: 'sequence-set'; sequence: string; previous: number | null; value: number }
  | { kind: 'switch'; strategy: string; from: Side | 'unknown'; to: Side }
  | { kind: 'reverse-publication'; publication: string }
  | { kind: 'reverse-slot'; slot: string }
  | { kind: 'reverse-subscription'; subscription: string }
  | { kind: 'forward-subscription-dropped'; subscription: string; publication: string; slot: string }
  /** Going back past the point of no return: an app role fenced on the side traffic had moved to. */
  | { kind: 'target-fenced'; role: string; previous: boolean }
  /** Going back: traffic switched back, or the reverse replication drained to the old side. */
  | { kind: 'switched-back'; strategy: string; to: Side }
  | { kind: 'reverse-drained'; token: string };

export interface PhaseRecord {
  name: PhaseName;
  status: 'running' | 'done';
  startedAt: string;
  endedAt?: string;
  outcome?: Outcome;
  /** Attempts, counting resumed re-runs of a phase that was running when the process died. */
  attempts: number;
  changes: Change[];
  detail?: Record<string, unknown>;
  error?: string;
}

export type StateKind = 'running' | 'aborting' | 'completed' | 'rolled-back' | 'failed' | 'stopped';

export interface SwitchoverState {
  version: 1;
  kind: StateKind;
  runId: string;
  direction: 'forward' | 'rollback';
  /** Redacted URLs: the state file never holds a password. */
  source: string;
  target: string;
  switch: string;
  fence: string;
  reverse: boolean;
  /** Replication name (absent in files written before it was recorded). */
  name?: string;
  createdAt: string;
  updatedAt: string;
  phases: PhaseRecord[];
  /** Undo steps run by an abort, with their outcome. */
  undo?: Array<{ change: Change; outcome: 'ok' | 'failed'; error?: string }>;
  /** What the operator should do next, in plain words. */
  next?: string;
  error?: string;
}

// ---- errors, one per illegal move -------------------------------------------------------------

export class IllegalTransitionError extends CutoverError {
  constructor(message: string, hint?: string) {
    super('STATE', message, { hint, exitCode: 1 });
    this.name = new.target.name;
  }
}
export class StateFinishedError extends IllegalTransitionError {
  constructor(kind: StateKind) {
    super(`the switchover in this state file already ended (${kind}); nothing can be started in it`, 'start a new run with a new --state file (or delete the old one after reading it)');
  }
}
export class PhaseOrderError extends IllegalTransitionError {
  constructor(phase: PhaseName, missing: PhaseName) {
    super(`phase ${phase} cannot start before phase ${missing} has ended ok or skipped`);
  }
}
export class PhaseAlreadyEndedError extends IllegalTransitionError {
  constructor(phase: PhaseName, outcome?: Outcome) {
    super(`phase ${phase} already ended (${outcome}); it is not run twice`);
  }
}
export class PhaseNotRunningError extends IllegalTransitionError {
  constructor(phase: PhaseName) {
    super(`phase ${phase} is not running, so it cannot end or record changes`);
  }
}
export class AnotherPhaseRunningError extends IllegalTransitionError {
  constructor(running: PhaseName, wanted: PhaseName) {
    super(`phase ${running} is still running; phase ${wanted} cannot start`);
  }
}
export class NotAbortingError extends IllegalTransitionError {
  constructor(kind: StateKind) {
    super(`the switchover is ${kind}, not aborting; an abort cannot be finished`);
  }
}

// ---- pure transitions -------------------------------------------------------------------------

export function newState(init: Omit<SwitchoverState, 'version' | 'kind' | 'phases' | 'createdAt' | 'updatedAt'>, now: string): SwitchoverState {
  return { version: 1, kind: 'running', phases: [], createdAt: now, updatedAt: now, ...init };
}

export function phaseRecord(state: SwitchoverState, name: PhaseName): PhaseRecord | undefined {
  return state.phases.find((p) => p.name === name);
}

export function isPhaseDone(state: SwitchoverState | undefined, name: PhaseName): boolean {
  const p = state && phaseRecord(state, name);
  return !!p && p.status === 'done' && (p.outcome === 'ok' || p.outcome === 'skipped');
}

function assertLive(state: SwitchoverState): void {
  if (state.kind !== 'running') throw new StateFinishedError(state.kind);
}

function replacePhase(state: SwitchoverState, rec: PhaseRecord, now: string): SwitchoverState {
  const phases = state.phases.some((p) => p.name === rec.name) ? state.phases.map((p) => (p.name === rec.name ? rec : p)) : [...state.phases, rec];
  return { ...state, phases, updatedAt: now };
}

/**
 * Start (or, after a crash or a failure, restart) a phase. Every earlier phase must be done
 * ok/skipped; a phase that was running or failed is started again with its recorded changes kept.
 */
export function startPhase(state: SwitchoverState, name: PhaseName, now: string, order: readonly PhaseName[] = PHASES): SwitchoverState {
  assertLive(state);
  const running = state.phases.find((p) => p.status === 'running' && p.name !== name);
  if (running) throw new AnotherPhaseRunningError(running.name, name);
  const idx = order.indexOf(name);
  for (const before of order.slice(0, idx)) if (!isPhaseDone(state, before)) throw new PhaseOrderError(name, before);
  const existing = phaseRecord(state, name);
  if (existing?.status === 'done' && (existing.outcome === 'ok' || existing.outcome === 'skipped')) throw new PhaseAlreadyEndedError(name, existing.outcome);
  // a phase that failed, or was running when the process died, runs again keeping its changes
  const rec: PhaseRecord = existing
    ? { name, status: 'running', startedAt: now, attempts: existing.attempts + 1, changes: existing.changes, detail: existing.detail }
    : { name, status: 'running', startedAt: now, attempts: 1, changes: [] };
  return replacePhase(state, rec, now);
}

/** The identity of a change: a second record of the same object keeps the FIRST previous value. */
export function changeKey(c: Change): string {
  switch (c.kind) {
    case 'role-login':
      return `role-login:${c.role}`;
    case 'role-setting':
      return `role-setting:${c.role}:${c.setting}`;
    case 'database-setting':
      return `database-setting:${c.database}:${c.setting}`;
    case 'sessions-terminated':
      return `sessions-terminated:${c.pids.join(',')}`;
    case 'target-opened':
      return `target-opened:${c.role}`;
    case 'target-database-opened':
      return `target-database-opened:${c.database}:${c.setting}`;
    case 'table-created':
      return `table-created:${c.side}:${c.table}`;
    case 'publication-table-added':
      return `publication-table-added:${c.publication}:${c.table}`;
    case 'subscription-refreshed':
      return `subscription-refreshed:${c.subscription}`;
    case 'sentinel-row':
      return `sentinel-row:${c.token}`;
    case 'sequence-set':
      return `sequence-set:${c.sequence}`;
    case 'switch':
      return `switch:${c.strategy}`;
    case 'reverse-publication':
      return `reverse-publication:${c.publication}`;
    case 'reverse-slot':
      return `reverse-slot:${c.slot}`;
    case 'reverse-subscription':
      return `reverse-subscription:${c.subscription}`;
    case 'forward-subscription-dropped':
      return `forward-subscription-dropped:${c.subscription}`;
    case 'target-fenced':
      return `target-fenced:${c.role}`;
    case 'switched-back':
      return `switched-back:${c.strategy}`;
    case 'reverse-drained':
      return `reverse-drained:${c.token}`;
  }
}

/** Every change recorded by any phase of the run. */
export function allChanges(state: SwitchoverState): Change[] {
  return state.phases.flatMap((p) => p.changes);
}

/** Record a change of a running phase. Idempotent: a change already recorded (by key, in any phase) is kept as first recorded. */
export function recordChange(state: SwitchoverState, name: PhaseName, change: Change, now: string): SwitchoverState {
  assertLive(state);
  const rec = phaseRecord(state, name);
  if (!rec || rec.status !== 'running') throw new PhaseNotRunningError(name);
  const key = changeKey(change);
  if (allChanges(state).some((c) => changeKey(c) === key)) {
    // a later switch change updates where traffic points now, but keeps the original "from"
    if (change.kind === 'switch') {
      const changes = rec.changes.map((c) => (changeKey(c) === key && c.kind === 'switch' ? { ...c, to: change.to } : c));
      return replacePhase(state, { ...rec, changes }, now);
    }
    return state;
  }
  return replacePhase(state, { ...rec, changes: [...rec.changes, change] }, now);
}

export function endPhase(state: SwitchoverState, name: PhaseName, outcome: Outcome, now: string, extra: { detail?: Record<string, unknown>; error?: string } = {}): SwitchoverState {
  const rec = phaseRecord(state, name);
  if (!rec) throw new PhaseNotRunningError(name);
  if (rec.status === 'done') throw new PhaseAlreadyEndedError(name, rec.outcome);
  const done: PhaseRecord = { ...rec, status: 'done', endedAt: now, outcome, detail: { ...rec.detail, ...extra.detail }, ...(extra.error ? { error: extra.error } : {}) };
  return replacePhase(state, done, now);
}

/** Skip a phase that is not part of this run (e.g. reverse without --reverse). */
export function skipPhase(state: SwitchoverState, name: PhaseName, now: string, reason: string, order: readonly PhaseName[] = PHASES): SwitchoverState {
  if (isPhaseDone(state, name)) return state;
  const s = startPhase(state, name, now, order);
  return endPhase(s, name, 'skipped', now, { detail: { reason } });
}

/** Set (merge) detail of a running phase, e.g. a measurement that must survive a crash mid-phase. */
export function setPhaseDetail(state: SwitchoverState, name: PhaseName, detail: Record<string, unknown>, now: string): SwitchoverState {
  assertLive(state);
  const rec = phaseRecord(state, name);
  if (!rec || rec.status !== 'running') throw new PhaseNotRunningError(name);
  return replacePhase(state, { ...rec, detail: { ...rec.detail, ...detail } }, now);
}

/** The switch may have moved traffic: a switch change was recorded (before switchTo was called). */
export function pastNoReturn(state: SwitchoverState): boolean {
  return allChanges(state).some((c) => c.kind === 'switch');
}

/** Traffic did move: the switch phase ended ok (or a later phase has started). */
export function trafficMoved(state: SwitchoverState): boolean {
  return isPhaseDone(state, 'switch');
}

/** Why `--resume` must not continue this state (undefined: it may). */
export function resumeRefusal(state: SwitchoverState): string | undefined {
  switch (state.kind) {
    case 'rolled-back':
      return `run ${state.runId} was aborted and rolled back${state.error ? ` (${state.error})` : ''}; its undone phases are not done any more and it never reopens. Start a new run with a new --state file`;
    case 'failed':
      return `run ${state.runId} stopped in the middle of an abort (${state.next ?? state.error ?? 'an undo step failed'}); resuming it would skip phases that were undone. Finish the abort with --abort`;
    case 'aborting':
      return `run ${state.runId} was killed while aborting; finish the abort with --abort`;
    default:
      return undefined;
  }
}

/** Start undoing. A failed abort may be retried; a stopped run may go back when the caller can (reverse replication). */
export function beginAbort(state: SwitchoverState, now: string, error: string): SwitchoverState {
  if (state.kind === 'completed' || state.kind === 'rolled-back') throw new StateFinishedError(state.kind);
  return { ...state, kind: 'aborting', error, updatedAt: now };
}

/** A stopped run (past the point of no return) continues forward with --resume. */
export function reopen(state: SwitchoverState, now: string): SwitchoverState {
  if (state.kind === 'running') return state;
  if (state.kind !== 'stopped') throw new StateFinishedError(state.kind);
  return { ...state, kind: 'running', updatedAt: now };
}

/** The abort ended: every phase it undid ends `aborted` (no longer done); rolled-back only if every step worked. */
export function finishAbort(state: SwitchoverState, now: string, undo: NonNullable<SwitchoverState['undo']>, next: string): SwitchoverState {
  if (state.kind !== 'aborting') throw new NotAbortingError(state.kind);
  const ok = undo.every((u) => u.outcome === 'ok');
  const phases = state.phases.map((p): PhaseRecord => (p.status === 'running' || p.outcome === 'ok' ? { ...p, status: 'done', outcome: 'aborted', endedAt: p.endedAt ?? now } : p));
  return { ...state, kind: ok ? 'rolled-back' : 'failed', phases, undo: [...(state.undo ?? []), ...undo], next, updatedAt: now };
}

export function complete(state: SwitchoverState, now: string, next: string): SwitchoverState {
  assertLive(state);
  return { ...state, kind: 'completed', next, updatedAt: now };
}

/** Past the point of no return with no way back: traffic is (or may be) on the new side; only --resume continues. */
export function stopAtNoReturn(state: SwitchoverState, now: string, error: string, next: string): SwitchoverState {
  return { ...state, kind: 'stopped', error, next, updatedAt: now };
}

/** An error outside any phase (the state file, the lock): the kind is kept, so the run continues as before once fixed. */
export function noteError(state: SwitchoverState, now: string, error: string, next: string): SwitchoverState {
  return { ...state, error, next, updatedAt: now };
}

// ---- the file ---------------------------------------------------------------------------------

/** Write atomically: a reader (or a crash) never sees half a file. */
export function writeState(file: string, state: SwitchoverState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readState(file: string): SwitchoverState | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CutoverError('STATE', `the state file ${file} is not valid JSON`, { hint: 'it is written atomically, so this is not a crash of ours; restore it or start with a new --state file', cause: e });
  }
  const s = parsed as SwitchoverState;
  if (!s || s.version !== 1 || !Array.isArray(s.phases) || typeof s.kind !== 'string')
    throw new CutoverError('STATE', `the state file ${file} is not a cutover switchover state (version 1)`, { hint: 'pass the file written by `cutover switchover --state`' });
  return s;
}
