/**
 * `cutover rehearse`: run a scenario's cutover again and again under real load and real faults and
 * say, from the client's side, how long it was down and whether anything was lost.
 *
 * One run is a pipeline of small steps (steps.ts) sharing one AsyncDisposableStack, so teardown is
 * declared where each resource is made and always runs in reverse (also on failure or Ctrl-C):
 *   lab (golden clone of old + fresh new + Toxiproxy) → app role and tables on old
 *   → [load.during: sync: DNS, app, faults, k6 start here, so copy, post-data, catch-up and the
 *      switch all run under load] → schema pre-data → replication → sync → post-data
 *   → [drift before, first run] → [load.during: cutover: DNS, app, faults, k6 start here]
 *   → at switchAt: `cutover switchover` as a child process (phase events on a pipe arm the
 *     phase-bound faults; kill -9'd by a fault → resumed from its state file)
 *   → the load runs on past the switch → measure → [drift after] → tear down.
 * Runs are sequential: two cores cannot host two labs without measuring each other.
 */
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus, totalmem, platform, release } from 'node:os';
import { loadScenario } from '../../scenarios/load.ts';
import type { Scenario } from '../../scenarios/schema.ts';
import { ensureGolden, type Golden } from '../golden.ts';
import { cloneSupport } from '../clone.ts';
import type { Lab } from '../lab.ts';
import { findTool, toolVersion } from '../tools.ts';
import { CutoverError, describeError } from '../../migration/errors.ts';
import { withClient } from '../../migration/pg.ts';
import { parseK6Json, assertAcknowledgedWrites } from '../../load/outcomes.ts';
import { checkRun, checkRunWithAckQuery } from '../../load/check.ts';
import { measureRun, crashedRun, aggregate, verdict, rollbackSplitMs } from './measure-run.ts';
import { notMeasured, valueOf, SCHEMA_VERSION, type Report, type Run, type DriftStage, type NotMeasured, type DriftFinding, type Replication } from '../../reports/model.ts';
import { writeReports } from '../../reports/index.ts';
import { LabAsyncDisposableStack } from '../disposable.ts';
import { sleep } from '../net.ts';
import { resetServers, checkExternalServers } from './external.ts';
import {
  newRunState, enter, startRunLab, shadowStep, prepareOld, replicate, driftStep, startLoad, switchoverStep, finishLoad, toFaultSpecs, toInjected, faultsAsInjected, detectFaultConflicts, cleanupReplication, faultLeftovers, followReverse,
  type RunContext, type RunState, type ProgressEvent, type Load, type SwitchoverStep,
  APP_ROLE as APP_ROLE_NAME,
} from './steps.ts';

export { DB_NAME, APP_ROLE, type ProgressEvent } from './steps.ts';

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

export interface RehearsalResult {
  report: Report;
  outDir: string;
  pass: boolean;
  files: string[];
  /** Over the runs whose downtime could be trusted; undefined when none could (crashed or saturated). */
  downtime: { medianMs: number; p95Ms: number; maxMs: number } | undefined;
  /** Over the runs that checked; `unmeasured` runs could not (their losses are unknown, and they fail). */
  lostWrites: { total: number; max: number; unmeasured: number };
}

