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
import exec from 'k6/execution';
import { call, openModel, requestId } from './lib/ops.js';

const READ_RATIO = Number(__ENV.READ_RATIO || 0);

export const options = openModel('writes');

// Payments this VU created and saw acknowledged: targets for status updates and reads.
const mine = [];

export default function () {
  const id = requestId();
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
