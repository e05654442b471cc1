/**
 * Number and text formatting shared by the renderers, so that HTML, Markdown and JUnit say the same
 * "1.51 s" for the same model value (and tests can compute the expected text from the model).
 */
import { BLOCKED_PARTS, isNotMeasured, valueOf, type AfterSwitch, type DriftFinding, type DriftStage, type InjectedFault, type Measured, type Report, type Saturation, type Severity } from './model.ts';

/** 850 → "850 ms", 1510 → "1.51 s", 93_000 → "93.0 s", 0 → "0 ms". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  if (a < 1000) return `${trim(ms, a < 10 ? 1 : 0)} ms`;
  if (a < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (a < 600_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** 12345 → "12,345"; keeps one decimal for small fractional values. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const rounded = Number.isInteger(n) ? n : Math.round(n * 10) / 10;
  return rounded.toLocaleString('en-US');
}

export function formatBytes(b: number): string {
  if (b < 1024) return `${trim(b, 0)} B`;
  if (b < 1024 ** 2) return `${(b / 1024).toFixed(1)} kB`;
  if (b < 1024 ** 3) return `${(b / 1024 ** 2).toFixed(1)} MB`;
  return `${(b / 1024 ** 3).toFixed(2)} GB`;
}

/** A budget value in its unit: ms budgets as durations, others as counts. */
export function formatBudgetValue(name: string, v: number, unit?: string): string {
  if (unit === 'ms' || (!unit && /ms$/i.test(name))) return formatMs(v);
  if (unit === 'bytes' || (!unit && /bytes$/i.test(name))) return formatBytes(v);
  return formatCount(v);
}

function trim(n: number, digits: number): string {
  return String(Number(n.toFixed(digits)));
}

/** A figure that may not have been measured: its formatted value, or "not measured (why)". */
export function formatMeasured<T>(v: Measured<T> | undefined, fmt: (x: T) => string): string {
  if (v === undefined) return '—';
  return isNotMeasured(v) ? `not measured (${v.notMeasured})` : fmt(v);
}

/** Short form for table cells: the value, or "not measured". */
export function cellMeasured<T>(v: Measured<T> | undefined, fmt: (x: T) => string): string {
  if (v === undefined) return '—';
  return isNotMeasured(v) ? 'not measured' : fmt(v);
}

/** "lab saturated: 850 of 1000 req/s, 14324 dropped, p99 711 ms — downtime figures not trustworthy" */
export function saturationText(s: Pick<Saturation, 'achievedPerSec' | 'requestedPerSec' | 'dropped' | 'p99Ms'>): string {
  return `lab saturated: ${formatCount(s.achievedPerSec)} of ${formatCount(s.requestedPerSec)} req/s, ${formatCount(s.dropped)} dropped, p99 ${Math.round(s.p99Ms)} ms — downtime figures not trustworthy`;
}

/** The saturation lines of a report (one per saturated run). */
export function saturatedRuns(report: Report): { index: number; text: string }[] {
  return report.runs.flatMap((r) => {
    const s = valueOf(r.saturation);
    return s?.saturated ? [{ index: r.index, text: saturationText(s) }] : [];
  });
}

/** "latency on app-old at phase switch", "kill -9 switchover at 1.00 s" */
export function describeInjected(f: Pick<InjectedFault, 'kind' | 'hop' | 'target' | 'phase' | 'atMs'> & { attributes?: InjectedFault['attributes'] }): string {
  const a = f.attributes ?? {};
  const short = (v: unknown) => {
    const t = String(v).replace(/\s+/g, ' ').trim();
    return t.length > 60 ? t.slice(0, 57) + '…' : t;
  };
  // database faults have no hop: name the statement, the table or the side
  const what = (): string => {
    if (f.kind === 'kill') return `kill -9 ${f.target ?? '?'}`;
    if (f.kind === 'pause') return `pause (SIGSTOP) of ${f.target ?? '?'}${a.duration !== undefined ? ` for ${short(a.duration)}` : ''}`;
    if (f.kind === 'ddl') return `ddl "${short(a.sql ?? '')}" on old`;
    if (f.hop) return `${f.kind} on ${f.hop}`;
    if (a.table !== undefined) return `${f.kind} on ${a.table}${a.side !== undefined ? ` (${a.side})` : ''}`;
    return `${f.kind} on ${a.side ?? 'old'}`;
  };
  return `${what()} ${f.phase ? `at phase ${f.phase}` : `at ${formatMs(f.atMs)}`}`;
}

/** The findings of a drift stage (none when it was skipped or not measured). */
export function findingsOf(stage: DriftStage): DriftFinding[] {
  return Array.isArray(stage) ? stage : [];
}

/** Why a drift stage has no findings to show: "not measured (…)", "skipped (…)", or undefined when it ran. */
export function driftStageNote(stage: DriftStage): string | undefined {
  if (Array.isArray(stage)) return undefined;
  return 'notMeasured' in stage ? `not measured, because ${stage.notMeasured}` : `not checked: ${stage.skipped}`;
}

export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

