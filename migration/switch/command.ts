/**
 * Command switch: a user's own command (a cloud DNS update, a config push) run with the phase
 * context in environment variables. Its output and exit code are recorded; a non-zero exit is a
 * failed switch, and the state machine takes its abort path. Passwords are never passed.
 */
import { spawn } from 'node:child_process';
import { CutoverError, redactSecrets } from '../errors.ts';
import type { Side, SwitchContext, SwitchStrategy } from './types.ts';

export interface CommandSwitchOptions {
  command: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface CommandRun {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function commandEnv(side: Side, ctx: SwitchContext): Record<string, string> {
  const [src, tgt] = ctx.direction === 'forward' ? [ctx.old, ctx.new] : [ctx.new, ctx.old];
  return {
    CUTOVER_PHASE: ctx.phase,
    CUTOVER_SIDE: side,
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
    CUTOVER_TO_HOST: ctx[side].host,
    CUTOVER_TO_PORT: String(ctx[side].port),
  };
}

export function runCommand(command: string, env: Record<string, string>, timeoutMs: number): Promise<CommandRun> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-16_000)));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-16_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ command, exitCode: 127, signal: null, stdout, stderr: stderr + String(e), ms: Date.now() - t0 });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ command, exitCode: code, signal, stdout: redactSecrets(stdout), stderr: redactSecrets(stderr), ms: Date.now() - t0 });
    });
  });
}

export class CommandSwitch implements SwitchStrategy {
  readonly name = 'command';
  readonly runs: CommandRun[] = [];
  constructor(private readonly o: CommandSwitchOptions) {}

  async switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown>> {
    const run = await runCommand(this.o.command, { ...this.o.env, ...commandEnv(side, ctx) }, this.o.timeoutMs ?? 60_000);
    this.runs.push(run);
    if (run.exitCode !== 0)
      throw new CutoverError('PRECONDITION', `the switch command exited with ${run.exitCode ?? run.signal} (switching to ${side})`, {
        detail: `stderr: ${run.stderr.trim().slice(-500) || '(empty)'}`,
        hint: 'fix the command (it receives CUTOVER_PHASE, CUTOVER_SIDE, CUTOVER_TO_HOST…); the old primary is left serving',
        exitCode: 1,
      });
    return { ...run };
  }
}
