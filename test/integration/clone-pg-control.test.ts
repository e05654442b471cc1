/**
 * The lab's pg_control reader (lab/pg-control.ts) stands in for the old major's pg_controldata and
 * pg_resetwal -n under pg_upgrade. It may only be used where it is proven: here every layout it
 * knows is read from a real cluster of each major that writes it and compared field by field with
 * the server's own reading of the same file (pg_control_system/checkpoint/init), and its output is
 * compared line by line with Debian's real pg_resetwal -n and pg_controldata 15 on a 15 cluster.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, sql } from '../helpers/clusters.ts';
import { parseControlFile, readControlFile, resetwalDryRunText, controldataText, CONTROL_LAYOUTS } from '../../lab/pg-control.ts';
import { serverUser } from '../../lab/osuser.ts';
import type { StartedCluster } from '../../lab/providers/types.ts';

const started: StartedCluster[] = [];
afterAll(async () => {
  await Promise.allSettled(started.map((c) => c.destroy()));
});

/** What the server itself reads from its pg_control, in the reader's field names. */
async function serverView(url: string) {
  const [r] = await sql(
    url,
    `select s.pg_control_version, s.catalog_version_no, s.system_identifier::text, c.redo_lsn::text, c.timeline_id, c.full_page_writes, c.next_xid, c.next_oid::text::bigint as next_oid,
            c.next_multixact_id::text::bigint as next_multi, c.next_multi_offset::text::bigint as next_multi_offset, c.oldest_xid::text::bigint as oldest_xid, c.oldest_xid_dbid::text::bigint as oldest_xid_db,
            c.oldest_active_xid::text::bigint as oldest_active_xid, c.oldest_multi_xid::text::bigint as oldest_multi, c.oldest_multi_dbid::text::bigint as oldest_multi_db,
            c.oldest_commit_ts_xid::text::bigint as oldest_cts, c.newest_commit_ts_xid::text::bigint as newest_cts,
            i.max_data_alignment, i.database_block_size, i.blocks_per_segment, i.wal_block_size, i.bytes_per_wal_segment, i.max_identifier_length, i.max_index_columns,
            i.max_toast_chunk_size, i.large_object_chunk_size, i.float8_pass_by_value, i.data_page_checksum_version
       from pg_control_system() s, pg_control_checkpoint() c, pg_control_init() i`,
  );
  const [hi, lo] = r.redo_lsn.split('/').map((x: string) => BigInt('0x' + x));
  const [epoch, xid] = String(r.next_xid).split(':').map(Number);
  return {
    pgControlVersion: r.pg_control_version, catalogVersion: r.catalog_version_no, systemIdentifier: BigInt(r.system_identifier), redo: (hi << 32n) | lo,
    timeline: r.timeline_id, fullPageWrites: r.full_page_writes, nextXidEpoch: epoch, nextXid: xid, nextOid: Number(r.next_oid), nextMulti: Number(r.next_multi),
    nextMultiOffset: Number(r.next_multi_offset), oldestXid: Number(r.oldest_xid), oldestXidDB: Number(r.oldest_xid_db), oldestActiveXid: Number(r.oldest_active_xid),
    oldestMulti: Number(r.oldest_multi), oldestMultiDB: Number(r.oldest_multi_db), oldestCommitTsXid: Number(r.oldest_cts), newestCommitTsXid: Number(r.newest_cts),
    maxAlign: r.max_data_alignment, blcksz: r.database_block_size, relsegSize: r.blocks_per_segment, xlogBlcksz: r.wal_block_size, xlogSegSize: r.bytes_per_wal_segment,
    nameDataLen: r.max_identifier_length, indexMaxKeys: r.max_index_columns, toastMaxChunkSize: r.max_toast_chunk_size, loblksize: r.large_object_chunk_size,
    float8ByVal: r.float8_pass_by_value, dataChecksumVersion: r.data_page_checksum_version,
  };
}

describe('pg_control reader: every known layout against the server\'s own reading', () => {
  for (const [version, { majors }] of Object.entries(CONTROL_LAYOUTS)) {
    // the first and last major of each layout
    for (const major of [...new Set([majors[0], majors.at(-1)!])]) {
      it(`layout ${version}: PostgreSQL ${major}, every field`, async () => {
        const c = await startCluster({ major, dataChecksums: major === 13 ? true : undefined });
        started.push(c);
        // write something so the checkpoint's counters move off their initdb values
        await sql(c.url, `create table t (id int); insert into t select generate_series(1, 1000); checkpoint`);
        // the file is read between two readings of the server's that agree (no checkpoint in between)
        for (let attempt = 0; ; attempt++) {
          const before = await serverView(c.url);
          const mine = readControlFile(c.record.dataDir!);
          const after = await serverView(c.url);
          if (JSON.stringify(before, replacer) !== JSON.stringify(after, replacer) && attempt < 5) continue;
          const { state, ...fields } = mine;
          expect(state).toBe('in production');
          expect(fields).toEqual(after);
          if (major === 13) expect(fields.dataChecksumVersion).toBe(1);
          break;
        }
      });
    }
  }

  it('refuses a layout it does not know, and bytes that do not prove the layout', async () => {
    const c = await startCluster({ major: 18 });
    started.push(c);
    const buf = readFileSync(join(c.record.dataDir!, 'global', 'pg_control'));
    expect(() => parseControlFile(buf)).toThrow(/pg_control_version 1800, for which this lab has no verified layout/);
    const fake = Buffer.from(buf);
    fake.writeUInt32LE(1300, 8);
    expect(() => parseControlFile(fake)).toThrow(/CRC or float-format check failed/);
  });
});

const DEBIAN15 = '/usr/lib/postgresql/15/bin';
const haveDebian15 = existsSync(join(DEBIAN15, 'pg_resetwal')) && existsSync(join(DEBIAN15, 'pg_controldata'));

describe.skipIf(!haveDebian15)(`pg_control reader vs the real pg_resetwal -n / pg_controldata 15 (${haveDebian15 ? DEBIAN15 : 'Debian postgresql-15 is not installed'})`, () => {
  it('prints the lines pg_upgrade parses exactly as the real tools do, on a cleanly shut down 15 cluster', async () => {
    const c = await startCluster({ major: 15 });
    started.push(c);
    await sql(c.url, `create table t (id int); insert into t select generate_series(1, 5000); select pg_switch_wal()`);
    await c.stop();
    const dir = c.record.dataDir!;
    const user = serverUser();
    const real = (tool: string, args: string[]) => execFileSync(join(DEBIAN15, tool), [...args, dir], { uid: user?.uid, gid: user?.gid, env: { PATH: process.env.PATH, LC_ALL: 'C' } }).toString();
    const lines = (s: string) => s.split('\n').map((l) => l.trimEnd()).filter((l) => /:/.test(l));
    const realResetwal = lines(real('pg_resetwal', ['-n']));
    const mine = readControlFile(dir);
    expect(mine.state).toBe('shut down');
    const ours = lines(resetwalDryRunText(mine, readdirSync(join(dir, 'pg_wal'))));
    // every line we print is the real tool's line, word for word (the real one prints a few more)
    expect(ours.filter((l) => !realResetwal.includes(l))).toEqual([]);
    expect(ours.length).toBeGreaterThanOrEqual(30);
    expect(ours.find((l) => l.startsWith('First log segment after reset:'))).toBeDefined();
    const realControldata = lines(real('pg_controldata', []));
    expect(lines(controldataText(mine)).filter((l) => !realControldata.includes(l))).toEqual([]);
  });
});

function replacer(_k: string, v: unknown) {
  return typeof v === 'bigint' ? v.toString() : v;
}
