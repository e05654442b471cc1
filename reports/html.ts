/**
 * report.html: one self-contained page (opens offline) for the people who approve a cutover.
 *
 * Safety: every value from the model goes through `esc()` (HTML text and attributes) or through the
 * JSON island, where `<`, `>`, `&` and U+2028/9 are \u-escaped so no string can close the <script>
 * element. The page also carries a Content-Security-Policy that only allows the two inline scripts by
 * hash, so even a missed escape could not run injected script.
 *
 * Charts: Apache ECharts (UMD build inlined), canvas renderer, animation off. When every chart has
 * emitted 'finished', the page sets `window.__cutoverChartsReady = true` and
 * `<html data-charts-ready="true">`; pdf.ts and the browser tests wait for that.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { unmeasured, valueOf, isNotMeasured, type Measured, type Report, type Run } from './model.ts';
import {
  afterSwitchCells,
  formatRatio,
  blockedWindowRows,
  cellMeasured,
  describeInjected,
  driftStageNote,
  findingsOf,
  lostWritesUnmeasured,
  saturatedRuns,
  statText,
  budgetLabel,
  budgetSummary,
  driftOverBudget,
  findingValue,
  formatBudgetValue,
  formatBytes,
  formatCount,
  formatMs,
  groupFindings,
  severityCounts,
  totalLostWrites,
} from './format.ts';

/** Escape for HTML text and double-quoted attribute values. */
export function esc(v: unknown): string {
  return String(v ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that is safe inside <script type="application/json">: nothing in it can end the element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

let echartsSource: string | undefined;
function echartsJs(): string {
  if (echartsSource === undefined) {
    const file = createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js');
    const src = readFileSync(file, 'utf8');
    // Inlined verbatim; a closing tag inside would end the element early.
    if (/<\/script|<!--/i.test(src)) throw new Error(`${file} contains "</script" or "<!--" and cannot be inlined`);
    echartsSource = src;
  }
  return echartsSource;
}

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** Colours of the switchover phases (shaded on the timelines, dots in the phase table). */
const PHASE_COLORS: Record<string, string> = {
  preflight: '#90a4ae',
  'catch-up': '#80cbc4',
  catchup: '#80cbc4',
  fence: '#ffb74d',
  sentinel: '#fff176',
  sequences: '#ce93d8',
  switch: '#ef9a9a',
  resume: '#a5d6a7',
  'post-verify': '#90caf9',
  postverify: '#90caf9',
  reverse: '#bcaaa4',
};
const FALLBACK_COLORS = ['#b0bec5', '#ffcc80', '#c5e1a5', '#b39ddb', '#f48fb1', '#80deea'];

function phaseColors(report: Report): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  for (const r of report.runs) for (const p of r.phases) if (!(p.name in out)) out[p.name] = Object.hasOwn(PHASE_COLORS, p.name) ? PHASE_COLORS[p.name] : FALLBACK_COLORS[i++ % FALLBACK_COLORS.length];
  return out;
}

const OUTCOME_MARK: Record<string, string> = { ok: '✓', failed: '✗', skipped: '–', aborted: '⚠' };

export function renderHtml(report: Report): string {
  const colors = phaseColors(report);
  const verdict = report.verdict.pass ? 'GO' : 'NO-GO';
  const title = `Cutover rehearsal: ${report.scenario.name} — ${verdict}`;
  const island = jsonForScript({ report, phaseColors: colors });
  const app = CLIENT_JS;
  const lib = echartsJs();
  const csp = `default-src 'none'; script-src ${sha256(lib)} ${sha256(app)}; style-src 'unsafe-inline'; img-src data:; font-src data:`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="cutover-lab ${esc(report.tool.version)}">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <div class="verdict ${report.verdict.pass ? 'pass' : 'fail'}" id="verdict" data-pass="${report.verdict.pass}">${verdict}</div>
  <div>
    <h1>Cutover rehearsal: <span id="scenario-name">${esc(report.scenario.name)}</span></h1>
    <p class="sub">PostgreSQL ${esc(report.environment.oldVersion)} → ${esc(report.environment.newVersion)} · switch <b>${esc(report.scenario.switch)}</b> · fence <b>${esc(report.scenario.fence)}</b> · ${report.runs.length} run${report.runs.length === 1 ? '' : 's'} · generated ${esc(report.generatedAt)}</p>
  </div>
</header>
<main>
${headline(report)}
${runsTable(report)}
${afterSwitchSection(report)}
<section id="timelines">
  <h2>Timeline of each run</h2>
  <p class="note">Successful writes per second, failures, latency p99 and replication lag, measured from the client side. Shaded bands are the switchover phases; the red band is the error window.</p>
  <div class="phase-legend">${Object.entries(colors).map(([n, c]) => `<span><i style="background:${c}"></i>${esc(n)}</span>`).join('')}</div>
  ${report.runs.map((r) => timelineBlock(r)).join('\n  ')}
</section>
<section id="distribution">
  <h2>Downtime across runs</h2>
  <p class="note">Downtime of a run = max(error window, stall window): the longest time clients saw no successful write.</p>
  <div class="chart" id="downtime-chart" role="img" aria-label="downtime per run"></div>
</section>
${phaseTable(report, colors)}
${blockedTable(report)}
${driftSection(report)}
${faultsSection(report)}
${scenarioSection(report)}
</main>
<footer>cutover-lab ${esc(report.tool.version)} · report schema v${report.schemaVersion} · ${esc(report.generatedAt)}</footer>
<script type="application/json" id="report-data">${island}</script>
<script>${lib}</script>
<script>${app}</script>
</body>
</html>
`;
}

function metric(id: string, label: string, value: number | undefined, text: string, cls = ''): string {
  return `<div class="metric ${cls}" data-metric="${id}" data-value="${value ?? ''}"${value === undefined ? ' data-not-measured="true"' : ''}><div class="label">${esc(label)}</div><div class="value">${esc(text)}</div></div>`;
}

function statMetric(id: string, label: string, v: Measured<{ median: number; p95: number; max: number }>, key: 'median' | 'p95' | 'max', untrusted: boolean): string {
  const value = isNotMeasured(v) ? undefined : v[key];
  return metric(id, label, value, statText(v, key), value === undefined || untrusted ? 'unknown' : '');
}

function headline(report: Report): string {
  const a = report.aggregate;
  const lost = totalLostWrites(report);
  const budgets = budgetSummary(report);
  const over = driftOverBudget(report);
  const driftUnknown = (['before', 'after'] as const).filter((st) => isNotMeasured(report.drift[st]));
  const driftBad = over.length > 0 || driftUnknown.length > 0;
  const driftRow =
    findingsOf(report.drift.before).length + findingsOf(report.drift.after).length > 0 || driftUnknown.length || report.scenario.budgets.allowedDrift !== 'error'
      ? `<tr class="${driftBad ? 'fail' : 'pass'}"><td>drift</td><td>findings above “${esc(report.scenario.budgets.allowedDrift)}”: none allowed</td><td>${driftUnknown.length ? `not measured (${driftUnknown.join(', ')})` : over.length}</td><td>${driftBad ? '✗' : '✓'}</td></tr>`
      : '';
  const sat = saturatedRuns(report);
  const lostNm = lostWritesUnmeasured(report);
  const excluded = a.crashedRuns + a.saturatedRuns;
  return `<section id="headline">
  <h2>Headline</h2>
  ${sat.map((x) => `<p class="saturated" data-saturated-run="${x.index}">⚠ run ${x.index}: ${esc(x.text)}</p>`).join('\n  ')}
  <div class="metrics">
    ${statMetric('downtime-median', 'Downtime median', a.downtimeMs, 'median', sat.length > 0)}
    ${statMetric('downtime-p95', 'Downtime p95', a.downtimeMs, 'p95', sat.length > 0)}
    ${statMetric('downtime-max', 'Downtime max', a.downtimeMs, 'max', sat.length > 0)}
    ${metric('lost-writes', 'Lost writes', lost, `${formatCount(lost)}${lostNm ? ` (${lostNm} run(s) not measured)` : ''}`, lost > 0 || lostNm > 0 ? 'bad' : 'good')}
    ${metric('runs-passed', 'Runs within budget', a.passedRuns, `${a.passedRuns} / ${a.runs}`, a.passedRuns === a.runs ? 'good' : 'bad')}
  </div>
  ${excluded ? `<p class="note" id="excluded-runs">Window and latency figures over ${a.runs - excluded} of ${a.runs} run(s): ${a.crashedRuns} crashed, ${a.saturatedRuns} saturated (left out).</p>` : ''}
  <div class="reasons">${
    report.verdict.reasons.length
      ? `<ul id="verdict-reasons">${report.verdict.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>`
      : '<p id="verdict-reasons">Every run met every budget.</p>'
  }</div>
  <table class="budgets" id="budgets">
    <thead><tr><th>budget</th><th>limit</th><th>worst run</th><th>runs within</th></tr></thead>
    <tbody>
    ${budgets
      .map(
        (b) =>
          `<tr class="${b.passed === b.runs ? 'pass' : 'fail'}"><td>${esc(budgetLabel(b.name))} <code>${esc(b.name)}</code></td><td>≤ ${esc(formatBudgetValue(b.name, b.limit, b.unit))}</td><td>${b.worst === undefined ? 'not measured' : esc(formatBudgetValue(b.name, b.worst, b.unit))}</td><td>${b.passed} / ${b.runs}${b.notMeasured ? ` (${b.notMeasured} not measured)` : ''}</td></tr>`,
      )
      .join('\n    ')}
    ${driftRow}
    </tbody>
  </table>
</section>`;
}

function runsTable(report: Report): string {
  const ms = (v: Measured<number>) => esc(cellMeasured(v, formatMs));
  const n = (v: Measured<number>) => esc(cellMeasured(v, formatCount));
  const rows = report.runs
    .map((r) => {
      const notes: string[] = [];
      if (r.error) notes.push(`error: ${r.error}`);
      else {
        const sat = valueOf(r.saturation);
        if (sat?.saturated) notes.push(`lab saturated: ${sat.reasons.join('; ')} — downtime figures not trustworthy`);
        for (const f of r.faults) if (f.error) notes.push(`fault ${describeInjected(f)} could not be applied: ${f.error}`);
        const seen = new Set<string>();
        for (const u of unmeasured(r)) if (!u.figure.startsWith('budget ') && !seen.has(u.reason)) (seen.add(u.reason), notes.push(`${u.figure} not measured, because ${u.reason}`));
      }
      const lat = valueOf(r.latency);
      const sat = valueOf(r.saturation);
      return `<tr class="${r.pass ? 'pass' : 'fail'}" data-run="${r.index}">
      <td>${r.index}</td><td>${r.pass ? '✓ pass' : '✗ fail'}</td><td>${ms(r.downtimeMs)}</td><td>${ms(r.errorWindowMs)}</td><td>${ms(r.stallWindowMs)}</td>
      <td>${n(r.lostWrites)}</td><td>${n(r.unexpectedWrites)}</td><td>${n(r.recoveredWrites)}</td><td>${n(r.duplicateWrites)}</td><td>${n(r.splitBrainWrites)}</td><td>${esc(cellMeasured(r.droppedIterations, (d) => `${formatCount(d.total)} (${formatCount(d.cutover)} in cutover)`))}</td>
      <td>${esc(cellMeasured(r.requests, (q) => `${formatCount(q.ok)} / ${formatCount(q.failed)} / ${formatCount(q.indeterminate)}`))}</td>
      <td>${lat ? `${esc(formatMs(lat.switch.p99))} <span class="dim">(calm ${esc(formatMs(lat.calm.p99))})</span>` : 'not measured'}</td>
      <td class="${sat?.saturated ? 'bad' : ''}">${sat ? `${esc(formatCount(sat.achievedPerSec))} of ${esc(formatCount(sat.requestedPerSec))} req/s, ${esc(formatCount(sat.dropped))} dropped, p99 ${esc(formatMs(sat.p99Ms))}` : 'not measured'}</td></tr>${notes
        .map((x) => `\n    <tr class="fail error-row"><td></td><td colspan="13">${esc(x)}</td></tr>`)
        .join('')}`;
    })
    .join('\n    ');
  return `<section id="runs">
  <h2>Runs</h2>
  <table class="wide">
    <thead><tr><th>run</th><th>verdict</th><th>downtime</th><th>error window</th><th>stall</th><th>lost</th><th>unexpected</th><th>recovered</th><th>duplicate</th><th>split-brain</th><th>dropped</th><th>ok / failed / indeterminate</th><th>switch p99</th><th>calm load</th></tr></thead>
    <tbody>
    ${rows}
    </tbody>
  </table>
</section>`;
}

/** The first 10 s after the switch beside the calm interval, per run (statistics and warm-up show here). */
function afterSwitchSection(report: Report): string {
  const runs = report.runs.filter((r) => r.afterSwitch);
  if (!runs.length) return '';
  const a = report.aggregate;
  const agg = (label: string, v: (typeof a)['afterSwitchRatioP99']) =>
    `<tr><td>${esc(label)}</td><td>${esc(statText(v, 'median', formatRatio))}</td><td>${esc(statText(v, 'p95', formatRatio))}</td><td>${esc(statText(v, 'max', formatRatio))}</td></tr>`;
  const rows = runs.map((r) => {
    const v = valueOf(r.afterSwitch);
    if (!v) return `<tr class="fail" data-run="${r.index}"><td>${r.index}</td><td colspan="5">not measured, because ${esc((r.afterSwitch as { notMeasured: string }).notMeasured)}</td></tr>`;
    const c = afterSwitchCells(v);
    return `<tr data-run="${r.index}"><td>${r.index}</td><td>${esc(c.readiness)}</td><td>${esc(c.window)}</td><td>${esc(c.first)}</td><td>${esc(c.calm)}</td><td class="ratio">${esc(c.ratio)}</td></tr>`;
  });
  return `<section id="after-switch">
  <h2>First 10 s after the switch</h2>
  <p class="note">Latency of the successful requests that started in the first 10 s after resume (fewer when the load ended sooner) beside the calm interval before the cutover. Statistics are not replicated: without the readiness phase (ANALYZE, warm-up) the first queries on the new primary can get worse plans.</p>
  <table class="wide">
    <thead><tr><th>run</th><th>readiness</th><th>window</th><th>first p50 / p95 / p99 (requests)</th><th>calm p50 / p95 / p99 (requests)</th><th>ratio p50 / p95 / p99</th></tr></thead>
    <tbody>
    ${rows.join('\n    ')}
    </tbody>
  </table>
  <table id="after-switch-aggregate">
    <thead><tr><th>first 10 s ÷ calm</th><th>median</th><th>p95</th><th>max</th></tr></thead>
    <tbody>
    ${agg('p50', a.afterSwitchRatioP50)}
    ${agg('p95', a.afterSwitchRatioP95)}
    ${agg('p99', a.afterSwitchRatioP99)}
    </tbody>
  </table>
</section>`;
}

function timelineBlock(r: Run): string {
  const lag = r.switchover?.lagAtFenceBytes;
  return `<figure class="run-timeline" data-run="${r.index}">
    <figcaption>Run ${r.index} — ${r.pass ? '<span class="ok">within budget</span>' : '<span class="bad">no-go</span>'} · downtime ${esc(cellMeasured(r.downtimeMs, formatMs))} · error window ${esc(cellMeasured(r.errorWindowMs, formatMs))} · stall ${esc(cellMeasured(r.stallWindowMs, formatMs))}${
      r.replication ? ` · sync ${esc(cellMeasured(r.replication.syncMs, formatMs))}, post-data ${esc(cellMeasured(r.replication.postDataMs, formatMs))}${r.replication.underLoad ? ' under load' : ''}${r.replication.clone ? ` · clone-then-follow at ${esc(r.replication.clone.lsn)} (basebackup ${esc(formatMs(r.replication.clone.basebackupMs))}, recovery ${esc(formatMs(r.replication.clone.recoverMs))}, pg_upgrade ${esc(formatMs(r.replication.clone.upgradeMs))})` : ''}` : ''
    }${
      lag !== undefined ? ` · lag at fence ${esc(formatBytes(lag))}` : ''
    }${r.switchover?.sentinelMs !== undefined ? ` · sentinel ${esc(formatMs(r.switchover.sentinelMs))}` : ''}${
      r.rollback
        ? ` · rollback: downtime ${esc(cellMeasured(r.rollback.downtimeMs, formatMs))}, lost ${esc(cellMeasured(r.rollback.lostWrites, formatCount))}, split-brain ${esc(cellMeasured(r.rollback.splitBrainWrites, formatCount))}${r.rollback.error ? ` <span class="bad">${esc(r.rollback.error)}</span>` : ''}`
        : ''
    }</figcaption>
    <div class="chart timeline" id="timeline-${r.index}" role="img" aria-label="timeline of run ${r.index}"></div>${clusterBlock(r)}
  </figure>`;
}

/** The clusters' own timeline under the client's (same x axis): WAL/lag, apply, xmin, connections, CPU. */
function clusterBlock(r: Run): string {
  const tl = r.clusterTimeline;
  if (!tl?.length) return '';
  const max = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? Math.max(...v) : undefined;
  };
  const wal = max(tl.map((p) => p.walRetainedBytes));
  const xmin = max(tl.map((p) => p.xminAge));
  const stopped = tl.filter((p) => p.applyState === 'down' || p.applyState === 'disabled').length;
  const cpuOld = max(tl.map((p) => p.cpu.old));
  const cpuNew = max(tl.map((p) => p.cpu.new));
  const parts = [
    `WAL retained max ${wal !== undefined ? esc(formatBytes(wal)) : '—'}`,
    `slot xmin age max ${xmin !== undefined ? esc(String(xmin)) : '—'}`,
    `apply stopped ${stopped} of ${tl.length} s`,
    `CPU max old ${cpuOld !== undefined ? esc(cpuOld.toFixed(2)) : '—'} / new ${cpuNew !== undefined ? esc(cpuNew.toFixed(2)) : '—'} cores`,
  ];
  const rev = tl.find((p) => p.replication === 'reverse');
  if (rev) parts.push(`slot, lag and apply of the reverse replication (new → old) from ${esc(formatMs(rev.tMs))}`);
  return `
    <div class="cluster-caption">Clusters — ${parts.join(' · ')}</div>
    <div class="chart cluster" id="cluster-timeline-${r.index}" role="img" aria-label="cluster timeline of run ${r.index}: WAL retained, lag, apply state, xmin age, connections and CPU per side"></div>`;
}

function phaseTable(report: Report, colors: Record<string, string>): string {
  const names = Object.keys(colors);
  const perRun = report.runs.length <= 10;
  const head = perRun ? report.runs.map((r) => `<th>run ${r.index}</th>`).join('') : '<th>outcomes</th>';
  const rows = names.map((n) => {
    const s = report.aggregate.phaseMs[n];
    const cells = perRun
      ? report.runs
          .map((r) => {
            const ps = r.phases.filter((p) => p.name === n);
            if (!ps.length) return '<td class="dim">—</td>';
            return `<td class="${ps.some((p) => p.outcome === 'failed' || p.outcome === 'aborted') ? 'bad' : ''}" title="${esc(ps.map((p) => p.detail ?? p.outcome).join('; '))}">${ps
              .map((p) => `${OUTCOME_MARK[p.outcome]} ${esc(formatMs(p.endMs - p.startMs))}`)
              .join('<br>')}</td>`;
          })
          .join('')
      : `<td>${(['ok', 'failed', 'skipped', 'aborted'] as const)
          .map((o) => [o, report.runs.flatMap((r) => r.phases).filter((p) => p.name === n && p.outcome === o).length] as const)
          .filter(([, c]) => c > 0)
          .map(([o, c]) => `${o} ${c}`)
          .join(', ')}</td>`;
    return `<tr><td><i class="dot" style="background:${colors[n]}"></i>${esc(n)}</td><td>${s ? esc(formatMs(s.median)) : '—'}</td><td>${s ? esc(formatMs(s.p95)) : '—'}</td><td>${s ? esc(formatMs(s.max)) : '—'}</td>${cells}</tr>`;
  });
  return `<section id="phases">
  <h2>Phase timings</h2>
  <table class="wide">
    <thead><tr><th>phase</th><th>median</th><th>p95</th><th>max</th>${head}</tr></thead>
    <tbody>
    ${rows.join('\n    ')}
    </tbody>
  </table>
  <p class="note">✓ ok · ✗ failed · – skipped · ⚠ aborted. Times are durations; hover a cell for the phase's detail.</p>
</section>`;
}

/** Where the write-blocked window went (format.ts blockedWindowRows); nothing when no run has it. */
function blockedTable(report: Report): string {
  const rows = blockedWindowRows(report);
  if (!rows.length) return '';
  const perRun = report.runs.length <= 10;
  const head = perRun ? report.runs.map((r) => `<th>run ${r.index}</th>`).join('') : '';
  const stat = (v: number | undefined) => (v === undefined ? '<td class="dim">not measured</td>' : `<td>${esc(formatMs(v))}</td>`);
  const body = rows.map(
    (b) =>
      `<tr><td>${esc(b.label)}</td>${stat(b.median)}${stat(b.p95)}${perRun ? b.runs.map((x) => (x.value === undefined ? `<td class="dim" title="${esc(x.why ?? '')}">not measured</td>` : `<td>${esc(formatMs(x.value))}</td>`)).join('') : ''}</tr>`,
  );
  return `<section id="blocked-window">
  <h2>Write-blocked window, part by part</h2>
  <table class="wide">
    <thead><tr><th>part</th><th>median</th><th>p95</th>${head}</tr></thead>
    <tbody>
    ${body.join('\n    ')}
    </tbody>
  </table>
  <p class="note">From the switchover's phases (fence → resume) and the client log: when the app moved to the new address, its first acknowledged write there, and how long failures went on after resume. Medians over the runs whose lab kept up; hover "not measured" for why.</p>
</section>`;
}

function driftSection(report: Report): string {
  const groups = groupFindings(report);
  const counts = severityCounts(report);
  const stageNotes = (['before', 'after'] as const)
    .map((st) => [st, driftStageNote(report.drift[st])] as const)
    .filter(([, n]) => n)
    .map(([st, n]) => `<p class="${isNotMeasured(report.drift[st]) ? 'bad' : 'dim'}" data-drift-stage="${st}">drift ${st} the switch: ${esc(n)}</p>`)
    .join('');
  if (!groups.length) return `<section id="drift"><h2>Drift between old and new</h2>${stageNotes}${stageNotes ? '' : '<p>No drift findings before or after the switchover.</p>'}</section>`;
  return `<section id="drift">
  <h2>Drift between old and new</h2>
  ${stageNotes}
  <p class="note"><span class="sev error">${counts.error} error</span> <span class="sev warning">${counts.warning} warning</span> <span class="sev info">${counts.info} info</span> · findings above “${esc(report.scenario.budgets.allowedDrift)}” fail the drift budget. “before” = found while planning, “after” = on the live new primary.</p>
  ${groups
    .map(
      (g) => `<div class="drift-group" data-category="${esc(g.category)}">
    <h3>${esc(g.category)} <span class="dim">(${g.findings.length})</span></h3>
    <table class="wide drift">
      <thead><tr><th>severity</th><th>when</th><th>object</th><th>old</th><th>new</th><th>what differs and why it matters</th></tr></thead>
      <tbody>
      ${g.findings
        .map(
          (f) =>
            `<tr><td><span class="sev ${f.severity}">${f.severity}</span></td><td>${f.stage}</td><td><code>${esc(f.object)}</code></td><td>${esc(findingValue(f.old))}</td><td>${esc(findingValue(f.new))}</td><td>${esc(f.message)}${
              f.hint ? `<div class="hint">hint: ${esc(f.hint)}</div>` : ''
            }</td></tr>`,
        )
        .join('\n      ')}
      </tbody>
    </table>
  </div>`,
    )
    .join('\n  ')}
</section>`;
}

function attrs(a: Record<string, string | number | boolean> | undefined): string {
  if (!a) return '';
  return Object.entries(a)
    .map(([k, v]) => `${esc(k)}=${esc(v)}`)
    .join(', ');
}

/** What a database fault did, what the subscriber showed, and how to recover (conflict). */
function faultDetail(f: Run['faults'][number]): string {
  const parts: string[] = [];
  if (f.effect) parts.push(`<div class="fault-effect">${esc(f.effect)}</div>`);
  if (f.detection) parts.push(`<div class="fault-detection">${f.detection.detected ? `detected via ${esc(f.detection.via.join('; '))}` : `<span class="bad">not detected</span>${f.detection.via.length ? ` (${esc(f.detection.via.join('; '))})` : ''}`}${f.detection.message ? `: <code>${esc(f.detection.message)}</code>` : ''}</div>`);
  if (f.recovery) parts.push(`<div class="fault-recovery"><b>recovery:</b> ${esc(f.recovery)}</div>`);
  return parts.join('');
}

function faultsSection(report: Report): string {
  const planned = report.scenario.faults;
  const injected = report.runs.flatMap((r) => r.faults.map((f) => ({ run: r.index, ...f })));
  const plan = planned.length
    ? `<table class="wide"><thead><tr><th>kind</th><th>hop / target</th><th>when</th><th>for</th><th>settings</th></tr></thead><tbody>${planned
        .map(
          (f) =>
            `<tr><td>${esc(f.kind)}</td><td>${esc(f.hop ?? f.target ?? '—')}</td><td>${f.phase ? `phase ${esc(f.phase)}` : ''}${f.phase && f.atMs !== undefined ? ', ' : ''}${f.atMs !== undefined ? `t = ${esc(formatMs(f.atMs))}` : ''}</td><td>${f.durationMs !== undefined ? esc(formatMs(f.durationMs)) : '—'}</td><td>${attrs(f.attributes)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p>The scenario plans no faults.</p>';
  const done = injected.length
    ? `<table class="wide"><thead><tr><th>run</th><th>kind</th><th>hop / target</th><th>at</th><th>for</th><th>settings</th><th>outcome</th></tr></thead><tbody>${injected
        .map(
          (f) =>
            `<tr class="${f.error ? 'fail' : ''}"><td>${f.run}</td><td>${esc(f.kind)}</td><td>${esc(f.hop ?? f.target ?? '—')}</td><td>${f.phase ? `phase ${esc(f.phase)}, ` : ''}t = ${esc(formatMs(f.atMs))}</td><td>${f.durationMs !== undefined ? esc(formatMs(f.durationMs)) : '—'}</td><td>${attrs(f.attributes)}</td><td>${f.error ? `<span class="bad">could not be applied: ${esc(f.error)}</span>` : 'applied'}${faultDetail(f)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p>No faults were injected.</p>';
  return `<section id="faults">
  <h2>Faults</h2>
  <h3>Planned by the scenario</h3>
  ${plan}
  <h3>Injected</h3>
  ${done}
</section>`;
}

function scenarioSection(report: Report): string {
  const s = report.scenario;
  const e = report.environment;
  const b = s.budgets;
  const dl = (pairs: [string, string | undefined][]) =>
    `<dl>${pairs
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`)
      .join('')}</dl>`;
  return `<section id="scenario">
  <h2>Scenario and environment</h2>
  <div class="cols">
  <div>${dl([
    ['scenario', s.name],
    ['description', s.description],
    ['file', s.file],
    ['runs planned', String(s.runs)],
    ['provider', s.provider],
    ['majors', `${s.oldMajor} → ${s.newMajor}`],
    ['switch strategy', s.switch],
    ['fence strategy', s.fence],
    ['publication', s.publication],
    ['dataset', `${s.dataset.preset}, scale ${formatCount(s.dataset.scale)}`],
    ['load', `${formatCount(s.load.rate)} req/s for ${formatMs(s.load.durationMs)}, ${Math.round(s.load.readRatio * 100)} % reads, retry ${s.load.retry}, during ${s.load.during === 'sync' ? 'the sync and the cutover' : 'the cutover'}`],
    ['budgets', `error window ≤ ${formatMs(b.maxErrorWindowMs)}, stall ≤ ${formatMs(b.maxStallMs)}, lost ≤ ${b.maxLostWrites}, duplicates ≤ ${b.maxDuplicateWrites}, drift up to ${b.allowedDrift}`],
  ])}</div>
  <div>${dl([
    ['old server', e.oldVersion],
    ['new server', e.newVersion],
    ['node', e.node],
    ['k6', e.k6],
    ['toxiproxy', e.toxiproxy],
    ['os', e.os],
    ['machine', e.machine],
    ['cpus / memory', `${e.cpus} / ${e.memGiB} GiB`],
    ['tool', `${report.tool.name} ${report.tool.version}`],
  ])}</div>
  </div>
</section>`;
}

const CSS = `
:root{--ok:#2e7d32;--bad:#c62828;--warn:#ef6c00;--ink:#1d2330;--dim:#667085;--line:#e3e6ec;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Liberation Sans","DejaVu Sans",Arial,sans-serif;color:var(--ink);background:#fff}
header{display:flex;gap:18px;align-items:center;padding:18px 24px;border-bottom:1px solid var(--line);background:var(--bg)}
header h1{margin:0;font-size:22px}
.sub{margin:4px 0 0;color:var(--dim)}
.verdict{font-weight:700;font-size:20px;padding:10px 16px;border-radius:8px;color:#fff;white-space:nowrap}
.verdict.pass{background:var(--ok)}.verdict.fail{background:var(--bad)}
main{max-width:1180px;margin:0 auto;padding:8px 24px 24px}
section{margin:22px 0;break-inside:auto}
h2{font-size:17px;margin:0 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:14px 0 6px}
.metrics{display:flex;flex-wrap:wrap;gap:10px}
.metric{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:var(--bg);break-inside:avoid}
.metric .label{color:var(--dim);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.metric .value{font-size:26px;font-weight:700}
.metric.good .value{color:var(--ok)}.metric.bad .value{color:var(--bad)}.metric.unknown .value{color:var(--warn)}
.saturated{margin:8px 0;padding:8px 12px;border-radius:6px;background:#fff3e0;color:#bf360c;font-weight:700}
.reasons ul{margin:10px 0;padding-left:20px;color:var(--bad)}
.reasons p{color:var(--ok)}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
table.wide{width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
tr.fail td:first-child{box-shadow:inset 3px 0 var(--bad)}
tr.pass td:first-child{box-shadow:inset 3px 0 var(--ok)}
tr{break-inside:avoid}
.dim{color:var(--dim)}.ok{color:var(--ok)}.bad{color:var(--bad)}
code{font:12px "DejaVu Sans Mono",monospace;background:var(--bg);padding:0 3px;border-radius:3px;word-break:break-all}
.chart{width:100%;height:300px}
.chart.timeline{height:280px}
.chart.cluster{height:430px}
.cluster-caption{font-size:12px;color:#455a64;margin:6px 0 0 4px}
figure{margin:10px 0 18px;break-inside:avoid}
figcaption{font-weight:600;margin-bottom:2px}
.note{color:var(--dim);font-size:12.5px;margin:4px 0}
.phase-legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin:6px 0}
.phase-legend i,.dot{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px;border:1px solid rgba(0,0,0,.15)}
.sev{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.sev.error{background:var(--bad)}.sev.warning{background:var(--warn)}.sev.info{background:#546e7a}
table.drift{table-layout:fixed}table.drift th:nth-child(1){width:84px}table.drift th:nth-child(2){width:60px}table.drift th:nth-child(3){width:22%}table.drift th:nth-child(4),table.drift th:nth-child(5){width:14%}
table.drift td{word-break:break-word}
.hint{color:var(--dim);font-size:12px;margin-top:2px}
.cols{display:flex;flex-wrap:wrap;gap:24px}.cols>div{flex:1 1 380px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dt{color:var(--dim)}dd{margin:0;word-break:break-word}
footer{color:var(--dim);font-size:12px;padding:12px 24px;border-top:1px solid var(--line)}
@media print{header{background:none}main{padding:0 4px}h2{break-after:avoid}.chart{break-inside:avoid}}
@page{size:A4;margin:10mm}
`;

/** Runs in the page: reads the JSON island and draws the charts. Kept ES5-ish and dependency-free. */
const CLIENT_JS = `(function () {
  'use strict';
  var island = JSON.parse(document.getElementById('report-data').textContent);
  var report = island.report, colors = island.phaseColors;
  var charts = [], pending = 0;
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function ms(v) { return v < 1000 ? Math.round(v) + ' ms' : (v / 1000).toFixed(2) + ' s'; }
  // a figure that was not measured is {notMeasured: why}: no bar, no line
  function num(v) { return typeof v === 'number' ? v : (v && typeof v.median === 'number' ? v.median : null); }
  function settle() {
    pending -= 1;
    if (pending === 0) { window.__cutoverChartsReady = true; document.documentElement.setAttribute('data-charts-ready', 'true'); }
  }
  function draw(el, option) {
    var chart = echarts.init(el, null, { renderer: 'canvas' });
    var done = false;
    pending += 1;
    chart.on('finished', function () { if (!done) { done = true; settle(); } });
    chart.setOption(option);
    charts.push(chart);
  }
  function axisTooltip(params) {
    var lines = ['<b>t = ' + esc(params[0].value[0]) + ' s</b>'];
    params.forEach(function (p) {
      if (p.value[1] === null || p.value[1] === undefined) return;
      lines.push(p.marker + esc(p.seriesName) + ': <b>' + esc(Math.round(p.value[1] * 10) / 10) + '</b>');
    });
    return lines.join('<br>');
  }
  report.runs.forEach(function (run) {
    var el = document.getElementById('timeline-' + run.index);
    if (!el) return;
    var tl = run.timeline;
    var sec = function (m) { return m / 1000; };
    var hasLag = tl.some(function (p) { return p.lagBytes !== undefined && p.lagBytes !== null; });
    var first = tl.length ? sec(tl[0].tMs) : 0, last = tl.length ? sec(tl[tl.length - 1].tMs) + 1 : 1;
    // Name a band on the chart only where it is wide enough to read; the legend above names them all.
    // the rollback leg's phases are shaded too, named as such
    var allPhases = run.phases.concat((run.rollback ? run.rollback.phases : []).map(function (p) { return { name: 'rollback ' + p.name, base: p.name, startMs: p.startMs, endMs: p.endMs }; }));
    var phases = allPhases.map(function (p) {
      var wide = (p.endMs - p.startMs) / 1000 >= (last - first) * 0.045;
      return [{ name: p.name, xAxis: sec(p.startMs), itemStyle: { color: colors[p.base || p.name], opacity: 0.45 }, label: { show: wide } }, { xAxis: sec(Math.max(p.endMs, p.startMs + 1)) }];
    });
    // the error window of each leg (the rollback's too, when the run had one)
    var windows = [];
    if (run.errorWindow) windows.push([{ name: 'error window ' + (num(run.errorWindowMs) === null ? '' : ms(run.errorWindowMs)), xAxis: sec(run.errorWindow.startMs) }, { xAxis: sec(run.errorWindow.endMs) }]);
    if (run.rollback && run.rollback.errorWindow) windows.push([{ name: 'rollback error window ' + (num(run.rollback.errorWindowMs) === null ? '' : ms(run.rollback.errorWindowMs)), xAxis: sec(run.rollback.errorWindow.startMs) }, { xAxis: sec(run.rollback.errorWindow.endMs) }]);
    var series = [
      { name: 'ok writes/s', type: 'line', showSymbol: false, color: '#2e7d32', areaStyle: { opacity: 0.12 },
        data: tl.map(function (p) { return [sec(p.tMs), p.okPerSec]; }),
        markArea: { silent: true, label: { show: true, position: 'insideTop', fontSize: 10, color: '#37474f' }, data: phases } },
      { name: 'failed/s', type: 'bar', barMaxWidth: 8, color: '#c62828',
        data: tl.map(function (p) { return [sec(p.tMs), p.failPerSec]; }),
        markArea: windows.length ? { silent: true, itemStyle: { color: 'rgba(198,40,40,0.13)' },
          label: { show: true, position: 'insideBottom', color: '#c62828', fontSize: 10 },
          data: windows } : undefined },
      { name: 'latency p99 (ms)', type: 'line', yAxisIndex: 1, showSymbol: false, color: '#1565c0', lineStyle: { width: 1.5 },
        data: tl.map(function (p) { return [sec(p.tMs), p.latencyP99Ms]; }) }
    ];
    var yAxis = [
      { type: 'value', name: 'writes/s', nameTextStyle: { align: 'left' }, splitLine: { lineStyle: { color: '#eef0f3' } } },
      { type: 'value', name: 'p99 ms', position: 'right', splitLine: { show: false } }
    ];
    if (hasLag) {
      series.push({ name: 'replication lag (kB)', type: 'line', yAxisIndex: 2, showSymbol: false, color: '#8e24aa', lineStyle: { type: 'dashed', width: 1.5 },
        data: tl.map(function (p) { return [sec(p.tMs), p.lagBytes === null || p.lagBytes === undefined ? null : p.lagBytes / 1024]; }) });
      yAxis.push({ type: 'value', name: 'lag kB', position: 'right', offset: 52, splitLine: { show: false } });
    }
    draw(el, {
      animation: false,
      grid: { left: 52, right: hasLag ? 108 : 56, top: 30, bottom: 52 },
      legend: { bottom: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: 'axis', formatter: axisTooltip },
      xAxis: { type: 'value', min: first, max: last, axisLabel: { formatter: '{value} s' }, splitLine: { show: false } },
      yAxis: yAxis,
      series: series
    });
    var cEl = document.getElementById('cluster-timeline-' + run.index);
    if (cEl && run.clusterTimeline && run.clusterTimeline.length) {
      // the client chart's bars widen its x axis by half a bar each side: use the extent it drew
      // (inside its grid, not at the grid's edges), so the cluster panels span the same pixels
      var ext = [first, last], rect = null;
      try {
        var client = charts[charts.length - 1];
        ext = client.getModel().getComponent('xAxis', 0).axis.scale.getExtent();
        var x0 = client.convertToPixel({ xAxisIndex: 0 }, ext[0]), x1 = client.convertToPixel({ xAxisIndex: 0 }, ext[1]);
        if (isFinite(x0) && isFinite(x1) && x1 > x0) rect = { left: x0, right: client.getWidth() - x1 };
      } catch (e) {}
      drawCluster(cEl, run, ext[0], ext[1], phases, rect);
    }
  });
  // Three panels on one x axis (the client chart's): WAL retained and lag (bytes, with lag seconds
  // and the apply state as a red band while apply is stopped), the slot's xmin age and the
  // connections per side, and each server's CPU.
  function drawCluster(el, run, first, last, phases, rect) {
    var ct = run.clusterTimeline;
    var sec = function (m) { return m / 1000; };
    var mb = function (v) { return v === null || v === undefined ? null : v / 1048576; };
    var pts = function (f) { return ct.map(function (p) { var v = f(p); return [sec(p.tMs), v === undefined ? null : v]; }); };
    var stopped = [], from = null;
    ct.forEach(function (p, i) {
      var bad = p.applyState === 'down' || p.applyState === 'disabled';
      if (bad && from === null) from = { t: sec(p.tMs), state: p.applyState };
      var next = ct[i + 1];
      if (from !== null && (!bad || !next)) {
        stopped.push([{ name: 'apply ' + from.state, xAxis: from.t }, { xAxis: bad ? sec(p.tMs) + 1 : sec(p.tMs) }]);
        from = null;
      }
    });
    var band = phases.map(function (p) { return [Object.assign({}, p[0], { label: { show: false } }), p[1]]; });
    var lr = rect ? { left: rect.left, right: rect.right, outerBoundsMode: 'none' } : { left: 52, right: 108 };
    var grids = [{ top: 24, height: 110 }, { top: 180, height: 80 }, { top: 306, height: 70 }].map(function (g) { return Object.assign(g, lr); });
    var xAxis = grids.map(function (g, i) { return { type: 'value', gridIndex: i, min: first, max: last, axisLabel: { show: i === 2, formatter: '{value} s' }, splitLine: { show: false } }; });
    var yAxis = [
      { type: 'value', gridIndex: 0, name: 'MB', splitLine: { lineStyle: { color: '#eef0f3' } } },
      { type: 'value', gridIndex: 0, name: 'lag s', position: 'right', splitLine: { show: false } },
      { type: 'value', gridIndex: 1, name: 'xmin age', splitLine: { lineStyle: { color: '#eef0f3' } } },
      { type: 'value', gridIndex: 1, name: 'connections', position: 'right', minInterval: 1, splitLine: { show: false } },
      { type: 'value', gridIndex: 2, name: 'CPU cores', min: 0, splitLine: { lineStyle: { color: '#eef0f3' } } }
    ];
    var line = function (name, color, xi, yi, data, extra) { return Object.assign({ name: name, type: 'line', showSymbol: false, connectNulls: false, color: color, xAxisIndex: xi, yAxisIndex: yi, lineStyle: { width: 1.5 }, data: data }, extra || {}); };
    var series = [
      line('WAL retained (MB)', '#6d4c41', 0, 0, pts(function (p) { return mb(p.walRetainedBytes); }), { areaStyle: { opacity: 0.1 },
        markArea: { silent: true, data: band.concat(stopped.map(function (s) { return [Object.assign({}, s[0], { itemStyle: { color: 'rgba(198,40,40,0.22)' }, label: { show: true, position: 'insideTop', color: '#c62828', fontSize: 10 } }), s[1]]; })) } }),
      line('lag (MB)', '#8e24aa', 0, 0, pts(function (p) { return mb(p.lagBytes); }), { lineStyle: { type: 'dashed', width: 1.5 } }),
      line('lag (s)', '#f4511e', 0, 1, pts(function (p) { return p.lagSeconds; }), { lineStyle: { type: 'dotted', width: 1.5 } }),
      line('slot xmin age', '#00897b', 1, 2, pts(function (p) { return p.xminAge; })),
      line('connections old', '#1565c0', 1, 3, pts(function (p) { return p.connections.old; }), { step: 'end' }),
      line('connections new', '#2e7d32', 1, 3, pts(function (p) { return p.connections.new; }), { step: 'end' }),
      line('CPU old', '#1565c0', 2, 4, pts(function (p) { return p.cpu.old; }), { areaStyle: { opacity: 0.08 } }),
      line('CPU new', '#2e7d32', 2, 4, pts(function (p) { return p.cpu.new; }), { areaStyle: { opacity: 0.08 } })
    ];
    draw(el, {
      animation: false,
      grid: grids,
      legend: { bottom: 0, textStyle: { fontSize: 11 } },
      tooltip: { trigger: 'axis', formatter: axisTooltip },
      axisPointer: { link: [{ xAxisIndex: 'all' }] },
      xAxis: xAxis,
      yAxis: yAxis,
      series: series
    });
  }
  var dEl = document.getElementById('downtime-chart');
  if (dEl) {
    var runs = report.runs, b = report.scenario.budgets, agg = report.aggregate.downtimeMs;
    var lines = [{ name: 'budget', yAxis: Math.min(b.maxErrorWindowMs, b.maxStallMs) / 1000, lineStyle: { color: '#c62828', type: 'solid', width: 2 } }];
    // a downtime no run could measure has no median to draw
    if (num(agg.median) !== null) lines.unshift(
      { name: 'median', yAxis: agg.median / 1000, lineStyle: { color: '#455a64', type: 'dashed' } },
      { name: 'p95', yAxis: agg.p95 / 1000, lineStyle: { color: '#ef6c00', type: 'dashed' } });
    draw(dEl, {
      animation: false,
      grid: { left: 52, right: 96, top: 36, bottom: 30 },
      legend: { top: 0 },
      tooltip: { trigger: 'axis', valueFormatter: function (v) { return esc(ms(v * 1000)); } },
      xAxis: { type: 'category', data: runs.map(function (r) { return 'run ' + r.index; }) },
      yAxis: { type: 'value', name: 'seconds' },
      series: [
        { name: 'downtime', type: 'bar', barMaxWidth: 36, color: '#43a047',
          data: runs.map(function (r) { return { value: num(r.downtimeMs) === null ? null : num(r.downtimeMs) / 1000, itemStyle: { color: r.pass ? '#43a047' : '#e53935' } }; }),
          markLine: { silent: true, symbol: 'none', label: { formatter: function (p) { return p.name + ' ' + ms(p.value * 1000); }, position: 'end' }, data: lines } },
        { name: 'error window', type: 'bar', barMaxWidth: 18, color: '#ef9a9a', data: runs.map(function (r) { return num(r.errorWindowMs) === null ? null : num(r.errorWindowMs) / 1000; }) },
        { name: 'stall window', type: 'bar', barMaxWidth: 18, color: '#90caf9', data: runs.map(function (r) { return num(r.stallWindowMs) === null ? null : num(r.stallWindowMs) / 1000; }) }
      ]
    });
  }
  if (pending === 0) { window.__cutoverChartsReady = true; document.documentElement.setAttribute('data-charts-ready', 'true'); }
  function resize() { charts.forEach(function (c) { c.resize(); }); }
  window.addEventListener('resize', resize);
  window.addEventListener('beforeprint', resize);
})();
`;
