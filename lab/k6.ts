/**
 * Runs the real k6 binary on a script and returns k6's own outputs: the end-of-test summary
 * (--summary-export) and the per-request points (--out json=…), which load/outcomes.ts turns
 * into the outcome log the measurements read.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { requireTool } from './tools.ts';
import { killWithUs } from './children.ts';
import { CutoverError } from '../migration/errors.ts';

export interface K6RunOptions {
  script: string;
  /** Passed as -e KEY=VALUE (read in the script as __ENV.KEY). */
  env?: Record<string, string | number>;
  /** Directory for k6's outputs. */
  outDir: string;
  /** Extra k6 CLI flags. */
  args?: string[];
  signal?: AbortSignal;
  /** Called with each line k6 prints on stderr/stdout (progress). */
  onLine?: (line: string) => void;
}

export interface K6Result {
  exitCode: number;
  /** k6's --summary-export JSON (metrics: http_reqs, dropped_iterations, …). */
  summary: any;
  /** NDJSON file of metric points (k6 --out json). */
  pointsFile: string;
  summaryFile: string;
  durationMs: number;
  /** Last lines k6 printed (for error messages). */
  tail: string[];
}

/** k6 exit codes that still mean "the test ran": 0 ok, 99 thresholds crossed. */
const RAN = new Set([0, 99]);

export async function runK6(opts: K6RunOptions): Promise<K6Result> {
  const k6 = requireTool('k6');
  const script = resolve(opts.script);
  if (!existsSync(script)) throw new CutoverError('CONFIG', `k6 script not found: ${opts.script}`, { hint: 'scenario load.script is relative to the project root, e.g. load/writes.js' });
  mkdirSync(opts.outDir, { recursive: true });
  const pointsFile = join(opts.outDir, 'k6-points.json');
  const summaryFile = join(opts.outDir, 'k6-summary.json');
  const args = ['run', '--quiet', '--no-color', '--no-usage-report', '--summary-export', summaryFile, '--out', `json=${pointsFile}`];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('-e', `${k}=${v}`);
  args.push(...(opts.args ?? []), script);
  const started = Date.now();
  const tail: string[] = [];
  const child = spawn(k6, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, K6_NO_USAGE_REPORT: 'true' } });
  const onAbort = () => child.kill('SIGINT');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  killWithUs(child);
  const take = (buf: Buffer) => {
    for (const line of buf.toString().split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      opts.onLine?.(line);
    }
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const exitCode: number = await new Promise((res) => child.on('close', (code) => res(code ?? 1)));
  opts.signal?.removeEventListener('abort', onAbort);
  if (!RAN.has(exitCode) && !opts.signal?.aborted) {
    throw new CutoverError('INTERNAL', `k6 failed on ${opts.script} (exit ${exitCode})`, { detail: tail.slice(-10).join('\n'), hint: 'run the script by hand with k6 run to see the whole output' });
  }
  const summary = existsSync(summaryFile) ? JSON.parse(readFileSync(summaryFile, 'utf8')) : undefined;
  return { exitCode, summary, pointsFile, summaryFile, durationMs: Date.now() - started, tail };
}
