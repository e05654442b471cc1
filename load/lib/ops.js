// Shared by the workloads in load/*.js: calls to the sample app that leave one `op_duration`
// point per request in k6's outputs (see load/writes.js for the format load/outcomes.ts reads).
import http from 'k6/http';
import { Trend, Counter } from 'k6/metrics';
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
    // Keep the built-in http_req_* points small; the outcome log lives in op_duration.
    systemTags: ['scenario', 'status', 'error_code'],
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
// The same contract a user's own script meets (load/lib/cutover.js): writes carry cutover_op, acks
// are cutover_ack points. The lab reads the richer op_duration points when they are there.
const cutoverAck = new Counter('cutover_ack');
const JSON_HEADERS = { 'content-type': 'application/json' };

/** The request id of this iteration: RUN_ID-vu-iteration, unique in the run. */
export function requestId() {
  return `${env.RUN_ID}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
}

/** One request, recorded as one op_duration point (id and start in metadata, outcome in tags). */
export function call(method, path, id, body, kind, op) {
  exec.vu.metrics.metadata['id'] = id;
  exec.vu.metrics.metadata['t0'] = String(Date.now());
  if (kind === 'write') exec.vu.metrics.metadata['cutover_op'] = id;
  else delete exec.vu.metrics.metadata['cutover_op'];
  const params = { headers: Object.assign({ 'x-request-id': id }, JSON_HEADERS), timeout: env.TIMEOUT, tags: { kind, op } };
  const res = method === 'GET' ? http.get(env.APP_URL + path, params) : http.post(env.APP_URL + path, body === undefined ? null : JSON.stringify(body), params);
  opDuration.add(res.timings.duration, {
    kind,
    op,
    status: String(res.status),
    committed: res.status >= 400 ? res.headers['X-Cutover-Committed'] || '' : '',
    error_code: res.error_code ? String(res.error_code) : '',
  });
  if (kind === 'write' && res.status >= 200 && res.status < 300) {
    exec.vu.metrics.metadata['key'] = id;
    cutoverAck.add(1);
    delete exec.vu.metrics.metadata['key'];
  }
  return res;
}
