/**
 * `cutover rehearse`: run a scenario's cutover again and again under real load and real faults and
 * say, from the client's side, how long it was down and whether anything was lost.
 *
 * One run:
 *   clone the golden old cluster (seeded once per dataset) + fresh new cluster + Toxiproxy
 *   → app role and app tables on old → schema copy (pre-data) → replication through the
 *   replication proxy → wait for sync → post-data → [drift before, first run]
 *   → lab DNS (db.lab.internal → old's proxy) → sample app (child process) → k6 (open model)
 *   → faults armed → at switchAt: `cutover switchover` as a child process (what an operator runs;
 *   it can be kill -9'd and resumed) → load continues past the switch → measure → [drift after]
 *   → tear down (always, also on failure or Ctrl-C).
 * Runs are sequential: two cores cannot host two labs without measuring each other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, existsSync, readFileSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem, platform, release } from 'node:os';
import { loadScenario } from '../../scenarios/load.ts';
import type { Scenario } from '../../scenarios/schema.ts';
import { ensureGolden, clusterSpec, type Golden } from '../golden.ts';
import { startLab, type Lab } from '../lab.ts';
import { startDnsServer, type StartedDnsServer } from '../dns.ts';
import { startPgbouncer, type StartedPgbouncer } from '../pgbouncer.ts';
import { runK6 } from '../k6.ts';
import { killWithUs } from '../children.ts';
import { FaultInjector, type FaultSpec } from '../faults.ts';
import { findTool, toolVersion } from '../tools.ts';
import { paths, PROJECT_ROOT } from '../paths.ts';
import { sleep, freePort } from '../net.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { startReplication, waitForSync, lag } from '../../migration/replication.ts';
import { drift } from '../../migration/drift/index.ts';
import { withClient, quoteIdent, quoteLiteral } from '../../migration/pg.ts';
import { CutoverError, describeError, redactSecrets } from '../../migration/errors.ts';
import { ensureAppSchema, APP_WRITES_TABLE, APP_DOMAIN_TABLES } from '../../load/app/server.ts';
import { parseK6Json } from '../../load/outcomes.ts';
import { checkRun } from '../../load/check.ts';
import { measureRun, aggregate, verdict, type PhaseTiming } from './measure-run.ts';
import type { Report, Run, DriftFinding, InjectedFault } from '../../reports/model.ts';
import { SCHEMA_VERSION } from '../../reports/model.ts';
import { writeReports } from '../../reports/index.ts';

export const DB_NAME = 'db.lab.internal';
export const APP_ROLE = 'cutover_app';

export interface RehearseOptions {
  runs?: number;
  outDir?: string;
  /** Report formats to write (default all: json, html, pdf, md, junit). */
  formats?: string[];
  log?: (line: string) => void;
  /** Called with structured progress events (run, phase, writes/s, lag). */
  onProgress?: (e: ProgressEvent) => void;
  /** Skip drift checks (faster loops). */
  drift?: boolean;
  signal?: AbortSignal;
}

export interface ProgressEvent {
  run: number;
  runs: number;
  step: string;
  okPerSec?: number;
  lagBytes?: number | null;
  /** Estimated time to the end of the last run (from the runs so far). */
  etaMs?: number;
}

export interface RehearsalResult {
  report: Report;
  outDir: string;
  pass: boolean;
  files: string[];
  downtime: { medianMs: number; p95Ms: number; maxMs: number };
  lostWrites: { total: number; max: number };
}

// ---------------------------------------------------------------------------------------------

function toFaultSpecs(s: Scenario): FaultSpec[] {
  return s.faults.map((f) => ({
    kind: f.kind,
    hop: f.hop ?? undefined,
    target: f.target ?? undefined,
    atMs: f.atMs ?? undefined,
    phase: f.phase ?? undefined,
    durationMs: f.durationMs > 0 ? f.durationMs : undefined,
    attributes: Object.fromEntries(Object.entries(f.attributes).filter(([k, v]) => typeof v === 'number' && k !== 'stream')) as Record<string, number>,
    stream: (f.attributes as any).stream === 'upstream' ? 'upstream' : 'downstream',
  }));
}

