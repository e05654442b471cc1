/** The sample app (load/app/server.ts) as its own process, started and waited for until it listens. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CutoverError, redactSecrets } from '../../migration/errors.ts';
import { PROJECT_ROOT } from '../paths.ts';
import { killWithUs } from '../children.ts';
import { sleep } from '../net.ts';

export interface AppProcess {
  child: ChildProcess;
  url: string;
  /** The JSON events the app printed so far ({"event":"db-address-changed","at":…}, …). */
  events: Array<Record<string, unknown>>;
}

export async function startAppProcess(args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<AppProcess> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'run-ts.mjs'), join(PROJECT_ROOT, 'load', 'app', 'server.ts'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killWithUs(child);
  const lines: string[] = [];
  const events: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new CutoverError('TIMEOUT', 'the sample app did not start within 30 s', { detail: lines.slice(-10).join('\n') })), 30_000);
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        try {
          const e = JSON.parse(line);
          events.push(e);
          if (e.event === 'listening') {
            clearTimeout(t);
            res(e.url);
          }
        } catch {}
      }
    });
    child.stderr!.on('data', (d: Buffer) => lines.push(d.toString()));
    child.once('exit', (code) => {
      clearTimeout(t);
      rej(new CutoverError('INTERNAL', `the sample app exited during start (code ${code})`, { detail: redactSecrets(lines.slice(-10).join('\n')) }));
    });
  });
  // Keep the app's event log beside the run's other artefacts (the reader above goes on collecting).
  child.once('exit', () => writeFileSync(logFile, redactSecrets(lines.join('\n'))));
  return { child, url, events };
}

/** SIGTERM, then SIGKILL if it is still there 200 ms later. */
export async function stopAppProcess(app: AppProcess): Promise<void> {
  if (app.child.exitCode !== null || app.child.signalCode !== null) return;
  app.child.kill('SIGTERM');
  await sleep(200);
  app.child.kill('SIGKILL');
}
