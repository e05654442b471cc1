import type { Command } from 'commander';
import { labUp, labDown, labStatus, listLabs, labNameProblem } from '../../lab/lab.ts';
import { redactUrl } from '../../migration/pg.ts';
import { CutoverError } from '../../migration/errors.ts';
import { emit, note } from '../output.ts';
import { flag, integer, negatable, oneOf, optionalConnection, parseOptions, type Parser } from '../options.ts';

/** --name of a lab: checked like lab/lab.ts does, before anything starts. */
function labName(): Parser<string> {
  return (raw) => {
    const name = raw === undefined ? 'default' : String(raw);
    const why = labNameProblem(name);
    if (why) throw new CutoverError('USAGE', `--name "${name}" cannot be a lab name: ${why}`, { hint: 'use lower-case letters, digits, dot, dash and underscore, e.g. --name pg11-to-17' });
    return name;
  };
}

export const labUpSchema = {
  old: integer('--old', { min: 10, max: 99 }),
  new: integer('--new', { min: 10, max: 99 }),
  name: labName(),
  provider: oneOf('--provider', ['embedded', 'docker', 'external'] as const, 'embedded'),
  oldUrl: optionalConnection('--old-url', 'CUTOVER_LAB_OLD_URL'),
  newUrl: optionalConnection('--new-url', 'CUTOVER_LAB_NEW_URL'),
  port: integer('--port', { min: 1, max: 65535, default: 5432 }),
  toxiproxy: negatable(),
  json: flag(),
};
const labNameSchema = { name: labName(), json: flag() };

export function register(program: Command): void {
  const lab = program.command('lab').description('bring an old+new cluster pair and Toxiproxy up, show them, bring them down');

  lab
    .command('up')
    .description('start old and new clusters and Toxiproxy; they keep running after the command returns')
    .requiredOption('--old <major>', 'major of the old cluster (11–18)')
    .requiredOption('--new <major>', 'major of the new cluster (11–18)')
    .option('--name <lab>', 'lab name (default "default")')
    .option('--provider <kind>', 'embedded | docker | external (default embedded)')
    .option('--old-url <url>', 'old cluster URL (external provider)')
    .option('--new-url <url>', 'new cluster URL (external provider)')
    .option('--port <port>', 'port both clusters listen on, each on its own loopback address (default 5432)')
    .option('--no-toxiproxy', 'do not start Toxiproxy')
    .option('--json', 'print a JSON object (URLs include the lab passwords, so psql can use them)')
    .action(async (raw) => {
      const opts = parseOptions(labUpSchema, raw);
      const port = opts.port;
      const r = await labUp({
        name: opts.name,
        provider: opts.provider,
        old: { name: 'old', major: opts.old, port, url: opts.oldUrl },
        new: { name: 'new', major: opts.new, port, url: opts.newUrl },
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
    .option('--name <lab>', 'lab name (default "default")')
    .option('--json', 'print a JSON object')
    .action(async (raw) => {
      const opts = parseOptions(labNameSchema, raw);
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
    .option('--name <lab>', 'lab name (default "default")')
    .option('--json', 'print a JSON object')
    .action(async (raw) => {
      const opts = parseOptions(labNameSchema, raw);
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
