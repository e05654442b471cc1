/**
 * The HTML report in real headless Chromium (Debian's, through playwright-core): charts present and
 * drawn, headline numbers from the model, an injected `<script>` name inert; the PDF carries the
 * headline text (pdftotext).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { validateReport, valueOf } from '../../reports/model.ts';
import { writeReports } from '../../reports/index.ts';
import { launchChromium } from '../../reports/pdf.ts';
import { formatMs } from '../../reports/format.ts';

const report = validateReport(JSON.parse(readFileSync('test/fixtures/report.json', 'utf8')));
const dir = mkdtempSync(join(tmpdir(), 'cutover-report-'));
let browser: Browser;

beforeAll(async () => {
  await writeReports(report, dir, ['html', 'pdf', 'md', 'junit']);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

describe('report.html in Chromium', () => {
  it('draws every chart, shows the model headline, and never runs injected script', async () => {
    const page = await browser.newPage({ viewport: { width: 1300, height: 2000 } });
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(join(dir, 'report.html')).href);
    await page.waitForFunction(() => document.documentElement.dataset.chartsReady === 'true', undefined, { timeout: 30_000 });

    // one timeline per run plus the distribution chart, each a canvas with non-blank pixels
    const canvases = await page.evaluate(() =>
      [...document.querySelectorAll('canvas')].map((c) => {
        const ctx = (c as HTMLCanvasElement).getContext('2d')!;
        const { data } = ctx.getImageData(0, 0, c.width, c.height);
        let inked = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) inked++;
        return { w: c.width, h: c.height, inked };
      }),
    );
    expect(canvases.length).toBeGreaterThanOrEqual(report.runs.length + 1);
    for (const c of canvases) expect(c.inked).toBeGreaterThan(500);

    // each run's cluster timeline (WAL, lag, xmin, connections, CPU) is drawn under its client chart
    const withCluster = report.runs.filter((r) => r.clusterTimeline?.length);
    expect(withCluster.length).toBeGreaterThan(0);
    const cluster = await page.evaluate(
      (ids) =>
        ids.map((id) => {
          const el = document.getElementById(id);
          const c = el?.querySelector('canvas') as HTMLCanvasElement | null;
          if (!c) return { found: !!el, inked: 0, afterClient: false };
          const { data } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
          let inked = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) inked++;
          const client = document.getElementById(id.replace('cluster-timeline-', 'timeline-'))!;
          return { found: true, inked, afterClient: !!(client.compareDocumentPosition(el!) & Node.DOCUMENT_POSITION_FOLLOWING) };
        }),
      withCluster.map((r) => `cluster-timeline-${r.index}`),
    );
    for (const c of cluster) expect(c).toMatchObject({ found: true, afterClient: true });
    for (const c of cluster) expect(c.inked).toBeGreaterThan(2000);

    const text = await page.evaluate(() => document.body.innerText);
    const a = valueOf(report.aggregate.downtimeMs)!;
    for (const v of [a.median, a.p95, a.max]) expect(text).toContain(formatMs(v));
    expect(text).toContain(report.verdict.pass ? 'GO' : 'NO-GO');
    // the table named <script>alert(1)</script> is shown as text, and nothing ran
    expect(text).toContain('<script>alert(1)</script>');
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);

    await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
    expect(existsSync(join(dir, 'report.png'))).toBe(true);
    await page.close();
  });

  it('the PDF carries the headline', () => {
    const text = execFileSync('pdftotext', [join(dir, 'report.pdf'), '-']).toString();
    expect(text).toContain(report.scenario.name);
    expect(text).toContain(formatMs(valueOf(report.aggregate.downtimeMs)!.median));
    expect(text).toMatch(/NO-GO|GO/);
  });

  it('`cutover report <dir> --format md` reproduces report.md', () => {
    const before = readFileSync(join(dir, 'report.md'), 'utf8');
    writeFileSync(join(dir, 'report.json'), JSON.stringify(report, null, 2));
    writeFileSync(join(dir, 'report.md'), 'stale');
    execFileSync(process.execPath, ['bin/cutover.mjs', 'report', dir, '--format', 'md']);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toBe(before);
  });
});
