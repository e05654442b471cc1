/**
 * A reader of `global/pg_control` for old majors, for pg_upgrade's sake.
 *
 * PostgreSQL 18's pg_upgrade runs three programs from the OLD major's bindir: `pg_ctl --version`,
 * `pg_controldata <dir>` (for "Database cluster state:") and `pg_resetwal -n <dir>` (every other
 * control value it needs). The npm server packages ship only initdb, pg_ctl and postgres, and
 * pg_resetwal refuses a data directory of another major (PG_VERSION check), so the lab brings its
 * own: this file prints exactly the lines pg_upgrade parses (src/bin/pg_upgrade/controldata.c),
 * read with the struct layout of the file's pg_control_version.
 *
 * A layout is used only when the file proves it: the CRC-32C stored at the layout's `crc` offset
 * must match the bytes before it, and the float-format sentinel must read 1234567.0. Every layout
 * listed here is also checked field by field against the server's own reading of the same file
 * (pg_control_system/checkpoint/init) and, for 1300, line by line against Debian's real
 * pg_resetwal -n / pg_controldata 15 (test/integration/clone-pg-control.test.ts). Any other
 * pg_control_version (18's 1800, a future major's) is refused with the reason.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CutoverError } from '../migration/errors.ts';

/** C field: [name, size, alignment]. A nested struct is its own list. */
type Field = [string, number, number] | [string, Field[]];

const u32 = (n: string): Field => [n, 4, 4];
const u64 = (n: string): Field => [n, 8, 8];
const bool = (n: string): Field => [n, 1, 1];

/** CheckPoint (pg_control.h). 11 kept the xid epoch in its own field; 12 made nextXid a FullTransactionId. */
function checkPoint(fullXid: boolean): Field[] {
  return [
    u64('redo'), u32('ThisTimeLineID'), u32('PrevTimeLineID'), bool('fullPageWrites'),
    ...(fullXid ? [u64('nextXid')] : [u32('nextXidEpoch'), u32('nextXid32')]),
    u32('nextOid'), u32('nextMulti'), u32('nextMultiOffset'), u32('oldestXid'), u32('oldestXidDB'),
    u32('oldestMulti'), u32('oldestMultiDB'), u64('time'), u32('oldestCommitTsXid'), u32('newestCommitTsXid'), u32('oldestActiveXid'),
  ];
}

/** ControlFileData (pg_control.h) as of a pg_control_version. */
function controlFile(v: { fullXid: boolean; maxWalSenders: boolean; float4ByVal: boolean }): Field[] {
  return [
    u64('system_identifier'), u32('pg_control_version'), u32('catalog_version_no'), u32('state'), u64('time'), u64('checkPoint'),
    ['checkPointCopy', checkPoint(v.fullXid)],
    u64('unloggedLSN'), u64('minRecoveryPoint'), u32('minRecoveryPointTLI'), u64('backupStartPoint'), u64('backupEndPoint'), bool('backupEndRequired'),
    u32('wal_level'), bool('wal_log_hints'), u32('MaxConnections'), u32('max_worker_processes'), ...(v.maxWalSenders ? [u32('max_wal_senders')] : []),
    u32('max_prepared_xacts'), u32('max_locks_per_xact'), bool('track_commit_timestamp'),
    u32('maxAlign'), ['floatFormat', 8, 8], u32('blcksz'), u32('relseg_size'), u32('xlog_blcksz'), u32('xlog_seg_size'),
    u32('nameDataLen'), u32('indexMaxKeys'), u32('toast_max_chunk_size'), u32('loblksize'),
    ...(v.float4ByVal ? [bool('float4ByVal')] : []), bool('float8ByVal'), u32('data_checksum_version'), ['mock_authentication_nonce', 32, 1], u32('crc'),
  ];
}

