/**
 * A 13 → 17 pair for the switchover's split-brain tests: an app role, a table, forward replication
 * running, and a pointer file that the command switch writes (what a slow DNS API would do) —
 * `switch.sh` is the script: moving traffic to new takes 4 s, moving it back is instant.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { sql, startPair, type Pair } from './clusters.ts';

export const APP_PW = 'app pw';

export interface PointerLab {
  pair: Pair;
  dir: string;
  pointer: string;
  script: string;
  /** The app role's URL on a side. */
  app(side: 'old' | 'new'): string;
  /** CUTOVER_SOURCE_URL / CUTOVER_TARGET_URL for the CLI (passwords stay out of argv). */
  env(): Record<string, string>;
  canLogin(side: 'old' | 'new'): Promise<boolean>;
  /** Where the pointer says traffic goes. */
  side(): string;
  destroy(): Promise<void>;
}

export async function startPointerLab(): Promise<PointerLab> {
  const dir = mkdtempSync(join(tmpdir(), 'no-split-brain-'));
  const pointer = join(dir, 'pointer');
  writeFileSync(pointer, 'old\n');
  const script = join(dir, 'switch.sh');
  writeFileSync(script, `#!/bin/sh\n[ "$CUTOVER_SIDE" = new ] && sleep 4\necho "$CUTOVER_SIDE" > ${pointer}\n`);
  chmodSync(script, 0o755);
  const pair = await startPair(13, 17);
  for (const url of [pair.old.url, pair.new.url]) {
    await sql(url, `create role app_writer login password '${APP_PW}'`);
    await sql(url, `create table public.items (id bigserial primary key, note text)`);
    await sql(url, `grant select, insert on public.items to app_writer; grant usage on all sequences in schema public to app_writer`);
  }
  await sql(pair.old.url, `insert into public.items (note) select 'seed' from generate_series(1, 20)`);
  await startReplication({ source: pair.old.url, target: pair.new.url });
  await waitForSync({ source: pair.old.url, target: pair.new.url, timeoutMs: 120_000 });
  const app = (side: 'old' | 'new') => {
    const u = new URL(pair[side].url);
    u.username = 'app_writer';
    u.password = APP_PW;
    return u.toString();
  };
  return {
    pair,
    dir,
    pointer,
    script,
    app,
    env: () => ({ CUTOVER_SOURCE_URL: pair.old.url, CUTOVER_TARGET_URL: pair.new.url, CUTOVER_PROGRESS: 'silent' }),
    canLogin: (side) => sql(app(side), 'select 1 as ok').then(() => true, (e) => (/not permitted to log in/.test(e.message) ? false : Promise.reject(e))),
    side: () => readFileSync(pointer, 'utf8').trim(),
    async destroy() {
      await pair.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