/** The drift categories in the order reports show them; unknown categories follow alphabetically. */
export const CATEGORY_ORDER = ['schema', 'collation', 'timezone', 'encoding', 'settings', 'data', 'incompatibility', 'behaviour'];

export type StagedFinding = DriftFinding & { stage: 'before' | 'after' };

/** Findings from both stages grouped by category (in CATEGORY_ORDER), each group sorted by severity. */
export function groupFindings(report: Report): { category: string; findings: StagedFinding[] }[] {
  const all: StagedFinding[] = [
    ...findingsOf(report.drift.before).map((f) => ({ ...f, stage: 'before' as const })),
    ...findingsOf(report.drift.after).map((f) => ({ ...f, stage: 'after' as const })),
  ];
  const cats = [...new Set(all.map((f) => f.category))].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return cats.map((category) => ({
    category,
    findings: all
      .filter((f) => f.category === category)
      .sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity)),
  }));
}

function rank(c: string): number {
  const i = CATEGORY_ORDER.indexOf(c);
  return i === -1 ? CATEGORY_ORDER.length : i;
}

/** Count findings by severity over both stages. */
export function severityCounts(report: Report): Record<Severity, number> {
  const out: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of [...findingsOf(report.drift.before), ...findingsOf(report.drift.after)]) out[f.severity]++;
  return out;
}

/** Findings above the scenario's allowedDrift level (these fail the drift budget). */
export function driftOverBudget(report: Report): StagedFinding[] {
  const allowed = report.scenario.budgets.allowedDrift;
  const tolerated: Severity[] = allowed === 'none' ? [] : allowed === 'info' ? ['info'] : allowed === 'warning' ? ['info', 'warning'] : ['info', 'warning', 'error'];
  return [
    ...findingsOf(report.drift.before).map((f) => ({ ...f, stage: 'before' as const })),
    ...findingsOf(report.drift.after).map((f) => ({ ...f, stage: 'after' as const })),
  ].filter((f) => !tolerated.includes(f.severity));
}

/** A value of a finding's old/new side as text ("—" when absent). */
export function findingValue(v: DriftFinding['old']): string {
  if (v === undefined) return '—';
  if (v === null) return 'NULL';
  return String(v);
}

/** One line per database fault that did something: its effect, what the subscriber showed, the recovery. */
export function faultNotes(f: InjectedFault): string[] {
  const out: string[] = [];
  if (f.effect) out.push(f.effect);
  if (f.detection) out.push(f.detection.detected ? `detected via ${f.detection.via.join('; ')}${f.detection.message ? `: ${f.detection.message}` : ''}` : `not detected${f.detection.via.length ? ` (${f.detection.via.join('; ')})` : ''}`);
  if (f.recovery) out.push(`recovery: ${f.recovery}`);
  return out;
}

/** Worst values of a run's cluster timeline, one line ("WAL retained max 12.0 MB · …"), or undefined without one. */
export function clusterSummaryText(tl: Report['runs'][number]['clusterTimeline']): string | undefined {
  if (!tl?.length) return undefined;
  const max = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? Math.max(...v) : undefined;
  };
  const wal = max(tl.map((p) => p.walRetainedBytes));
  const lag = max(tl.map((p) => p.lagBytes));
  const lagS = max(tl.map((p) => p.lagSeconds));
  const xmin = max(tl.map((p) => p.xminAge));
  // a subscription missing after the switch is the switch's doing; stopped apply is down or disabled
  const off = tl.filter((p) => p.applyState === 'down' || p.applyState === 'disabled').length;
  const cpu = (side: 'old' | 'new') => max(tl.map((p) => p.cpu[side]));
  const c = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(2));
  return [
    `WAL retained max ${wal === undefined ? '—' : formatBytes(wal)}`,
    `lag max ${lag === undefined ? '—' : formatBytes(Math.max(0, lag))}${lagS === undefined ? '' : ` / ${trim(lagS, 1)} s`}`,
    `slot xmin age max ${xmin === undefined ? '—' : formatCount(xmin)}`,
    `apply stopped ${off} of ${tl.length} s`,
    `CPU max old ${c(cpu('old'))} / new ${c(cpu('new'))} cores`,
  ].join(' · ');
}

/** Budget names as people read them. */
export const BUDGET_LABELS: Record<string, string> = {
  maxErrorWindowMs: 'error window',
  maxStallMs: 'stall window',
  maxLostWrites: 'lost writes',
  maxDuplicateWrites: 'duplicate writes',
  splitBrainWrites: 'split-brain writes',
  driftAfterSwitch: 'drift after the switch',
  drift: 'drift',
  maxWalRetainedBytes: 'WAL retained by the slot',
  maxXminAge: 'slot xmin age',
  rollbackErrorWindowMs: 'rollback error window',
  rollbackStallMs: 'rollback stall window',
  rollbackLostWrites: 'rollback lost writes',
  rollbackSplitBrainWrites: 'rollback split-brain writes',
};

export function budgetLabel(name: string): string {
  return BUDGET_LABELS[name] ?? name;
}

