// The cutover-lab load contract, for your own k6 script (and the lab's own workloads).
//
// The lab reads outcomes from k6's own outputs. A script meets the contract when
//   1. every WRITE request carries `cutover_op: <a unique id>` — as VU metadata (what `write()`
//      below does; k6 keeps metadata out of its time-series index, so a unique id per request costs
//      nothing) or as a request tag, and
//   2. when the app acknowledged the write (it committed and said so), the script adds one point
//      to a Counter named `cutover_ack` with the same `cutover_op` and `key: <the key the app
//      returned>` (the lab's `ack.query` finds that key in your tables afterwards).
// Everything else — the request's time, duration, HTTP status, k6 error code — comes from k6's
// own http_req_duration point. A 2xx without an ack counts as indeterminate, never as acknowledged.
//
//   import http from 'k6/http';
//   import { write, opId } from '<path>/load/lib/cutover.js';
//   export default function () {
//     write(opId(), (id) => {
//       const res = http.post(`${__ENV.APP_URL}/orders`, JSON.stringify({ ref: id }), { headers: { 'content-type': 'application/json' } });
//       return res.status === 201 ? res.json('id') : undefined;   // the key, or undefined = not acknowledged
//     });
//   }
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';

const ack = new Counter('cutover_ack');

/** A unique id for this iteration's write: RUN_ID-vu-iteration. */
export function opId(prefix) {
  return `${prefix || __ENV.RUN_ID || 'run'}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
}

/**
 * Run one write under the contract. `fn(id)` makes the request(s) and returns the key the app
 * acknowledged (string or number), or undefined/null when the write was not acknowledged.
 */
export function write(id, fn) {
  exec.vu.metrics.metadata['cutover_op'] = id;
  try {
    const key = fn(id);
    if (key !== undefined && key !== null && key !== false) {
      exec.vu.metrics.metadata['key'] = String(key);
      ack.add(1);
      delete exec.vu.metrics.metadata['key'];
    }
    return key;
  } finally {
    delete exec.vu.metrics.metadata['cutover_op'];
  }
}
