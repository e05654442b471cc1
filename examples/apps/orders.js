// The example order services' own k6 workload (the Python and the JVM one answer alike), written
// only against the cutover-lab contract
// (load/lib/cutover.js): each POST /orders carries cutover_op, an acknowledged order adds a
// cutover_ack point with the order id the app returned.
import http from 'k6/http';
import { write, opId } from '../../load/lib/cutover.js';

const RATE = Number(__ENV.RATE || 50);
export const options = {
  discardResponseBodies: false,
  scenarios: {
    orders: { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: __ENV.DURATION || '10s', preAllocatedVUs: Math.max(5, Math.ceil(RATE / 5)), maxVUs: Math.max(20, RATE), gracefulStop: '10s' },
  },
};

export default function () {
  write(opId(), (id) => {
    const res = http.post(`${__ENV.APP_URL}/orders`, JSON.stringify({ ref: id, amount_cents: 100 }), { headers: { 'content-type': 'application/json' }, timeout: __ENV.TIMEOUT || '5s' });
    return res.status === 201 ? res.json('id') : undefined;
  });
}
