/** Child processes the lab starts (k6, Toxiproxy, pgbouncer, the sample app) never outlive us. */
import type { ChildProcess } from 'node:child_process';

/** SIGKILL `child` if this process exits first; the hook goes away when the child exits. */
export function killWithUs(child: ChildProcess): void {
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
}
