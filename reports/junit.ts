/**
 * junit.xml for CI: one test suite per scenario, one test case per run and one per budget (over all
 * runs), failures carrying the reason. Every value is XML-escaped.
 */
import { unmeasured, valueOf, isNotMeasured, type Report } from './model.ts';
import { afterSwitchText, budgetLabel, budgetSummary, cellMeasured, describeInjected, driftStageNote, leftBehind, formatBudgetValue, formatCount, formatMs, driftOverBudget, saturationText } from './format.ts';

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
    // every reason the run is not a pass, the same sentences the verdict uses
    const why: string[] = [];
    if (r.error) why.push(`run ${r.error}`);
    else {
      const sat = valueOf(r.saturation);
      if (sat?.saturated) why.push(saturationText(sat));
      for (const f of r.faults) if (f.error) why.push(`fault ${describeInjected(f)} could not be applied: ${f.error}`);
      if (r.rollback?.error) why.push(`the rollback ${r.rollback.error}`);
      if (r.cleanup?.remaining.length) why.push(leftBehind(r.cleanup.remaining));
      const seen = new Set<string>();
      for (const u of unmeasured(r)) if (!u.figure.startsWith('budget ') && !seen.has(u.reason)) (seen.add(u.reason), why.push(`${u.figure} not measured, because ${u.reason}`));
      for (const b of r.budgets) {
        if (b.pass) continue;
        if (isNotMeasured(b.actual)) {
          if (b.name === 'driftAfterSwitch') why.push(`drift after the switch not measured, because ${b.actual.notMeasured}`);
          continue;
        }
        why.push(`${budgetLabel(b.name)} ${formatBudgetValue(b.name, b.actual, b.unit)} > ${formatBudgetValue(b.name, b.limit, b.unit)}`);
      }
    }
    cases.push({
      name: `run ${r.index}: downtime ${cellMeasured(r.downtimeMs, formatMs)}, lost writes ${cellMeasured(r.lostWrites, formatCount)}`,
      classname: `${suite}.runs`,
      timeS: r.durationMs / 1000,
      ...(r.pass
        ? {}
        : {
            failure: {
              message: why.join('; ') || 'run did not pass',
              body: `error window ${cellMeasured(r.errorWindowMs, formatMs)}, stall ${cellMeasured(r.stallWindowMs, formatMs)}, lost ${cellMeasured(r.lostWrites, formatCount)}, split-brain ${cellMeasured(r.splitBrainWrites, formatCount)}, duplicates ${cellMeasured(r.duplicateWrites, formatCount)}`,
            },
          }),
    });
  }
  for (const r of report.runs) {
    if (!r.afterSwitch) continue;
    const v = valueOf(r.afterSwitch);
    cases.push({
      name: `run ${r.index}: first 10 s after the switch vs calm${v ? ` — ${afterSwitchText(v)}` : ''}`,
      classname: `${suite}.afterSwitch`,
      timeS: 0,
      ...(v ? {} : { failure: { message: `not measured, because ${(r.afterSwitch as { notMeasured: string }).notMeasured}`, body: 'the first seconds on the new primary were not compared with the calm interval' } }),
    });
  }
  for (const b of budgetSummary(report)) {
    const ok = b.passed === b.runs;
    cases.push({
      name: `budget ${budgetLabel(b.name)} ≤ ${formatBudgetValue(b.name, b.limit, b.unit)}`,
      classname: `${suite}.budgets`,
      timeS: 0,
      ...(ok
        ? {}
        : {
            failure: {
              message: `${b.runs - b.passed} of ${b.runs} run(s) over budget or not measured${b.notMeasured ? ` (${b.notMeasured} not measured)` : ''}; worst ${b.worst === undefined ? 'not measured' : formatBudgetValue(b.name, b.worst, b.unit)}`,
              body: `limit ${formatBudgetValue(b.name, b.limit, b.unit)}`,
            },
          }),
    });
  }
  const drift = driftOverBudget(report);
  const driftUnknown = (['before', 'after'] as const).filter((st) => isNotMeasured(report.drift[st])).map((st) => `drift ${st} the switch ${driftStageNote(report.drift[st])}`);
  const driftMsg = [...driftUnknown, ...(drift.length ? [`${drift.length} drift finding(s) above ${report.scenario.budgets.allowedDrift}`] : [])].join('; ');
  cases.push({
    name: `drift at most ${report.scenario.budgets.allowedDrift}`,
    classname: `${suite}.drift`,
    timeS: 0,
    ...(driftMsg ? { failure: { message: driftMsg, body: drift.map((f) => `[${f.stage}] ${f.category} ${f.severity} ${f.object}: ${f.message}`).join('\n') } } : {}),
  });
  const sat = report.runs.filter((r) => valueOf(r.saturation)?.saturated);
  cases.push({
    name: 'the lab sustained the requested load',
    classname: `${suite}.lab`,
    timeS: 0,
    ...(sat.length ? { failure: { message: sat.map((r) => `run ${r.index}: ${saturationText(valueOf(r.saturation)!)}`).join('; '), body: 'lower the rate, use fewer VUs, a bigger machine, or run k6 on another host' } } : {}),
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
