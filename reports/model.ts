/**
 * The report model: what `cutover rehearse` writes to report.json and the only input every renderer
 * takes. Versioned (`schemaVersion`), parsed once at the edge by `validateReport`, documented field by
 * field in reports/README.md, and published as a JSON Schema (reports/report.schema.json) generated
 * from this file with `node bin/run-ts.mjs reports/model.ts --write-schema`.
 *
 * This module imports neither migration/ nor lab/: a report is plain data.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { summarise } from './stats.ts';

/**
 * 2: a figure that could not be measured is `{ "notMeasured": "<why>" }` instead of a number (v1
 * wrote 0); runs carry `saturation`, `droppedIterations` is split into cutover and background, the
 * aggregate's Stats say how many runs entered them (`n`) and leave out crashed and saturated runs.
 */
export const SCHEMA_VERSION = 2 as const;
// Added within version 2 (optional, so no bump — reports/README.md "Schema and validation"): runs'
// `clusterTimeline` and `cleanup`, injected faults' `effect`, `recovery`, `outcome`, `detection`,
// scenario budgets `maxWalRetainedBytes` and `maxXminAge`; runs' `blockedWindow` and the aggregate's
// `blockedWindowMs`.

const ms = z.number().finite().nonnegative();
const count = z.number().int().nonnegative();
const name = z.string().min(1);
/** An offset in ms from the run's load start; negative when something happened before load began. */
const offsetMs = z.number().finite();

/**
 * A figure that could not be measured, and why ("the old primary could not be read: …"). Never a
 * zero: a reader (or a verdict) that sees this knows nothing was proven.
 */
export const NotMeasured = z.strictObject({ notMeasured: z.string().min(1) });
export type NotMeasured = z.infer<typeof NotMeasured>;

/** `T` or NotMeasured. */
function measured<T extends z.ZodType>(t: T) {
  return z.union([t, NotMeasured]);
}

/** A figure of type T, or why it is missing. */
export type Measured<T> = T | NotMeasured;

export function notMeasured(reason: string): NotMeasured {
  return { notMeasured: reason };
}

export function isNotMeasured(v: unknown): v is NotMeasured {
  return typeof v === 'object' && v !== null && 'notMeasured' in v;
}

export function isMeasured<T>(v: Measured<T>): v is T {
  return !isNotMeasured(v);
}

/** The value, or undefined when it was not measured. */
export function valueOf<T>(v: Measured<T> | undefined): T | undefined {
  return v === undefined || isNotMeasured(v) ? undefined : v;
}

/**
 * Summary of one figure across the runs that measured it (`n` of them). p95 is nearest-rank (the
 * smallest value ≥ 95 % of runs). reports/stats.ts computes it.
 */
export const Stat = z.strictObject({
  median: z.number().finite(),
  p95: z.number().finite(),
  max: z.number().finite(),
  min: z.number().finite(),
  mean: z.number().finite(),
  n: z.number().int().positive(),
});

export const Severity = z.enum(['error', 'warning', 'info']);

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const DriftFinding = z.strictObject({
  /** schema | collation | timezone | encoding | settings | data | incompatibility | behaviour (open set) */
  category: name,
  severity: Severity,
  /** what the finding is about, e.g. `public."Orders".created_at` or `database app` */
  object: z.string(),
  old: scalar.optional(),
  new: scalar.optional(),
  message: z.string(),
  hint: z.string().optional(),
  /** A grouped finding (one cause across many objects): every object it covers; `object` names the first. */
  objects: z.array(z.string()).optional(),
});

const attributes = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

/** A fault as planned by the scenario: at a time (atMs) or at a phase (phase), optionally for a while. */
export const ScenarioFault = z.strictObject({
  /** latency | bandwidth | timeout | reset_peer | slicer | limit_data | partition | kill (open set) */
  kind: name,
  /** app-old | app-new | replication (Toxiproxy hop) */
  hop: z.string().optional(),
  /** for process faults: old | new | app | switchover */
  target: z.string().optional(),
  atMs: offsetMs.optional(),
  phase: z.string().optional(),
  durationMs: ms.optional(),
  attributes: attributes.optional(),
});

