/**
 * The lab DNS server as its own process (what `cutover lab up` leaves running):
 *   node bin/run-ts.mjs lab/dns-main.ts --host 127.0.0.1 --record db.lab.internal=127.0.0.2:100,127.0.0.3:0 --ttl 1
 * Prints one JSON line {"event":"listening","dnsPort","adminUrl"} on stdout when ready.
 */
import { parseArgs } from 'node:util';
import { startDnsServer, type DnsTarget } from './dns.ts';

const { values } = parseArgs({
  options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string' }, 'admin-port': { type: 'string' }, record: { type: 'string', multiple: true, default: [] }, ttl: { type: 'string', default: '1' } },
  strict: true,
});

const records: Record<string, { targets: DnsTarget[]; ttl: number }> = {};
for (const r of values.record ?? []) {
  const [name, list] = r.split('=');
  if (!name || !list) {
    process.stderr.write(`--record must look like name=ip:weight[,ip:weight] (got ${r})\n`);
    process.exit(2);
  }
  records[name] = { ttl: Number(values.ttl), targets: list.split(',').map((t) => ({ address: t.split(':')[0], weight: Number(t.split(':')[1] ?? 1) })) };
}
const server = await startDnsServer({ host: values.host!, port: values.port ? Number(values.port) : undefined, adminPort: values['admin-port'] ? Number(values['admin-port']) : undefined, records });
process.stdout.write(JSON.stringify({ event: 'listening', dnsPort: server.dnsPort, adminUrl: server.adminUrl, pid: process.pid }) + '\n');
const stop = () => server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
