/**
 * Clusters you already have (a staging clone of production, RDS, …), given as URLs.
 * The lab never stops or destroys them.
 */
import { withClient, serverVersionNum } from '../../migration/pg.ts';
import { CutoverError } from '../../migration/errors.ts';
import type { ClusterProvider, ClusterRecord, ClusterSpec, StartOptions, StartedCluster } from './types.ts';

export interface ExternalSpec extends ClusterSpec {
  url: string;
}

class ExternalCluster implements StartedCluster {
  constructor(public record: ClusterRecord) {}
  get url() {
    return this.record.url;
  }
  get major() {
    return this.record.major;
  }
  async alive() {
    try {
      await withClient(this.url, async (c) => c.query('select 1'), { connectTimeoutMs: 3000 });
      return true;
    } catch {
      return false;
    }
  }
  async stop() {}
  async destroy() {}
  async [Symbol.asyncDispose]() {}
}

export class ExternalProvider implements ClusterProvider {
  readonly kind = 'external' as const;
  async start(spec: ClusterSpec, _opts?: StartOptions): Promise<StartedCluster> {
    const url = (spec as ExternalSpec).url;
    if (!url) throw new CutoverError('CONFIG', `cluster "${spec.name}": the external provider needs a url`, { hint: 'give clusters.<name>.url: postgres://user:pass@host:5432/db' });
    const versionNum = await withClient(url, serverVersionNum, { role: `cluster "${spec.name}"` });
    const major = Math.floor(versionNum / 10000);
    if (spec.major && spec.major !== major)
      throw new CutoverError('CONFIG', `cluster "${spec.name}" at ${new URL(url).host} runs PostgreSQL ${major}, the scenario says ${spec.major}`, { hint: 'fix the scenario major or the URL' });
    const u = new URL(url);
    return new ExternalCluster({ provider: 'external', name: spec.name, major, versionNum, url, host: u.hostname, port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)) || 'postgres', user: decodeURIComponent(u.username) });
  }
  attach(record: ClusterRecord): StartedCluster {
    return new ExternalCluster(record);
  }
}
