/**
 * Proxy switch: a Toxiproxy proxy in front of the primary; its upstream moves from old to new
 * (POST /proxies/<name> {upstream}). Toxiproxy restarts the listener, so open client connections
 * are closed and reconnect to the new upstream. `current()` reads the proxy's upstream back.
 */
import { httpJson, type PlainSwitch, type Side, type SwitchContext } from './types.ts';

export interface ProxySwitchOptions {
  apiUrl: string;
  name: string;
  /** host:port of each side (default: from the source/target URLs). */
  oldUpstream?: string;
  newUpstream?: string;
  /** Deadline of one API call (default 10 s). */
  callTimeoutMs?: number;
}

export class ProxySwitch implements PlainSwitch {
  readonly name = 'proxy';
  readonly pausable = false;
  constructor(private readonly o: ProxySwitchOptions) {}

  private url(): string {
    return `${this.o.apiUrl.replace(/\/$/, '')}/proxies/${encodeURIComponent(this.o.name)}`;
  }

  private upstreams(ctx: SwitchContext) {
    return { old: this.o.oldUpstream ?? `${ctx.old.host}:${ctx.old.port}`, new: this.o.newUpstream ?? `${ctx.new.host}:${ctx.new.port}` };
  }

  async current(ctx: SwitchContext): Promise<Side | 'unknown'> {
    const p = await httpJson('GET', this.url(), undefined, this.o.callTimeoutMs, ctx.signal);
    const u = this.upstreams(ctx);
    return p?.upstream === u.old ? 'old' : p?.upstream === u.new ? 'new' : 'unknown';
  }

  async switchTo(side: Side, ctx: SwitchContext): Promise<Record<string, unknown>> {
    const upstream = this.upstreams(ctx)[side];
    const before = await httpJson('GET', this.url(), undefined, this.o.callTimeoutMs, ctx.signal);
    await httpJson('POST', this.url(), { upstream }, this.o.callTimeoutMs, ctx.signal);
    return { proxy: this.o.name, listen: before?.listen, from: before?.upstream, upstream };
  }
}
