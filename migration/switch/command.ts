/**
 * Command switch: a user's own command (a cloud DNS update, a config push) run with the phase
 * context in environment variables. Its output and exit code are recorded; a non-zero exit is a
 * failed switch. The command runs in its own process group: an abort (phase timeout) sends SIGTERM
 * to the whole group, then SIGKILL after a grace, so a `sleep` or `curl` it started cannot land
 * later. Where traffic points: the check command's answer (it prints `old` or `new`); without one,
 * only what this process saw — a command that exited 0 moved traffic, one that exited non-zero by
 * itself did NOT (that is the contract: exit non-zero only when traffic did not move); one that
 * was stopped may or may not have, so the engine assumes it may have. Passwords are never passed.
 */
import { spawn } from 'node:child_process';
import { redactCommandRun, switchCommandEnv } from '../command-env.ts';
import { CutoverError, redactSecrets } from '../errors.ts';
import type { PlainSwitch, Side, SwitchContext } from './types.ts';

export interface CommandSwitchOptions {
  command: string;
  /** Prints `old` or `new` (where traffic points now); anything else, or a failure, is unknown. */
  checkCommand?: string;
  timeoutMs?: number;
  /** Between SIGTERM and SIGKILL of the command's process group on an abort (default 2000). */
  killGraceMs?: number;
  env?: Record<string, string>;
}

export interface CommandRun {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Stopped by us (abort or timeout), with the process group killed. */
  stopped?: string;
}

export function commandEnv(side: Side | undefined, ctx: SwitchContext): Record<string, string> {
  const [src, tgt] = ctx.direction === 'forward' ? [ctx.old, ctx.new] : [ctx.new, ctx.old];
  return {
    CUTOVER_PHASE: ctx.phase,
    ...(side ? { CUTOVER_SIDE: side, CUTOVER_TO_HOST: ctx[side].host, CUTOVER_TO_PORT: String(ctx[side].port) } : {}),
    CUTOVER_DIRECTION: ctx.direction,
    CUTOVER_RUN_ID: ctx.runId,
    CUTOVER_SOURCE_HOST: src.host,
    CUTOVER_SOURCE_PORT: String(src.port),
    CUTOVER_SOURCE_DB: src.database,
    CUTOVER_TARGET_HOST: tgt.host,
    CUTOVER_TARGET_PORT: String(tgt.port),
    CUTOVER_TARGET_DB: tgt.database,
    CUTOVER_OLD_HOST: ctx.old.host,
    CUTOVER_OLD_PORT: String(ctx.old.port),
    CUTOVER_NEW_HOST: ctx.new.host,
    CUTOVER_NEW_PORT: String(ctx.new.port),
  };
}

/**
 * Run `sh -c command` as the leader of a new process group. On timeout or abort the group gets
 * SIGTERM, then SIGKILL after `killGraceMs`; the promise settles only once the shell has exited and
 * its output pipes closed (every process holding them is gone), so "settled" means "stopped".
 */
export function runCommand(command: string, env: Record<string, string>, timeoutMs: number, opts: { signal?: AbortSignal; killGraceMs?: number; cwd?: string } = {}): Promise<CommandRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    // the user's environment minus our connection secrets (CUTOVER_*_URL, PGPASSWORD, the passfile…),
    // plus exactly the documented CUTOVER_* context
    const child = spawn('sh', ['-c', command], { env: switchCommandEnv(env), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let stopped: string | undefined;
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-16_000)));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-16_000)));
    const group = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* the group is already gone */
      }
    };
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => stop(`ran longer than ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => stop(`aborted: ${opts.signal?.reason?.message ?? 'the phase was stopped'}`);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (run: Omit<CommandRun, 'command' | 'ms' | 'stopped'>) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      // whatever the shell left behind in its group goes too: nothing of this switch runs on
      group('SIGKILL');
      // what may be stored (state file, report, error detail): command line and output with every
      // secret value of our environment masked, not only credential-shaped text
      resolve(redactCommandRun({ command, ...run, ms: Date.now() - t0, ...(stopped ? { stopped } : {}) }));
    };
    child.on('error', (e) => done({ exitCode: 127, signal: null, stdout: redactSecrets(stdout), stderr: redactSecrets(stderr + String(e)) }));
    child.on('close', (code, signal) => done({ exitCode: code, signal, stdout: redactSecrets(stdout), stderr: redactSecrets(stderr) }));
  });
}

export class CommandSwitch implements PlainSwitch {
  readonly name = 'command';
  readonly pausable = false;
  readonly runs: CommandRun[] = [];
  /** What the last switch call in this process proved: traffic on `side`, or nothing. */
  private known: Side | 'unknown' = 'unknown';
  constructor(private readonly o: CommandSwitchOptions) {}

  async switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown>> {
    const run = await runCommand(this.o.command, { ...this.o.env, ...commandEnv(side, ctx) }, this.o.timeoutMs ?? 60_000, { signal: ctx.signal, killGraceMs: this.o.killGraceMs });
    this.runs.push(run);
    // exit 0: moved; a failure of its own: it says it did not move; stopped by us: cannot tell
    this.known = run.stopped || run.exitCode === null ? 'unknown' : run.exitCode === 0 ? side : this.known === 'unknown' ? (side === 'new' ? 'old' : 'new') : this.known;
    if (run.stopped)
      throw new CutoverError('TIMEOUT', `the switch command was stopped (switching to ${side}): ${run.stopped}; its process group was killed`, {
        detail: `stderr: ${run.stderr.trim().slice(-500) || '(empty)'}`,
        exitCode: 1,
      });
    if (run.exitCode !== 0)
      throw new CutoverError('PRECONDITION', `the switch command exited with ${run.exitCode ?? run.signal} (switching to ${side})`, {
        detail: `stderr: ${run.stderr.trim().slice(-500) || '(empty)'}`,
        hint: 'fix the command (it receives CUTOVER_PHASE, CUTOVER_SIDE, CUTOVER_TO_HOST…)',
        exitCode: 1,
      });
    return { ...run };
  }

  async current(ctx: SwitchContext): Promise<Side | 'unknown'> {
    if (!this.o.checkCommand) return this.known;
    const run = await runCommand(this.o.checkCommand, { ...this.o.env, ...commandEnv(undefined, { ...ctx, phase: `${ctx.phase}:check` }) }, 30_000, { signal: ctx.signal });
    const said = run.stdout.trim().split('\n').at(-1)?.trim();
    return run.exitCode === 0 && (said === 'old' || said === 'new') ? said : 'unknown';
  }
}