/** Rehearse a scenario `runs` times; writes report.json (+ html, pdf, md, junit) into outDir. */
export async function rehearse(scenarioOrFile: string | Scenario, opts: RehearseOptions = {}): Promise<RehearsalResult> {
  const scenario = typeof scenarioOrFile === 'string' ? await loadScenario(scenarioOrFile) : scenarioOrFile;
  const runs = opts.runs ?? scenario.runs;
  if (!Number.isInteger(runs) || runs < 1) throw new CutoverError('USAGE', `--runs must be a whole number ≥ 1 (got ${opts.runs})`);
  if (scenario.clusters.provider === 'external' && runs > 1 && !scenario.clusters.reset)
    throw new CutoverError('CONFIG', `scenario ${scenario.name}: ${runs} runs on external servers need a way back to the starting point between runs (the first run changes their data: the load's writes, the fence, the sequences)`, {
      hint: 'add clusters.reset: { command: … } (restore a snapshot, re-create the databases from a template, truncate…), or rehearse with --runs 1',
    });
  // external servers: every bad URL, privilege, table or collision named before anything is touched
  if (scenario.clusters.provider === 'external') await checkExternalServers(scenario, APP_ROLE_NAME);
  // clone-then-follow: refuse a pair without its pg_upgrade / old control tools before anything starts
  if (scenario.migration.initialSync === 'clone') cloneSupport(scenario.clusters.old.major, scenario.clusters.new.major);
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

  // Embedded clusters clone a golden copy (seeded once); containers are seeded in every run.
  progress(0, { embedded: 'golden snapshot', docker: 'images', external: 'external servers' }[scenario.clusters.provider]);
  const golden = scenario.clusters.provider === 'embedded' ? await ensureGolden(scenario, { log, progress: 'silent' }) : undefined;
  const results: Run[] = [];
  const skippedDrift = { skipped: opts.drift === false ? 'drift checks turned off (--no-drift)' : 'not run' };
  let drift: { before: DriftStage; after: DriftStage } = { before: skippedDrift, after: skippedDrift };
  let versions = { old: '', new: '' };
  for (let i = 1; i <= runs; i++) {
    if (opts.signal?.aborted) break;
    runStarted = Date.now();
    const r = await runOnce(scenario, golden, i, runs, { outDir, log, progress, withDrift: opts.drift !== false && i === 1, signal: opts.signal });
    runMs.push(Date.now() - runStarted);
    results.push(r.run);
    if (r.driftBefore) drift = { ...drift, before: r.driftBefore };
    if (r.driftAfter) drift = { ...drift, after: r.driftAfter };
    if (r.versions) versions = r.versions;
    log(`run ${i}/${runs}: ${r.run.pass ? 'pass' : 'NO-GO'} downtime ${fmt(r.run.downtimeMs)} (errors ${fmt(r.run.errorWindowMs)}, stall ${fmt(r.run.stallWindowMs)}), lost ${fmt(r.run.lostWrites, '')}${r.run.error ? `, ${r.run.error}` : ''}`);
  }
  const report = buildReport(scenario, runs, results, drift, await environment(versions));
  const files = await writeReportFiles(report, outDir, opts.formats);
  const a = report.aggregate;
  const dt = valueOf(a.downtimeMs);
  const lost = valueOf(a.lostWrites);
  return {
    report,
    outDir,
    pass: report.verdict.pass,
    files,
    downtime: dt ? { medianMs: dt.median, p95Ms: dt.p95, maxMs: dt.max } : undefined,
    lostWrites: { total: results.reduce((s, r) => s + (valueOf(r.lostWrites) ?? 0), 0), max: lost?.max ?? 0, unmeasured: results.filter((r) => valueOf(r.lostWrites) === undefined).length },
  };
}

const fmt = (v: Run['downtimeMs'], unit = ' ms') => (typeof v === 'number' ? `${v}${unit}` : 'not measured');

