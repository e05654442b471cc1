/**
 * The `config` service of docker-compose.yml: writes what Toxiproxy and pgbouncer read at start
 * into the shared `config` volume, from the same addresses the compose file is given
 * (CUTOVER_OLD_HOST, CUTOVER_NEW_HOST, CUTOVER_LAB_HOST, CUTOVER_PG_PASSWORD), so that every
 * service can sit on host networking at addresses chosen by whoever brings the file up:
 *
 *   toxiproxy.json   app-old  LAB:15432 → OLD:5432, app-new LAB:15433 → NEW:5432,
 *                    replication LAB:15434 → OLD:5432 (the new side's subscription uses this hop)
 *   pgbouncer.ini    LAB:6432, database `app` → the app-old proxy; userlist.txt beside it
 *
 *   node bin/run-ts.mjs lab/compose/config.ts <dir>
 */
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pgbouncerIni, pgbouncerUserlist } from '../pgbouncer.ts';

/** The compose file's own defaults, for running the file with no variables set. */
export const COMPOSE_DEFAULTS = { CUTOVER_OLD_HOST: '127.0.10.1', CUTOVER_NEW_HOST: '127.0.10.2', CUTOVER_LAB_HOST: '127.0.10.3', CUTOVER_PG_PASSWORD: 'lab' };
/** The uid pgbouncer runs as in the compose file (`user: "999:999"`): it refuses root. */
export const PGBOUNCER_UID = 999;
export const PROXY_PORTS = { 'app-old': 15432, 'app-new': 15433, replication: 15434 } as const;

export interface ComposeAddresses {
  old: string;
  new: string;
  lab: string;
  password: string;
}

export function addressesFromEnv(env: NodeJS.ProcessEnv = process.env): ComposeAddresses {
  const get = (k: keyof typeof COMPOSE_DEFAULTS) => env[k] || COMPOSE_DEFAULTS[k];
  const a = { old: get('CUTOVER_OLD_HOST'), new: get('CUTOVER_NEW_HOST'), lab: get('CUTOVER_LAB_HOST'), password: get('CUTOVER_PG_PASSWORD') };
  for (const [k, v] of Object.entries({ CUTOVER_OLD_HOST: a.old, CUTOVER_NEW_HOST: a.new, CUTOVER_LAB_HOST: a.lab }))
    if (isIP(v) !== 4) throw new Error(`${k} must be an IPv4 address such as 127.0.10.1 (got ${JSON.stringify(v)}): every service runs on host networking at its own address`);
  return a;
}

/** Toxiproxy's -config file: the lab's three hops. Pure. */
export function toxiproxyConfig(a: ComposeAddresses): string {
  const upstream = { 'app-old': a.old, 'app-new': a.new, replication: a.old };
  return JSON.stringify(
    Object.entries(PROXY_PORTS).map(([name, port]) => ({ name, listen: `${a.lab}:${port}`, upstream: `${upstream[name as keyof typeof upstream]}:5432`, enabled: true })),
    null,
    2,
  ) + '\n';
}

export function writeComposeConfig(dir: string, a: ComposeAddresses): void {
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    'toxiproxy.json': toxiproxyConfig(a),
    'pgbouncer.ini': pgbouncerIni({ alias: 'app', upstream: { host: a.lab, port: PROXY_PORTS['app-old'], dbname: 'app' }, host: a.lab, port: 6432, authFile: join(dir, 'userlist.txt'), poolMode: 'session' }),
    // pgbouncer's admin console is not used here: only the database's own superuser logs in.
    'userlist.txt': pgbouncerUserlist({ postgres: a.password }),
  };
  for (const [name, text] of Object.entries(files)) {
    const f = join(dir, name);
    writeFileSync(f, text, { mode: name === 'toxiproxy.json' ? 0o644 : 0o600 });
    if (name !== 'toxiproxy.json' && process.getuid?.() === 0) chownSync(f, PGBOUNCER_UID, PGBOUNCER_UID);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node bin/run-ts.mjs lab/compose/config.ts <dir>\n');
    process.exit(2);
  }
  try {
    const a = addressesFromEnv();
    writeComposeConfig(dir, a);
    process.stdout.write(`cutover-lab compose config: wrote toxiproxy.json and pgbouncer.ini to ${dir} (old ${a.old}, new ${a.new}, lab ${a.lab})\n`);
  } catch (e: any) {
    process.stderr.write(`cutover-lab compose config: ${e.message}\n`);
    process.exit(2);
  }
}