/** Rehearse a scenario `runs` times; writes report.json (+ html, pdf, md, junit) into outDir. */
export async function rehearse(scenarioOrFile: string | Scenario, opts: RehearseOptions = {}): Promise<RehearsalResult> {
  const scenario = typeof scenarioOrFile === 'string' ? await loadScenario(scenarioOrFile) : scenarioOrFile;
  const runs = opts.runs ?? scenario.runs;
  if (!Number.isInteger(runs) || runs < 1) throw new CutoverError('USAGE', `--runs must be a whole number ≥ 1 (got ${opts.runs})`);
  if (scenario.clusters.provider !== 'embedded')
    throw new CutoverError('CONFIG', `cutover rehearse runs each run on fresh embedded clusters cloned from a golden copy; scenario ${scenario.name} asks for the ${scenario.clusters.provider} provider`, {
      hint:
        scenario.clusters.provider === 'docker'
          ? 'set clusters.provider: embedded, or bring a Docker lab up with `cutover lab up --provider docker` and run the migration commands (replicate, verify, drift, switchover) against it'
          : 'external clusters are not recreated per run: use the migration commands (preflight, replicate, verify, drift, switchover) against them, or rehearse on embedded clusters with the same majors and settings',
    });
  const log = opts.log ?? (() => {});
  const outDir = resolve(opts.outDir ?? join('out', `${scenario.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  mkdirSync(outDir, { recursive: true });
  const runMs: number[] = [];
  let runStarted = Date.now();
  const eta = (run: number) => {
    if (!runMs.length) return undefined;
    const avg = runMs.reduce((a, b) => a + b, 0) / runMs.length;
    return Math.max(0, Math.round(avg * (runs - run + 1) - (Date.now() - runStarted)));
  };
  const progress = (run: number, step: string, extra: Partial<ProgressEvent> = {}) => opts.onProgress?.({ run, runs, step, ...extra, etaMs: eta(run) });

  progress(0, 'golden snapshot');
  const golden = await ensureGolden(scenario, { log, progress: 'silent' });
  const results: Run[] = [];
  let driftBefore: DriftFinding[] = [];
  let driftAfter: DriftFinding[] = [];
  let versions = { old: '', new: '' };
  for (let i = 1; i <= runs; i++) {
    if (opts.signal?.aborted) break;
    runStarted = Date.now();
    const r = await runOnce(scenario, golden, i, runs, { outDir, log, progress, withDrift: opts.drift !== false && i === 1, signal: opts.signal });
    runMs.push(Date.now() - runStarted);
    results.push(r.run);
    if (r.driftBefore) driftBefore = r.driftBefore;
    if (r.driftAfter) driftAfter = r.driftAfter;
    if (r.versions) versions = r.versions;
    log(`run ${i}/${runs}: ${r.run.pass ? 'pass' : 'FAIL'} downtime ${r.run.downtimeMs} ms (errors ${r.run.errorWindowMs} ms, stall ${r.run.stallWindowMs} ms), lost ${r.run.lostWrites}${r.run.error ? `, error: ${r.run.error}` : ''}`);
  }

  const report: Report = {
    schemaVersion: SCHEMA_VERSION,
    generatedAt: new Date().toISOString(),
    tool: { name: 'cutover-lab', version: '0.1.0' },
    scenario: {
      name: scenario.name,
      ...(scenario.description ? { description: scenario.description } : {}),
      ...(scenario.file ? { file: scenario.file } : {}),
      runs,
      provider: scenario.clusters.provider,
      oldMajor: scenario.clusters.old.major,
      newMajor: scenario.clusters.new.major,
      switch: scenario.migration.switch,
      fence: scenario.migration.fence,
      publication: scenario.migration.publication,
      dataset: { preset: scenario.dataset.preset, scale: scenario.dataset.scale },
      load: { rate: scenario.load.rate, durationMs: scenario.load.durationMs, readRatio: scenario.load.readRatio, retry: scenario.load.retry },
      budgets: {
        maxErrorWindowMs: scenario.budgets.maxErrorWindowMs,
        maxStallMs: scenario.budgets.maxStallMs,
        maxLostWrites: scenario.budgets.maxLostWrites,
        maxDuplicateWrites: scenario.budgets.maxDuplicateWrites,
        allowedDrift: scenario.budgets.allowedDrift,
      },
      faults: toFaultSpecs(scenario).map((f) => ({
        kind: f.kind,
        ...(f.hop ? { hop: f.hop } : {}),
        ...(f.target ? { target: f.target } : {}),
        ...(f.atMs !== undefined ? { atMs: f.atMs } : {}),
        ...(f.phase ? { phase: f.phase } : {}),
        ...(f.durationMs !== undefined ? { durationMs: f.durationMs } : {}),
        ...(f.attributes && Object.keys(f.attributes).length ? { attributes: f.attributes } : {}),
      })),
    },
    environment: await environment(versions),
    runs: results,
    aggregate: aggregate(results),
    verdict: verdict(results, driftBefore, scenario.budgets.allowedDrift),
    drift: { before: driftBefore, after: driftAfter },
  };
  const files = await writeReportFiles(report, outDir, opts.formats);
  const a = report.aggregate;
  return {
    report,
    outDir,
    pass: report.verdict.pass,
    files,
    downtime: { medianMs: a.downtimeMs.median, p95Ms: a.downtimeMs.p95, maxMs: a.downtimeMs.max },
    lostWrites: { total: results.reduce((s, r) => s + r.lostWrites, 0), max: a.lostWrites.max },
  };
}

async function writeReportFiles(report: Report, outDir: string, formats?: string[]): Promise<string[]> {
  try {
    return await writeReports(report, outDir, formats);
  } catch (e: any) {
    // A report that cannot be rendered (no Chromium for the PDF, say) must not lose the figures.
    const f = join(outDir, 'report.json');
    if (!existsSync(f)) writeFileSync(f, JSON.stringify(report, null, 2) + '\n');
    throw new CutoverError(e?.code === 'TOOL_MISSING' ? 'TOOL_MISSING' : 'INTERNAL', `writing the reports failed: ${e?.message ?? e}`, { hint: e?.hint ?? `report.json is in ${outDir}; re-render with cutover report ${outDir}` });
  }
}

async function environment(versions: { old: string; new: string }): Promise<Report['environment']> {
  const k6 = findTool('k6');
  const tp = findTool('toxiproxy-server');
  const cpu = cpus();
  return {
    oldVersion: versions.old || 'unknown',
    newVersion: versions.new || 'unknown',
    node: process.version,
    ...(k6 ? { k6: (await toolVersion(k6, ['version'])) ?? 'unknown' } : {}),
    ...(tp ? { toxiproxy: 'v2.12.0' } : {}),
    os: `${platform()} ${release()}`,
    cpus: cpu.length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    ...(cpu[0]?.model ? { machine: cpu[0].model.trim() } : {}),
  };
}

// ---------------------------------------------------------------------------------------------

interface RunContext {
  outDir: string;
  log: (s: string) => void;
  progress: (run: number, step: string, extra?: Partial<ProgressEvent>) => void;
  withDrift: boolean;
  signal?: AbortSignal;
}

interface RunOutput {
  run: Run;
  driftBefore?: DriftFinding[];
  driftAfter?: DriftFinding[];
  versions?: { old: string; new: string };
}

async function serverVersion(url: string): Promise<string> {
  return withClient(url, async (c) => (await c.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0].v.split(' ')[0]);
}

/** The application role (not a superuser: the fence must be able to lock it out) on both sides. */
async function ensureAppRole(url: string, password: string): Promise<void> {
  await withClient(url, async (c) => {
    // a failing statement would be written to the server log with its text: not this one's password
    await c.query(`set log_min_error_statement = panic`);
    const exists = await c.query('select 1 from pg_roles where rolname = $1', [APP_ROLE]);
    if (!exists.rowCount) await c.query(`create role ${quoteIdent(APP_ROLE)} login password ${quoteLiteral(password)}`);
    else await c.query(`alter role ${quoteIdent(APP_ROLE)} login password ${quoteLiteral(password)}`);
  });
}

async function grantApp(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const role = quoteIdent(APP_ROLE);
    await c.query(`grant usage on schema public to ${role}`);
    await c.query(`grant select, insert, update, delete on all tables in schema public to ${role}`);
    await c.query(`grant usage, select, update on all sequences in schema public to ${role}`);
  });
}

async function startAppProcess(args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'run-ts.mjs'), join(PROJECT_ROOT, 'load', 'app', 'server.ts'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killWithUs(child);
  const lines: string[] = [];
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
  // Keep the app's event log beside the run's other artefacts.
  child.stdout!.on('data', (d: Buffer) => lines.push(d.toString()));
  child.once('exit', () => writeFileSync(logFile, redactSecrets(lines.join('\n'))));
  return { child, url };
}

interface SwitchoverRun {
  result?: any;
  phases: PhaseTiming[];
  fenceAtMs?: number;
  attempts: number;
  error?: string;
}

/** Run `cutover switchover` as a child process; on a kill fault, resume it from its state file. */
async function runSwitchover(args: string[], env: Record<string, string>, stateFile: string, faults: FaultInjector, register: (kill: () => Promise<void>) => void, log: (s: string) => void): Promise<SwitchoverRun> {
  const seen = new Set<string>();
  let attempts = 0;
  let result: any;
  let lastErr: string | undefined;
  for (;;) {
    attempts++;
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'cutover.mjs'), 'switchover', ...args, ...(attempts > 1 ? ['--resume'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, CUTOVER_PROGRESS: 'silent' } });
    let killedByFault = false;
    register(async () => {
      killedByFault = true;
      child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // Poll the state file: phase starts trigger phase-bound faults.
    let done = false;
    const poll = (async () => {
      while (!done) {
        const st = readJson(stateFile);
        for (const p of st?.phases ?? []) {
          if (!seen.has(p.name)) {
            seen.add(p.name);
            log(`switchover: phase ${p.name}`);
            await faults.onPhase(p.name);
          }
        }
        await sleep(25);
      }
    })();
    const code = await exited;
    done = true;
    await poll;
    if (killedByFault && attempts < 5) {
      log('switchover process killed (fault); resuming from its state file');
      continue;
    }
    try {
      result = JSON.parse(out);
    } catch {
      lastErr = `switchover printed no result (exit ${code}): ${redactSecrets(err.trim().split('\n').slice(-3).join(' '))}`;
    }
    break;
  }
  const st = readJson(stateFile);
  const phases: PhaseTiming[] = (st?.phases ?? [])
    .filter((p: any) => p.startedAt)
    .map((p: any) => ({ name: p.name, startMs: Date.parse(p.startedAt), endMs: Date.parse(p.endedAt ?? p.startedAt), outcome: p.outcome === 'ok' || p.outcome === 'failed' || p.outcome === 'skipped' || p.outcome === 'aborted' ? p.outcome : 'aborted', ...(p.error ? { detail: redactSecrets(String(p.error)) } : {}) }));
  const fence = (st?.phases ?? []).find((p: any) => p.name === 'fence' && p.endedAt);
  if (result && !result.ok && !lastErr) lastErr = `switchover ${result.outcome}: ${result.error?.message ?? result.next ?? ''}`;
  return { result, phases, fenceAtMs: fence ? Date.parse(fence.endedAt) : undefined, attempts, error: lastErr };
}

function readJson(file: string): any {
  try {
    return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
  } catch {
    return undefined; // being rewritten; the next poll reads it
  }
}

async function runOnce(s: Scenario, golden: Golden, index: number, runs: number, ctx: RunContext): Promise<RunOutput> {
  const runDir = join(ctx.outDir, `run-${index}`);
  // a run directory holds the switchover's state file: an old one would be "resumed"
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const log = (line: string) => ctx.log(`[run ${index}/${runs}] ${line}`);
  const step = (name: string, extra: Partial<ProgressEvent> = {}) => ctx.progress(index, name, extra);
  const runId = `r${index}x${randomBytes(3).toString('hex')}`;
  const appPassword = randomBytes(12).toString('hex');
  const cleanup: Array<() => Promise<unknown>> = [];
  let tornDown: Promise<void> | undefined;
  const teardown = () =>
    (tornDown ??= (async () => {
      if (lagTimer) clearInterval(lagTimer);
      await faults?.clear().catch(() => {});
      for (const c of cleanup.reverse()) await c().catch((e) => log(`teardown: ${describeError(e)}`));
    })());
  interrupted.add(teardown);
  let lab: Lab | undefined;
  const out: Partial<RunOutput> = {};
  let faults: FaultInjector | undefined;
  let lagTimer: NodeJS.Timeout | undefined;
  const lagSamples: Array<{ tMs: number; bytes: number }> = [];
  let phases: PhaseTiming[] = [];
  let loadStart = 0;
  let loadEnd = 0;
  let fenceAtMs: number | undefined;
  let switchoverInfo: Run['switchover'];
  let k6Result: Awaited<ReturnType<typeof runK6>> | undefined;
  let error: string | undefined;
  try {
    step('lab');
    const labDir = join(paths.labs(), `rehearse-${s.name}-${process.pid}-${index}`);
    rmSync(labDir, { recursive: true, force: true });
    lab = await startLab({
      name: `${s.name}-${index}`,
      dir: labDir,
      provider: 'embedded',
      old: { ...clusterSpec('old', s.clusters.old), password: golden.password },
      new: clusterSpec('new', s.clusters.new),
      oldFromDataDir: golden.dataDir,
      log,
    });
    const theLab = lab;
    cleanup.push(async () => {
      for (const side of ['old', 'new'] as const) {
        const f = theLab[side].record.logFile;
        if (f && existsSync(f)) copyFileSync(f, join(runDir, `${side}-server.log`));
      }
      await theLab.down();
    });
    out.versions = { old: await serverVersion(lab.old.url), new: await serverVersion(lab.new.url) };

    step('replication');
    await ensureAppRole(lab.old.url, appPassword);
    await withClient(lab.old.url, (c) => ensureAppSchema(c));
    await grantApp(lab.old.url);
    await ensureAppRole(lab.new.url, appPassword);
    await copySchema({ source: lab.old.url, target: lab.new.url, section: 'pre-data' });
    await grantApp(lab.new.url);
    // A scenario that lists its tables still needs the sample app's tables replicated: they are
    // what the acknowledged-write check reads on the new primary.
    const tables = s.migration.tables ? [...s.migration.tables, APP_WRITES_TABLE, ...APP_DOMAIN_TABLES] : undefined;
    await startReplication({
      source: lab.old.url,
      target: lab.new.url,
      sourceConninfoUrl: lab.proxiedUrl('replication'),
      mode: s.migration.publication,
      tables,
      log,
    });
    await waitForSync({ source: lab.old.url, target: lab.new.url, timeoutMs: 600_000, progress: false });
    await copySchema({ source: lab.old.url, target: lab.new.url, section: 'post-data' });

    if (ctx.withDrift) {
      step('drift (before)');
      const d = await drift({ source: lab.old.url, target: lab.new.url }).catch((e) => ({ findings: [], error: e }) as any);
      out.driftBefore = (d.findings ?? []).map(toReportFinding);
    }

    // Lab DNS: the app resolves db.lab.internal; the record points at old's proxy (or pgbouncer).
    step('app');
    const dns: StartedDnsServer = await startDnsServer({ host: '127.0.0.1' });
    cleanup.push(() => dns.close());
    const oldFront = lab.record.proxies['app-old' as never] as { host: string; port: number };
    const newFront = lab.record.proxies['app-new' as never] as { host: string; port: number };
    let front = oldFront;
    let pgb: StartedPgbouncer | undefined;
    const sw = s.migration.switch;
    if (sw === 'pgbouncer') {
      pgb = await startPgbouncer({
        dir: join(labDir, 'pgbouncer'),
        alias: 'app',
        upstream: { host: oldFront.host, port: oldFront.port, dbname: 'app' },
        users: { [APP_ROLE]: appPassword, postgres: golden.password },
        port: oldFront.port,
      });
      cleanup.push(async () => {
        await pgb!.stop();
        const f = join(labDir, 'pgbouncer', 'pgbouncer.log');
        if (existsSync(f)) copyFileSync(f, join(runDir, 'pgbouncer.log'));
      });
      front = { host: pgb.host, port: pgb.port };
    }
    dns.setRecord(DB_NAME, { targets: [{ address: front.host, weight: 100 }], ttl: Math.max(1, Math.round(s.migration.dnsTtlMs / 1000)) });
    if (sw === 'dns') dns.setRecord(DB_NAME, { targets: [{ address: oldFront.host, weight: 100 }, { address: newFront.host, weight: 0 }], ttl: Math.max(1, Math.round(s.migration.dnsTtlMs / 1000)) });

    const appPort = await freePort('127.0.0.1');
    const appArgs = ['--host', '127.0.0.1', '--port', String(appPort), '--db-host', DB_NAME, '--db-port', String(front.port), '--user', APP_ROLE, '--database', 'app', '--dns', `127.0.0.1:${dns.dnsPort}`, '--retry', s.load.retry, '--retries', String(s.load.retries), '--no-create-tables'];
    const appEnv = { CUTOVER_APP_DB_PASSWORD: appPassword };
    let app = await startAppProcess(appArgs, appEnv, join(runDir, 'app.log'));
    cleanup.push(async () => {
      app.child.kill('SIGTERM');
      await sleep(200);
      app.child.kill('SIGKILL');
    });

    let killSwitchover: (() => Promise<void>) | undefined;
    const appKilled = new Set<ChildProcess>();
    faults = new FaultInjector(
      lab,
      toFaultSpecs(s),
      {
        killApp: async () => {
          appKilled.add(app.child);
          app.child.kill('SIGKILL');
        },
        restartApp: async () => {
          app = await startAppProcess(appArgs, appEnv, join(runDir, 'app-restarted.log'));
        },
        killSwitchover: async () => killSwitchover?.(),
      },
      undefined,
      log,
    );

    // Replication lag, sampled while the load runs (bytes behind on the old primary's slot).
    // Also commits/s on both clusters, for the progress line.
    let lastCommits: { t: number; n: number } | undefined;
    const commits = async () => {
      let n = 0;
      for (const url of [lab!.old.url, lab!.new.url])
        n += await withClient(url, async (c) => Number((await c.query(`select sum(xact_commit)::bigint as n from pg_stat_database`)).rows[0].n), { connectTimeoutMs: 1000 }).catch(() => 0);
      return n;
    };
    const sampleLag = async () => {
      let bytes: number | null = null;
      try {
        const l = await lag({ source: lab!.old.url });
        bytes = l.bytes;
        if (l.bytes !== null) lagSamples.push({ tMs: Date.now(), bytes: l.bytes });
      } catch {}
      const now = Date.now();
      const n = await commits();
      const rate = lastCommits ? Math.max(0, ((n - lastCommits.n) * 1000) / (now - lastCommits.t)) : undefined;
      lastCommits = { t: now, n };
      step(currentStep, { okPerSec: rate === undefined ? undefined : Math.round(rate), lagBytes: bytes });
    };
    let currentStep = 'load';

    step('load');
    loadStart = Date.now();
    const k6Promise = runK6({
      script: join(PROJECT_ROOT, s.load.script),
      outDir: runDir,
      env: { APP_URL: app.url, RATE: s.load.rate, DURATION: `${Math.round(s.load.durationMs / 1000)}s`, READ_RATIO: s.load.readRatio, RUN_ID: runId, MAX_VUS: s.load.maxVus },
      signal: ctx.signal,
    });
    k6Promise.catch(() => {});
    faults.start(loadStart);
    lagTimer = setInterval(() => void sampleLag(), 1000);

    await sleep(Math.max(0, loadStart + s.load.switchAtMs - Date.now()));
    step((currentStep = 'switchover'));
    const stateFile = join(runDir, 'switchover.json');
    const swEnv = { CUTOVER_SOURCE_URL: lab.old.url, CUTOVER_TARGET_URL: lab.new.url };
    const swArgs = [
      '--switch', sw,
      '--fence', s.migration.fence,
      '--app-roles', APP_ROLE,
      '--state', stateFile,
      '--max-lag-bytes', String(s.migration.lag.maxBytes),
      '--max-lag-seconds', String(s.migration.lag.maxSeconds),
      '--lag-timeout', String(s.migration.lag.timeoutMs),
      '--sequence-buffer', String(s.migration.sequenceBuffer),
      '--json',
      ...(s.migration.reverseReplication ? ['--reverse'] : []),
      // the record's addresses are the proxies in front of old and new, not the clusters themselves
      ...(sw === 'dns' ? ['--dns-admin', dns.adminUrl, '--dns-name', DB_NAME, '--dns-old-address', oldFront.host, '--dns-new-address', newFront.host] : []),
      ...(sw === 'proxy' ? ['--proxy-api', lab.toxiproxy!.record.apiUrl, '--proxy-name', 'app-old'] : []),
      ...(sw === 'pgbouncer' ? ['--pgbouncer-admin', pgb!.adminUrl, '--pgbouncer-ini', pgb!.iniFile, '--pgbouncer-db', 'app'] : []),
      ...(sw === 'command' && s.migration.switchCommand ? ['--command', s.migration.switchCommand] : []),
    ];
    const so = await runSwitchover(swArgs, swEnv, stateFile, faults, (k) => (killSwitchover = k), log);
    phases = so.phases;
    fenceAtMs = so.fenceAtMs;
    if (so.error) error = so.error;
    const r = so.result;
    if (r) {
      switchoverInfo = {
        ...(r.lagAtFence?.bytes != null ? { lagAtFenceBytes: r.lagAtFence.bytes } : {}),
        ...(r.sentinelLatencyMs !== undefined ? { sentinelMs: r.sentinelLatencyMs } : {}),
        ...(r.sequences ? { sequences: r.sequences.map((m: any) => ({ name: m.sequence, old: Number(m.source ?? m.before ?? 0), new: Number(m.value) })) } : {}),
      };
    }

    step((currentStep = 'load (after switch)'));
    k6Result = await k6Promise;
    // The app dying on its own (not by a kill fault) is a finding in itself, whatever k6 saw.
    if (app.child.exitCode !== null && !appKilled.has(app.child) && !error) {
      await sleep(100);
      const tail = existsSync(join(runDir, 'app.log')) ? readFileSync(join(runDir, 'app.log'), 'utf8').split('\n').filter((l) => /error|Error/.test(l)).slice(0, 3).join(' | ') : '';
      error = `the sample app exited during the load (code ${app.child.exitCode})${tail ? `: ${tail}` : ''}`;
    }
    loadEnd = Date.now();
    clearInterval(lagTimer);
    await faults.clear();

    step('measure');
    const parsed = await parseK6Json(k6Result.pointsFile);
    // A switchover that rolled back leaves the old primary serving: acknowledged writes are judged
    // there, and writes it took after the unfence are not split-brain but business as usual.
    const rolledBack = so.result?.outcome === 'rolled-back';
    const check = await checkRun({ ops: parsed.ops, newUrl: rolledBack ? lab.old.url : lab.new.url, oldUrl: rolledBack ? undefined : lab.old.url, fenceAtMs: rolledBack ? undefined : fenceAtMs, oldServerAddr: lab.old.record.host, runId });
    if (ctx.withDrift) {
      step('drift (after)');
      // After the switch the two sides differ on purpose: writes go on on the new primary and the
      // app roles are fenced on the old one. So: no data category, and no finding about the fence.
      const d = await drift({ source: lab.old.url, target: lab.new.url, categories: ['schema', 'collation', 'timezone', 'encoding', 'settings', 'incompatibility'] }).catch(() => ({ findings: [] }) as any);
      out.driftAfter = (d.findings ?? []).filter((f: any) => !isFenceArtefact(f)).map(toReportFinding);
    }
    const run = measureRun(
      {
        index,
        loadStartMs: loadStart,
        loadEndMs: Math.max(loadEnd, ...parsed.ops.map((o) => o.endMs)),
        startedAt,
        durationMs: Date.now() - started,
        ops: parsed.ops,
        droppedAt: parsed.droppedIterations.timesMs,
        ack: check,
        phases,
        faults: faults.applied.map(toInjected),
        lagSamples,
        switchover: switchoverInfo,
        error,
        driftAfter: out.driftAfter,
      },
      s,
    );
    return { ...out, run } as RunOutput;
  } catch (e) {
    error = describeError(e).replace(/^error(\[\w+\])?: /, '');
    log(`failed: ${error}`);
    const run = failedRun(index, startedAt, Date.now() - started, error, phases, faults?.applied.map(toInjected) ?? []);
    return { ...out, run } as RunOutput;
  } finally {
    interrupted.delete(teardown);
    await teardown();
  }
}

/** Tear-downs of the runs in progress, for `interruptRehearsals` (Ctrl-C). */
const interrupted = new Set<() => Promise<void>>();

/** Stop every run in progress: faults removed, app, k6, servers, proxies and lab folders gone. */
export async function interruptRehearsals(): Promise<void> {
  await Promise.allSettled([...interrupted].map((t) => t()));
}

/** A role difference that the fence itself made (NOLOGIN / read-only on the old side's app role). */
function isFenceArtefact(f: any): boolean {
  return f.category === 'schema' && f.object === `role ${APP_ROLE}` || (f.category === 'settings' && String(f.object).includes(APP_ROLE));
}

function toInjected(f: import('../faults.ts').AppliedFault): InjectedFault {
  return {
    kind: f.kind,
    ...(f.hop ? { hop: f.hop } : {}),
    ...(f.target ? { target: f.target } : {}),
    atMs: Math.round(f.atMs),
    ...(f.durationMs !== undefined ? { durationMs: f.durationMs } : {}),
    ...(f.attributes && Object.keys(f.attributes).length ? { attributes: f.attributes } : {}),
  };
}

function toReportFinding(f: any): DriftFinding {
  const scalar = (v: unknown) => (v === undefined ? undefined : v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v));
  const o: DriftFinding = { category: f.category, severity: f.severity, object: String(f.object ?? ''), message: String(f.message ?? '') };
  const ov = scalar(f.old);
  const nv = scalar(f.new);
  if (ov !== undefined) o.old = ov as any;
  if (nv !== undefined) o.new = nv as any;
  if (f.hint) o.hint = String(f.hint);
  return o;
}

function failedRun(index: number, startedAt: string, durationMs: number, error: string, phases: PhaseTiming[], faults: InjectedFault[]): Run {
  const zero = { p50: 0, p99: 0, max: 0, count: 0 };
  const t0 = phases[0]?.startMs ?? 0;
  return {
    index,
    startedAt,
    durationMs,
    pass: false,
    error,
    downtimeMs: 0,
    errorWindowMs: 0,
    stallWindowMs: 0,
    lostWrites: 0,
    unexpectedWrites: 0,
    recoveredWrites: 0,
    duplicateWrites: 0,
    splitBrainWrites: 0,
    droppedIterations: 0,
    requests: { total: 0, ok: 0, failed: 0, indeterminate: 0 },
    latency: { switch: zero, calm: zero },
    phases: phases.map((p) => ({ name: p.name, startMs: p.startMs - t0, endMs: p.endMs - t0, outcome: p.outcome })),
    timeline: [],
    faults,
    budgets: [],
  };
}

