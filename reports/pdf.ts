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

/** Print an HTML file (or HTML text via a temporary page) to a PDF file. */
export async function renderPdf(htmlFile: string, outFile: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(pathToFileURL(resolve(htmlFile)).href, { waitUntil: 'load' });
    await page.waitForFunction(() => document.documentElement.dataset.chartsReady === 'true', undefined, { timeout: opts.timeoutMs ?? 30_000 }).catch(() => {});
    await page.emulateMedia({ media: 'print' });
    await page.pdf({ path: outFile, format: 'A4', printBackground: true, margin: { top: '12mm', bottom: '12mm', left: '10mm', right: '10mm' } });
  } finally {
    await browser.close();
  }
}
