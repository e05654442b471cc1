/**
 * Real clusters for integration tests. Each test file starts what it needs on free loopback
 * addresses under a temporary directory and destroys it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedProvider } from '../../lab/providers/embedded.ts';
import type { ClusterSpec, StartedCluster } from '../../lab/providers/types.ts';

export interface Pair {
  old: StartedCluster;
  new: StartedCluster;
  dir: string;
  destroy(): Promise<void>;
}

export async function startCluster(spec: Partial<ClusterSpec> & { major: number }, dir?: string): Promise<StartedCluster & { tmp: string }> {
  const tmp = dir ?? mkdtempSync(join(tmpdir(), 'cutover-test-'));
  const name = spec.name ?? `pg${spec.major}`;
  const c = await new EmbeddedProvider().start({ ...spec, name }, { dir: join(tmp, name) });
  return Object.assign(c, { tmp });
}

/** Old and new clusters (old publishes; both get wal_level=logical so reverse replication works too). */
export async function startPair(oldMajor: number, newMajor: number, extra: { old?: Partial<ClusterSpec>; new?: Partial<ClusterSpec> } = {}): Promise<Pair> {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-pair-'));
  const provider = new EmbeddedProvider();
  const [o, n] = await Promise.all([
    provider.start({ name: 'old', major: oldMajor, ...extra.old }, { dir: join(dir, 'old') }),
    provider.start({ name: 'new', major: newMajor, ...extra.new }, { dir: join(dir, 'new') }),
  ]);
  return {
    old: o,
    new: n,
    dir,
    async destroy() {
      await Promise.allSettled([o.destroy(), n.destroy()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