/** Worst measured actual of each budget across runs (undefined when no run measured it), how many runs met it and how many could not measure it. */
export function budgetSummary(report: Report): { name: string; limit: number; worst: number | undefined; passed: number; runs: number; notMeasured: number; unit?: string }[] {
  const names: string[] = [];
  for (const r of report.runs) for (const b of r.budgets) if (!names.includes(b.name)) names.push(b.name);
  return names.map((name) => {
    const rows = report.runs.flatMap((r) => r.budgets.filter((b) => b.name === name));
    return {
      name,
      limit: rows[0].limit,
      worst: rows.some((b) => typeof b.actual === 'number') ? Math.max(...rows.flatMap((b) => (typeof b.actual === 'number' ? [b.actual] : []))) : undefined,
      passed: rows.filter((b) => b.pass).length,
      runs: rows.length,
      notMeasured: rows.filter((b) => isNotMeasured(b.actual)).length,
      unit: rows[0].unit,
    };
  });
}

/** Total lost writes over the runs that measured them (the headline figure: anything above zero is a no-go), and how many runs could not. */
export function totalLostWrites(report: Report): number {
  return report.runs.reduce((a, r) => a + (valueOf(r.lostWrites) ?? 0), 0);
}

/** Runs whose lost-write check did not run (crashed, new primary unreadable). */
export function lostWritesUnmeasured(report: Report): number {
  return report.runs.filter((r) => isNotMeasured(r.lostWrites)).length;
}

/** A Stat's figure, or "not measured" / "not measured (why)". */
export function statText(v: Measured<{ median: number; p95: number; max: number }>, key: 'median' | 'p95' | 'max', fmt: (x: number) => string = formatMs): string {
  return isNotMeasured(v) ? 'not measured' : fmt(v[key]);
}

/** "×1.42" for a ratio, "—" where the calm figure was 0 ms. */
export function formatRatio(r: number | null): string {
  return r === null ? '—' : `×${r.toFixed(2)}`;
}

/** The cells of one run's first-10-s figure: window, first p50/p95/p99, calm p50/p95/p99, ratios. */
export function afterSwitchCells(a: AfterSwitch): { window: string; first: string; calm: string; ratio: string; readiness: string } {
  const three = (x: AfterSwitch['first']) => `${formatMs(x.p50)} / ${formatMs(x.p95)} / ${formatMs(x.p99)} (${formatCount(x.count)})`;
  return {
    window: `${formatMs(a.window.endMs - a.window.startMs)} after resume`,
    first: three(a.first),
    calm: three(a.calm),
    ratio: `${formatRatio(a.ratio.p50)} / ${formatRatio(a.ratio.p95)} / ${formatRatio(a.ratio.p99)}`,
    readiness: a.readiness ? 'on' : 'off',
  };
}

/** One sentence: "first 10.0 s after resume p50/p95/p99 … vs calm …: ×… (readiness on)". */
export function afterSwitchText(a: AfterSwitch): string {
  const c = afterSwitchCells(a);
  return `first ${c.window}: p50/p95/p99 ${c.first} vs calm ${c.calm}: ${c.ratio} (readiness ${c.readiness})`;
}

/** What each part of the write-blocked window is called in the reports (BlockedWindow in model.ts). */
export const BLOCKED_LABELS: Record<(typeof BLOCKED_PARTS)[number], string> = {
  fenceMs: 'fence',
  sentinelMs: 'sentinel',
  sequencesMs: 'sequences',
  switchMs: 'switch: the change',
  swapMs: '… of which the replication swap',
  switchWaitMs: "switch: its own wait (dns: the TTL)",
  resumeMs: 'resume',
  reResolveMs: 'client re-resolve (cache, TTL)',
  reconnectMs: 'pool re-connect → first ack',
  afterResumeMs: 'failures after resume',
};

/**
 * The write-blocked window part by part, for the renderers: each part's median over the trustworthy
 * runs and its value (or why it is missing) in every run. Empty when no run has the breakdown.
 */
export function blockedWindowRows(report: Report): { label: string; median?: number; p95?: number; runs: Array<{ index: number; value?: number; why?: string }> }[] {
  if (!report.runs.some((r) => r.blockedWindow)) return [];
  return BLOCKED_PARTS.map((k) => {
    const st = report.aggregate.blockedWindowMs?.[k];
    return {
      label: BLOCKED_LABELS[k],
      ...(st ? { median: st.median, p95: st.p95 } : {}),
      runs: report.runs.map((r) => {
        const v = r.blockedWindow?.[k];
        return { index: r.index, ...(v === undefined ? { why: r.blockedWindow ? 'not recorded by this version' : 'no breakdown (the run crashed)' } : isNotMeasured(v) ? { why: v.notMeasured } : { value: v }) };
      }),
    };
  });
}

/** "replication objects left behind after the run: …", or "left behind after the run: …" when a fault or the switch left something too. */
export function leftBehind(remaining: readonly string[]): string {
  const other = remaining.some((x) => /^(fault leftover|traffic half-switched):/.test(x));
  return `${other ? 'left behind' : 'replication objects left behind'} after the run: ${remaining.join(', ')}`;
}