/** A fault as it was actually injected in one run. */
export const InjectedFault = z.strictObject({
  kind: name,
  hop: z.string().optional(),
  target: z.string().optional(),
  /** the phase it was bound to, when it fired on a phase start */
  phase: z.string().optional(),
  atMs: offsetMs,
  durationMs: ms.optional(),
  attributes: attributes.optional(),
  /** it could not be applied (or removed): the run did not rehearse what the scenario asks */
  error: z.string().optional(),
  /** database faults: what the fault did or found, one line ("column channel exists on the source only: apply stops …") */
  effect: z.string().optional(),
  /** conflict: how to get apply going again, the lossless way first */
  recovery: z.string().optional(),
  /** database faults: the measured result (long-transaction `{outcome, heldMs, …}`, burst `{rowsWritten, ms, rate}`, ddl `{breaksApply, findings}`, conflict `{table, mode, keys}`) */
  outcome: z.record(z.string(), z.unknown()).optional(),
  /** conflict: what the subscriber showed when the run ended */
  detection: z
    .strictObject({
      detected: z.boolean(),
      /** pg_stat_subscription_stats, a disabled subscription, the subscriber log */
      via: z.array(z.string()),
      /** the subscriber log's ERROR line */
      message: z.string().optional(),
      /** the failed remote transaction's finish LSN (for ALTER SUBSCRIPTION … SKIP) */
      finishLsn: z.string().optional(),
    })
    .optional(),
});

export const Scenario = z.strictObject({
  name,
  description: z.string().optional(),
  file: z.string().optional(),
  runs: z.number().int().positive(),
  provider: name,
  oldMajor: z.number().int().min(9),
  newMajor: z.number().int().min(9),
  /** switch strategy: dns | proxy | pgbouncer | command */
  switch: name,
  /** fence strategy: terminate | read-only | pause */
  fence: name,
  /** publication mode: all-tables | incremental */
  publication: name,
  dataset: z.strictObject({ preset: name, scale: z.number().nonnegative() }),
  load: z.strictObject({
    /** arrival rate, requests per second */
    rate: z.number().nonnegative(),
    durationMs: ms,
    /** share of reads, 0..1 */
    readRatio: z.number().min(0).max(1),
    /** the sample app's retry policy: none | bounded (open set) */
    retry: name,
    /** when the load starts: `cutover` (after the sync and post-data) or `sync` (before replication starts) */
    during: z.enum(['sync', 'cutover']),
  }),
  budgets: z.strictObject({
    maxErrorWindowMs: ms,
    maxStallMs: ms,
    maxLostWrites: count,
    maxDuplicateWrites: count,
    /** the highest drift severity tolerated: 'none' fails on any finding, 'warning' fails on errors only */
    allowedDrift: z.enum(['none', 'info', 'warning', 'error']),
    /** the most WAL the forward slot may retain on the old primary at any second of the run */
    maxWalRetainedBytes: count.optional(),
    /** the highest age (transactions) of the slot's xmin / catalog_xmin at any second of the run */
    maxXminAge: count.optional(),
  }),
  faults: z.array(ScenarioFault),
});

export const Environment = z.strictObject({
  /** server_version of the old and new primaries, e.g. "11.22" and "17.4" */
  oldVersion: z.string(),
  newVersion: z.string(),
  node: z.string(),
  k6: z.string().optional(),
  toxiproxy: z.string().optional(),
  os: z.string(),
  cpus: count,
  memGiB: z.number().nonnegative(),
  /** CPU model or host description */
  machine: z.string().optional(),
});

export const PhaseOutcome = z.enum(['ok', 'failed', 'skipped', 'aborted']);

export const Phase = z.strictObject({
  name,
  startMs: offsetMs,
  endMs: offsetMs,
  outcome: PhaseOutcome,
  detail: z.string().optional(),
});

export const LatencySummary = z.strictObject({ p50: ms, p99: ms, max: ms, count });

/**
 * Could the lab sustain the load? Measured in the calm interval before the cutover (reports/README.md
 * "Saturation" gives the interval and the thresholds). A saturated run's downtime figures are not
 * trustworthy: it fails with that reason and stays out of the aggregate's downtime figures.
 */
export const Saturation = z.strictObject({
  calm: z.strictObject({ startMs: offsetMs, endMs: offsetMs }),
  /** the scenario's arrival rate */
  requestedPerSec: z.number().nonnegative(),
  /** successful requests completed per second in the calm interval */
  achievedPerSec: z.number().nonnegative(),
  /** iterations k6 could not start in the calm interval */
  dropped: count,
  /** latency p99 of the requests in the calm interval */
  p99Ms: ms,
  saturated: z.boolean(),
  /** the thresholds crossed (empty when not saturated) */
  reasons: z.array(z.string()),
});

const Percentiles = z.strictObject({ p50: ms, p95: ms, p99: ms, count });

