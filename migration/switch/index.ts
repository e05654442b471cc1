/** Switch strategies by name, built from a configuration told apart by `strategy` (the CLI and the rehearsal runner use this). */
import { CutoverError } from '../errors.ts';
import { CommandSwitch } from './command.ts';
import { DnsSwitch } from './dns.ts';
import { PgbouncerSwitch } from './pgbouncer.ts';
import { ProxySwitch } from './proxy.ts';
import type { SwitchStrategy } from './types.ts';

export type { SwitchStrategy, PausableSwitch, PlainSwitch, SwitchContext, Side, Endpoint } from './types.ts';
export { DnsSwitch, ProxySwitch, PgbouncerSwitch, CommandSwitch };

export type SwitchConfig =
  /** A-record addresses when clients reach the sides through something else (proxies, a pooler). */
  | { strategy: 'dns'; adminUrl: string; name: string; ttl?: number; oldAddress?: string; newAddress?: string }
  | { strategy: 'proxy'; apiUrl: string; name: string; oldUpstream?: string; newUpstream?: string }
  /** maxHoldMs: the pause fence's bound on a held query (pgbouncer query_wait_timeout while paused). */
  | { strategy: 'pgbouncer'; adminUrl: string; iniFile: string; database?: string; maxHoldMs?: number }
  | { strategy: 'command'; command: string; checkCommand?: string };

export const SWITCH_STRATEGIES = ['dns', 'proxy', 'pgbouncer', 'command'] as const;

export function makeSwitch(c: SwitchConfig): SwitchStrategy {
  switch (c.strategy) {
    case 'dns':
      return new DnsSwitch({ adminUrl: c.adminUrl, name: c.name, oldAddress: c.oldAddress, newAddress: c.newAddress, ttl: c.ttl });
    case 'proxy':
      return new ProxySwitch({ apiUrl: c.apiUrl, name: c.name, oldUpstream: c.oldUpstream, newUpstream: c.newUpstream });
    case 'pgbouncer':
      return new PgbouncerSwitch({ adminUrl: c.adminUrl, iniFile: c.iniFile, database: c.database, maxHoldMs: c.maxHoldMs });
    case 'command':
      return new CommandSwitch({ command: c.command, checkCommand: c.checkCommand });
  }
}

/** Flat CLI flags → the configuration of one strategy, naming the missing flag. */
export function switchConfigFromFlags(name: string, f: Record<string, string | number | undefined>): SwitchConfig {
  const need = (key: string, flag: string): string => {
    const v = f[key];
    if (v === undefined || v === '') throw new CutoverError('USAGE', `--switch ${name} needs ${flag}`);
    return String(v);
  };
  const opt = (key: string) => (f[key] === undefined ? undefined : String(f[key]));
  switch (name) {
    case 'dns':
      return { strategy: 'dns', adminUrl: need('dnsAdmin', '--dns-admin <url>'), name: need('dnsName', '--dns-name <name>'), ttl: f.dnsTtl === undefined ? undefined : Number(f.dnsTtl), oldAddress: opt('dnsOldAddress'), newAddress: opt('dnsNewAddress') };
    case 'proxy':
      return { strategy: 'proxy', apiUrl: need('proxyApi', '--proxy-api <url>'), name: need('proxyName', '--proxy-name <name>'), oldUpstream: opt('proxyOldUpstream'), newUpstream: opt('proxyNewUpstream') };
    case 'pgbouncer':
      return { strategy: 'pgbouncer', adminUrl: need('pgbouncerAdmin', '--pgbouncer-admin <url>'), iniFile: need('pgbouncerIni', '--pgbouncer-ini <file>'), database: opt('pgbouncerDb'), maxHoldMs: f.maxHold === undefined ? undefined : Number(f.maxHold) };
    case 'command':
      return { strategy: 'command', command: need('command', '--command <cmd>'), checkCommand: opt('checkCommand') };
    default:
      throw new CutoverError('USAGE', `unknown switch strategy ${name}`, { hint: `use one of ${SWITCH_STRATEGIES.join(', ')}` });
  }
}
