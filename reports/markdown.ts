/**
 * report.md: the rehearsal for a pull-request comment. Deterministic (no wall clock: the time shown
 * is report.generatedAt), so `cutover report <dir> --format md` reproduces it byte for byte.
 */
import { unmeasured, valueOf, type Report } from './model.ts';
import { afterSwitchCells, blockedWindowRows, formatRatio, budgetLabel, clusterSummaryText, faultNotes, budgetSummary, cellMeasured, describeInjected, driftStageNote, formatBudgetValue, formatCount, formatMs, groupFindings, findingValue, lostWritesUnmeasured, saturatedRuns, statText, totalLostWrites, severityCounts } from './format.ts';

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

/** What went wrong in a run, in a few words: the crash, what was not measured, the budgets missed. */
function runNote(r: Report['runs'][number]): string {
  if (r.error) return r.error;
  const parts: string[] = [];
  const nm = unmeasured(r).filter((u) => !u.figure.startsWith('budget '));
  if (nm.length) parts.push(`not measured: ${[...new Set(nm.map((u) => `${u.figure} (${u.reason})`))].join('; ')}`);
  if (r.faults.some((f) => f.error)) parts.push('a fault could not be applied');
  if (r.cleanup?.remaining.length) parts.push('replication objects left behind');
  const missed = r.budgets.filter((b) => !b.pass && typeof b.actual === 'number').map((b) => budgetLabel(b.name));
  if (missed.length) parts.push(missed.join(', '));
  return parts.join(' · ');
}

