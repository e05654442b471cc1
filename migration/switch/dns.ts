/**
 * DNS-style switch: a name with weighted A records (old 100 / new 0 → old 0 / new 100), then one
 * TTL of waiting so that every resolver has dropped the old answer. Talks to the lab DNS server's
 * admin API (GET/PUT /records/<name>); `current()` reads the record back. For a managed DNS in
 * production use the `command` strategy (with a `--check-command`).
 */
import { CutoverError } from '../errors.ts';
import { abortableSleep, httpJson, type PlainSwitch, type Side, type SwitchContext } from './types.ts';

export interface DnsSwitchOptions {
  adminUrl: string;
  name: string;
  /** A-record addresses of the two sides (default: the hosts of the source/target URLs). */
  oldAddress?: string;
  newAddress?: string;
  /** TTL to set, seconds (default: keep the record's, else 1). */
  ttl?: number;
  /** Wait one TTL after the change (default true). */
  waitTtl?: boolean;
}

interface DnsRecord {
  targets: Array<{ address: string; weight: number }>;
  ttl: number;
}

export class DnsSwitch implements PlainSwitch {
  readonly name = 'dns';
  readonly pausable = false;
  constructor(private readonly o: DnsSwitchOptions) {}

  private url(): string {
    return `${this.o.adminUrl.replace(/\/$/, '')}/records/${encodeURIComponent(this.o.name)}`;
  }

  private addresses(ctx: SwitchContext): { old: string; new: string } {
    const a = { old: this.o.oldAddress ?? ctx.old.host, new: this.o.newAddress ?? ctx.new.host };
    for (const [side, addr] of Object.entries(a))
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(addr))
        throw new CutoverError('CONFIG', `the dns switch needs an IPv4 address for the ${side} side, got ${addr}`, { hint: `pass --dns-${side}-address` });
    return a;
  }

  private async get(signal?: AbortSignal): Promise<DnsRecord | undefined> {
    try {
      return await httpJson('GET', this.url(), undefined, 10_000, signal);
    } catch (e) {
      if (e instanceof CutoverError && /answered 404/.test(e.message)) return undefined;
      throw e;
    }
  }

  async current(ctx: SwitchContext): Promise<Side | 'unknown'> {
    const rec = await this.get(ctx.signal);
    if (!rec) return 'unknown';
    const a = this.addresses(ctx);
    const heavy = [...rec.targets].sort((x, y) => y.weight - x.weight)[0];
    if (!heavy || rec.targets.filter((t) => t.weight > 0).length !== 1) return 'unknown';
    return heavy.address === a.old ? 'old' : heavy.address === a.new ? 'new' : 'unknown';
  }

  async switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown>> {
    const a = this.addresses(ctx);
    const before = await this.get(ctx.signal);
    const ttl = this.o.ttl ?? before?.ttl ?? 1;
    const rec: DnsRecord = {
      targets: [
        { address: a.old, weight: side === 'old' ? 100 : 0 },
        { address: a.new, weight: side === 'new' ? 100 : 0 },
      ],
      ttl,
    };
    const t0 = Date.now();
    await httpJson('PUT', this.url(), rec, 10_000, ctx.signal);
    // the record has moved once the PUT answered; the wait only lets resolvers drop the old answer
    if (this.o.waitTtl !== false) await abortableSleep(ttl * 1000, ctx.signal);
    return { name: this.o.name, to: side, address: side === 'old' ? a.old : a.new, ttl, waitedMs: Date.now() - t0, before };
  }
}