/**
 * The first seconds on the new primary (issue 19: statistics are not replicated, so the first
 * queries after the switch can get bad plans): latency of the successful requests that started in
 * the first 10 s after resume (fewer when the load ended sooner) beside the calm interval before
 * the cutover (the saturation's), and their ratio per percentile.
 */
export const AfterSwitch = z.strictObject({
  /** the window measured, offsets from the load start: resume → resume + 10 s (or the load's last request) */
  window: z.strictObject({ startMs: offsetMs, endMs: offsetMs }),
  first: Percentiles,
  calm: Percentiles,
  /** first ÷ calm per percentile; null where the calm figure is 0 ms */
  ratio: z.strictObject({ p50: z.number().nonnegative().nullable(), p95: z.number().nonnegative().nullable(), p99: z.number().nonnegative().nullable() }),
  /** the switchover's readiness phase (ANALYZE, warm-up) was on for this run */
  readiness: z.boolean(),
});

/**
 * Where the write-blocked window went, part by part (reports/README.md "Write-blocked window"): the
 * switchover's phases between fence and resume, then what the client did after the switch. Each
 * part is a duration in ms, or why it could not be had (the phase did not run, the app does not
 * say when it re-resolved, the switch has no name to re-resolve).
 */
export const BlockedWindow = z.strictObject({
  /** the fence phase: the app roles locked out, their sessions ended (or the pooler paused) */
  fenceMs: measured(ms),
  /** the sentinel round trip through the replication (the last write before the fence has arrived) */
  sentinelMs: measured(ms),
  /** the sequences phase */
  sequencesMs: measured(ms),
  /** switch phase start → the switch moved traffic (dns: the record changed) */
  switchMs: measured(ms),
  /**
   * Of switchMs: swapping the replication direction (forward subscription stopped and dropped, the
   * reverse one prepared in the catch-up enabled); absent in reports written before it existed.
   */
  swapMs: measured(ms).optional(),
  /** the switch phase's own wait after the change (dns: one TTL, so resolvers drop the old answer) */
  switchWaitMs: measured(ms),
  /** the resume phase */
  resumeMs: measured(ms),
  /** the change → the app's first connection to the new address (its resolver's cache, the TTL) */
  reResolveMs: measured(ms),
  /** the app's move to the new address → its first acknowledged write there (pool re-connect) */
  reconnectMs: measured(ms),
  /** resume's end → the first success after the last failure (0: clients stopped failing before resume ended) */
  afterResumeMs: measured(ms),
});

/** The parts of BlockedWindow, in the order they happen. */
export const BLOCKED_PARTS = ['fenceMs', 'sentinelMs', 'sequencesMs', 'switchMs', 'swapMs', 'switchWaitMs', 'resumeMs', 'reResolveMs', 'reconnectMs', 'afterResumeMs'] as const;

/** k6 iterations that could not start, split by whether they cluster in the cutover (reports/README.md). */
export const Dropped = z.strictObject({ total: count, cutover: count, background: count });

/** The replication steps of a run and whether the load ran during them (`load.during: sync`). */
export const Replication = z.strictObject({
  underLoad: z.boolean(),
  /** replication start → every table synchronised (initial copy and catch-up) */
  syncMs: measured(ms),
  /** indexes, constraints and the rest of post-data on the new side (clone: 0, the copy brought them) */
  postDataMs: measured(ms),
  /** copy: a fresh new cluster filled by the logical initial copy; clone: clone-then-follow (absent: copy) */
  initialSync: z.enum(['copy', 'clone']).optional(),
  /** clone-then-follow's steps, inside syncMs: the slot's consistent point and how long each step took */
  clone: z.strictObject({ lsn: z.string(), basebackupMs: ms, recoverMs: ms, upgradeMs: ms, startMs: ms }).optional(),
});

export const TimelinePoint = z.strictObject({
  tMs: offsetMs,
  okPerSec: z.number().nonnegative(),
  failPerSec: z.number().nonnegative(),
  /** null when no request completed in the bucket */
  latencyP99Ms: ms.nullable(),
  lagBytes: z.number().nonnegative().nullable().optional(),
});

/** Apply worker state on the new side: `down` = enabled but no worker (it exits on each error and restarts). */
export const ApplyState = z.enum(['streaming', 'syncing', 'down', 'disabled', 'missing', 'unknown']);

const perSide = <T extends z.ZodType>(t: T) => z.strictObject({ old: t.nullable(), new: t.nullable() });

/**
 * One second of what the clusters went through (migration/timeline.ts samples it). `tMs` has the
 * client timeline's origin (the load start), so both share the x axis. A side that did not answer
 * (a kill fault) gives nulls.
 */
