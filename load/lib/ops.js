// Shared by the workloads in load/*.js: calls to the sample app that leave one `op_duration`
// point per request in k6's outputs (see load/writes.js for the format load/outcomes.ts reads).
import http from 'k6/http';
import { Trend } from 'k6/metrics';
import exec from 'k6/execution';

export const env = {
  APP_URL: (__ENV.APP_URL || '').replace(/\/$/, ''),
  RATE: Number(__ENV.RATE || 50),
  DURATION: __ENV.DURATION || '10s',
  RUN_ID: __ENV.RUN_ID || 'run',
  TIMEOUT: __ENV.TIMEOUT || '5s',
};
env.PRE_VUS = Number(__ENV.PRE_VUS || Math.max(5, Math.ceil(env.RATE * 0.2)));
env.MAX_VUS = Number(__ENV.MAX_VUS || Math.max(env.PRE_VUS, env.PRE_VUS * 4));

if (!env.APP_URL) throw new Error('APP_URL is not set: pass -e APP_URL=http://127.0.0.1:<port> (the sample app)');

/** k6 options for an open-model run at RATE/s for DURATION. */
export function openModel(name) {
  return {
    discardResponseBodies: true,
    // Keep the built-in http_req_* points small (no system tags, no metadata: ~14 of them per
    // request at 1000 req/s are most of k6's output); the outcome log lives in op_duration.
    systemTags: [],
    scenarios: {
      [name]: {
        executor: 'constant-arrival-rate',
        rate: env.RATE,
        timeUnit: '1s',
        duration: env.DURATION,
        preAllocatedVUs: env.PRE_VUS,
        maxVUs: env.MAX_VUS,
        // Let requests in flight at the end reach their timeout instead of being cut off.
        gracefulStop: '10s',
      },
    },
  };
}

const opDuration = new Trend('op_duration', true);
const JSON_HEADERS = { 'content-type': 'application/json' };

/** The request id of this iteration: RUN_ID-vu-iteration, unique in the run. */
export function requestId() {
  return `${env.RUN_ID}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
}

/**
 * One request, recorded as one op_duration point (id and start in metadata, outcome in tags). The
 * metadata is set only around that point, so k6's own per-request points stay without it. (A user
 * script meets the smaller cutover_op/cutover_ack contract of load/lib/cutover.js instead; the
 * op_duration point carries all of it and more: the app's commit header, read or write.)
 */
export function call(method, path, id, body, kind, op) {
  const t0 = Date.now();
  const params = { headers: Object.assign({ 'x-request-id': id }, JSON_HEADERS), timeout: env.TIMEOUT };
  const res = method === 'GET' ? http.get(env.APP_URL + path, params) : http.post(env.APP_URL + path, body === undefined ? null : JSON.stringify(body), params);
  const md = exec.vu.metrics.metadata;
  md['id'] = id;
  md['t0'] = String(t0);
  opDuration.add(res.timings.duration, {
    kind,
    op,
    status: String(res.status),
    committed: res.status >= 400 ? res.headers['X-Cutover-Committed'] || '' : '',
    error_code: res.error_code ? String(res.error_code) : '',
  });
  delete md['id'];
  delete md['t0'];
  return res;
}
