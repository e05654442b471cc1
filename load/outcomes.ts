/**
 * Turns k6's `--out json=<file>` points into the outcome log the measurements read.
 *
 * The workloads (load/writes.js …) emit one `op_duration` point per request: its time is the end of
 * the request, metadata carries {id, t0 (start, epoch ms)}, tags carry {kind, op, status, committed,
 * error_code}. dropped_iterations points are counted with their times. Everything else in the file
 * (http_req_* and friends, ~14 lines per request) is skipped by a string test before any JSON.parse,
 * so files of hundreds of MB stream through in seconds. A `.gz` file is gunzipped on the fly.
 *
 * A user's own k6 script meets a smaller contract instead (load/lib/cutover.js wraps it): every
 * write request carries `cutover_op: <unique id>` (as a tag, or — cheaper, k6 keeps metadata out of
 * its time-series index — as VU metadata), and when the app acknowledged the write the script adds
 * one point to a Counter `cutover_ack` carrying the same `cutover_op` and `key: <what the app
 * returned>`. The request's own `http_req_duration` point gives its end (the point's time), its
 * duration (the value), its HTTP status and k6 error code; the ack decides `ok`. A 2xx that the
 * script did not acknowledge is indeterminate (the app answered, but not with an ack the script
 * recognised); other answers are classified as below, without the sample app's X-Cutover-Committed.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { CutoverError } from '../migration/errors.ts';
import type { OpOutcome, OpStatus } from './measure.ts';

export type { OpOutcome, OpStatus } from './measure.ts';

export interface K6Outcomes {
  /** For a user script under the cutover_op/cutover_ack contract, acknowledged ops carry `key`. */
  ops: Array<OpOutcome & { key?: string }>;
  /** Which format the file held: the sample app's op_duration points or the user contract. */
  format: 'op_duration' | 'contract' | 'none';
  droppedIterations: { count: number; timesMs: number[] };
  /** Points that looked like ours but could not be used (missing id or start), with the first reason. */
  skipped: number;
  firstSkipReason?: string;
}

/**
 * k6 error codes (k6 docs, "Error codes") for failures where the request never reached the app:
 * invalid URL (1020), DNS (1100–1199), TCP dial: generic / timeout / refused / unknown (1210–1213).
 * Such a write cannot have been committed. Any other no-answer error (timeout 1050, reset 1220,
 * broken pipe 1201, EOF 1000, …) happened after the request may have been sent: indeterminate.
 */
export function neverSent(errorCode: number): boolean {
  return errorCode === 1020 || (errorCode >= 1100 && errorCode < 1200) || (errorCode >= 1210 && errorCode <= 1213);
}

/**
 * 2xx → ok. An error answer with X-Cutover-Committed: false (the app rolled back, or refused the
 * request) → fail; with 'unknown' (the connection died during COMMIT) → indeterminate. An error
 * answer without that header: 4xx → fail (rejected), 5xx → indeterminate (something in between
 * answered; the app's own outcome is unknown). No answer → fail if it never left the client
 * (see neverSent), otherwise indeterminate.
 */
export function classify(httpStatus: number, committed: string | undefined, errorCode: number | undefined): OpStatus {
  if (httpStatus >= 200 && httpStatus < 300) return 'ok';
  if (httpStatus >= 300) {
    if (committed === 'false') return 'fail';
    if (committed === 'unknown') return 'indeterminate';
    return httpStatus < 500 ? 'fail' : 'indeterminate';
  }
  return errorCode !== undefined && neverSent(errorCode) ? 'fail' : 'indeterminate';
}

function errorText(code: number | undefined, status: number): string | undefined {
  if (status >= 300) return `HTTP ${status}`;
  if (code === undefined) return undefined;
  const known: Record<number, string> = {
    1000: 'connection closed (EOF)',
    1050: 'request timeout',
    1201: 'broken pipe',
    1211: 'dial timeout',
    1212: 'connection refused',
    1220: 'connection reset by peer',
  };
  return `k6 error ${code}${known[code] ? ` (${known[code]})` : ''}`;
}

export interface ParseOptions {
  /** Name of the per-request metric (default op_duration). */
  metric?: string;
}