export const ClusterTimelinePoint = z.strictObject({
  tMs: offsetMs,
  /** WAL the forward slot keeps on the old primary (pg_current_wal_lsn − restart_lsn) */
  walRetainedBytes: z.number().nonnegative().nullable(),
  /** pg_current_wal_lsn − confirmed_flush_lsn (may be slightly negative across a sample) */
  lagBytes: z.number().nullable(),
  lagSeconds: z.number().nonnegative().nullable(),
  applyState: ApplyState,
  /** pg_stat_subscription_stats.apply_error_count (15+ subscriber) */
  applyErrorCount: count.nullable(),
  /** max(age(xmin), age(catalog_xmin)) of the slot */
  xminAge: z.number().int().nullable(),
  datfrozenxidAge: perSide(z.number().int()),
  /** client connections per side */
  connections: perSide(z.number().int()),
  oldestXactSeconds: perSide(z.number()),
  /** cores used by each server's processes over the interval (1 = one core busy) */
  cpu: perSide(z.number().nonnegative()),
  /** which replication the slot, lag and apply figures are of: `reverse` (new → old) once a switch with reverse replication completed; absent = forward */
  replication: z.enum(['forward', 'reverse']).optional(),
});

export const BudgetResult = z.strictObject({
  /** maxErrorWindowMs | maxStallMs | maxLostWrites | maxDuplicateWrites | drift | … */
  name,
  /** the maximum allowed value; pass is `actual <= limit` (a figure that was not measured never passes) */
  limit: z.number().finite(),
  actual: measured(z.number().finite()),
  pass: z.boolean(),
  /** unit for display: ms | writes | findings */
  unit: z.string().optional(),
});

/**
 * The rollback leg (`migration.rollbackAfter`): `cutover rollback` under load after the switch. Its
 * windows come from the client log after the split between the two cutovers; `lostWrites` =
 * acknowledged writes (of the whole run) missing on the old primary at the end; `splitBrainWrites`
 * = rows the new primary itself accepted after the rollback's fence.
 */
export const RollbackLeg = z.strictObject({
  downtimeMs: measured(ms),
  errorWindowMs: measured(ms),
  stallWindowMs: measured(ms),
  errorWindow: z.strictObject({ startMs: offsetMs, endMs: offsetMs }).optional(),
  lostWrites: measured(count),
  splitBrainWrites: measured(count),
  /** the rollback's phases (offsets from the load start) */
  phases: z.array(Phase),
  /** the rollback failed or rolled back itself: why */
  error: z.string().optional(),
});

export const Run = z.strictObject({
  /** 1-based run number */
  index: z.number().int().positive(),
  startedAt: z.iso.datetime({ offset: true }),
  durationMs: ms,
  pass: z.boolean(),
  /** the run crashed: why (its figures are not measured) */
  error: z.string().optional(),
  /** max(errorWindowMs, stallWindowMs): the longest time clients saw no successful write */
  downtimeMs: measured(ms),
  errorWindowMs: measured(ms),
  stallWindowMs: measured(ms),
  errorWindow: z.strictObject({ startMs: offsetMs, endMs: offsetMs }).optional(),
  lostWrites: measured(count),
  unexpectedWrites: measured(count),
  recoveredWrites: measured(count),
  duplicateWrites: measured(count),
  splitBrainWrites: measured(count),
  droppedIterations: measured(Dropped),
  requests: measured(z.strictObject({ total: count, ok: count, failed: count, indeterminate: count })),
  latency: measured(z.strictObject({ switch: LatencySummary, calm: LatencySummary })),
  saturation: measured(Saturation),
  /** the first 10 s after the switch vs the calm interval (absent in reports written before it existed) */
  afterSwitch: measured(AfterSwitch).optional(),
  replication: Replication.optional(),
  phases: z.array(Phase),
  /** the write-blocked window part by part (absent: a crashed run, or a report older than the field) */
  blockedWindow: BlockedWindow.optional(),
  timeline: z.array(TimelinePoint),
  faults: z.array(InjectedFault),
  budgets: z.array(BudgetResult),
  /** the rollback leg, when the scenario sets migration.rollbackAfter and the switch completed */
  rollback: RollbackLeg.optional(),
  /** the clusters' own timeline (WAL retained, lag, apply, xmin, connections, CPU), per second */
  clusterTimeline: z.array(ClusterTimelinePoint).optional(),
  /**
   * shadow reads (the scenario's queries file) run on both sides while replication carried the
   * load: mismatches per cause, latency old vs new per query, an event per mismatch (offset from
   * the load start); NotMeasured when they could not run
   */
  shadow: z
    .union([
      NotMeasured,
      z.strictObject({
        compared: z.number().int().nonnegative(),
        mismatches: z.number().int().nonnegative(),
        byCause: z.record(z.string(), z.number().int().nonnegative()),
        settled: z.number().int().nonnegative(),
        skipped: z.number().int().nonnegative(),
        perQuery: z.array(
          z.strictObject({
            query: z.string(),
            runs: z.number().int().nonnegative(),
            mismatches: z.number().int().nonnegative(),
            source: z.strictObject({ p50: z.number(), p95: z.number() }),
            target: z.strictObject({ p50: z.number(), p95: z.number() }),
          }),
        ),
        events: z.array(z.strictObject({ atMs: z.number(), query: z.string(), cause: z.string(), causes: z.array(z.string()), detail: z.string() })),
      }),
    ])
    .optional(),
  /** replication objects (slots, publications, subscriptions) removed after the run; `remaining` could not be */
  /** provider external: per server, where its log for the run went, or why it was not collected */
  serverLogs: z.array(z.string()).optional(),
  cleanup: z.strictObject({ dropped: z.array(z.string()), remaining: z.array(z.string()), notes: z.array(z.string()).optional() }).optional(),
  switchover: z
    .strictObject({
      lagAtFenceBytes: z.number().nonnegative().optional(),
      sentinelMs: ms.optional(),
      sequences: z.array(z.strictObject({ name, old: z.number(), new: z.number() })).optional(),
    })
    .optional(),
});