export function renderMarkdown(report: Report): string {
  const s = report.scenario;
  const a = report.aggregate;
  const lost = totalLostWrites(report);
  const out: string[] = [];
  out.push(`## ${report.verdict.pass ? '✅ GO' : '❌ NO-GO'} — cutover rehearsal \`${mdCell(s.name)}\``);
  out.push('');
  out.push(`PostgreSQL ${s.oldMajor} → ${s.newMajor} · switch **${mdCell(s.switch)}** · fence ${mdCell(s.fence)} · ${a.runs} run(s), ${a.passedRuns} within budget · ${formatCount(s.load.rate)} req/s${s.load.during === 'sync' ? ' from before the sync (copy, post-data and switch under load)' : ''} · generated ${report.generatedAt}`);
  out.push('');
  const sat = saturatedRuns(report);
  for (const x of sat) out.push(`> ⚠ **run ${x.index}: ${mdCell(x.text)}**`, '');
  const row = (label: string, v: (typeof a)['downtimeMs']) => [label, statText(v, 'median'), statText(v, 'p95'), statText(v, 'max')];
  const ratioRow = (label: string, v: (typeof a)['downtimeMs']) => [label, statText(v, 'median', formatRatio), statText(v, 'p95', formatRatio), statText(v, 'max', formatRatio)];
  out.push(
    ...table(
      ['', 'median', 'p95', 'max'],
      [
        row('**downtime**', a.downtimeMs),
        row('error window', a.errorWindowMs),
        row('stall window', a.stallWindowMs),
        row('switch latency p99', a.switchLatencyP99Ms),
        ratioRow('first 10 s ÷ calm, p50', a.afterSwitchRatioP50),
        ratioRow('first 10 s ÷ calm, p99', a.afterSwitchRatioP99),
        ...(valueOf(a.syncMs) ? [row('sync (copy + catch-up)', a.syncMs), row('post-data', a.postDataMs)] : []),
      ],
    ),
  );
  if (a.crashedRuns + a.saturatedRuns > 0) out.push('', `Window and latency figures over ${a.runs - a.crashedRuns - a.saturatedRuns} of ${a.runs} run(s): ${a.crashedRuns} crashed, ${a.saturatedRuns} saturated (left out).`);
  out.push('');
  const lostNm = lostWritesUnmeasured(report);
  const max = (v: (typeof a)['downtimeMs']) => statText(v, 'max', formatCount);
  out.push(
    `**Lost writes: ${formatCount(lost)}${lostNm ? ` (not measured in ${lostNm} run(s))` : ''}** · split-brain ${max(a.splitBrainWrites)} (max per run) · duplicates ${max(a.duplicateWrites)} · dropped iterations ${statText(a.droppedIterations, 'median', formatCount)} (median), ${statText(a.droppedInCutover, 'median', formatCount)} in the cutover`,
  );
  out.push('');
  if (!report.verdict.pass) {
    out.push('**Why not:**');
    for (const r of report.verdict.reasons) out.push(`- ${mdCell(r)}`);
    out.push('');
  }
  out.push('### Budgets');
  out.push('');
  out.push(...table(['budget', 'limit', 'worst run', 'runs within'], budgetSummary(report).map((b) => [mdCell(budgetLabel(b.name)), `≤ ${formatBudgetValue(b.name, b.limit, b.unit)}`, b.worst === undefined ? 'not measured' : formatBudgetValue(b.name, b.worst, b.unit), `${b.passed}/${b.runs}${b.notMeasured ? ` (${b.notMeasured} not measured)` : ''}`])));
  out.push('');
  out.push('### Runs');
  out.push('');
  out.push(
    ...table(
      ['run', 'verdict', 'downtime', 'error window', 'stall', 'lost', 'split-brain', 'dropped (cutover)', 'calm req/s · p99', 'ok / failed / indeterminate', 'note'],
      report.runs.map((r) => [
        String(r.index),
        r.pass ? '✓ pass' : '✗ fail',
        cellMeasured(r.downtimeMs, formatMs),
        cellMeasured(r.errorWindowMs, formatMs),
        cellMeasured(r.stallWindowMs, formatMs),
        cellMeasured(r.lostWrites, formatCount),
        cellMeasured(r.splitBrainWrites, formatCount),
        cellMeasured(r.droppedIterations, (d) => `${formatCount(d.total)} (${formatCount(d.cutover)})`),
        cellMeasured(r.saturation, (s) => `${formatCount(s.achievedPerSec)} of ${formatCount(s.requestedPerSec)} · ${formatMs(s.p99Ms)}${s.saturated ? ' ⚠ saturated' : ''}`),
        cellMeasured(r.requests, (q) => `${formatCount(q.ok)} / ${formatCount(q.failed)} / ${formatCount(q.indeterminate)}`),
        mdCell(runNote(r)),
      ]),
    ),
  );
  out.push('');
  const after = report.runs.filter((r) => r.afterSwitch);
  if (after.length) {
    out.push('### First 10 s after the switch', '');
    out.push(
      ...table(
        ['run', 'readiness', 'window', 'first p50 / p95 / p99 (requests)', 'calm p50 / p95 / p99 (requests)', 'ratio p50 / p95 / p99'],
        after.map((r) => {
          const v = valueOf(r.afterSwitch);
          if (!v) return [String(r.index), '', '', mdCell(`not measured, because ${(r.afterSwitch as { notMeasured: string }).notMeasured}`), '', ''];
          const c = afterSwitchCells(v);
          return [String(r.index), c.readiness, c.window, c.first, c.calm, c.ratio];
        }),
      ),
    );
    out.push('');
  }
  const phases = Object.entries(a.phaseMs);
  if (phases.length) {
    out.push('### Phase timings');
    out.push('');
    out.push(...table(['phase', 'median', 'p95', 'max'], phases.map(([n, st]) => [mdCell(n), formatMs(st.median), formatMs(st.p95), formatMs(st.max)])));
    out.push('');
    // what a phase that went through had to do on the way (a subscription enabled again after a lost link)
    const notes = new Map<string, number[]>();
    for (const r of report.runs)
      for (const p of r.phases)
        if (p.outcome === 'ok' && p.detail) {
          const k = `${mdCell(p.name)}: ${mdCell(p.detail)}`;
          notes.set(k, [...(notes.get(k) ?? []), r.index]);
        }
    if (notes.size) out.push(...[...notes].map(([k, runs]) => `- ${k} (run${runs.length > 1 ? 's' : ''} ${runs.join(', ')})`), '');
  }
  const blocked = blockedWindowRows(report);
  if (blocked.length) {
    out.push('### Write-blocked window, part by part');
    out.push('');
    const perRun = report.runs.length <= 10;
    out.push(
      ...table(
        ['part', 'median', 'p95', ...(perRun ? report.runs.map((r) => `run ${r.index}`) : [])],
        blocked.map((b) => [mdCell(b.label), b.median === undefined ? 'not measured' : formatMs(b.median), b.p95 === undefined ? 'not measured' : formatMs(b.p95), ...(perRun ? b.runs.map((x) => (x.value === undefined ? mdCell(`not measured: ${x.why}`) : formatMs(x.value))) : [])]),
      ),
    );
    out.push('');
  }
  const legs = report.runs.filter((r) => r.rollback);
  if (legs.length) {
    out.push('### Rollback leg', '');
    out.push(
      ...table(
        ['run', 'downtime', 'error window', 'stall', 'lost', 'split-brain', 'note'],
        legs.map((r) => {
          const b = r.rollback!;
          return [String(r.index), cellMeasured(b.downtimeMs, formatMs), cellMeasured(b.errorWindowMs, formatMs), cellMeasured(b.stallWindowMs, formatMs), cellMeasured(b.lostWrites, formatCount), cellMeasured(b.splitBrainWrites, formatCount), mdCell(b.error ?? '')];
        }),
      ),
    );
    out.push('');
  }
  const faultLines = report.runs.flatMap((r) => r.faults.filter((f) => !f.error && faultNotes(f).length).map((f) => `run ${r.index}: ${describeInjected(f)} — ${faultNotes(f).join(' — ')}`));
  if (faultLines.length) {
    out.push('### What the database faults did', '');
    for (const f of faultLines) out.push(`- ${mdCell(f)}`);
    out.push('');
  }
  const clusters = report.runs.flatMap((r) => {
    const t = clusterSummaryText(r.clusterTimeline);
    return t ? [`run ${r.index}: ${t}`] : [];
  });
  if (clusters.length) {
    out.push('### Clusters', '');
    for (const c of clusters) out.push(`- ${mdCell(c)}`);
    out.push('');
  }
  const logs = report.runs.flatMap((r) => (r.serverLogs ?? []).map((l) => `run ${r.index}: ${l}`));
  if (logs.length) {
    out.push('### Server logs', '');
    for (const l of logs) out.push(`- ${mdCell(l)}`);
    out.push('');
  }
  const leftovers = report.runs.flatMap((r) => (r.cleanup?.remaining.length ? [`run ${r.index}: ${r.cleanup.remaining.join(', ')}`] : []));
  if (leftovers.length) {
    out.push('### Replication objects left behind', '');
    for (const l of leftovers) out.push(`- ${mdCell(l)}`);
    out.push('');
  }
  const faultErrors = report.runs.flatMap((r) => r.faults.filter((f) => f.error).map((f) => `run ${r.index}: ${describeInjected(f)}: ${f.error}`));
  if (faultErrors.length) {
    out.push('### Faults that could not be applied', '');
    for (const f of faultErrors) out.push(`- ${mdCell(f)}`);
    out.push('');
  }
  const shadowRuns = report.runs.filter((r) => r.shadow);
  if (shadowRuns.length) {
    out.push('### Shadow reads (the same SELECTs on old and new while replication carried the load)', '');
    for (const r of shadowRuns) {
      const sh = r.shadow!;
      if ('notMeasured' in sh) {
        out.push(`- run ${r.index}: not measured, because ${mdCell(sh.notMeasured)}`);
        continue;
      }
      const causes = Object.entries(sh.byCause).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`).join(', ');
      out.push(`- run ${r.index}: ${sh.compared} compared, **${sh.mismatches} mismatch(es)**${causes ? ` by cause: ${mdCell(causes)}` : ''}; ${sh.settled} went away on a re-read (replication lag)`);
      if (sh.perQuery.length) {
        out.push('');
        out.push(...table(['query', 'runs', 'mismatches', 'old p50 / p95', 'new p50 / p95'], sh.perQuery.map((q) => [mdCell(q.query), String(q.runs), String(q.mismatches), `${formatMs(q.source.p50)} / ${formatMs(q.source.p95)}`, `${formatMs(q.target.p50)} / ${formatMs(q.target.p95)}`])));
      }
      for (const e of sh.events.slice(0, 10)) out.push(`  - at ${formatMs(e.atMs)}: ${mdCell(e.cause)} — ${mdCell(e.detail)}`);
    }
    out.push('');
  }
  const counts = severityCounts(report);
  out.push(`### Drift (${counts.error} error, ${counts.warning} warning, ${counts.info} info)`);
  out.push('');
  for (const stage of ['before', 'after'] as const) {
    const note = driftStageNote(report.drift[stage]);
    if (note) out.push(`- drift ${stage} the switch: ${mdCell(note)}`);
  }
  const groups = groupFindings(report);
  if (!groups.length) out.push(driftStageNote(report.drift.before) && driftStageNote(report.drift.after) ? '' : 'No drift findings before or after the switchover.');
  else {
    const rows = groups.flatMap((g) => g.findings.filter((f) => f.severity !== 'info').map((f) => [mdCell(g.category), f.severity, f.stage, mdCell(f.objects && f.objects.length > 1 ? `${f.objects.length} objects: ${f.objects.slice(0, 8).join(', ')}${f.objects.length > 8 ? ', …' : ''}` : f.object), mdCell(findingValue(f.old)), mdCell(findingValue(f.new)), mdCell(f.message), mdCell(f.hint ?? '')]));
    if (rows.length) out.push(...table(['category', 'severity', 'when', 'object', 'old', 'new', 'finding', 'hint'], rows));
    const info = groups.reduce((n, g) => n + g.findings.filter((f) => f.severity === 'info').length, 0);
    if (info) out.push('', `${info} info finding(s) not listed here: see report.html.`);
  }
  out.push('');
  out.push(`<sub>cutover-lab ${mdCell(report.tool.version)} · ${mdCell(report.environment.oldVersion)} → ${mdCell(report.environment.newVersion)} · node ${mdCell(report.environment.node)}${report.environment.k6 ? ` · k6 ${mdCell(report.environment.k6)}` : ''} · ${report.environment.cpus} CPU, ${report.environment.memGiB} GiB</sub>`);
  return out.join('\n') + '\n';
}
