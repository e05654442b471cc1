/** Renderers on a fixture model: normalised snapshots, escaping, JUnit parsing, validation errors. */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { validateReport, ReportValidationError, aggregateRuns, stat, reportJsonSchemaText, SCHEMA_FILE, valueOf, type Report } from '../../reports/model.ts';
import { percentile, median, summarise } from '../../reports/stats.ts';
import { renderMarkdown, mdCell } from '../../reports/markdown.ts';
import { renderJunit, xmlEscape } from '../../reports/junit.ts';
import { renderHtml, esc, jsonForScript } from '../../reports/html.ts';
import { parseFormats } from '../../reports/index.ts';
import { formatMs } from '../../reports/format.ts';

const fixture = () => validateReport(JSON.parse(readFileSync('test/fixtures/report.json', 'utf8')), 'fixture');

/** Volatile values out: timestamps and versions, so snapshots only change when the rendering does. */
const normalise = (s: string) => s.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>').replace(/cutover-lab \d+\.\d+\.\d+/g, 'cutover-lab <v>');

describe('report model', () => {
  it('the fixture is a valid report', () => {
    expect(fixture().runs.length).toBe(3);
  });

  it('rejects a broken report listing every problem with its JSON path', () => {
    const bad = JSON.parse(readFileSync('test/fixtures/report.json', 'utf8'));
    bad.runs[0].requests.total = -1;
    delete bad.aggregate.downtimeMs;
    bad.extra = true;
    let err: unknown;
    try {
      validateReport(bad, 'bad.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReportValidationError);
    const msg = (err as Error).message;
    expect(msg).toContain('bad.json');
    expect(msg).toContain('$.runs[0].requests.total');
    expect(msg).toContain('$.aggregate.downtimeMs');
    expect(msg).toMatch(/extra/);
  });

  it('report.schema.json is the one generated from the zod schema (regenerate: node bin/run-ts.mjs reports/model.ts --write-schema)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(reportJsonSchemaText());
  });

  it('aggregateRuns reproduces the fixture aggregate (median, nearest-rank p95)', () => {
    const r = fixture();
    expect(aggregateRuns(r.runs)).toEqual(r.aggregate);
    expect(stat([3, 1, 2, 4])).toEqual({ median: 2.5, p95: 4, max: 4, min: 1, mean: 2.5, n: 4 });
  });

  it('refuses another schema version with that fact first', () => {
    expect(() => validateReport({ schemaVersion: 1 })).toThrow(/schemaVersion 2, the file has 1/);
  });

  it('knows its formats and refuses unknown ones', () => {
    expect(parseFormats('md,junit')).toEqual(['md', 'junit']);
    expect(parseFormats(undefined)).toEqual(['json', 'html', 'pdf', 'md', 'junit']);
    expect(() => parseFormats('md,docx')).toThrow(/docx/);
  });
});

describe('markdown', () => {
  it('matches its snapshot', () => {
    expect(normalise(renderMarkdown(fixture()))).toMatchSnapshot();
  });

  it('carries the headline figures and the verdict from the model', () => {
    const r = fixture();
    const md = renderMarkdown(r);
    expect(md).toContain('NO-GO');
    const d = valueOf(r.aggregate.downtimeMs)!;
    expect(md).toContain(`| **downtime** | ${formatMs(d.median)} | ${formatMs(d.p95)} | ${formatMs(d.max)} |`);
    for (const reason of r.verdict.reasons) expect(md).toContain(mdCell(reason));
  });

  it('a grouped drift finding lists its objects (one cause, many objects)', () => {
    const r = fixture();
    const objects = Array.from({ length: 12 }, (_, i) => `index public.t${i}_idx`);
    const grouped = { category: 'schema', severity: 'warning' as const, object: `${objects[0]} (+11 more)`, message: '12 indexes differ the same way', objects };
    r.drift.before = [grouped];
    const md = renderMarkdown(validateReport(JSON.parse(JSON.stringify(r)), 'grouped'));
    expect(md).toContain(mdCell('12 objects: index public.t0_idx, index public.t1_idx'));
    expect(md).toContain(', …');
  });

  it('is deterministic (re-rendering reproduces it byte for byte)', () => {
    expect(renderMarkdown(fixture())).toBe(renderMarkdown(fixture()));
  });

  it('cannot be broken out of a table cell or into HTML', () => {
    expect(mdCell('a|b\nc <script>')).toBe('a\\|b c &lt;script&gt;');
    expect(renderMarkdown(fixture())).not.toContain('<script>');
  });
});

describe('junit', () => {
  it('parses, has one case per run and per budget, and counts the failures', () => {
    const r = fixture();
    const xml = renderJunit(r);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml);
    const suite = doc.testsuites.testsuite;
    const cases = Array.isArray(suite.testcase) ? suite.testcase : [suite.testcase];
    const budgets = new Set(r.runs.flatMap((x) => x.budgets.map((b) => b.name)));
    // one per run, one per budget, drift, whether the lab sustained the load, and each run's first 10 s after the switch
    expect(cases.length).toBe(r.runs.length + budgets.size + 2 + r.runs.filter((x) => x.afterSwitch).length);
    expect(cases.filter((c: any) => c.classname.endsWith('.afterSwitch')).map((c: any) => c.name)[0]).toMatch(/^run 1: first 10 s after the switch vs calm — first 10.0 s after resume: p50\/p95\/p99 4 ms \/ 8.8 ms \/ 15 ms \(1,990\) vs calm 4 ms \/ 7 ms \/ 10 ms \(3,270\): ×1.00 \/ ×1.25 \/ ×1.50 \(readiness on\)$/);
    const failing = cases.filter((c: any) => c.failure);
    expect(Number(suite.failures)).toBe(failing.length);
    expect(failing.filter((c: any) => c.classname.endsWith('.runs')).length).toBe(r.runs.filter((x) => !x.pass).length);
    expect(failing.map((c: any) => c.failure.message).join('\n')).toMatch(/error window/);
  });

  it('escapes everything it writes', () => {
    expect(xmlEscape(`<a href="x">&'\u0001`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;\uFFFD');
    expect(renderJunit(fixture())).not.toMatch(/<script>/);
  });
});

describe('what could not be measured', () => {
  it('every renderer shows it with its reason, and the verdict names it', () => {
    const r = fixture();
    const why = 'the old primary could not be read for the split-brain check';
    expect(r.verdict.reasons.join('\n')).toContain(why);
    expect(renderMarkdown(r)).toContain(why);
    expect(renderJunit(r)).toContain(why);
    expect(renderHtml(r)).toContain(why);
  });

  it('a crashed run stays out of the medians, and a saturated run out of the downtime figures', () => {
    const r = fixture();
    const crashed = { ...r.runs[2], error: 'crashed in step "lab": boom', downtimeMs: { notMeasured: 'crashed' }, errorWindowMs: { notMeasured: 'crashed' }, stallWindowMs: { notMeasured: 'crashed' }, lostWrites: { notMeasured: 'crashed' } };
    const sat = { ...r.runs[1], pass: false, downtimeMs: 99_999, errorWindowMs: 99_999, saturation: { ...(r.runs[1].saturation as object), saturated: true, reasons: ['achieved 100 of 200 req/s (< 95 %)'] } } as any;
    const a = aggregateRuns([r.runs[0], sat, crashed as any]);
    expect(a).toMatchObject({ crashedRuns: 1, saturatedRuns: 1 });
    expect(a.downtimeMs).toMatchObject({ n: 1, median: r.runs[0].downtimeMs });
    expect(a.lostWrites).toMatchObject({ n: 2 }); // a saturated run's loss check still counts
    const none = aggregateRuns([crashed as any]);
    expect(none.downtimeMs).toEqual({ notMeasured: 'no run measured it (1 crashed, 0 saturated)' });
  });

  it('refuses a report that passes with a figure nobody measured', () => {
    const bad = JSON.parse(readFileSync('test/fixtures/report.json', 'utf8'));
    bad.runs[0].lostWrites = { notMeasured: 'the new primary could not be read' };
    expect(() => validateReport(bad)).toThrow(/\$\.runs\[0\]\.pass: run passes although lost writes was not measured/);
  });
});

describe('html', () => {
  it('escapes text and the JSON island', () => {
    expect(esc('<script>"x"</script>')).toBe('&lt;script&gt;&quot;x&quot;&lt;/script&gt;');
    expect(jsonForScript({ t: '</script><script>alert(1)</script>' })).not.toContain('</script');
    const html = renderHtml(fixture());
    // the only script elements are ours (echarts, the data island, the chart code)
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('shows the first 10 s after the switch per run and over runs', () => {
    const html = renderHtml(fixture());
    const section = html.slice(html.indexOf('<section id="after-switch">'), html.indexOf('</section>', html.indexOf('<section id="after-switch">')));
    expect(section).toContain('<tr data-run="1"><td>1</td><td>on</td><td>10.0 s after resume</td>');
    expect(section).toContain('×1.00 / ×1.25 / ×1.50');
    expect(section).toMatch(/<td>p99<\/td><td>×2\.00<\/td><td>×2\.50<\/td><td>×2\.50<\/td>/);
    // run 3 has no figure (a report from before it existed): no row for it
    expect(section).not.toContain('data-run="3"');
  });

  it('is self-contained: no external resources', () => {
    const html = renderHtml(fixture());
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']https?:/i);
  });
});

describe('stat (the one aggregation over runs)', () => {
  it('gives median, nearest-rank p95, max, min and mean', () => {
    expect(stat([3, 1, 2])).toEqual({ median: 2, p95: 3, max: 3, min: 1, mean: 2, n: 3 });
    const ten = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000];
    expect(stat(ten)).toMatchObject({ median: 55, p95: 1000, max: 1000, min: 10 });
    // nothing measured is not zero: it says so
    expect(stat([])).toEqual({ notMeasured: 'no run measured it' });
    expect(stat([NaN, 4])).toEqual({ median: 4, p95: 4, max: 4, min: 4, mean: 4, n: 1 });
    expect(stat([{ notMeasured: 'crashed' }, 4, 6])).toMatchObject({ median: 5, n: 2 });
  });

  it('is the same implementation the latency percentiles and the bench use', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 95)).toBe(95);
    expect(summarise(v)!.p95).toBe(percentile(v, 95));
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarise([])).toBeUndefined();
  });
});