function buildReport(scenario: Scenario, runs: number, results: Run[], drift: { before: DriftStage; after: DriftStage }, environment: Report['environment']): Report {
  return {
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
      load: { rate: scenario.load.rate, durationMs: scenario.load.durationMs, readRatio: scenario.load.readRatio, retry: scenario.load.retry, during: scenario.load.during },
      budgets: {
        maxErrorWindowMs: scenario.budgets.maxErrorWindowMs,
        maxStallMs: scenario.budgets.maxStallMs,
        maxLostWrites: scenario.budgets.maxLostWrites,
        maxDuplicateWrites: scenario.budgets.maxDuplicateWrites,
        allowedDrift: scenario.budgets.allowedDrift,
        ...(scenario.budgets.maxWalRetainedBytes !== undefined ? { maxWalRetainedBytes: scenario.budgets.maxWalRetainedBytes } : {}),
        ...(scenario.budgets.maxXminAge !== undefined ? { maxXminAge: scenario.budgets.maxXminAge } : {}),
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
    environment,
    runs: results,
    aggregate: aggregate(results),
    verdict: verdict(results, drift.before, scenario.budgets.allowedDrift),
    drift,
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

interface RunOutput {
  run: Run;
  driftBefore?: DriftFinding[] | NotMeasured;
  driftAfter?: DriftFinding[] | NotMeasured;
  versions?: { old: string; new: string };
}

/** The runs in progress (their teardown stacks, and when they have ended), for `interruptRehearsals` (Ctrl-C). */
const inProgress = new Set<{ stack: LabAsyncDisposableStack; ended: Promise<unknown> }>();

/**
 * Stop every run in progress: faults removed, app, k6, servers, proxies and lab folders gone — and
 * on external servers what the lab created there. Waits (up to 20 s) for the interrupted run to
 * end, so an object its step was creating meanwhile is removed too (runOnce sweeps once more).
 */
export async function interruptRehearsals(): Promise<void> {
  await Promise.allSettled([...inProgress].map(async (p) => {
    await p.stack.disposeAsync();
    await Promise.race([p.ended, sleep(20_000)]);
  }));
}

/**
 * One run, and on external servers what it made there removed (the sweep in its teardown; after
 * an interruption once more when the interrupted step has ended). A run that leaves any of it
 * behind fails.
 */
async function runOnce(s: Scenario, golden: Golden | undefined, index: number, runs: number, ctx: RunContext): Promise<RunOutput> {
  const r = newRunState(s, golden, index, runs, ctx);
  let ended!: () => void;
  const entry = { stack: r.stack, ended: new Promise<void>((res) => (ended = res)) };
  inProgress.add(entry);
  // an abort (the library's signal, the CLI's Ctrl-C) tears the run down at once, as Ctrl-C does
  const onAbort = () => void r.stack.disposeAsync().catch(() => {});
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const out = await runSteps(r, index);
    if (r.ledger && ctx.signal?.aborted) {
      r.externalCleanup = mergeCleanup(await r.ledger.sweep(r.log), r.externalCleanup);
      r.ledger.write(join(r.runDir, 'external-ledger.json'), r.externalCleanup);
    }
    if (r.externalCleanup) addCleanup(out.run, r.externalCleanup);
    if (r.serverLogs) out.run.serverLogs = r.serverLogs;
    return out;
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    inProgress.delete(entry);
    ended();
  }
}

/** What the teardown removed from external servers goes into the run's cleanup; anything left fails the run. */
function addCleanup(run: Run, c: { dropped: string[]; remaining: string[] }): void {
  const had = run.cleanup ?? { dropped: [], remaining: [] };
  const remaining = c.remaining.filter((x) => !had.remaining.includes(x));
  run.cleanup = { ...had, dropped: [...had.dropped, ...c.dropped], remaining: [...had.remaining, ...remaining] };
  if (remaining.length) run.pass = false;
}

const mergeCleanup = (late: { dropped: string[]; remaining: string[] }, first?: { dropped: string[]; remaining: string[] }) => ({ dropped: [...(first?.dropped ?? []), ...late.dropped], remaining: late.remaining });

/** The steps in order; whatever they started is torn down when the stack goes out of scope. */
async function runSteps(r: RunState, index: number): Promise<RunOutput> {
  const { s, ctx } = r;
  await using stack = r.stack;
  const out: Partial<RunOutput> = {};
  try {
    // external servers: back to where the first run started (clusters.reset), before anything else
    if (index > 1 && s.clusters.provider === 'external') {
      enter(r, 'reset');
      await resetServers(s, r.runDir, r.log, ctx.signal);
    }
    const { lab, labDir, versions } = await startRunLab(r);
    out.versions = versions;
    await prepareOld(r, lab);
    const duringSync = s.load.during === 'sync';
    let load = duringSync ? await startLoad(r, lab, labDir, true) : undefined;
    const replication = await replicate(r, lab, duringSync);
    if (ctx.withDrift) out.driftBefore = await driftStep(r, lab, 'before', duringSync);
    load ??= await startLoad(r, lab, labDir, false);
    // load.during sync: switchAt and duration count from the end of post-data (the sync's length is
    // not known in advance); otherwise from the start of the load
    const t0 = duringSync ? replication.doneAtMs : load.startMs;
    // shadow reads while replication carries the load, before the switch
    const shadow = await shadowStep(r, lab, load.startMs);
    const so = await switchoverStep(r, lab, load, t0 + s.load.switchAtMs);
    if (s.migration.reverseReplication && so.result?.outcome === 'completed') await followReverse(r, lab, load);
    // migration.rollbackAfter: back to the old primary under the same load, over the reverse replication
    const rb = s.migration.rollbackAfterMs !== null && so.result?.outcome === 'completed' ? await switchoverStep(r, lab, load, Date.now() + s.migration.rollbackAfterMs, 'rollback') : undefined;
    // the load we stop ourselves runs on after the switch at least as long as the scenario planned
    // (a switchover that started late on a busy machine still gets watched to its end)
    const stopAt = Math.max(t0 + s.load.durationMs, Date.now() + s.load.durationMs - s.load.switchAtMs);
    const finished = await finishLoad(r, load, duringSync ? stopAt : undefined);
    if (ctx.withDrift) out.driftAfter = await driftStep(r, lab, 'after');
    const { doneAtMs, ...rep } = replication;
    await detectFaultConflicts(r, lab, load.faults.applied);
    out.run = await measureStep(r, lab, load, so, finished, { replication: rep, calmFromMs: duringSync ? doneAtMs : undefined, driftAfter: out.driftAfter, rollback: rb, shadow });
    return out as RunOutput;
  } catch (e) {
    const why = describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0];
    // after an interruption a step fails because its lab went away under it: the interruption is the cause
    const error = ctx.signal?.aborted ? `interrupted: the run was stopped and torn down (then: ${why})` : why;
    r.log(`failed in step ${r.step}: ${error}`);
    const run = crashedRun({ index, startedAt: r.startedAt, durationMs: Date.now() - r.startedMs, step: r.step, error, phases: r.phases, faults: r.faults?.applied.map(toInjected) ?? [], loadStartMs: r.loadStartMs, clusterTimeline: r.timeline?.snapshot() });
    return { ...out, run };
  }
}

/**
 * The address a server sees itself on (`inet_server_addr()`, what the sample app writes into
 * written_on): the lab's own clusters listen on their record's address; an external server's URL
 * may name a host, so it is asked (undefined when it cannot say: every row then counts as its own).
 */
async function serverAddress(r: RunState, lab: Lab, side: 'old' | 'new'): Promise<string | undefined> {
  if (r.s.clusters.provider !== 'external') return lab[side].record.host;
  return withClient(lab[side].url, async (c) => (await c.query<{ a: string | null }>(`select host(inet_server_addr()) as a`)).rows[0].a ?? undefined).catch(() => undefined);
}

/** The client's log and what the databases hold → the run's figures (measure-run.ts). */
async function measureStep(
  r: RunState,
  lab: Lab,
  load: Load,
  so: SwitchoverStep,
  finished: Awaited<ReturnType<typeof finishLoad>>,
  extra: { replication: Replication; calmFromMs?: number; driftAfter?: DriftFinding[] | NotMeasured; rollback?: SwitchoverStep; shadow?: Run['shadow'] },
): Promise<Run> {
  enter(r, 'measure');
  const parsed = await parseK6Json(finished.k6.pointsFile);
  // A switchover that rolled back leaves the old primary serving: acknowledged writes are judged
  // there, and writes it took after the unfence are not split-brain but business as usual.
  const rolledBack = so.result?.outcome === 'rolled-back';
  const why = (e: unknown) => describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0];
  // with a rollback leg the forward check covers the writes before the split (after it, traffic
  // went back to the old primary: its writes there are not split-brain, and the new one never saw them)
  const rb = extra.rollback;
  const split = rb ? rollbackSplitMs(so.phases, rb.phases) : undefined;
  const fwdOps = split === undefined ? parsed.ops : parsed.ops.filter((o) => o.startMs < split);
  const judged = { newUrl: rolledBack ? lab.old.url : lab.new.url, oldUrl: rolledBack ? undefined : lab.old.url, fenceAtMs: rolledBack ? undefined : so.fenceAtMs, oldServerAddr: await serverAddress(r, lab, 'old') };
  // The sample app's writes are found in its own tables; a user app's through the scenario's
  // ack.query, from the keys its k6 script acknowledged (the cutover_op/cutover_ack contract).
  const check = (ops: typeof parsed.ops, j: typeof judged): Promise<Awaited<ReturnType<typeof checkRun>>> => {
    if (r.s.app === 'sample') return checkRun({ ops, ...j, runId: r.runId });
    assertAcknowledgedWrites(parsed, r.s.load.script);
    return checkRunWithAckQuery({ ops, query: r.s.ack!.query, newUrl: j.newUrl, oldUrl: j.oldUrl, fenceAtMs: j.fenceAtMs });
  };
  const ackError = (e: unknown, side: string) =>
    notMeasured(e instanceof CutoverError && e.code === 'CONFIG' ? `${why(e)}${e.hint ? ` — ${e.hint}` : ''}` : `the ${side} primary could not be read for the acknowledged-write check: ${why(e)}`);
  const ack = await check(fwdOps, judged)
    .then((a) => {
      if (split === undefined) return a;
      const later = new Set(parsed.ops.filter((o) => o.startMs >= split).map((o) => o.id));
      return { ...a, splitBrain: a.splitBrain.filter((id) => !later.has(id)) };
    })
    .catch((e) => ackError(e, rolledBack ? 'old' : 'new'));
  // the rollback leg: every acknowledged write of the run must be on the old primary at the end;
  // split-brain = rows the new primary itself accepted after the rollback's fence
  const rbAck = rb ? await check(parsed.ops, { newUrl: lab.old.url, oldUrl: lab.new.url, fenceAtMs: rb.fenceAtMs, oldServerAddr: await serverAddress(r, lab, 'new') }).catch((e) => ackError(e, 'old')) : undefined;
  const error = so.error ?? finished.error;
  // after the acknowledged-write check (dropping the subscription stops what is still in flight),
  // and once every fault is removed: a server killed for good is back, so both sides can be
  // cleaned and checked; then what the faults and the switchover left is looked for too
  await load.faults.clear();
  const cleanup = await cleanupReplication(r, lab);
  // where traffic should be: a completed rollback leg took it back to the old side
  const serving = rb ? (rb.result?.outcome === 'completed' ? 'rolled-back' : undefined) : so.result?.outcome;
  cleanup.remaining.push(...(await faultLeftovers(r, lab, load, serving)));
  return measureRun(
    {
      index: r.index,
      loadStartMs: load.startMs,
      loadEndMs: Math.max(finished.endMs, ...parsed.ops.map((o) => o.endMs)),
      startedAt: r.startedAt,
      durationMs: Date.now() - r.startedMs,
      ops: parsed.ops,
      droppedAt: parsed.droppedIterations.timesMs,
      ack,
      phases: so.phases,
      ...(so.switchChangedAtMs !== undefined ? { switchChangedAtMs: so.switchChangedAtMs } : {}),
      ...(so.swapMs !== undefined ? { switchSwapMs: so.swapMs } : {}),
      appAddressChangesMs: load.app.addressChangesMs(),
      ...(load.faults.liftedAtMs !== undefined ? { faultsLiftedAtMs: load.faults.liftedAtMs } : {}),
      faults: faultsAsInjected(r.s, load.faults.applied, finished.endMs - load.startMs),
      lagSamples: load.lagSamples,
      switchover: so.info,
      ...(error ? { error } : {}),
      ...(extra.driftAfter ? { driftAfter: extra.driftAfter } : {}),
      ...(extra.shadow ? { shadow: extra.shadow } : {}),
      replication: extra.replication,
      ...(load.clusterTimeline ? { clusterTimeline: load.clusterTimeline } : {}),
      cleanup,
      ...(rb ? { rollback: { phases: rb.phases, ...(rbAck ? { ack: rbAck } : {}), ...(rb.error ? { error: rb.error } : {}) } } : {}),
      ...(extra.calmFromMs !== undefined ? { calmFromMs: extra.calmFromMs } : {}),
    },
    r.s,
  );
}
