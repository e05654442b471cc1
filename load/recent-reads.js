// Read-mostly load for the readiness phase (issue 19): READ_RATIO of the iterations read an
// account's latest ledger entries (GET /accounts/:id/recent) for the accounts COLD_FROM ..
// COLD_FROM + COLD_COUNT − 1, the rest create payments (acknowledged writes, checked for loss).
// With statistics the read is an index lookup; without them (the new primary before ANALYZE) the
// planner walks the ledger's primary key backwards past every row — scenarios/readiness-effect.yaml
// seeds such a ledger. Same outcome format and env as load/writes.js, plus READ_RATIO (default
// 0.7), COLD_FROM (default 100001) and COLD_COUNT (default 1000).
import exec from 'k6/execution';
import { call, openModel, requestId } from './lib/ops.js';

const READ_RATIO = Number(__ENV.READ_RATIO || 0.7);
const COLD_FROM = Number(__ENV.COLD_FROM || 100001);
const COLD_COUNT = Number(__ENV.COLD_COUNT || 1000);

export const options = openModel('recent_reads');

export default function () {
  const id = requestId();
  const i = exec.scenario.iterationInTest;
  if (Math.random() < READ_RATIO) {
    call('GET', `/accounts/${COLD_FROM + (i % COLD_COUNT)}/recent`, id, undefined, 'read', 'recent');
    return;
  }
  call('POST', '/payments', id, { id, account_id: 1 + (i % 50), amount_cents: 100 + (i % 9900), currency: 'EUR' }, 'write', 'payment');
}
