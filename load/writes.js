// Open-model write load against the sample app (load/app/server.ts), payments-shaped:
// create payment / append ledger entry / enqueue notification / update a payment's status, with an
// optional read mix. Arrivals are constant (constant-arrival-rate): a slow or stuck app does not
// slow the load down, it shows up as latency, errors and dropped_iterations.
//
// Per-request outcomes go to k6's own outputs: run with `--out json=<file>` and every request
// leaves one `op_duration` point with
//   tags     {kind: write|read, op, status: HTTP status ("0" = no answer), committed: false|unknown|"",
//             error_code: k6 error code or ""}
//   metadata {id: request id, t0: start, epoch ms}
// and the point's own time is the end of the request. load/outcomes.ts reads these back.
// (Ids are metadata, not tags: k6 keeps metadata out of its time-series index, so a unique id per
// request costs nothing there.)
//
// Env (-e KEY=VALUE):
//   APP_URL     base URL of the app (required)
//   RATE        requests per second (default 50)
//   DURATION    e.g. 30s (default 10s)
//   READ_RATIO  share of iterations that read instead of write, 0..1 (default 0)
//   RUN_ID      prefix of every request id, [A-Za-z0-9._:-] (default "run")
//   TIMEOUT     per-request timeout; a request past it is indeterminate (default 5s)
//   PRE_VUS / MAX_VUS  VU pool (default: enough for RATE at ~200 ms per request, up to 4×)
import http from 'k6/http';
import { Trend } from 'k6/metrics';
import exec from 'k6/execution';

const APP_URL = (__ENV.APP_URL || '').replace(/\/$/, '');
const RATE = Number(__ENV.RATE || 50);
const DURATION = __ENV.DURATION || '10s';
const READ_RATIO = Number(__ENV.READ_RATIO || 0);
const RUN_ID = __ENV.RUN_ID || 'run';
const TIMEOUT = __ENV.TIMEOUT || '5s';
const PRE_VUS = Number(__ENV.PRE_VUS || Math.max(5, Math.ceil(RATE * 0.2)));
const MAX_VUS = Number(__ENV.MAX_VUS || Math.max(PRE_VUS, PRE_VUS * 4));

if (!APP_URL) throw new Error('APP_URL is not set: pass -e APP_URL=http://127.0.0.1:<port> (the sample app)');

export const options = {
  discardResponseBodies: true,
  // Keep the built-in http_req_* points small; the outcome log lives in op_duration.
  systemTags: ['scenario', 'status', 'error_code'],
  scenarios: {
    writes: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: PRE_VUS,
      maxVUs: MAX_VUS,
      // Let requests in flight at the end reach their timeout instead of being cut off.
      gracefulStop: '10s',
    },
  },
};

const opDuration = new Trend('op_duration', true);
const JSON_HEADERS = { 'content-type': 'application/json' };

// Payments this VU created and saw acknowledged: targets for status updates and reads.
const mine = [];

function record(res, t0, kind, op) {
  const committed = res.status >= 400 ? res.headers['X-Cutover-Committed'] || '' : '';
  opDuration.add(res.timings.duration, {
    kind,
    op,
    status: String(res.status),
    committed,
    error_code: res.error_code ? String(res.error_code) : '',
  });
}

function call(method, path, id, body, kind, op) {
  exec.vu.metrics.metadata['id'] = id;
  const t0 = Date.now();
  exec.vu.metrics.metadata['t0'] = String(t0);
  const params = { headers: Object.assign({ 'x-request-id': id }, JSON_HEADERS), timeout: TIMEOUT, tags: { kind, op } };
  const res = method === 'GET' ? http.get(APP_URL + path, params) : http.post(APP_URL + path, body === undefined ? null : JSON.stringify(body), params);
  record(res, t0, kind, op);
  return res;
}

export default function () {
  const id = `${RUN_ID}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const account = 1 + (exec.scenario.iterationInTest % 50);
  if (READ_RATIO > 0 && Math.random() < READ_RATIO) {
    if (mine.length > 0 && Math.random() < 0.5) call('GET', `/payments/${encodeURIComponent(mine[Math.floor(Math.random() * mine.length)])}`, id, undefined, 'read', 'payment');
    else call('GET', `/accounts/${account}/balance`, id, undefined, 'read', 'balance');
    return;
  }
  const r = Math.random();
  if (r < 0.5 || mine.length === 0) {
    const res = call('POST', '/payments', id, { id, account_id: account, amount_cents: 100 + (exec.scenario.iterationInTest % 9900), currency: 'EUR' }, 'write', 'payment');
    if (res.status === 201) {
      mine.push(id);
      if (mine.length > 100) mine.shift();
    }
  } else if (r < 0.75) {
    call('POST', '/ledger', id, { id, account_id: account, amount_cents: (exec.scenario.iterationInTest % 2 ? 1 : -1) * 250 }, 'write', 'ledger');
  } else if (r < 0.9) {
    call('POST', '/notifications', id, { id, channel: 'email', body: { template: 'receipt', account } }, 'write', 'notification');
  } else {
    const target = mine[Math.floor(Math.random() * mine.length)];
    call('POST', `/payments/${encodeURIComponent(target)}/status`, id, { id, status: 'settled' }, 'write', 'status');
  }
}
