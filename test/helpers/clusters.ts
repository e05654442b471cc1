/**
 * Real clusters for integration tests. Each test file starts what it needs on free loopback
 * addresses under a temporary directory and destroys it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { EmbeddedProvider } from '../../lab/providers/embedded.ts';
import { withClient } from '../../migration/pg.ts';
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

/** Run one statement and return its rows (a connection per call: tests, not hot paths). */
export async function sql(url: string, text: string, params: unknown[] = []): Promise<any[]> {
  return withClient(url, async (c) => (await c.query(text, params)).rows);
}

const REPO = join(import.meta.dirname, '..', '..');

/** The `cutover` CLI as a child process (so a test can SIGKILL it); `done` resolves when it exits. */
export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn(process.execPath, [join(REPO, 'bin', 'cutover.mjs'), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; out: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, out: stdout + stderr })),
  );
  return { child, done };
}

/**
 * A pair with an application role `app` (password `app`) writing `public.items` on both sides, 50
 * rows seeded on old, and the replication `main` started and in sync: the switchover tests' start.
 */
export async function startReplicatedItemsPair(oldMajor: number, newMajor: number): Promise<Pair> {
  const pair = await startPair(oldMajor, newMajor);
  for (const url of [pair.old.url, pair.new.url]) {
    await sql(url, `create role app login password 'app'`);
    await sql(url, `create table public.items (id bigserial primary key, note text)`);
    await sql(url, `grant select, insert, update, delete on public.items to app; grant usage on all sequences in schema public to app`);
  }
  await sql(pair.old.url, `insert into public.items (note) select 'seed ' || g from generate_series(1, 50) g`);
  const { startReplication, waitForSync } = await import('../../migration/replication.ts');
  await startReplication({ source: pair.old.url, target: pair.new.url });
  await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
  return pair;
}
