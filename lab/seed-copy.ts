/**
 * COPY text format: one value, one row, and row ranges cut into batches of ~128 KB (big enough that
 * per-write overhead vanishes, small enough to stream). Shared by the main thread and the seed
 * generator threads (lab/seed-worker.ts). Pure.
 */
import type { TableLoad, Value } from '../scenarios/datasets/gen.ts';

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY text format. */
export function copyValue(v: Value): string {
  if (v === null) return '\\N';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return needsEscape(v) ? v.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]) : v;
}

/** A char scan beats a regex on the short strings most columns hold (the hottest call of a seed). */
function needsEscape(v: string): boolean {
  for (let k = 0; k < v.length; k++) {
    const c = v.charCodeAt(k);
    if (c === 92 || c === 9 || c === 10 || c === 13) return true;
  }
  return false;
}

export function copyLine(values: Value[]): string {
  let s = copyValue(values[0]);
  for (let k = 1; k < values.length; k++) {
    const v = values[k];
    s += '\t' + (typeof v === 'string' && !needsEscape(v) ? v : copyValue(v));
  }
  return s + '\n';
}

const BATCH_CHARS = 128 * 1024;

/** Rows [from, to) of a table as COPY text batches. */
export function* copyBatches(t: TableLoad, from: number, to: number): Generator<{ buf: Buffer; rows: number }> {
  let s = '';
  let rows = 0;
  for (let i = from; i < to; i++) {
    s += copyLine(t.row(i));
    rows++;
    if (s.length >= BATCH_CHARS) {
      yield { buf: Buffer.from(s), rows };
      s = '';
      rows = 0;
    }
  }
  if (s) yield { buf: Buffer.from(s), rows };
}
