/**
 * COPY data, text and binary format: one value, one row, and row ranges cut into batches of a few
 * hundred KB (big enough that per-write overhead vanishes, small enough to stream). Shared by the
 * main thread and the seed generator threads (lab/seed-worker.ts). Pure.
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
const BATCH_BYTES = 256 * 1024;

/**
 * Rows [from, to) of a table as COPY batches: binary when `types` (the columns' base types, see
 * BINARY_TYPES) all have an encoder, else text. The format the batches are in is `copyFormat(types)`.
 */
export function copyBatches(t: TableLoad, from: number, to: number, types?: readonly string[]): Generator<{ buf: Buffer; rows: number }> {
  const encoders = binaryEncoders(types);
  return encoders ? binaryBatches(t, encoders, from, to) : textBatches(t, from, to);
}

/** The COPY format `copyBatches` writes for these column types. */
export function copyFormat(types?: readonly string[]): 'binary' | 'text' {
  return binaryEncoders(types) ? 'binary' : 'text';
}

function* textBatches(t: TableLoad, from: number, to: number): Generator<{ buf: Buffer; rows: number }> {
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

// ---------------------------------------------------------------------------------------------
// COPY binary format: the server skips parsing text (measured ~1.9× cheaper server side for the
// same rows) and the values are written straight into preallocated Buffers, with no per-field
// string concatenation. A column type the encoder does not know makes its table load as text; a
// value it cannot write exactly (an input form it does not parse) raises EncodeError, and the
// chunk is loaded again as text (a failed COPY statement leaves no row behind).

/** Base types (domains resolved, enums as `enum`) the binary encoder writes. */
export const BINARY_TYPES: ReadonlySet<string> = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'bool', 'text', 'varchar', 'bpchar', 'enum', 'uuid', 'timestamptz', 'timestamp', 'date', 'numeric', 'json', 'jsonb', 'bytea']);

/** A value the binary encoder cannot write exactly; the chunk is then loaded as COPY text. */
export class EncodeError extends Error {}

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const PG_EPOCH_DAYS = 10_957; // 2000-01-01 in days since 1970-01-01
const DAY_US = 86_400_000_000;
const HEXVAL = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let k = 0; k < 10; k++) t[48 + k] = k;
  for (let k = 0; k < 6; k++) t[65 + k] = t[97 + k] = 10 + k;
  return t;
})();

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468;
}

function fail(v: Value, type: string): never {
  throw new EncodeError(`${JSON.stringify(v)} is not written as binary ${type}`);
}

/** The digit at s[k], or 100 000 when it is not one (which puts any number built from it out of its range). */
function dig(s: string, k: number): number {
  const c = s.charCodeAt(k) - 48;
  return c >= 0 && c <= 9 ? c : 100_000;
}

/** Digits s[from, from+n) as a number, or -1 when one is not a digit. */
function digits(s: string, from: number, n: number): number {
  let x = 0;
  for (let k = from; k < from + n; k++) {
    const c = s.charCodeAt(k) - 48;
    if (c < 0 || c > 9) return -1;
    x = x * 10 + c;
  }
  return x;
}

const TS = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d(?::?\d\d)?)?$/;

/** Microseconds since 2000-01-01 of an ISO timestamp; `zoned`: the text must carry Z or an offset (timestamptz). */
function timestampMicros(v: Value, zoned: boolean): number {
  if (typeof v !== 'string') fail(v, 'timestamp');
  // The seeders' own form (isoAt): 2024-01-02T03:04:05.678Z.
  if (v.length === 24 && v.charCodeAt(10) === 84 && v.charCodeAt(23) === 90 && v.charCodeAt(19) === 46) {
    const y = dig(v, 0) * 1000 + dig(v, 1) * 100 + dig(v, 2) * 10 + dig(v, 3);
    const mo = dig(v, 5) * 10 + dig(v, 6), d = dig(v, 8) * 10 + dig(v, 9);
    const h = dig(v, 11) * 10 + dig(v, 12), mi = dig(v, 14) * 10 + dig(v, 15), s = dig(v, 17) * 10 + dig(v, 18);
    const ms = dig(v, 20) * 100 + dig(v, 21) * 10 + dig(v, 22);
    if (y > 9999 || ms > 999 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(13) !== 58 || v.charCodeAt(16) !== 58 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) fail(v, 'timestamp');
    return (daysFromCivil(y, mo, d) - PG_EPOCH_DAYS) * DAY_US + ((h * 60 + mi) * 60 + s) * 1e6 + ms * 1000;
  }
  const m = TS.exec(v);
  if (!m || (zoned && !m[8])) fail(v, zoned ? 'timestamptz' : 'timestamp');
  const [mo, d, h, mi, s] = [+m[2], +m[3], +m[4], +m[5], +m[6]];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) fail(v, 'timestamp');
  let us = (daysFromCivil(+m[1], mo, d) - PG_EPOCH_DAYS) * DAY_US + ((h * 60 + mi) * 60 + s) * 1e6 + (m[7] ? +m[7].padEnd(6, '0') : 0);
  // timestamp without time zone ignores an offset, as its text input does.
  if (zoned && m[8] !== 'Z') {
    const z = m[8];
    const off = (+z.slice(1, 3) * 60 + (z.length > 3 ? +z.slice(-2) : 0)) * 60e6;
    us -= z[0] === '-' ? -off : off;
  }
  return us;
}

