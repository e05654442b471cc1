/**
 * Writing and re-reading reports. `writeReports` renders every requested format from one validated
 * model; `loadReport` reads a saved report.json (a file or the folder holding it) and validates it.
 */
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateReport, type Report } from './model.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { renderJunit } from './junit.ts';
import { renderPdf } from './pdf.ts';

export const FORMATS = ['json', 'html', 'pdf', 'md', 'junit'] as const;
export type Format = (typeof FORMATS)[number];

export const FILE_NAMES: Record<Format, string> = { json: 'report.json', html: 'report.html', pdf: 'report.pdf', md: 'report.md', junit: 'junit.xml' };

export function parseFormats(list: string | string[] | undefined): Format[] {
  if (list === undefined) return [...FORMATS];
  const items = (Array.isArray(list) ? list : list.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = items.filter((f) => !(FORMATS as readonly string[]).includes(f === 'markdown' ? 'md' : f === 'xml' ? 'junit' : f));
  if (bad.length) {
    const e = new Error(`unknown report format(s): ${bad.join(', ')}`) as Error & { hint?: string };
    e.hint = `use any of ${FORMATS.join(', ')}`;
    throw e;
  }
  return [...new Set(items.map((f) => (f === 'markdown' ? 'md' : f === 'xml' ? 'junit' : f)))] as Format[];
}

/** Render the report into outDir; returns the files written. The model is validated first. */
export async function writeReports(report: Report, outDir: string, formats?: Format[] | string[]): Promise<string[]> {
  const model = validateReport(report);
  const want = parseFormats(formats as string[] | undefined);
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  const write = (f: Format, text: string) => {
    const p = join(outDir, FILE_NAMES[f]);
    writeFileSync(p, text);
    files.push(p);
    return p;
  };
  if (want.includes('json')) write('json', JSON.stringify(model, null, 2) + '\n');
  let htmlFile: string | undefined;
  if (want.includes('html') || want.includes('pdf')) {
    const html = renderHtml(model);
    htmlFile = join(outDir, FILE_NAMES.html);
    writeFileSync(htmlFile, html);
    if (want.includes('html')) files.push(htmlFile);
  }
  if (want.includes('md')) write('md', renderMarkdown(model));
  if (want.includes('junit')) write('junit', renderJunit(model));
  if (want.includes('pdf')) {
    const pdf = join(outDir, FILE_NAMES.pdf);
    await renderPdf(htmlFile!, pdf);
    files.push(pdf);
  }
  return files;
}

/** Read report.json from a file or a folder holding it, validated. */
export function loadReport(dirOrFile: string): { report: Report; dir: string; file: string } {
  if (!existsSync(dirOrFile)) {
    const e = new Error(`no report at ${dirOrFile}`) as Error & { hint?: string };
    e.hint = 'give the output folder of `cutover rehearse` or its report.json';
    throw e;
  }
  const isDir = statSync(dirOrFile).isDirectory();
  const file = isDir ? join(dirOrFile, FILE_NAMES.json) : dirOrFile;
  if (!existsSync(file)) {
    const e = new Error(`${dirOrFile} holds no report.json`) as Error & { hint?: string };
    e.hint = 'run `cutover rehearse <scenario> --out <dir>` first';
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err: any) {
    throw new Error(`${file} is not JSON: ${err.message}`);
  }
  return { report: validateReport(json, file), dir: isDir ? dirOrFile : join(file, '..'), file };
}