const AggStat = measured(Stat);

export const Aggregate = z.strictObject({
  runs: count,
  passedRuns: count,
  /** runs that crashed: none of their figures enters the Stats below */
  crashedRuns: count,
  /** runs whose lab could not sustain the load: their windows and latencies stay out of the Stats */
  saturatedRuns: count,
  downtimeMs: AggStat,
  errorWindowMs: AggStat,
  stallWindowMs: AggStat,
  lostWrites: AggStat,
  unexpectedWrites: AggStat,
  duplicateWrites: AggStat,
  splitBrainWrites: AggStat,
  droppedIterations: AggStat,
  droppedInCutover: AggStat,
  switchLatencyP99Ms: AggStat,
  /** first 10 s after the switch ÷ calm, per percentile, over the runs */
  afterSwitchRatioP50: AggStat,
  afterSwitchRatioP95: AggStat,
  afterSwitchRatioP99: AggStat,
  syncMs: AggStat,
  postDataMs: AggStat,
  /** duration (endMs − startMs) of each phase name across the runs that had it */
  phaseMs: z.record(z.string(), Stat),
  /** each part of the write-blocked window (BlockedWindow) over the trustworthy runs that measured it */
  blockedWindowMs: z.record(z.string(), Stat).optional(),
});

/** Drift findings of one stage, why they could not be had, or that they were not asked for. */
export const Skipped = z.strictObject({ skipped: z.string().min(1) });
const DriftStage = z.union([z.array(DriftFinding), NotMeasured, Skipped]);

export const ReportSchema = z
  .strictObject({
    schemaVersion: z.literal(SCHEMA_VERSION),
    generatedAt: z.iso.datetime({ offset: true }),
    tool: z.strictObject({ name: z.literal('cutover-lab'), version: z.string() }),
    scenario: Scenario,
    environment: Environment,
    runs: z.array(Run),
    aggregate: Aggregate,
    verdict: z.strictObject({ pass: z.boolean(), reasons: z.array(z.string()) }),
    drift: z.strictObject({ before: DriftStage, after: DriftStage }),
  })
  .superRefine((r, ctx) => crossFieldRules(r, ctx));

export type Stat = z.infer<typeof Stat>;
export type Severity = z.infer<typeof Severity>;
export type DriftFinding = z.infer<typeof DriftFinding>;
export type ScenarioFault = z.infer<typeof ScenarioFault>;
export type InjectedFault = z.infer<typeof InjectedFault>;
export type Scenario = z.infer<typeof Scenario>;
export type Environment = z.infer<typeof Environment>;
export type PhaseOutcome = z.infer<typeof PhaseOutcome>;
export type Phase = z.infer<typeof Phase>;
export type LatencySummary = z.infer<typeof LatencySummary>;
export type TimelinePoint = z.infer<typeof TimelinePoint>;
export type BudgetResult = z.infer<typeof BudgetResult>;
export type ClusterTimelinePoint = z.infer<typeof ClusterTimelinePoint>;
export type RollbackLeg = z.infer<typeof RollbackLeg>;
export type ApplyState = z.infer<typeof ApplyState>;
export type Saturation = z.infer<typeof Saturation>;
export type AfterSwitch = z.infer<typeof AfterSwitch>;
export type Dropped = z.infer<typeof Dropped>;
export type BlockedWindow = z.infer<typeof BlockedWindow>;
export type Replication = z.infer<typeof Replication>;
export type Skipped = z.infer<typeof Skipped>;
export type DriftStage = z.infer<typeof DriftStage>;
export type Run = z.infer<typeof Run>;
export type Aggregate = z.infer<typeof Aggregate>;
export type Report = z.infer<typeof ReportSchema>;

