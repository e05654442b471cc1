/**
 * What a user's switch command may see, and what of its run may be stored (issue 20). The command
 * switch spawned `sh -c` with the whole environment, so CUTOVER_SOURCE_URL/CUTOVER_TARGET_URL and
 * PGPASSWORD (passwords) reached the command; its command line and output went into the state
 * file unredacted. Wire-in: migration/switch/command.ts (see notes/harden.md).
 */
import { redactValues, secretEnvValues } from './errors.ts';

/** Variables of ours that carry credentials: never passed to a child we did not write. */
const OURS_SECRET = /^(CUTOVER_.*_URL|CUTOVER_.*PASSWORD.*|PGPASSWORD|PGPASSFILE|PGSERVICE|PGSERVICEFILE)$/;

/**
 * The environment for the user's switch command: the user's own environment (PATH, HOME, cloud
 * credentials their command needs) minus our connection secrets and any other CUTOVER_* variable,
 * plus exactly the documented CUTOVER_* context.
 */
export function switchCommandEnv(context: Record<string, string>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (k.startsWith('CUTOVER_') || OURS_SECRET.test(k)) continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(context)) env[k] = v;
  return env;
}

/** A command run as it may be stored (state file, report): command line and output redacted. */
export function redactCommandRun<T extends { command: string; stdout: string; stderr: string }>(run: T, env: NodeJS.ProcessEnv = process.env, extraSecrets: string[] = []): T {
  const secrets = [...secretEnvValues(env), ...extraSecrets];
  return { ...run, command: redactValues(run.command, secrets), stdout: redactValues(run.stdout, secrets), stderr: redactValues(run.stderr, secrets) };
}
