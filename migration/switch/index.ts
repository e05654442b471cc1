/** Switch strategies by name, built from plain options (the CLI and the rehearsal runner use this). */
import { CutoverError } from '../errors.ts';
import { CommandSwitch } from './command.ts';
import { DnsSwitch } from './dns.ts';
import { PgbouncerSwitch } from './pgbouncer.ts';
import { ProxySwitch } from './proxy.ts';
import type { SwitchStrategy } from './types.ts';

export type { SwitchStrategy, SwitchContext, Side, Endpoint } from './types.ts';
export { DnsSwitch, ProxySwitch, PgbouncerSwitch, CommandSwitch };

export interface SwitchConfig {
  dnsAdmin?: string;
  dnsName?: string;
  dnsTtl?: number;
  proxyOldUpstream?: string;
  proxyNewUpstream?: string;
  /** A-record addresses when clients reach the sides through something else (proxies, a pooler). */
  dnsOldAddress?: string;
  dnsNewAddress?: string;
  proxyApi?: string;
  proxyName?: string;
  pgbouncerAdmin?: string;
  pgbouncerIni?: string;
  pgbouncerDb?: string;
  command?: string;
}

export function makeSwitch(name: string, c: SwitchConfig): SwitchStrategy {
  const need = (v: string | undefined, flag: string): string => {
    if (!v) throw new CutoverError('USAGE', `--switch ${name} needs ${flag}`);
    return v;
  };
  switch (name) {
    case 'dns':
      return new DnsSwitch({ adminUrl: need(c.dnsAdmin, '--dns-admin <url>'), name: need(c.dnsName, '--dns-name <name>'), oldAddress: c.dnsOldAddress, newAddress: c.dnsNewAddress, ttl: c.dnsTtl });
    case 'proxy':
      return new ProxySwitch({ apiUrl: need(c.proxyApi, '--proxy-api <url>'), name: need(c.proxyName, '--proxy-name <name>'), oldUpstream: c.proxyOldUpstream, newUpstream: c.proxyNewUpstream });
    case 'pgbouncer':
      return new PgbouncerSwitch({ adminUrl: need(c.pgbouncerAdmin, '--pgbouncer-admin <url>'), iniFile: need(c.pgbouncerIni, '--pgbouncer-ini <file>'), database: c.pgbouncerDb });
    case 'command':
      return new CommandSwitch({ command: need(c.command, '--command <cmd>') });
    default:
      throw new CutoverError('USAGE', `unknown switch strategy ${name}`, { hint: 'use one of dns, proxy, pgbouncer, command' });
  }
}
