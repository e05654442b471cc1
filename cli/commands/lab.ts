import type { Command } from 'commander';
import { labUp, labDown, labStatus, listLabs } from '../../lab/lab.ts';
import { redactUrl } from '../../migration/pg.ts';
import { CutoverError } from '../../migration/errors.ts';
import { emit, note } from '../output.ts';

function major(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new CutoverError('USAGE', `${flag} must be a Postgres major version number like 11 or 17 (got "${v}")`);
  return n;
}

export function register(program: Command): void {
  const lab = program.command('lab').description('bring an old+new cluster pair and Toxiproxy up, show them, bring them down');

  lab
    .command('up')
    .description('start old and new clusters and Toxiproxy; they keep running after the command returns')
    .requiredOption('--old <major>', 'major of the old cluster (11–18)')
    .requiredOption('--new <major>', 'major of the new cluster (11–18)')
    .option('--name <lab>', 'lab name', 'default')
    .option('--provider <kind>', 'embedded | docker | external', 'embedded')
    .option('--old-url <url>', 'old cluster URL (external provider)')
    .option('--new-url <url>', 'new cluster URL (external provider)')
    .option('--port <port>', 'port both clusters listen on, each on its own loopback address', '5432')
    .option('--no-toxiproxy', 'do not start Toxiproxy')
    .option('--json', 'print a JSON object (URLs include the lab passwords, so psql can use them)')
    .action(async (opts) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CutoverError('USAGE', `--port must be a TCP port number 1–65535 (got "${opts.port}")`);
      const r = await labUp({
        name: opts.name,
        provider: opts.provider,
        old: { name: 'old', major: major(opts.old, '--old'), port, url: opts.oldUrl },
        new: { name: 'new', major: major(opts.new, '--new'), port, url: opts.newUrl },
        toxiproxy: opts.toxiproxy,
        log: note,
      });
      const out = {
        name: r.name,
        old: { url: r.old.url, major: r.old.major, version: r.old.versionNum, host: r.old.host, port: r.old.port, log: r.old.logFile },
        new: { url: r.new.url, major: r.new.major, version: r.new.versionNum, host: r.new.host, port: r.new.port, log: r.new.logFile },
        toxiproxy: r.toxiproxy ? { api: r.toxiproxy.apiUrl, proxies: r.proxies } : undefined,
        dns: r.dns ? { server: r.dns.dnsServer, admin: r.dns.adminUrl, name: r.dns.name, ttl: r.dns.ttl } : undefined,
      };
      emit(opts.json, out, () =>
        [
          `lab "${r.name}" is up`,
          `  old: PostgreSQL ${r.old.versionNum} ${redactUrl(r.old.url)}`,
          `  new: PostgreSQL ${r.new.versionNum} ${redactUrl(r.new.url)}`,
          r.toxiproxy ? `  toxiproxy: ${r.toxiproxy.apiUrl} (proxies: ${Object.values(r.proxies).map((p) => `${p.name} ${p.host}:${p.port}→${p.upstream}`).join(', ')})` : '',
          r.dns ? `  dns: ${r.dns.name} → old (TTL ${r.dns.ttl} s) via server ${r.dns.dnsServer}; switch it with: cutover switchover … --switch dns --dns-admin ${r.dns.adminUrl} --dns-name ${r.dns.name}` : '',
          `full URLs: cutover lab up … --json, or lab.json in the lab folder; stop with: cutover lab down --name ${r.name}`,
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  lab
    .command('status')
    .description('show whether the lab servers are running')
    .option('--name <lab>', 'lab name', 'default')
    .option('--json', 'print a JSON object')
    .action(async (opts) => {
      const s = await labStatus(opts.name);
      emit(opts.json, s, () =>
        [
          `lab "${s.name}"`,
          `  old: PostgreSQL ${s.old.major} ${s.old.running ? 'running' : 'NOT running'} ${s.old.url}`,
          `  new: PostgreSQL ${s.new.major} ${s.new.running ? 'running' : 'NOT running'} ${s.new.url}`,
          `  toxiproxy: ${s.toxiproxy.running ? 'running' : 'NOT running'} ${s.toxiproxy.api ?? ''}`,
          s.dns ? `  dns: ${s.dns.running ? 'running' : 'NOT running'} ${s.dns.name} via ${s.dns.server} (admin ${s.dns.admin})` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
    });

  lab
    .command('down')
    .description('stop everything the lab started and remove its data')
    .option('--name <lab>', 'lab name', 'default')
    .option('--json', 'print a JSON object')
    .action(async (opts) => {
      const r = await labDown(opts.name);
      emit(opts.json, r, () => `lab "${r.name}" is down (stopped ${r.stopped.join(', ')})`);
    });

  lab
    .command('list')
    .description('list labs that exist')
    .option('--json', 'print a JSON array')
    .action(async (opts) => {
      const names = listLabs();
      emit(opts.json, names, () => (names.length ? names.join('\n') : 'no labs'));
    });
}