/** The layouts this reader knows, by pg_control_version, with the majors that write them. */
export const CONTROL_LAYOUTS: Record<number, { majors: number[]; fields: Field[] }> = {
  1100: { majors: [11], fields: controlFile({ fullXid: false, maxWalSenders: false, float4ByVal: true }) },
  1201: { majors: [12], fields: controlFile({ fullXid: true, maxWalSenders: true, float4ByVal: true }) },
  1300: { majors: [13, 14, 15, 16], fields: controlFile({ fullXid: true, maxWalSenders: true, float4ByVal: false }) },
  // 17 bumped the version without moving a field pg_upgrade reads: same size, same CRC offset, and
  // every field equal to the server's own reading (the test below); read with 1300's struct.
  1700: { majors: [17], fields: controlFile({ fullXid: true, maxWalSenders: true, float4ByVal: false }) },
};

/** Field offsets (dotted names for nested structs), laid out like the C compiler does on x86-64/arm64 Linux. */
export function offsets(fields: Field[], base = 0): { at: Map<string, number>; size: number; align: number } {
  const at = new Map<string, number>();
  let off = base;
  let maxAlign = 1;
  for (const f of fields) {
    if (Array.isArray(f[1])) {
      const inner = offsets(f[1], 0);
      off = Math.ceil(off / inner.align) * inner.align;
      for (const [k, v] of inner.at) at.set(`${f[0]}.${k}`, off + v);
      off += inner.size;
      maxAlign = Math.max(maxAlign, inner.align);
    } else {
      const [name, size, align] = f as [string, number, number];
      off = Math.ceil(off / align) * align;
      at.set(name, off);
      off += size;
      maxAlign = Math.max(maxAlign, align);
    }
  }
  return { at, size: Math.ceil((off - base) / maxAlign) * maxAlign, align: maxAlign };
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const DB_STATES = ['starting up', 'shut down', 'shut down in recovery', 'shutting down', 'in crash recovery', 'in archive recovery', 'in production'];

export interface ControlData {
  pgControlVersion: number;
  catalogVersion: number;
  systemIdentifier: bigint;
  state: string;
  redo: bigint;
  timeline: number;
  fullPageWrites: boolean;
  nextXidEpoch: number;
  nextXid: number;
  nextOid: number;
  nextMulti: number;
  nextMultiOffset: number;
  oldestXid: number;
  oldestXidDB: number;
  oldestActiveXid: number;
  oldestMulti: number;
  oldestMultiDB: number;
  oldestCommitTsXid: number;
  newestCommitTsXid: number;
  maxAlign: number;
  blcksz: number;
  relsegSize: number;
  xlogBlcksz: number;
  xlogSegSize: number;
  nameDataLen: number;
  indexMaxKeys: number;
  toastMaxChunkSize: number;
  loblksize: number;
  float8ByVal: boolean;
  dataChecksumVersion: number;
}

/** Parse a pg_control file; refuses a version it has no verified layout for, or bytes that do not prove the layout. */
export function parseControlFile(buf: Buffer, where = 'pg_control'): ControlData {
  if (buf.length < 16) throw new CutoverError('STATE', `${where} is too short (${buf.length} bytes) to be a pg_control file`);
  const version = buf.readUInt32LE(8);
  const layout = CONTROL_LAYOUTS[version];
  if (!layout)
    throw new CutoverError('PRECONDITION', `${where} has pg_control_version ${version}, for which this lab has no verified layout (known: ${Object.entries(CONTROL_LAYOUTS).map(([v, l]) => `${v} = PostgreSQL ${l.majors.join('/')}`).join(', ')})`, {
      hint: 'clone-then-follow needs the old major\'s pg_controldata and pg_resetwal; put a full install of that major in CUTOVER_OLD_BINDIR (e.g. Debian\'s postgresql-<major>), or use initialSync: copy',
    });
  const { at } = offsets(layout.fields);
  const o = (name: string) => at.get(name)!;
  const crcAt = o('crc');
  if (crc32c(buf.subarray(0, crcAt)) !== buf.readUInt32LE(crcAt) || buf.readDoubleLE(o('floatFormat')) !== 1234567.0)
    throw new CutoverError('PRECONDITION', `${where}: the bytes do not match the pg_control_version ${version} layout (CRC or float-format check failed); refusing to guess`, {
      hint: 'use the old major\'s own pg_controldata/pg_resetwal (CUTOVER_OLD_BINDIR), or initialSync: copy',
    });
  const u = (n: string) => buf.readUInt32LE(o(n));
  const cp = (n: string) => `checkPointCopy.${n}`;
  const full = at.has(cp('nextXid'));
  const nextXid64 = full ? buf.readBigUInt64LE(o(cp('nextXid'))) : (BigInt(u(cp('nextXidEpoch'))) << 32n) | BigInt(u(cp('nextXid32')));
  const state = u('state');
  return {
    pgControlVersion: version,
    catalogVersion: u('catalog_version_no'),
    systemIdentifier: buf.readBigUInt64LE(o('system_identifier')),
    state: DB_STATES[state] ?? 'unrecognized status code',
    redo: buf.readBigUInt64LE(o(cp('redo'))),
    timeline: u(cp('ThisTimeLineID')),
    fullPageWrites: buf[o(cp('fullPageWrites'))] !== 0,
    nextXidEpoch: Number(nextXid64 >> 32n),
    nextXid: Number(nextXid64 & 0xffffffffn),
    nextOid: u(cp('nextOid')),
    nextMulti: u(cp('nextMulti')),
    nextMultiOffset: u(cp('nextMultiOffset')),
    oldestXid: u(cp('oldestXid')),
    oldestXidDB: u(cp('oldestXidDB')),
    oldestActiveXid: u(cp('oldestActiveXid')),
    oldestMulti: u(cp('oldestMulti')),
    oldestMultiDB: u(cp('oldestMultiDB')),
    oldestCommitTsXid: u(cp('oldestCommitTsXid')),
    newestCommitTsXid: u(cp('newestCommitTsXid')),
    maxAlign: u('maxAlign'),
    blcksz: u('blcksz'),
    relsegSize: u('relseg_size'),
    xlogBlcksz: u('xlog_blcksz'),
    xlogSegSize: u('xlog_seg_size'),
    nameDataLen: u('nameDataLen'),
    indexMaxKeys: u('indexMaxKeys'),
    toastMaxChunkSize: u('toast_max_chunk_size'),
    loblksize: u('loblksize'),
    float8ByVal: buf[o('float8ByVal')] !== 0,
    dataChecksumVersion: u('data_checksum_version'),
  };
}

export function readControlFile(dataDir: string): ControlData {
  return parseControlFile(readFileSync(join(dataDir, 'global', 'pg_control')), join(dataDir, 'global', 'pg_control'));
}

const hex8 = (n: number | bigint) => n.toString(16).toUpperCase().padStart(8, '0');

/**
 * pg_resetwal's "First log segment after reset": one past the newest segment in pg_wal (or the
 * checkpoint's redo segment), on the checkpoint's timeline (FindEndOfXLOG in pg_resetwal.c).
 */
export function firstSegmentAfterReset(c: ControlData, walFiles: string[]): string {
  const segSize = BigInt(c.xlogSegSize);
  const perId = 0x100000000n / segSize;
  let segno = c.redo / segSize;
  for (const f of walFiles) {
    const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/.exec(f);
    if (!m) continue;
    const s = BigInt(parseInt(m[2], 16)) * perId + BigInt(parseInt(m[3], 16));
    if (s > segno) segno = s;
  }
  segno += 1n;
  return hex8(c.timeline) + hex8(segno / perId) + hex8(segno % perId);
}

const line = (label: string, value: string | number) => `${label.padEnd(38)}${value}`;

/** `pg_controldata <dir>`, the part pg_upgrade reads (it needs only the cluster state). */
export function controldataText(c: ControlData): string {
  return [line('pg_control version number:', c.pgControlVersion), line('Catalog version number:', c.catalogVersion), line('Database system identifier:', c.systemIdentifier.toString()), line('Database cluster state:', c.state)].join('\n') + '\n';
}

/** `pg_resetwal -n <dir>`, in its own words and order (PrintControlValues + PrintNewControlValues). */
export function resetwalDryRunText(c: ControlData, walFiles: string[]): string {
  return [
    'Current pg_control values:',
    '',
    line('pg_control version number:', c.pgControlVersion),
    line('Catalog version number:', c.catalogVersion),
    line('Database system identifier:', c.systemIdentifier.toString()),
    line("Latest checkpoint's TimeLineID:", c.timeline),
    line("Latest checkpoint's full_page_writes:", c.fullPageWrites ? 'on' : 'off'),
    line("Latest checkpoint's NextXID:", `${c.nextXidEpoch}:${c.nextXid}`),
    line("Latest checkpoint's NextOID:", c.nextOid),
    line("Latest checkpoint's NextMultiXactId:", c.nextMulti),
    line("Latest checkpoint's NextMultiOffset:", c.nextMultiOffset),
    line("Latest checkpoint's oldestXID:", c.oldestXid),
    line("Latest checkpoint's oldestXID's DB:", c.oldestXidDB),
    line("Latest checkpoint's oldestActiveXID:", c.oldestActiveXid),
    line("Latest checkpoint's oldestMultiXid:", c.oldestMulti),
    line("Latest checkpoint's oldestMulti's DB:", c.oldestMultiDB),
    line("Latest checkpoint's oldestCommitTsXid:", c.oldestCommitTsXid),
    line("Latest checkpoint's newestCommitTsXid:", c.newestCommitTsXid),
    line('Maximum data alignment:', c.maxAlign),
    line('Database block size:', c.blcksz),
    line('Blocks per segment of large relation:', c.relsegSize),
    line('WAL block size:', c.xlogBlcksz),
    line('Bytes per WAL segment:', c.xlogSegSize),
    line('Maximum length of identifiers:', c.nameDataLen),
    line('Maximum columns in an index:', c.indexMaxKeys),
    line('Maximum size of a TOAST chunk:', c.toastMaxChunkSize),
    line('Size of a large-object chunk:', c.loblksize),
    line('Date/time type storage:', '64-bit integers'),
    line('Float8 argument passing:', c.float8ByVal ? 'by value' : 'by reference'),
    line('Data page checksum version:', c.dataChecksumVersion),
    '',
    '',
    'Values to be changed:',
    '',
    line('First log segment after reset:', firstSegmentAfterReset(c, walFiles)),
    '',
    'Nothing is changed in dry-run mode (-n).',
    '',
  ].join('\n');
}

/** The program behind the synthetic old bindir's `pg_controldata` and `pg_resetwal` (see lab/clone.ts). */
export function toolMain(argv: string[], out: (s: string) => void): number {
  const [tool, ...args] = argv;
  const version = args.find((a) => a === '-V' || a === '--version');
  if (version) {
    out(`${tool} (PostgreSQL) ${process.env.CUTOVER_PG_CONTROL_VERSION ?? 'unknown'} (cutover-lab pg_control reader)\n`);
    return 0;
  }
  const dir = args.filter((a) => !a.startsWith('-')).at(-1) ?? process.env.PGDATA;
  if (!dir) {
    out(`${tool}: no data directory given\n`);
    return 1;
  }
  if (tool === 'pg_resetwal' && !args.includes('-n')) {
    out(`pg_resetwal: this is the cutover-lab pg_control reader; it only supports -n (dry run)\n`);
    return 1;
  }
  const c = readControlFile(dir);
  out(tool === 'pg_resetwal' ? resetwalDryRunText(c, readdirSync(join(dir, 'pg_wal'))) : controldataText(c));
  return 0;
}

if (process.argv[1] && /pg-control\.ts$/.test(process.argv[1])) {
  try {
    process.exitCode = toolMain(process.argv.slice(2), (s) => process.stdout.write(s));
  } catch (e: any) {
    process.stderr.write(`${process.argv[2]}: ${e?.message ?? e}\n`);
    process.exitCode = 1;
  }
}