/** A growing output buffer of one batch. */
class BinaryWriter {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  // Big-endian by hand: Buffer#writeInt32BE's range checks were a tenth of the encoding time, and
  // every caller has checked its range already (a typed array store keeps the low 8 bits).
  int16(x: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = x >> 8;
    b[p + 1] = x;
    this.pos = p + 2;
  }
  int32(x: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = x >> 24;
    b[p + 1] = x >> 16;
    b[p + 2] = x >> 8;
    b[p + 3] = x;
    this.pos = p + 4;
  }
  /** An int64 from a safe integer (the high word by floor division, so negatives too). */
  int64(x: number): void {
    const hi = Math.floor(x / 4294967296);
    this.int32(hi);
    this.int32((x - hi * 4294967296) | 0);
  }
  /** A length-prefixed UTF-8 string (`prefix`: a leading version byte, for jsonb). */
  text(s: string, prefix = -1): void {
    const n = s.length;
    this.ensure(5 + n * 3);
    const start = this.pos + 4;
    let p = start;
    if (prefix >= 0) this.buf[p++] = prefix;
    const b = this.buf;
    let k = 0;
    // Short ASCII strings by hand (a native write per field costs more than the copy); the rest natively.
    if (n <= 64)
      for (; k < n; k++) {
        const c = s.charCodeAt(k);
        if (c > 127) break;
        b[p++] = c;
      }
    if (k < n) p += b.write(k ? s.slice(k) : s, p, 'utf8');
    b.writeInt32BE(p - start, this.pos);
    this.pos = p;
  }
}

type Encode = (w: BinaryWriter, v: Value) => void;

function intOf(v: Value, type: string, lo: number, hi: number): number {
  const x = typeof v === 'number' ? v : typeof v === 'string' && /^[+-]?\d{1,16}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isSafeInteger(x) || x < lo || x > hi) fail(v, type);
  return x;
}

/** Decimal digit p of the number laid out in groups of 4 on the decimal point (`lead` zeros, the integer digits at a, the fraction at f). */
function digitAt(s: string, a: number, lead: number, nInt: number, f: number, nFrac: number, p: number): number {
  if (p < lead) return 0;
  p -= lead;
  if (p < nInt) return s.charCodeAt(a + p) - 48;
  p -= nInt;
  return p < nFrac ? s.charCodeAt(f + p) - 48 : 0;
}

function groupAt(s: string, a: number, lead: number, nInt: number, f: number, nFrac: number, k: number): number {
  const p = 4 * k;
  return digitAt(s, a, lead, nInt, f, nFrac, p) * 1000 + digitAt(s, a, lead, nInt, f, nFrac, p + 1) * 100 + digitAt(s, a, lead, nInt, f, nFrac, p + 2) * 10 + digitAt(s, a, lead, nInt, f, nFrac, p + 3);
}

/** numeric: base-10000 digit groups aligned on the decimal point, the weight of the first, sign, display scale. */
function encodeNumeric(w: BinaryWriter, v: Value): void {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string') fail(v, 'numeric');
  if (s === 'NaN') {
    w.ensure(12);
    w.int32(8), w.int16(0), w.int16(0), w.int16(0xc000 - 0x10000), w.int16(0);
    return;
  }
  const neg = s.charCodeAt(0) === 45;
  const i = neg || s.charCodeAt(0) === 43 ? 1 : 0;
  const dot = s.indexOf('.', i);
  const intEnd = dot < 0 ? s.length : dot;
  const f = dot < 0 ? s.length : dot + 1;
  if (intEnd === i && f === s.length) fail(v, 'numeric');
  for (let k = i; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if ((c < 48 || c > 57) && k !== dot) fail(v, 'numeric');
  }
  let a = i;
  while (a < intEnd && s.charCodeAt(a) === 48) a++;
  const nInt = intEnd - a;
  const nFrac = s.length - f;
  const lead = (4 - (nInt % 4)) % 4;
  const total = Math.ceil((lead + nInt + nFrac) / 4);
  let first = 0;
  while (first < total && groupAt(s, a, lead, nInt, f, nFrac, first) === 0) first++;
  let last = total;
  while (last > first && groupAt(s, a, lead, nInt, f, nFrac, last - 1) === 0) last--;
  const nd = last - first;
  w.ensure(12 + 2 * nd);
  w.int32(8 + 2 * nd);
  w.int16(nd);
  w.int16(nd ? (lead + nInt) / 4 - 1 - first : 0);
  w.int16(neg && nd ? 0x4000 : 0);
  w.int16(nFrac);
  for (let k = first; k < last; k++) w.int16(groupAt(s, a, lead, nInt, f, nFrac, k));
}

