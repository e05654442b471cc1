/**
 * Postgres refuses to run as root. When we are root, servers run as an unprivileged OS user:
 * CUTOVER_PG_USER if set, else `postgres` if it exists, else `cutover` (created by setup),
 * else `nobody`.
 */
import { readFileSync, chownSync, mkdirSync, statSync, chmodSync, realpathSync } from 'node:fs';
import { dirname, sep } from 'node:path';
import { tmpdir } from 'node:os';
import { isRoot, labHome } from './paths.ts';
import { CutoverError } from '../migration/errors.ts';

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
}

function lookup(name: string): OsUser | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** The user to run servers as, or undefined when we are not root (run as ourselves). */
export function serverUser(): OsUser | undefined {
  if (!isRoot()) return undefined;
  const wanted = process.env.CUTOVER_PG_USER;
  if (wanted) {
    const u = lookup(wanted);
    if (!u) throw new CutoverError('CONFIG', `CUTOVER_PG_USER=${wanted} names no OS user`, { hint: `create it (useradd --system ${wanted}) or unset CUTOVER_PG_USER` });
    if (u.uid === 0) throw new CutoverError('CONFIG', `CUTOVER_PG_USER=${wanted} is root; Postgres refuses to run as root`, { hint: 'name an unprivileged user' });
    return u;
  }
  for (const name of ['postgres', 'cutover', 'nobody']) {
    const u = lookup(name);
    if (u && u.uid !== 0) return u;
  }
  throw new CutoverError('PLATFORM', 'running as root and no unprivileged OS user exists to run Postgres as', {
    hint: 'run `useradd --system cutover` (setup does this) or set CUTOVER_PG_USER',
  });
}

/** mkdir -p and hand the directory to the server user (when there is one). */
export function mkdirFor(dir: string, user: OsUser | undefined, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode });
  if (user) {
    const st = statSync(dir);
    if (st.uid !== user.uid) chownSync(dir, user.uid, user.gid);
  }
}

/**
 * The server user must be able to traverse every directory above its data directory. Temporary
 * folders (mkdtemp makes them 0700) and the lab home are opened up with o+x; anywhere else we
 * refuse to touch the permissions of the user's own folders and say what to do instead.
 */
export function ensureTraversable(dir: string, user: OsUser | undefined): void {
  if (!user) return;
  const opened = [realpathSync(tmpdir()), labHome()];
  let d = realpathSync(dir);
  const chain: string[] = [];
  while (d !== dirname(d)) {
    chain.push(d);
    d = dirname(d);
  }
  for (const p of chain) {
    const st = statSync(p);
    if (st.uid === user.uid || st.mode & 0o001) continue;
    if (opened.some((o) => p === o || p.startsWith(o + sep))) {
      chmodSync(p, (st.mode & 0o7777) | 0o011);
      continue;
    }
    throw new CutoverError('PRIVILEGE', `the server user "${user.name}" cannot reach ${dir}: ${p} is not searchable by others`, {
      hint: `put lab data under a reachable folder (set CUTOVER_HOME, default ${labHome()}), or chmod o+x ${p}`,
    });
  }
}
