/**
 * `cutover switchover` as a child process, the way an operator runs it: it can be kill -9'd by a
 * fault and is then resumed from its state file. Its phase events arrive as JSON lines on a pipe
 * (fd 3, `--events-fd 3`), parsed with the shared contract (migration/switchover/events.ts), and
 * phase-bound faults are armed on `phase-start` — no polling of the state file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseEvent, type PhaseEvent } from '../../migration/switchover/events.ts';
import { redactSecrets } from '../../migration/errors.ts';
import { PROJECT_ROOT } from '../paths.ts';
import { killWithUs } from '../children.ts';
import type { PhaseTiming } from './measure-run.ts';

/** The fd the child writes its events to (stdio[3] is a pipe). */
export const EVENTS_FD = 3;

export interface SwitchoverRun {
  result?: any;
  phases: PhaseTiming[];
  fenceAtMs?: number;
  /** Epoch ms when the switch moved traffic: the switch phase's end less its own wait (dns: the TTL). */
  switchChangedAtMs?: number;
  /** The switch phase's replication swap (with reverse replication): forward stop + reverse start, ms. */
  swapMs?: number;
  attempts: number;
  /** Every event the child sent, in order, across attempts. */
  events: PhaseEvent[];
  error?: string;
}

export interface SwitchoverChildOptions {
  args: string[];
  /** `cutover switchover` (default) or `cutover rollback` (same flags; the machine in reverse). */
  command?: 'switchover' | 'rollback';
  env: Record<string, string>;
  stateFile: string;
  /** Called once per phase, on its first `phase-start` (a resumed phase does not re-fire its faults). */
  onPhaseStart: (phase: string) => Promise<void>;
  /** Receives the function that kills the running child (for the kill-switchover fault), or undefined once it is gone. */
  register: (kill: (() => Promise<void>) | undefined) => void;
  log: (s: string) => void;
  maxAttempts?: number;
}

/**
 * Read events from a stream of JSON lines and hand them to `onEvent` one at a time (the next line
 * waits until the previous handler settled: a fault armed on phase-start is in place before the
 * phase's next event is looked at). Resolves when the stream ends, with the lines that broke the
 * contract.
 */
export async function consumeEvents(stream: Readable, onEvent: (e: PhaseEvent) => Promise<void> | void): Promise<{ broken: string[] }> {
  const broken: string[] = [];
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let e: PhaseEvent;
    try {
      e = parseEvent(line);
    } catch (err: any) {
      broken.push(err?.message ?? String(err));
      continue;
    }
    await onEvent(e);
  }
  return { broken };
}

type Mode = 'start' | 'resume' | 'abort';

function spawnSwitchover(args: string[], env: Record<string, string>, mode: Mode, command: 'switchover' | 'rollback' = 'switchover'): ChildProcess {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'cutover.mjs'), command, ...args, '--events-fd', String(EVENTS_FD), ...(mode === 'start' ? [] : [`--${mode}`])], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env, CUTOVER_PROGRESS: 'silent' },
  });
  killWithUs(child);
  return child;
}

/** One attempt: the child runs to its end (or is killed); its stdout, stderr and events collected. */
async function attempt(o: SwitchoverChildOptions, mode: Mode, seen: Set<string>, events: PhaseEvent[]) {
  const spawnedAt = Date.now();
  const child = spawnSwitchover(o.args, o.env, mode, o.command);
  o.log(`${o.command ?? 'switchover'} process ${child.pid} started${mode === 'start' ? '' : ` (--${mode})`}`);
  let killedByFault = false;
  o.register(async () => {
    killedByFault = true;
    child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const consumed = consumeEvents(child.stdio[EVENTS_FD] as Readable, async (e) => {
    events.push(e);
    if (e.type !== 'phase-start' || seen.has(e.phase)) return;
    seen.add(e.phase);
    o.log(`${o.command ?? 'switchover'}: phase ${e.phase}${seen.size === 1 ? ` (${Date.now() - spawnedAt} ms after the process started)` : ''}`);
    await o.onPhaseStart(e.phase);
  });
  const [code, { broken }] = await Promise.all([exited, consumed]);
  o.register(undefined);
  return { code, out, err, killedByFault, broken };
}

/** Run the switchover; on a kill fault, resume it from its state file (up to maxAttempts). */
export async function runSwitchoverChild(o: SwitchoverChildOptions): Promise<SwitchoverRun> {
  const seen = new Set<string>();
  const events: PhaseEvent[] = [];
  const max = o.maxAttempts ?? 5;
  let attempts = 0;
  let result: any;
  let error: string | undefined;
  for (;;) {
    attempts++;
    // A run killed while it was undoing (state `aborting`) is finished with --abort: --resume
    // refuses to reopen it (migration/switchover/state.ts), exactly as an operator would do.
    const mode: Mode = attempts === 1 ? 'start' : readJson(o.stateFile)?.kind === 'aborting' ? 'abort' : 'resume';
    const a = await attempt(o, mode, seen, events);
    if (a.broken.length) error = `the switchover's phase events broke the contract: ${a.broken[0]}`;
    if (a.killedByFault && attempts < max) {
      o.log('switchover process killed (fault); continuing from its state file');
      continue;
    }
    try {
      result = JSON.parse(a.out);
    } catch {
      error ??= `switchover printed no result (exit ${a.code}): ${redactSecrets(a.err.trim().split('\n').slice(-3).join(' '))}`;
    }
    break;
  }
  const st = readJson(o.stateFile);
  const phases: PhaseTiming[] = (st?.phases ?? [])
    .filter((p: any) => p.startedAt)
    .map((p: any) => ({
      name: p.name,
      startMs: Date.parse(p.startedAt),
      endMs: Date.parse(p.endedAt ?? p.startedAt),
      outcome: p.outcome === 'ok' || p.outcome === 'failed' || p.outcome === 'skipped' || p.outcome === 'aborted' ? p.outcome : 'aborted',
      ...(p.error
        ? { detail: redactSecrets(String(p.error)) }
        : Number(p.detail?.linkReenables) > 0
          ? { detail: `the subscription lost its link to the publisher (disabled by disable_on_error) and was enabled again ${p.detail.linkReenables}× — apply resumed where it stopped` }
          : {}),
    }));
  const fence = (st?.phases ?? []).find((p: any) => p.name === 'fence' && p.endedAt);
  const sw = (st?.phases ?? []).find((p: any) => p.name === 'switch' && p.endedAt && p.outcome === 'ok');
  const waited = Number(sw?.detail?.switched?.waitedMs);
  const switchChangedAtMs = sw ? Date.parse(sw.endedAt) - (Number.isFinite(waited) ? waited : 0) : undefined;
  const swap = sw?.detail?.swapMs;
  const swapMs = swap && Number.isFinite(swap.forwardStop + swap.reverseStart) ? Number(swap.forwardStop) + Number(swap.reverseStart) : undefined;
  if (result && !result.ok && !error) error = `switchover ${result.outcome ?? 'failed'}: ${result.error?.message ?? result.next ?? ''}`;
  return { result, phases, fenceAtMs: fence ? Date.parse(fence.endedAt) : undefined, switchChangedAtMs, ...(swapMs !== undefined ? { swapMs } : {}), attempts, events, ...(error ? { error } : {}) };
}

/** The state file, read once at the end (phase timings and errors as the engine recorded them). */
function readJson(file: string): any {
  try {
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  } catch {
    return undefined;
  }
}
