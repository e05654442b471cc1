/**
 * Two hazards of the pgbouncer switch, as helpers the switch calls (migration/switch/pgbouncer.ts):
 *
 * - Rewriting pgbouncer.ini through a temporary file created the new file with the process's
 *   umask (0644) and owner: a 0600 file holding auth settings became world-readable, and a file
 *   owned by the pgbouncer user became root's. `replaceFileKeepingMode` keeps mode and owner.
 * - PAUSE … RELOAD … RESUME: when RELOAD (or the rewrite) threw, RESUME was never sent and every
 *   client stayed held until someone noticed. `whilePaused` always resumes what it paused, retries
 *   a failing RESUME, and reports both errors.
 */
import { chmodSync, chownSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { CutoverError } from './errors.ts';
import { describeTarget } from './pg.ts';

/** Atomically replace `path` with `content`, keeping its permission bits and (where allowed) owner. */
export function replaceFileKeepingMode(path: string, content: string): void {
  const st = statSync(path);
  const tmp = `${path}.cutover.tmp`;
  try {
    // 0600 from the start (the umask can only narrow it): the content is never more readable than before
    writeFileSync(tmp, content, { mode: 0o600 });
    try {
      chownSync(tmp, st.uid, st.gid);
    } catch (e: any) {
      // not root and not the owner: the file stays ours, which the owner can still read if the mode says so
      if (e?.code !== 'EPERM') throw e;
    }
    // after chown (which may clear set-id bits): exactly the old mode
    chmodSync(tmp, st.mode & 0o7777);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface PausedOutcome<T> {
  value?: T;
  error?: unknown;
  resumeError?: unknown;
}

/**
 * Run `fn` with the pooler paused by `pause`, and resume in every case (`resume` is retried up to
 * `attempts` times, 200 ms apart). When `fn` fails, its error is thrown with the resume outcome in
 * the detail; when only RESUME fails, that is thrown (the pooler is still PAUSED: the caller must
 * surface it loudly, clients are held).
 */
export async function whilePaused<T>(pause: () => Promise<void>, resume: () => Promise<void>, fn: () => Promise<T>, opts: { attempts?: number; alreadyPaused?: boolean } = {}): Promise<T> {
  if (!opts.alreadyPaused) await pause();
  let value: T | undefined;
  let error: unknown;
  let failed = false;
  try {
    value = await fn();
  } catch (e) {
    error = e;
    failed = true;
  }
  // A pause that was not ours (a pause fence) is left for its owner — unless fn failed: then the
  // switch is aborting and nobody else will resume it in time, so we resume anyway.
  const mustResume = !opts.alreadyPaused || failed;
  let resumeError: unknown;
  if (mustResume) {
    const attempts = opts.attempts ?? 5;
    for (let i = 0; i < attempts; i++) {
      try {
        await resume();
        resumeError = undefined;
        break;
      } catch (e) {
        resumeError = e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));
  if (failed) {
    const resumed = !mustResume ? 'the pause was left to its owner' : resumeError ? `RESUME ALSO FAILED, pgbouncer is still PAUSED: ${msg(resumeError)}` : 'pgbouncer was resumed';
    if (error instanceof CutoverError)
      throw new CutoverError(error.code, error.message, { hint: resumeError ? 'connect to the pgbouncer admin console and run RESUME' : error.hint, detail: [error.detail, resumed].filter(Boolean).join('; '), cause: error, exitCode: error.exitCode });
    throw new CutoverError('INTERNAL', msg(error), { detail: resumed, cause: error });
  }
  if (resumeError)
    throw new CutoverError('STATE', `pgbouncer is still PAUSED: RESUME failed ${opts.attempts ?? 5} times: ${msg(resumeError)}`, { hint: 'connect to the pgbouncer admin console and run RESUME', cause: resumeError, exitCode: 1 });
  return value as T;
}

/**
 * The backend PIDs of pgbouncer's server connections (SHOW SERVERS, column remote_pid): the
 * sessions on Postgres that belong to the pooler. Every other app session bypasses it, and a
 * pause fence does not hold it (terminateBypassingSessions in migration/fence.ts).
 */
export async function pgbouncerServerPids(adminUrl: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (e: any) {
    throw new CutoverError('CONNECT', `cannot reach the pgbouncer admin console at ${describeTarget(adminUrl)}: ${e?.message ?? e}`, { cause: e });
  }
  try {
    const r = await c.query('SHOW SERVERS');
    return r.rows.map((x: any) => Number(x.remote_pid)).filter((n) => Number.isInteger(n) && n > 0);
  } finally {
    await c.end().catch(() => {});
  }
}