type Ctx = z.core.$RefinementCtx<unknown>;

/** Rules one field cannot express alone. Each issue carries the path of the offending value. */
function crossFieldRules(r: z.infer<z.ZodObject<any>>, ctx: Ctx): void {
  const report = r as unknown as Report;
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const seen = new Set<number>();
  report.runs.forEach((run, i) => {
    if (seen.has(run.index)) issue(['runs', i, 'index'], `duplicate run index ${run.index}`);
    seen.add(run.index);
    const ew = valueOf(run.errorWindowMs);
    const sw = valueOf(run.stallWindowMs);
    if (ew !== undefined && sw !== undefined) {
      const expected = Math.max(ew, sw);
      const dt = valueOf(run.downtimeMs);
      if (dt === undefined || Math.abs(dt - expected) > 0.5)
        issue(['runs', i, 'downtimeMs'], `downtimeMs must be max(errorWindowMs, stallWindowMs) = ${expected}, got ${JSON.stringify(run.downtimeMs)}`);
    } else if (isMeasured(run.downtimeMs)) issue(['runs', i, 'downtimeMs'], 'downtimeMs cannot be measured when the error or the stall window was not');
    if (run.rollback) {
      const rew = valueOf(run.rollback.errorWindowMs);
      const rsw = valueOf(run.rollback.stallWindowMs);
      const rdt = valueOf(run.rollback.downtimeMs);
      if (rew !== undefined && rsw !== undefined && (rdt === undefined || Math.abs(rdt - Math.max(rew, rsw)) > 0.5))
        issue(['runs', i, 'rollback', 'downtimeMs'], `downtimeMs must be max(errorWindowMs, stallWindowMs) = ${Math.max(rew, rsw)}, got ${JSON.stringify(run.rollback.downtimeMs)}`);
      if (run.pass && run.rollback.error) issue(['runs', i, 'pass'], 'run passes although its rollback failed');
    }
    const q = valueOf(run.requests);
    if (q && q.ok + q.failed + q.indeterminate !== q.total)
      issue(['runs', i, 'requests', 'total'], `total (${q.total}) must equal ok + failed + indeterminate (${q.ok + q.failed + q.indeterminate})`);
    const d = valueOf(run.droppedIterations);
    if (d && d.cutover + d.background !== d.total) issue(['runs', i, 'droppedIterations', 'total'], `total (${d.total}) must equal cutover + background (${d.cutover + d.background})`);
    if (run.errorWindow && run.errorWindow.endMs < run.errorWindow.startMs)
      issue(['runs', i, 'errorWindow', 'endMs'], 'endMs is before startMs');
    run.phases.forEach((p, j) => {
      if (p.endMs < p.startMs) issue(['runs', i, 'phases', j, 'endMs'], `phase "${p.name}" ends (${p.endMs}) before it starts (${p.startMs})`);
    });
    run.budgets.forEach((b, j) => {
      const a = valueOf(b.actual);
      const should = a !== undefined && a <= b.limit;
      if (b.pass !== should)
        issue(['runs', i, 'budgets', j, 'pass'], a === undefined ? 'a budget whose figure was not measured cannot pass' : `pass must be (actual <= limit): actual ${a}, limit ${b.limit}, pass ${b.pass}`);
      if (!b.pass && run.pass) issue(['runs', i, 'pass'], `run passes although budget "${b.name}" failed`);
    });
    if (run.pass && unmeasured(run).length) issue(['runs', i, 'pass'], `run passes although ${unmeasured(run)[0].figure} was not measured`);
    const sat = valueOf(run.saturation);
    if (run.pass && sat?.saturated) issue(['runs', i, 'pass'], 'run passes although its lab was saturated');
    if (run.pass && run.faults.some((f) => f.error)) issue(['runs', i, 'pass'], 'run passes although a fault could not be applied');
    if (run.pass && run.cleanup?.remaining.length) issue(['runs', i, 'pass'], `run passes although replication objects were left behind: ${run.cleanup.remaining.join(', ')}`);
  });
  for (const stage of ['before', 'after'] as const)
    if (report.verdict.pass && isNotMeasured(report.drift[stage])) issue(['verdict', 'pass'], `verdict passes although drift ${stage} the switch was not measured`);
  if (report.aggregate.runs !== report.runs.length)
    issue(['aggregate', 'runs'], `aggregate.runs (${report.aggregate.runs}) must equal the number of runs (${report.runs.length})`);
  const passed = report.runs.filter((x) => x.pass).length;
  if (report.aggregate.passedRuns !== passed)
    issue(['aggregate', 'passedRuns'], `aggregate.passedRuns (${report.aggregate.passedRuns}) must equal the runs with pass=true (${passed})`);
  if (report.verdict.pass && passed !== report.runs.length) issue(['verdict', 'pass'], 'verdict passes although some runs failed');
  if (!report.verdict.pass && report.verdict.reasons.length === 0) issue(['verdict', 'reasons'], 'a failing verdict needs at least one reason');
}

