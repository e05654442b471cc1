/**
 * junit.xml for CI: one test suite per scenario, one test case per run and one per budget (over all
 * runs), failures carrying the reason. Every value is XML-escaped.
 */
import type { Report } from './model.ts';
import { budgetLabel, budgetSummary, formatBudgetValue, formatMs, driftOverBudget } from './format.ts';

export function xmlEscape(v: unknown): string {
  return String(v ?? '')
    // characters XML 1.0 cannot carry at all
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

interface Case {
  name: string;
  classname: string;
  timeS: number;
  failure?: { message: string; body: string };
}

export function renderJunit(report: Report): string {
  const suite = `cutover.${report.scenario.name}`;
  const cases: Case[] = [];
  for (const r of report.runs) {
    const failed = r.budgets.filter((b) => !b.pass);
    const why = r.error ? `run failed: ${r.error}` : failed.map((b) => `${budgetLabel(b.name)} ${formatBudgetValue(b.name, b.actual, b.unit)} > ${formatBudgetValue(b.name, b.limit, b.unit)}`).join('; ');
    cases.push({
      name: `run ${r.index}: downtime ${formatMs(r.downtimeMs)}, lost writes ${r.lostWrites}`,
      classname: `${suite}.runs`,
      timeS: r.durationMs / 1000,
      ...(r.pass ? {} : { failure: { message: why || 'run did not pass', body: `error window ${formatMs(r.errorWindowMs)}, stall ${formatMs(r.stallWindowMs)}, lost ${r.lostWrites}, split-brain ${r.splitBrainWrites}, duplicates ${r.duplicateWrites}` } }),
    });
  }
  for (const b of budgetSummary(report)) {
    const ok = b.passed === b.runs;
    cases.push({
      name: `budget ${budgetLabel(b.name)} ≤ ${formatBudgetValue(b.name, b.limit, b.unit)}`,
      classname: `${suite}.budgets`,
      timeS: 0,
      ...(ok ? {} : { failure: { message: `${b.runs - b.passed} of ${b.runs} run(s) over budget; worst ${formatBudgetValue(b.name, b.worst, b.unit)}`, body: `limit ${formatBudgetValue(b.name, b.limit, b.unit)}` } }),
    });
  }
  const drift = driftOverBudget(report);
  cases.push({
    name: `drift at most ${report.scenario.budgets.allowedDrift}`,
    classname: `${suite}.drift`,
    timeS: 0,
    ...(drift.length ? { failure: { message: `${drift.length} drift finding(s) above ${report.scenario.budgets.allowedDrift}`, body: drift.map((f) => `[${f.stage}] ${f.category} ${f.severity} ${f.object}: ${f.message}`).join('\n') } } : {}),
  });
  const failures = cases.filter((c) => c.failure).length;
  const time = cases.reduce((t, c) => t + c.timeS, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="cutover-lab" tests="${cases.length}" failures="${failures}" time="${time.toFixed(3)}">`,
    `  <testsuite name="${xmlEscape(suite)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="0" time="${time.toFixed(3)}" timestamp="${xmlEscape(report.generatedAt)}">`,
  ];
  for (const c of cases) {
    const open = `    <testcase name="${xmlEscape(c.name)}" classname="${xmlEscape(c.classname)}" time="${c.timeS.toFixed(3)}"`;
    if (!c.failure) lines.push(`${open}/>`);
    else lines.push(`${open}>`, `      <failure message="${xmlEscape(c.failure.message)}" type="budget">${xmlEscape(c.failure.body)}</failure>`, '    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