const ENCODERS: Record<string, Encode> = {
  int2: (w, v) => (w.ensure(6), w.int32(2), w.int16(intOf(v, 'int2', -32768, 32767))),
  int4: (w, v) => (w.ensure(8), w.int32(4), w.int32(intOf(v, 'int4', -2147483648, 2147483647))),
  int8: (w, v) => (w.ensure(12), w.int32(8), w.int64(intOf(v, 'int8', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))),
  float4: (w, v) => (w.ensure(8), w.int32(4), (w.pos = w.buf.writeFloatBE(floatOf(v), w.pos))),
  float8: (w, v) => (w.ensure(12), w.int32(8), (w.pos = w.buf.writeDoubleBE(floatOf(v), w.pos))),
  bool: (w, v) => {
    const b = v === true || v === 't' || v === 'true' ? 1 : v === false || v === 'f' || v === 'false' ? 0 : fail(v, 'bool');
    w.ensure(5), w.int32(1), (w.buf[w.pos++] = b);
  },
  text: (w, v) => w.text(typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? 't' : 'f') : String(v)),
  json: (w, v) => w.text(typeof v === 'string' ? v : String(v)),
  jsonb: (w, v) => w.text(typeof v === 'string' ? v : String(v), 1),
  uuid: (w, v) => {
    if (typeof v !== 'string' || v.length !== 36) fail(v, 'uuid');
    w.ensure(20), w.int32(16);
    const b = w.buf;
    let p = w.pos;
    for (let k = 0; k < 36; ) {
      if (k === 8 || k === 13 || k === 18 || k === 23) {
        if (v.charCodeAt(k++) !== 45) fail(v, 'uuid');
        continue;
      }
      const c1 = v.charCodeAt(k++), c2 = v.charCodeAt(k++);
      const hi = c1 < 128 ? HEXVAL[c1] : -1, lo = c2 < 128 ? HEXVAL[c2] : -1;
      if ((hi | lo) < 0) fail(v, 'uuid');
      b[p++] = (hi << 4) | lo;
    }
    w.pos = p;
  },
  timestamptz: (w, v) => (w.ensure(12), w.int32(8), w.int64(timestampMicros(v, true))),
  timestamp: (w, v) => (w.ensure(12), w.int32(8), w.int64(timestampMicros(v, false))),
  date: (w, v) => {
    if (typeof v !== 'string' || v.length !== 10 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45) fail(v, 'date');
    const y = digits(v, 0, 4), m = digits(v, 5, 2), d = digits(v, 8, 2);
    if ((y | m | d) < 0 || m < 1 || m > 12 || d < 1 || d > 31) fail(v, 'date');
    w.ensure(8), w.int32(4), w.int32(daysFromCivil(y, m, d) - PG_EPOCH_DAYS);
  },
  numeric: encodeNumeric,
  bytea: (w, v) => {
    if (typeof v !== 'string' || !v.startsWith('\\x') || v.length % 2) fail(v, 'bytea');
    const n = (v.length - 2) / 2;
    w.ensure(4 + n);
    if (w.buf.write(v.slice(2), w.pos + 4, 'hex') !== n) fail(v, 'bytea');
    w.int32(n);
    w.pos += n;
  },
};
ENCODERS.varchar = ENCODERS.bpchar = ENCODERS.enum = ENCODERS.text;

function floatOf(v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v) || /^([+-]?Infinity|NaN)$/.test(v))) return Number(v);
  return fail(v, 'float');
}

/** The binary encoders of a table's columns, or undefined when one type has none (the table loads as text). */
export function binaryEncoders(types: readonly string[] | undefined): Encode[] | undefined {
  if (!types || !types.every((t) => BINARY_TYPES.has(t))) return undefined;
  return types.map((t) => ENCODERS[t]);
}

/** Rows [from, to) of a table as one COPY binary stream (header, rows, trailer) cut into batches. */
export function* binaryBatches(t: TableLoad, encoders: Encode[], from: number, to: number): Generator<{ buf: Buffer; rows: number }> {
  let w = new BinaryWriter(BATCH_BYTES + 64 * 1024);
  SIGNATURE.copy(w.buf, 0);
  w.pos = SIGNATURE.length;
  w.int32(0), w.int32(0);
  let rows = 0;
  const n = encoders.length;
  for (let i = from; i < to; i++) {
    const values = t.row(i);
    w.ensure(2 + 4 * n);
    w.int16(n);
    for (let k = 0; k < n; k++) {
      const v = values[k];
      if (v === null || v === undefined) {
        w.ensure(4), w.int32(-1);
      } else encoders[k](w, v);
    }
    rows++;
    if (w.pos >= BATCH_BYTES) {
      yield { buf: w.buf.subarray(0, w.pos), rows };
      w = new BinaryWriter(BATCH_BYTES + 64 * 1024);
      rows = 0;
    }
  }
  w.ensure(2), w.int16(-1);
  yield { buf: w.buf.subarray(0, w.pos), rows };
}
