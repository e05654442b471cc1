/** The docker provider runs where an engine answers; elsewhere it is skipped with the reason. */
import { describe, it, expect } from 'vitest';
import { dockerEngine } from '../../lab/tools.ts';
import { DockerProvider } from '../../lab/providers/docker.ts';
import { withClient, serverMajor } from '../../migration/pg.ts';

const engine = await dockerEngine();
if (!engine.available) console.warn(`[skip] docker provider tests: ${engine.reason}`);

describe.skipIf(!engine.available)(`docker provider (${engine.reason})`, () => {
  it('starts postgres:13 and postgres:16 with logical replication enabled', async () => {
    const p = new DockerProvider();
    const [a, b] = await Promise.all([p.start({ name: 'old', major: 13 }), p.start({ name: 'new', major: 16 })]);
    try {
      expect(await withClient(a.url, serverMajor)).toBe(13);
      expect(await withClient(b.url, serverMajor)).toBe(16);
      expect(await withClient(a.url, async (c) => (await c.query('show wal_level')).rows[0].wal_level)).toBe('logical');
    } finally {
      await Promise.allSettled([a.destroy(), b.destroy()]);
    }
  });
});