describe('renderers on a report with crashed, saturated and unmeasured parts', () => {
  it('render, validate and say "not measured" with the reason', () => {
    const r = fixture();
    const why = { notMeasured: 'the run crashed in step "replication" before it was measured: pg_dump failed' };
    const crashed = { ...r.runs[0], index: 4, pass: false, error: 'crashed in step "replication": pg_dump failed', downtimeMs: why, errorWindowMs: why, stallWindowMs: why, lostWrites: why, unexpectedWrites: why, recoveredWrites: why, duplicateWrites: why, splitBrainWrites: why, droppedIterations: why, requests: why, latency: why, saturation: why, timeline: [], budgets: [], errorWindow: undefined };
    delete (crashed as any).errorWindow;
    delete (crashed as any).replication;
    const sat = { ...r.runs[1], pass: false, saturation: { ...(r.runs[1].saturation as object), achievedPerSec: 120, saturated: true, reasons: ['achieved 120 of 200 req/s (< 95 %)'] } };
    const runs = [sat, crashed] as any[];
    const report = validateReport({ ...r, runs, aggregate: aggregateRuns(runs), drift: { before: { notMeasured: 'the drift check failed: timeout' }, after: { skipped: 'drift checks turned off (--no-drift)' } }, verdict: { pass: false, reasons: ['x'] } });
    const md = renderMarkdown(report);
    expect(md).toContain('lab saturated: 120 of 200 req/s');
    expect(md).toContain('| **downtime** | not measured | not measured | not measured |');
    expect(md).toContain('crashed in step');
    expect(md).toContain('drift before the switch: not measured, because the drift check failed: timeout');
    const junit = renderJunit(report);
    expect(junit).toContain('the lab sustained the requested load');
    expect(junit).toMatch(/drift before the switch not measured, because the drift check failed/);
    const html = renderHtml(report);
    expect(html).toContain('data-not-measured="true"');
    expect(html).toContain('lab saturated: 120 of 200 req/s');
    expect(html).toContain('crashed in step');
  });
});
