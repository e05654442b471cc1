/**
 * Pure parts of the third drift round (test/integration/drift-shapes3.test.ts runs them on real servers):
 * one finding per cause for DEFERRABLE and for a missing column, text search mappings reduced to the
 * tokens that differ, trigger enabled states.
 */
import { describe, expect, it } from 'vitest';
import { diffCollation, orderHash, type CollationSnapshot } from '../../migration/drift/collation.ts';
import { differingMappings, diffSchema, explainChange, sameColumnSet, type SchemaSnapshot } from '../../migration/drift/schema.ts';

const o = { sourceMajor: 13, targetMajor: 17 };

describe('drift shapes 3 (pure)', () => {
  it('DEFERRABLE INITIALLY DEFERRED only on the target is one finding, not two', () => {
    const a: SchemaSnapshot = { constraint: { 'app.t.fk': { definition: 'FOREIGN KEY (a) REFERENCES app.p(id)', validated: true, deferrable: false, deferred: false } } };
    const b: SchemaSnapshot = { constraint: { 'app.t.fk': { definition: 'FOREIGN KEY (a) REFERENCES app.p(id)', validated: true, deferrable: true, deferred: true } } };
    const f = diffSchema(a, b, o);
    expect(f.map((x) => `${x.severity} ${x.object}`)).toEqual(['error constraint app.t.fk']);
    expect(f[0].message).toMatch(/DEFERRABLE INITIALLY DEFERRED only on the target: a violation is reported at COMMIT/);
    expect(f[0].hint).toMatch(/NOT DEFERRABLE/);
    // INITIALLY DEFERRED alone (both deferrable) is still its own finding.
    const c: SchemaSnapshot = { constraint: { 'app.t.fk': { ...a.constraint!['app.t.fk'], deferrable: true, deferred: false } } };
    expect(diffSchema(c, b, o).map((x) => x.message)).toEqual([expect.stringMatching(/INITIALLY IMMEDIATE on the source and DEFERRED on the target/)]);
  });

  it('the source DEFERRABLE INITIALLY DEFERRED: the hint restores both', () => {
    const s = explainChange('constraint', 'app.t.fk', 'deferrable', true, false, o, { source: { deferrable: true, deferred: true }, target: { deferrable: false, deferred: false } });
    expect(s.severity).toBe('error');
    expect(s.hint).toMatch(/ALTER CONSTRAINT fk DEFERRABLE INITIALLY DEFERRED/);
  });

  it('a missing column explains the changed column order; the same columns in another order are a finding', () => {
    expect(sameColumnSet('a, b, c', 'a, c, b')).toBe(true);
    expect(sameColumnSet('a, b, c', 'a, b')).toBe(false);
    const t = (order: string) => ({ kind: 'table', persistence: 'p', column_order: order });
    const missing = diffSchema({ table: { 'app.t': t('a, b, c') }, column: { 'app.t.a': {}, 'app.t.b': {}, 'app.t.c': {} } },
      { table: { 'app.t': t('a, b') }, column: { 'app.t.a': {}, 'app.t.b': {} } }, o);
    expect(missing.map((x) => x.object)).toEqual(['column app.t.c']);
    const reordered = diffSchema({ table: { 'app.t': t('a, b, c') } }, { table: { 'app.t': t('a, c, b') } }, o);
    expect(reordered.map((x) => `${x.severity} ${x.object}`)).toEqual(['warning table app.t']);
    expect(reordered[0].message).toMatch(/INSERT without a column list/);
  });

  it('a text search mapping shows only the tokens mapped differently', () => {
    expect(differingMappings('asciiword:simple, word:english_stem, url:simple', 'asciiword:english_stem, word:english_stem, url:simple'))
      .toEqual(['asciiword:simple', 'asciiword:english_stem']);
    // A token unmapped on one side, and a token with a chain of dictionaries.
    expect(differingMappings('a:x, b:y, b:z', 'a:x, b:y')).toEqual(['b:y z', 'b:y']);
    expect(differingMappings('a:x', 'a:x, c:q')).toEqual(['c:(unmapped)', 'c:q']);
    const f = diffSchema({ 'text search configuration': { 'app.cfg': { parser: 'pg_catalog.default', mapping: 'a:x, b:y' } } },
      { 'text search configuration': { 'app.cfg': { parser: 'pg_catalog.default', mapping: 'a:x, b:q' } } }, o);
    expect(f).toHaveLength(1);
    expect(f[0].severity).toBe('error');
    expect(f[0].message).toMatch(/mapping is b:y on the source, b:q on the target/);
  });

  it('trigger enabled states: ALWAYS only on the target is an error, ALWAYS lost a warning that says when it matters', () => {
    expect(explainChange('trigger', 'app.t.tr', 'enabled', 'O', 'A', o).severity).toBe('error');
    const lost = explainChange('trigger', 'app.t.tr', 'enabled', 'A', 'O', o);
    expect(lost.severity).toBe('warning');
    expect(lost.message).toMatch(/no longer fires for them as the source's ENABLE ALWAYS does/);
    expect(lost.hint).toMatch(/ENABLE ALWAYS TRIGGER tr/);
    expect(explainChange('trigger', 'app.t.tr', 'enabled', 'O', 'D', o).severity).toBe('error');
  });

  it('a column compression names the method', () => {
    const s = explainChange('column', 'app.t.c', 'compression', 'l', null, o);
    expect(s.message).toMatch(/with lz4 on the source, the default \(default_toast_compression\) on the target/);
    expect(s.hint).toMatch(/SET COMPRESSION lz4/);
  });

  it('a recorded collation version the library no longer reports is a warning; unasked (old majors) is silent', () => {
    const snap = (version: string | null, actualAsked: boolean): CollationSnapshot => ({
      database: { name: 'app', provider: 'libc', collate: 'C.UTF-8', ctype: 'C.UTF-8', locale: 'C.UTF-8', descriptor: 'libc:C.UTF-8', version, actualVersion: null },
      columns: {},
      collations: { default: { descriptor: 'libc:C.UTF-8', collname: 'default', version, actualVersion: null, actualAsked } },
    });
    const fp = { corpusSize: 2, hashes: { default: orderHash(['A', 'a']) }, orders: { default: ['A', 'a'] } };
    const f = diffCollation(snap(null, true), fp, snap('2.36', true), fp).filter((x) => x.object === 'collation default on the target');
    expect(f.map((x) => x.severity)).toEqual(['warning']);
    expect(f[0].message).toMatch(/recorded with version 2\.36 but the target's library reports no version for libc:C\.UTF-8/);
    expect(f[0].hint).toMatch(/REFRESH COLLATION VERSION/);
    expect(diffCollation(snap(null, true), fp, snap('2.36', false), fp).filter((x) => x.object === 'collation default on the target')).toEqual([]);
  });
});
