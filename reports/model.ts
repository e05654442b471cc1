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

export const SCHEMA_VERSION = 1 as const;

const ms = z.number().finite().nonnegative();
const count = z.number().int().nonnegative();
const name = z.string().min(1);
/** An offset in ms from the run's load start; negative when something happened before load began. */
const offsetMs = z.number().finite();

/** Summary of one figure across runs. p95 is nearest-rank (the smallest value ≥ 95 % of runs). */
export const Stat = z.strictObject({
  median: z.number().finite(),
  p95: z.number().finite(),
  max: z.number().finite(),
  min: z.number().finite(),
  mean: z.number().finite(),
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
  atMs: offsetMs,
  durationMs: ms.optional(),
  attributes: attributes.optional(),
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
  }),
  budgets: z.strictObject({
    maxErrorWindowMs: ms,
    maxStallMs: ms,
    maxLostWrites: count,
    maxDuplicateWrites: count,
    /** the highest drift severity tolerated: 'none' fails on any finding, 'warning' fails on errors only */
    allowedDrift: z.enum(['none', 'info', 'warning', 'error']),
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

export const TimelinePoint = z.strictObject({
  tMs: offsetMs,
  okPerSec: z.number().nonnegative(),
  failPerSec: z.number().nonnegative(),
  /** null when no request completed in the bucket */
  latencyP99Ms: ms.nullable(),
  lagBytes: z.number().nonnegative().nullable().optional(),
});

export const BudgetResult = z.strictObject({
  /** maxErrorWindowMs | maxStallMs | maxLostWrites | maxDuplicateWrites | drift | … */
  name,
  /** the maximum allowed value; pass is `actual <= limit` */
  limit: z.number().finite(),
  actual: z.number().finite(),
  pass: z.boolean(),
  /** unit for display: ms | writes | findings */
  unit: z.string().optional(),
});

export const Run = z.strictObject({
  /** 1-based run number */
  index: z.number().int().positive(),
  startedAt: z.iso.datetime({ offset: true }),
  durationMs: ms,
  pass: z.boolean(),
  error: z.string().optional(),
  /** max(errorWindowMs, stallWindowMs): the longest time clients saw no successful write */
  downtimeMs: ms,
  errorWindowMs: ms,
  stallWindowMs: ms,
  errorWindow: z.strictObject({ startMs: offsetMs, endMs: offsetMs }).optional(),
  lostWrites: count,
  unexpectedWrites: count,
  recoveredWrites: count,
  duplicateWrites: count,
  splitBrainWrites: count,
  droppedIterations: count,
  requests: z.strictObject({ total: count, ok: count, failed: count, indeterminate: count }),
  latency: z.strictObject({ switch: LatencySummary, calm: LatencySummary }),
  phases: z.array(Phase),
  timeline: z.array(TimelinePoint),
  faults: z.array(InjectedFault),
  budgets: z.array(BudgetResult),
  switchover: z
    .strictObject({
      lagAtFenceBytes: z.number().nonnegative().optional(),
      sentinelMs: ms.optional(),
      sequences: z.array(z.strictObject({ name, old: z.number(), new: z.number() })).optional(),
    })
    .optional(),
});

export const Aggregate = z.strictObject({
  runs: count,
  passedRuns: count,
  downtimeMs: Stat,
  errorWindowMs: Stat,
  stallWindowMs: Stat,
  lostWrites: Stat,
  unexpectedWrites: Stat,
  duplicateWrites: Stat,
  splitBrainWrites: Stat,
  droppedIterations: Stat,
  switchLatencyP99Ms: Stat,
  /** duration (endMs − startMs) of each phase name across the runs that had it */
  phaseMs: z.record(z.string(), Stat),
});

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
    drift: z.strictObject({ before: z.array(DriftFinding), after: z.array(DriftFinding) }),
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
    const expected = Math.max(run.errorWindowMs, run.stallWindowMs);
    if (Math.abs(run.downtimeMs - expected) > 0.5)
      issue(['runs', i, 'downtimeMs'], `downtimeMs must be max(errorWindowMs, stallWindowMs) = ${expected}, got ${run.downtimeMs}`);
    const q = run.requests;
    if (q.ok + q.failed + q.indeterminate !== q.total)
      issue(['runs', i, 'requests', 'total'], `total (${q.total}) must equal ok + failed + indeterminate (${q.ok + q.failed + q.indeterminate})`);
    if (run.errorWindow && run.errorWindow.endMs < run.errorWindow.startMs)
      issue(['runs', i, 'errorWindow', 'endMs'], 'endMs is before startMs');
    run.phases.forEach((p, j) => {
      if (p.endMs < p.startMs) issue(['runs', i, 'phases', j, 'endMs'], `phase "${p.name}" ends (${p.endMs}) before it starts (${p.startMs})`);
    });
    run.budgets.forEach((b, j) => {
      if (b.pass !== b.actual <= b.limit)
        issue(['runs', i, 'budgets', j, 'pass'], `pass must be (actual <= limit): actual ${b.actual}, limit ${b.limit}, pass ${b.pass}`);
      if (!b.pass && run.pass) issue(['runs', i, 'pass'], `run passes although budget "${b.name}" failed`);
    });
  });
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

/** median / nearest-rank p95 / max / min / mean of a list (all zero for an empty list). */
export function stat(values: readonly number[]): Stat {
  // a figure a run could not measure (NaN) must not poison the aggregate of the others
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return { median: 0, p95: 0, max: 0, min: 0, mean: 0 };
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const p95 = s[Math.max(0, Math.ceil(0.95 * n) - 1)];
  const mean = s.reduce((a, b) => a + b, 0) / n;
  return { median, p95, max: s[n - 1], min: s[0], mean: Math.round(mean * 1000) / 1000 };
}

/** The aggregate block computed from runs, as `cutover rehearse` writes it. */
export function aggregateRuns(runs: readonly Run[]): Aggregate {
  const of = (f: (r: Run) => number) => stat(runs.map(f));
  const phaseNames: string[] = [];
  for (const r of runs) for (const p of r.phases) if (!phaseNames.includes(p.name)) phaseNames.push(p.name);
  const phaseMs: Record<string, Stat> = {};
  for (const n of phaseNames) {
    phaseMs[n] = stat(runs.flatMap((r) => r.phases.filter((p) => p.name === n).map((p) => p.endMs - p.startMs)));
  }
  return {
    runs: runs.length,
    passedRuns: runs.filter((r) => r.pass).length,
    downtimeMs: of((r) => r.downtimeMs),
    errorWindowMs: of((r) => r.errorWindowMs),
    stallWindowMs: of((r) => r.stallWindowMs),
    lostWrites: of((r) => r.lostWrites),
    unexpectedWrites: of((r) => r.unexpectedWrites),
    duplicateWrites: of((r) => r.duplicateWrites),
    splitBrainWrites: of((r) => r.splitBrainWrites),
    droppedIterations: of((r) => r.droppedIterations),
    switchLatencyP99Ms: of((r) => r.latency.switch.p99),
    phaseMs,
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