/** Thrown by validateReport: every problem with its JSON path. */
export class ReportValidationError extends Error {
  constructor(readonly problems: { path: string; message: string }[], source?: string) {
    super(
      `${source ? `${source}: ` : ''}not a valid cutover-lab report (schemaVersion ${SCHEMA_VERSION}): ${problems.length} problem(s)\n` +
        problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
    );
    this.name = 'ReportValidationError';
  }
}

/** `$.runs[0].requests.total` style path for people; matches what jq and JSON Schema tools show. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = '$';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(String(k)) ? `.${String(k)}` : `[${JSON.stringify(String(k))}]`;
  return s;
}

/**
 * Parse untrusted JSON (already JSON.parse'd) into a Report, or throw ReportValidationError listing
 * every problem with its path. A report of another schemaVersion is refused with that fact first.
 */
export function validateReport(json: unknown, source?: string): Report {
  if (json && typeof json === 'object' && 'schemaVersion' in json && (json as { schemaVersion: unknown }).schemaVersion !== SCHEMA_VERSION) {
    const v = (json as { schemaVersion: unknown }).schemaVersion;
    throw new ReportValidationError(
      [{ path: '$.schemaVersion', message: `this cutover-lab reads schemaVersion ${SCHEMA_VERSION}, the file has ${JSON.stringify(v)}; re-render it with the version that wrote it` }],
      source,
    );
  }
  const parsed = ReportSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new ReportValidationError(
    parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
    source,
  );
}

// ---- helpers the rehearsal runner can use to fill the aggregate the same way the docs describe ----

/**
 * median / nearest-rank p95 / max / min / mean over the values that were measured; NotMeasured
 * (with `why`) when none was. reports/stats.ts is the one implementation.
 */
export function stat(values: readonly Measured<number>[], why = 'no run measured it'): Measured<Stat> {
  const s = summarise(values.filter((v): v is number => typeof v === 'number'));
  return s ?? notMeasured(why);
}

/** Which figures of a run were not measured, and why (what the verdict and the renderers list). */
export function unmeasured(run: Run): { figure: string; reason: string }[] {
  const out: { figure: string; reason: string }[] = [];
  const add = (figure: string, v: unknown) => {
    if (isNotMeasured(v)) out.push({ figure, reason: v.notMeasured });
  };
  add('downtime', run.downtimeMs);
  add('error window', run.errorWindowMs);
  add('stall window', run.stallWindowMs);
  add('lost writes', run.lostWrites);
  add('unexpected writes', run.unexpectedWrites);
  add('recovered writes', run.recoveredWrites);
  add('duplicate writes', run.duplicateWrites);
  add('split-brain writes', run.splitBrainWrites);
  add('dropped iterations', run.droppedIterations);
  add('requests', run.requests);
  add('latency', run.latency);
  add('saturation', run.saturation);
  if (run.afterSwitch) add('first 10 s after the switch', run.afterSwitch);
  if (run.replication) {
    add('sync duration', run.replication.syncMs);
    add('post-data duration', run.replication.postDataMs);
  }
  if (run.rollback) {
    add('rollback downtime', run.rollback.downtimeMs);
    add('rollback error window', run.rollback.errorWindowMs);
    add('rollback stall window', run.rollback.stallWindowMs);
    add('rollback lost writes', run.rollback.lostWrites);
    add('rollback split-brain writes', run.rollback.splitBrainWrites);
  }
  for (const b of run.budgets) add(`budget ${b.name}`, b.actual);
  return out;
}