/** Parse a stream of k6 JSON lines. */
export async function parseK6Stream(input: Readable, opts: ParseOptions = {}): Promise<K6Outcomes> {
  const metric = opts.metric ?? 'op_duration';
  const opNeedle = `"metric":"${metric}"`;
  const dropNeedle = '"metric":"dropped_iterations"';
  const res: K6Outcomes = { ops: [], format: 'none', droppedIterations: { count: 0, timesMs: [] }, skipped: 0 };
  const reqNeedle = '"metric":"http_req_duration"';
  const ackNeedle = '"metric":"cutover_ack"';
  const contractOps = new Map<string, OpOutcome & { key?: string; errorCode?: number }>();
  const acks = new Map<string, string>();
  const skip = (why: string) => {
    res.skipped++;
    res.firstSkipReason ??= why;
  };
  const rl = createInterface({ input, crlfDelay: Infinity });
  for await (const line of rl) {
    const isOp = line.includes(opNeedle);
    const isDrop = !isOp && line.includes(dropNeedle);
    const isReq = !isOp && !isDrop && line.includes(reqNeedle) && line.includes('"cutover_op"');
    const isAck = !isOp && !isDrop && !isReq && line.includes(ackNeedle);
    if ((!isOp && !isDrop && !isReq && !isAck) || !line.includes('"type":"Point"')) continue;
    let p: any;
    try {
      p = JSON.parse(line);
    } catch {
      skip('a line that is not JSON (file cut short while k6 was writing?)');
      continue;
    }
    const d = p?.data;
    const t = Date.parse(d?.time);
    if (isDrop) {
      const n = Number(d?.value ?? 1);
      res.droppedIterations.count += n;
      for (let i = 0; i < n; i++) res.droppedIterations.timesMs.push(t);
      continue;
    }
    const tags = d?.tags ?? {};
    const meta = d?.metadata ?? {};
    if (isReq || isAck) {
      const op = meta.cutover_op ?? tags.cutover_op;
      if (!op) continue;
      if (isAck) {
        const key = meta.key ?? tags.key;
        acks.set(String(op), key === undefined || key === null ? '' : String(key));
        continue;
      }
      if (!Number.isFinite(t)) {
        skip('http_req_duration point without a time');
        continue;
      }
      const httpStatus = Number(tags.status ?? 0) || 0;
      const errorCode = tags.error_code ? Number(tags.error_code) : undefined;
      const durationMs = Math.max(0, Number(d?.value) || 0);
      // A retried request (same cutover_op) keeps its first start and its last end.
      const prev = contractOps.get(String(op));
      const o = { id: String(op), kind: 'write' as const, startMs: prev ? prev.startMs : t - durationMs, endMs: t, status: 'indeterminate' as OpStatus, httpStatus, errorCode };
      if (tags.op) (o as OpOutcome).op = String(tags.op);
      contractOps.set(String(op), o);
      continue;
    }
    const id = meta.id ?? tags.id;
    const t0 = Number(meta.t0 ?? tags.t0);
    if (!id) {
      skip(`${metric} point without metadata.id`);
      continue;
    }
    if (!Number.isFinite(t0) || !Number.isFinite(t)) {
      skip(`${metric} point without a start (metadata.t0) or time`);
      continue;
    }
    const httpStatus = Number(tags.status ?? 0) || 0;
    const errorCode = tags.error_code ? Number(tags.error_code) : undefined;
    const status = classify(httpStatus, tags.committed || undefined, errorCode);
    // The point's time has ns precision, t0 is Date.now() in the VU: keep end ≥ start.
    const endMs = Math.max(t, t0);
    const op: OpOutcome = { id: String(id), kind: tags.kind === 'read' ? 'read' : 'write', startMs: t0, endMs, status };
    if (tags.op) op.op = tags.op;
    if (httpStatus) op.httpStatus = httpStatus;
    const err = status === 'ok' ? undefined : errorText(errorCode, httpStatus);
    if (err) op.error = err;
    res.ops.push(op);
  }
  // Both formats in one file: the sample workload's op_duration points win (they carry the app's
  // commit header and the read/write kind); its cutover_op/cutover_ack points only meet the contract.
  if (res.ops.length > 0) res.format = 'op_duration';
  else if (contractOps.size > 0) {
    res.format = 'contract';
    for (const o of contractOps.values()) {
      const { errorCode, ...op } = o;
      const key = acks.get(op.id);
      const httpStatus = op.httpStatus ?? 0;
      const answered2xx = httpStatus >= 200 && httpStatus < 300;
      if (key !== undefined) {
        op.status = 'ok';
        op.key = key;
      } else {
        op.status = answered2xx ? 'indeterminate' : classify(httpStatus, undefined, errorCode);
        const err = answered2xx ? `HTTP ${httpStatus} without a cutover_ack` : errorText(errorCode, httpStatus);
        if (err) op.error = err;
      }
      if (!httpStatus) delete op.httpStatus;
      res.ops.push(op);
    }
  }
  res.ops.sort((a, b) => a.endMs - b.endMs);
  res.droppedIterations.timesMs.sort((a, b) => a - b);
  return res;
}

/** The contract a user's k6 script must meet, quoted in errors when a run shows no acknowledged write. */
export const CONTRACT =
  'every write request carries `cutover_op: <unique id>` (a tag, or VU metadata), and when the app acknowledged it the script adds 1 to a Counter named `cutover_ack` with the same `cutover_op` and `key: <the key the app returned>` (load/lib/cutover.js does both)';

/** Parse k6's JSON output file (plain or .gz). */
export async function parseK6Json(file: string, opts: ParseOptions = {}): Promise<K6Outcomes> {
  const raw = createReadStream(file);
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  try {
    return await parseK6Stream(input, opts);
  } finally {
    raw.destroy();
  }
}

/** Counts by kind and status, for progress lines and sanity checks. */
export function countOutcomes(ops: readonly OpOutcome[]): Record<'write' | 'read', Record<OpStatus, number>> {
  const z = () => ({ ok: 0, fail: 0, indeterminate: 0 });
  const c = { write: z(), read: z() };
  for (const o of ops) c[o.kind][o.status]++;
  return c;
}

/**
 * A user script's outputs must show acknowledged writes: a run where none was seen cannot be
 * judged (the script does not meet the contract, or the app never acknowledged anything).
 */
export function assertAcknowledgedWrites(out: K6Outcomes, script: string): void {
  const acked = out.ops.filter((o) => o.kind === 'write' && o.status === 'ok').length;
  if (acked > 0) return;
  const seen = out.ops.length ? `${out.ops.length} write request(s) tagged cutover_op, none acknowledged` : 'no write request tagged cutover_op';
  throw new CutoverError('CONFIG', `no acknowledged writes seen in the k6 outputs of ${script} (${seen})`, {
    hint: `the load contract: ${CONTRACT}`,
  });
}
