// Read-mostly load against the sample app: 80 % reads (account balance, a payment this VU saw
// acknowledged), 20 % writes (create payment, append ledger entry). Useful for a switch where the
// question is "what do readers see" — a stale or missing row after the switch reads as a 404 with
// X-Cutover-Committed: false, i.e. a failure in the outcome log. Same outcome format and env as
// load/writes.js (APP_URL, RATE, DURATION, RUN_ID, TIMEOUT, PRE_VUS, MAX_VUS), plus
// WRITE_RATIO (default 0.2).
import exec from 'k6/execution';
import { call, openModel, requestId } from './lib/ops.js';

const WRITE_RATIO = Number(__ENV.WRITE_RATIO || 0.2);

export const options = openModel('reads_heavy');

const mine = [];

export default function () {
  const id = requestId();
  const account = 1 + (exec.scenario.iterationInTest % 50);
  if (mine.length === 0 || Math.random() < WRITE_RATIO) {
    if (Math.random() < 0.7 || mine.length === 0) {
      const res = call('POST', '/payments', id, { id, account_id: account, amount_cents: 1000 }, 'write', 'payment');
      if (res.status === 201) {
        mine.push(id);
        if (mine.length > 100) mine.shift();
      }
    } else {
      call('POST', '/ledger', id, { id, account_id: account, amount_cents: 100 }, 'write', 'ledger');
    }
    return;
  }
  if (Math.random() < 0.5) call('GET', `/payments/${encodeURIComponent(mine[Math.floor(Math.random() * mine.length)])}`, id, undefined, 'read', 'payment');
  else call('GET', `/accounts/${account}/balance`, id, undefined, 'read', 'balance');
}