/** A run whose downtime figures can be trusted: it did not crash and its lab kept up with the load. */
export function trustworthy(run: Run): boolean {
  return !run.error && valueOf(run.saturation)?.saturated !== true;
}

/** A run's first-10-s ratio at one percentile, or why there is none. */
function ratioOf(r: Run, p: 'p50' | 'p95' | 'p99'): Measured<number> | undefined {
  if (!r.afterSwitch) return undefined;
  const a = valueOf(r.afterSwitch);
  if (!a) return r.afterSwitch as NotMeasured;
  return a.ratio[p] ?? notMeasured(`the calm ${p} was 0 ms`);
}

/** The aggregate block computed from runs, as `cutover rehearse` writes it. */
export function aggregateRuns(runs: readonly Run[]): Aggregate {
  // A crashed run proved nothing; a saturated one measured its lab, not the cutover. Neither enters
  // the window and latency figures; the loss checks of a saturated run still count (a lost write is
  // lost however busy the lab was).
  const good = runs.filter(trustworthy);
  const alive = runs.filter((r) => !r.error);
  const excluded = runs.length - good.length;
  const why = excluded ? `no run measured it (${runs.length - alive.length} crashed, ${alive.length - good.length} saturated)` : 'no run measured it';
  const of = (rs: readonly Run[], f: (r: Run) => Measured<number> | undefined) => stat(rs.map((r) => f(r) ?? notMeasured('absent')), rs === good ? why : 'no run measured it');
  const phaseNames: string[] = [];
  for (const r of runs) for (const p of r.phases) if (!phaseNames.includes(p.name)) phaseNames.push(p.name);
  const phaseMs: Record<string, Stat> = {};
  for (const n of phaseNames) {
    // a skipped phase did not run: its 0 ms is not a timing (reverse without reverse replication)
    const st = summarise(runs.flatMap((r) => r.phases.filter((p) => p.name === n && p.outcome !== 'skipped').map((p) => p.endMs - p.startMs)));
    if (st) phaseMs[n] = st;
  }
  const blockedWindowMs: Record<string, Stat> = {};
  for (const k of BLOCKED_PARTS) {
    const st = summarise(good.flatMap((r) => (typeof r.blockedWindow?.[k] === 'number' ? [r.blockedWindow[k] as number] : [])));
    if (st) blockedWindowMs[k] = st;
  }
  return {
    runs: runs.length,
    passedRuns: runs.filter((r) => r.pass).length,
    crashedRuns: runs.length - alive.length,
    saturatedRuns: alive.length - good.length,
    downtimeMs: of(good, (r) => r.downtimeMs),
    errorWindowMs: of(good, (r) => r.errorWindowMs),
    stallWindowMs: of(good, (r) => r.stallWindowMs),
    lostWrites: of(alive, (r) => r.lostWrites),
    unexpectedWrites: of(alive, (r) => r.unexpectedWrites),
    duplicateWrites: of(alive, (r) => r.duplicateWrites),
    splitBrainWrites: of(alive, (r) => r.splitBrainWrites),
    droppedIterations: of(alive, (r) => valueOf(r.droppedIterations)?.total),
    droppedInCutover: of(alive, (r) => valueOf(r.droppedIterations)?.cutover),
    switchLatencyP99Ms: of(good, (r) => valueOf(r.latency)?.switch.p99),
    afterSwitchRatioP50: of(good, (r) => ratioOf(r, 'p50')),
    afterSwitchRatioP95: of(good, (r) => ratioOf(r, 'p95')),
    afterSwitchRatioP99: of(good, (r) => ratioOf(r, 'p99')),
    syncMs: of(alive, (r) => r.replication?.syncMs),
    postDataMs: of(alive, (r) => r.replication?.postDataMs),
    phaseMs,
    ...(Object.keys(blockedWindowMs).length ? { blockedWindowMs } : {}),
  };
}

/** JSON Schema (draft 2020-12) of report.json, generated from the zod schema. */
export function reportJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ReportSchema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    $id: 'https://github.com/cutover-lab/cutover-lab/reports/report.schema.json',
    title: 'cutover-lab report',
    description: `report.json written by \`cutover rehearse\` (schemaVersion ${SCHEMA_VERSION}); see reports/README.md`,
    ...schema,
  };
}

export const SCHEMA_FILE = fileURLToPath(new URL('./report.schema.json', import.meta.url));

export function reportJsonSchemaText(): string {
  return JSON.stringify(reportJsonSchema(), null, 2) + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1]) && process.argv.includes('--write-schema')) {
  writeFileSync(SCHEMA_FILE, reportJsonSchemaText());
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
