/** The pg_control reader's pure parts: CRC-32C, the struct layouts, pg_resetwal's next WAL segment. */
import { describe, expect, it } from 'vitest';
import { CONTROL_LAYOUTS, crc32c, firstSegmentAfterReset, offsets, type ControlData } from '../../lab/pg-control.ts';

describe('pg_control reader', () => {
  it('computes CRC-32C (Castagnoli) as PostgreSQL does', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('lays the structs out as the C compiler does: the crc sits where each major writes it', () => {
    // the offsets a real pg_control of each major has its CRC at (found by scanning real files)
    expect(offsets(CONTROL_LAYOUTS[1100].fields).at.get('crc')).toBe(280);
    expect(offsets(CONTROL_LAYOUTS[1201].fields).at.get('crc')).toBe(288);
    expect(offsets(CONTROL_LAYOUTS[1300].fields).at.get('crc')).toBe(288);
    const at = offsets(CONTROL_LAYOUTS[1300].fields).at;
    expect(at.get('checkPointCopy.redo')).toBe(40);
    expect(at.get('checkPointCopy.nextXid')).toBe(64); // FullTransactionId, 8-aligned inside CheckPoint
    expect(at.get('floatFormat')).toBe(208);
  });

  it('names the first WAL segment after a reset as pg_resetwal does (one past the newest in pg_wal)', () => {
    const c = { redo: 0x3000028n, xlogSegSize: 16 * 1024 * 1024, timeline: 1 } as ControlData;
    expect(firstSegmentAfterReset(c, [])).toBe('000000010000000000000004');
    expect(firstSegmentAfterReset(c, ['000000010000000000000007', '000000010000000100000002.partial', 'archive_status', '00000002.history'])).toBe('000000010000000100000003');
  });
});
