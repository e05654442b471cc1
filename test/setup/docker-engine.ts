/**
 * Vitest global setup: a Docker engine for the docker provider's tests.
 *
 * When an engine already answers (DOCKER_HOST or /var/run/docker.sock), it is used as is. When none
 * does and this is a root session with Debian's `dockerd` installed, the suite starts its own engine —
 * `dockerd --bridge=none --iptables=false` (host networking only: no bridge, no NAT, no private
 * address is created) on a private socket with its own data root — and stops it at the end. That
 * engine reaches no image registry, so the tests use images the lab builds locally
 * (CUTOVER_DOCKER_IMAGE=lab, see lab/docker-images.ts). Anywhere else the docker tests skip with the
 * reason. Set CUTOVER_NO_DOCKERD=1 to never start an engine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { dockerEngine } from '../../lab/tools.ts';
import { labHome } from '../../lab/paths.ts';

let daemon: ChildProcess | undefined;

function which(cmd: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) if (d && existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

export async function setup(): Promise<void> {
  // The suite's own images are always built locally (no registry needed, the same pinned binaries
  // as the embedded provider), whichever engine runs them.
  process.env.CUTOVER_DOCKER_IMAGE ??= 'lab';
  if ((await dockerEngine()).available) return;
  const dockerd = which('dockerd');
  if (process.env.CUTOVER_NO_DOCKERD || process.getuid?.() !== 0 || !dockerd || !which('docker')) return;
  const run = '/run/cutover-lab-docker';
  mkdirSync(run, { recursive: true });
  const root = join(labHome(), 'docker', 'engine');
  mkdirSync(root, { recursive: true });
  const sock = join(run, 'docker.sock');
  const log = openSync(join(labHome(), 'docker', 'dockerd.log'), 'a');
  daemon = spawn(dockerd, ['--bridge=none', '--iptables=false', '--ip6tables=false', `--host=unix://${sock}`, `--data-root=${root}`, `--exec-root=${join(run, 'exec')}`, `--pidfile=${join(run, 'dockerd.pid')}`], {
    stdio: ['ignore', log, log],
    detached: false,
  });
  process.env.DOCKER_HOST = `unix://${sock}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await dockerEngine()).available) break;
    if (daemon.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!(await dockerEngine()).available) {
    console.warn(`[docker] could not start dockerd (see ${join(labHome(), 'docker', 'dockerd.log')}); docker tests will skip`);
    daemon.kill('SIGTERM');
    daemon = undefined;
    delete process.env.DOCKER_HOST;
    return;
  }
  process.env.CUTOVER_TEST_DOCKERD = '1';
}

export async function teardown(): Promise<void> {
  if (!daemon) return;
  const d = daemon;
  daemon = undefined;
  // Containers first (the engine would otherwise keep them for its next start), then the engine.
  try {
    const { execFileSync } = await import('node:child_process');
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', 'label=cutover-lab.cluster'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
  } catch {}
  d.kill('SIGTERM');
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      d.kill('SIGKILL');
      resolve();
    }, 15_000);
    d.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
