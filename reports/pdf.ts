/**
 * report.pdf: the HTML report printed by Debian's Chromium through playwright-core (no browser
 * download). Waits until every chart has drawn (html.ts sets data-charts-ready).
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

export function chromiumPath(): string {
  const p = process.env.CUTOVER_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) {
    const e = new Error(`Chromium not found at ${p}: needed to render report.pdf`) as Error & { hint?: string; code?: string };
    e.hint = 'apt-get install -y chromium (npm run setup does this), or set CUTOVER_CHROMIUM to a Chromium/Chrome binary';
    e.code = 'TOOL_MISSING';
    throw e;
  }
  return p;
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true });
}

/**
 * Print an HTML report to a PDF file. `input` is the path of an .html file, or the HTML text itself
 * (anything starting with "<").
 */
export async function renderPdf(input: string, outFile: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const timeout = opts.timeoutMs ?? 60_000;
  const browser = await launchChromium();
  try {
    // Lay the page out at the printed width (A4 = 794 px at 96 dpi, minus 2 × 10 mm margins): the
    // charts are canvases sized when drawn, so drawing them wider than the page would clip them.
    const page = await browser.newPage({ viewport: { width: 718, height: 1000 }, deviceScaleFactor: 2 });
    if (input.trimStart().startsWith('<')) await page.setContent(input, { waitUntil: 'load' });
    else await page.goto(pathToFileURL(resolve(input)).href, { waitUntil: 'load' });
    try {
      await page.waitForFunction(() => document.documentElement.dataset.chartsReady === 'true', undefined, { timeout });
    } catch (e) {
      throw new Error(`the report's charts did not finish drawing within ${timeout} ms, so ${outFile} was not written (report.html is unaffected)`, { cause: e });
    }
    await page.emulateMedia({ media: 'print' });
    await page.pdf({ path: outFile, format: 'A4', printBackground: true, margin: { top: '12mm', bottom: '12mm', left: '10mm', right: '10mm' } });
  } finally {
    await browser.close();
  }
}
