/**
 * report.md: the rehearsal for a pull-request comment. Deterministic (no wall clock: the time shown
 * is report.generatedAt), so `cutover report <dir> --format md` reproduces it byte for byte.
 */
import type { Report } from './model.ts';
import { budgetLabel, budgetSummary, formatBudgetValue, formatCount, formatMs, groupFindings, findingValue, totalLostWrites, severityCounts } from './format.ts';

/** Text safe inside a Markdown table cell: no pipes, no line breaks, no HTML. */
export function mdCell(v: unknown): string {
  return String(v ?? '')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/&/g, '&amp;')
    // no @mentions of people from data in a pull-request comment
    .replace(/@/g, '&#64;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\r\n]+/g, ' ')
    .replace(/([`*_[\]])/g, '\\$1');
}

function table(head: string[], rows: string[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

export function renderMarkdown(report: Report): string {
  const s = report.scenario;
  const a = report.aggregate;
  const lost = totalLostWrites(report);
  const out: string[] = [];
  out.push(`## ${report.verdict.pass ? '✅ GO' : '❌ NO-GO'} — cutover rehearsal \`${mdCell(s.name)}\``);
  out.push('');
  out.push(`PostgreSQL ${s.oldMajor} → ${s.newMajor} · switch **${mdCell(s.switch)}** · fence ${mdCell(s.fence)} · ${a.runs} run(s), ${a.passedRuns} within budget · ${formatCount(s.load.rate)} req/s · generated ${report.generatedAt}`);
  out.push('');
  out.push(
    ...table(
      ['', 'median', 'p95', 'max'],
      [
        ['**downtime**', formatMs(a.downtimeMs.median), formatMs(a.downtimeMs.p95), formatMs(a.downtimeMs.max)],
        ['error window', formatMs(a.errorWindowMs.median), formatMs(a.errorWindowMs.p95), formatMs(a.errorWindowMs.max)],
        ['stall window', formatMs(a.stallWindowMs.median), formatMs(a.stallWindowMs.p95), formatMs(a.stallWindowMs.max)],
        ['switch latency p99', formatMs(a.switchLatencyP99Ms.median), formatMs(a.switchLatencyP99Ms.p95), formatMs(a.switchLatencyP99Ms.max)],
      ],
    ),
  );
  out.push('');
  out.push(`**Lost writes: ${formatCount(lost)}** · split-brain ${formatCount(a.splitBrainWrites.max)} (max per run) · duplicates ${formatCount(a.duplicateWrites.max)} · dropped iterations ${formatCount(a.droppedIterations.median)} (median)`);
  out.push('');
  if (!report.verdict.pass) {
    out.push('**Why not:**');
    for (const r of report.verdict.reasons) out.push(`- ${mdCell(r)}`);
    out.push('');
  }
  out.push('### Budgets');
  out.push('');
  out.push(...table(['budget', 'limit', 'worst run', 'runs within'], budgetSummary(report).map((b) => [mdCell(budgetLabel(b.name)), `≤ ${formatBudgetValue(b.name, b.limit, b.unit)}`, formatBudgetValue(b.name, b.worst, b.unit), `${b.passed}/${b.runs}`])));
  out.push('');
  out.push('### Runs');
  out.push('');
  out.push(
    ...table(
      ['run', 'verdict', 'downtime', 'error window', 'stall', 'lost', 'split-brain', 'ok / failed / indeterminate', 'note'],
      report.runs.map((r) => [
        String(r.index),
        r.pass ? '✓ pass' : '✗ fail',
        formatMs(r.downtimeMs),
        formatMs(r.errorWindowMs),
        formatMs(r.stallWindowMs),
        formatCount(r.lostWrites),
        formatCount(r.splitBrainWrites),
        `${formatCount(r.requests.ok)} / ${formatCount(r.requests.failed)} / ${formatCount(r.requests.indeterminate)}`,
        mdCell(r.error ?? r.budgets.filter((b) => !b.pass).map((b) => budgetLabel(b.name)).join(', ')),
      ]),
    ),
  );
  out.push('');
  const phases = Object.entries(a.phaseMs);
  if (phases.length) {
    out.push('### Phase timings');
    out.push('');
    out.push(...table(['phase', 'median', 'p95', 'max'], phases.map(([n, st]) => [mdCell(n), formatMs(st.median), formatMs(st.p95), formatMs(st.max)])));
    out.push('');
  }
  const counts = severityCounts(report);
  out.push(`### Drift (${counts.error} error, ${counts.warning} warning, ${counts.info} info)`);
  out.push('');
  const groups = groupFindings(report);
  if (!groups.length) out.push('No drift findings before or after the switchover.');
  else {
    const rows = groups.flatMap((g) => g.findings.filter((f) => f.severity !== 'info').map((f) => [mdCell(g.category), f.severity, f.stage, mdCell(f.object), mdCell(findingValue(f.old)), mdCell(findingValue(f.new)), mdCell(f.message), mdCell(f.hint ?? '')]));
    if (rows.length) out.push(...table(['category', 'severity', 'when', 'object', 'old', 'new', 'finding', 'hint'], rows));
    const info = groups.reduce((n, g) => n + g.findings.filter((f) => f.severity === 'info').length, 0);
    if (info) out.push('', `${info} info finding(s) not listed here: see report.html.`);
  }
  out.push('');
  out.push(`<sub>cutover-lab ${mdCell(report.tool.version)} · ${mdCell(report.environment.oldVersion)} → ${mdCell(report.environment.newVersion)} · node ${mdCell(report.environment.node)}${report.environment.k6 ? ` · k6 ${mdCell(report.environment.k6)}` : ''} · ${report.environment.cpus} CPU, ${report.environment.memGiB} GiB</sub>`);
  return out.join('\n') + '\n';
}
