import type { Command } from 'commander';
import { rehearse, interruptRehearsals, type RehearsalResult, type ProgressEvent } from '../../lab/rehearse/run.ts';
import { CutoverError } from '../../migration/errors.ts';
import { defaultProgressMode, formatDuration } from '../../migration/progress.ts';
import { emit, ExitCode, note } from '../output.ts';
import { isNotMeasured } from '../../reports/model.ts';
import { saturatedRuns } from '../../reports/format.ts';
import { parseFormats } from '../../reports/index.ts';

export function headline(r: RehearsalResult): string {
  const a = r.report.aggregate;
  const s = r.report.scenario;
  const ms = (v: number) => `${Math.round(v)} ms`;
  const st = (v: (typeof a)['downtimeMs'], k: 'median' | 'p95' | 'max', f: (x: number) => string = ms) => (isNotMeasured(v) ? 'not measured' : f(v[k]));
  const n = (x: number) => String(x);
  const saturated = saturatedRuns(r.report);
  const excluded = a.crashedRuns + a.saturatedRuns;
  return [
    `${r.pass ? 'PASS' : 'FAIL'}  ${s.name}: PostgreSQL ${s.oldMajor} → ${s.newMajor}, ${s.switch} switch, ${a.runs} run(s), ${a.passedRuns} passed`,
    // a saturated lab measured itself, not the cutover: say that before any downtime figure
    ...saturated.map((x) => `  ⚠ run ${x.index}: ${x.text}`),
    `downtime (longest time without a successful write): median ${st(a.downtimeMs, 'median')}, p95 ${st(a.downtimeMs, 'p95')}, max ${st(a.downtimeMs, 'max')}${excluded ? ` (over ${a.runs - excluded} of ${a.runs} runs: ${a.crashedRuns} crashed, ${a.saturatedRuns} saturated)` : ''}`,
    `error window median ${st(a.errorWindowMs, 'median')} · stall median ${st(a.stallWindowMs, 'median')} · lost writes ${r.lostWrites.total}${r.lostWrites.unmeasured ? ` (not measured in ${r.lostWrites.unmeasured} run(s))` : ''} · split-brain ${st(a.splitBrainWrites, 'max', n)} · duplicates ${st(a.duplicateWrites, 'max', n)}`,
    ...r.report.verdict.reasons.slice(0, 8).map((x) => `  ✗ ${x}`),
    `report: ${r.outDir}/report.html (${r.files.length} files)`,
  ].join('\n');
}

function progressPrinter(json: boolean) {
  const mode = defaultProgressMode(json);
  let lastKey = '';
  let lastAt = 0;
  return (e: ProgressEvent) => {
    if (mode === 'silent') return;
    const extra = [e.okPerSec !== undefined ? `${e.okPerSec} commits/s` : '', e.lagBytes != null ? `lag ${e.lagBytes} B` : '', e.etaMs !== undefined ? `ETA ${formatDuration(e.etaMs)}` : ''].filter(Boolean).join(', ');
    if (mode === 'tty') {
      process.stderr.write(`\r\x1b[2Krun ${e.run}/${e.runs}: ${e.step}${extra ? ` (${extra})` : ''}`);
      return;
    }
    // CI / --json: one structured line per step, and at most one every 10 s within a step
    const key = `${e.run}/${e.step}`;
    if (key === lastKey && Date.now() - lastAt < 10_000) return;
    lastKey = key;
    lastAt = Date.now();
    process.stderr.write(JSON.stringify({ progress: 'rehearse', ...e }) + '\n');
  };
}

export async function runRehearse(file: string, opts: { runs?: string; out?: string; json?: boolean; format?: string; drift?: boolean; quiet?: boolean }): Promise<RehearsalResult> {
  // every option checked before a server starts: a typo in --format must not cost a whole rehearsal
  const runs = opts.runs === undefined ? undefined : Number(opts.runs);
  if (runs !== undefined && (!Number.isInteger(runs) || runs < 1)) throw new CutoverError('USAGE', `--runs must be a whole number ≥ 1 (got "${opts.runs}")`);
  let formats: string[] | undefined;
  try {
    formats = opts.format === undefined ? undefined : parseFormats(opts.format);
  } catch (e: any) {
    throw new CutoverError('USAGE', `--format: ${e.message}`, { hint: e.hint });
  }
  const ac = new AbortController();
  // Ctrl-C / SIGTERM: tear the run down in order (nothing left running, no lab folder left), then exit.
  // (`on`, not `once`: while this listener is registered the embedded provider's own signal hook
  // leaves the tear-down to us; a second Ctrl-C exits at once, its 'exit' hook still kills servers.)
  let interrupting = false;
  const onSig = (sig: NodeJS.Signals) => {
    if (interrupting) process.exit(sig === 'SIGINT' ? 130 : 143);
    interrupting = true;
    ac.abort();
    process.stderr.write(`\ninterrupted (${sig}): tearing the lab down… (again to quit at once)\n`);
    void interruptRehearsals().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    return await rehearse(file, {
      runs,
      outDir: opts.out,
      formats,
      drift: opts.drift,
      log: opts.json || opts.quiet ? () => {} : (l) => note(process.stderr.isTTY ? `\r\x1b[2K${l}` : l),
      onProgress: progressPrinter(!!opts.json),
      signal: ac.signal,
    });
  } finally {
    process.removeListener('SIGINT', onSig);
    process.removeListener('SIGTERM', onSig);
  }
}

export function register(program: Command): void {
  program
    .command('rehearse <scenario>')
    .description('rehearse a scenario: lab, replication, load, faults, switchover, measurement; writes report.json/html/pdf/md and junit.xml')
    .option('--runs <n>', 'number of runs (default: the scenario says)')
    .option('--out <dir>', 'output directory (default out/<scenario>-<time>)')
    .option('--format <list>', 'report formats: json,html,pdf,md,junit (default all)')
    .option('--no-drift', 'skip the drift checks before and after the switch')
    .option('--json', 'print report.json on stdout')
    .action(async (file, opts) => {
      const r = await runRehearse(file, opts);
      if (!opts.json && process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
      emit(opts.json, r.report, () => headline(r));
      if (!r.pass) throw new ExitCode(1);
    });

  program
    .command('quickstart')
    .description('rehearse scenarios/quickstart.yaml once and print the headline')
    .option('--runs <n>', 'number of runs', '1')
    .option('--out <dir>', 'output directory', 'out/quickstart')
    .action(async (opts) => {
      const { PROJECT_ROOT } = await import('../../lab/paths.ts');
      // the headline is the point here: progress only, no per-phase log lines
      const r = await runRehearse(`${PROJECT_ROOT}/scenarios/quickstart.yaml`, { runs: opts.runs, out: opts.out, quiet: true });
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
      process.stdout.write(headline(r) + '\n');
      if (!r.pass) throw new ExitCode(1);
    });
}
