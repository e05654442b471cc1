/**
 * Where the lab keeps things. One home directory (CUTOVER_HOME) holds the Postgres binary cache
 * (one folder per exact version, so several majors sit side by side), running labs, golden
 * snapshots and server logs.
 *
 * When the process runs as root, the default home is /var/lib/cutover-lab rather than under
 * /root: Postgres runs as an unprivileged user, and that user must be able to reach its data
 * directory and the binaries (/root is mode 700).
 */
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function labHome(): string {
  if (process.env.CUTOVER_HOME) return resolve(process.env.CUTOVER_HOME);
  if (isRoot()) return '/var/lib/cutover-lab';
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cutover-lab');
}

export const paths = {
  binaries: () => join(labHome(), 'pg'),
  labs: () => join(labHome(), 'labs'),
  lab: (name: string) => join(labHome(), 'labs', name),
  golden: () => join(labHome(), 'golden'),
  /** Project-local tools folder where setup puts k6 and toxiproxy-server. */
  tools: () => process.env.CUTOVER_TOOLS_DIR ?? join(PROJECT_ROOT, '.tools', 'bin'),
};
