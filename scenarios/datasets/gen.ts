/**
 * Dataset presets: DDL plus deterministic row generators.
 *
 * Determinism: every value of row i of table t is a pure function of (seed, t, i) — a small
 * counter-based PRNG seeded from those three — plus pools of faker values built once from the seed.
 * So the same seed gives identical rows whatever order or how many connections load them, and a
 * child row can compute which parent it references (FKs stay consistent without lookups).
 *
 * Faker is used to build the pools, not per row: calling faker per value would cap seeding far
 * below what COPY can take.
 */
import { Faker, en } from '@faker-js/faker';
import { CutoverError } from '../../migration/errors.ts';

export type Value = string | number | boolean | null;

export interface DatasetContext {
  seed: number;
  /** Roughly the total number of rows over all tables. */
  scale: number;
  /** Server major of the database being seeded (DDL differs, e.g. generated columns need 12+). */
  major: number;
  /** Server encoding (strings a LATIN1 database cannot hold are left out). */
  encoding: string;
}

export interface TableLoad {
  schema: string;
  name: string;
  /** Columns in COPY order (generated columns are not listed). */
  columns: string[];
  rows: number;
  /** Tables (schema.name) this one references: loaded first when FKs exist during the load. */
  dependsOn: string[];
  /** A foreign key of the table references the table itself. */
  selfReferencing?: boolean;
  /** Values of row i (0-based), in `columns` order; text values in Postgres input syntax. */
  row(i: number): Value[];
}

export interface Dataset {
  name: string;
  /** Schemas, types, tables: applied before loading, in one transaction. */
  preDdl: string;
  /** Keys, FKs, indexes, views and the other shapes that are cheaper to build after the data. */
  postDdl: string;
  tables: TableLoad[];
}

export interface Preset {
  name: string;
  description: string;
  build(ctx: DatasetContext): Dataset;
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/** FNV-1a of a string, for table/column salts. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A pure hash of (seed, salt, i) → uint32. */
export function hash3(seed: number, salt: number, i: number): number {
  return mix(mix(mix(seed ^ 0x9e3779b9) ^ salt) + i * 0x27d4eb2d);
}

/** Small fast PRNG for the values of one row: a counter hashed through a 32-bit finaliser (splitmix-style). */
export class Rng {
  private s: number;
  constructor(seed: number, salt: number, i: number) {
    this.s = hash3(seed, salt, i);
  }
  u32(): number {
    this.s = (this.s + 0x9e3779b9) | 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    return (z ^ (z >>> 15)) >>> 0;
  }
  float(): number {
    return this.u32() / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
  /** Skewed toward small indexes (a few hot parents, a long tail). */
  skewed(n: number): number {
    const f = this.float();
    return Math.min(n - 1, Math.floor(n * f * f));
  }
  uuid(): string {
    const a = this.u32(),
      b = this.u32(),
      c = this.u32(),
      d = this.u32();
    return (
      HEX[a >>> 24] + HEX[(a >>> 16) & 255] + HEX[(a >>> 8) & 255] + HEX[a & 255] + '-' +
      HEX[b >>> 24] + HEX[(b >>> 16) & 255] + '-4' + HEX[(b >>> 8) & 15 | 0].slice(1) + HEX[b & 255] + '-' +
      HEX[((c >>> 24) & 0x3f) | 0x80] + HEX[(c >>> 16) & 255] + '-' +
      HEX[(c >>> 8) & 255] + HEX[c & 255] + HEX[d >>> 24] + HEX[(d >>> 16) & 255] + HEX[(d >>> 8) & 255] + HEX[d & 255]
    );
  }
  hex(bytes: number): string {
    let s = '';
    for (let k = 0; k < bytes; k += 4) {
      const x = this.u32();
      s += HEX[x >>> 24] + HEX[(x >>> 16) & 255] + HEX[(x >>> 8) & 255] + HEX[x & 255];
    }
    return s.slice(0, bytes * 2);
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

const saltCache = new Map<string, number>();

/** Parent row index (0-based) that child row i of `salt` references, stable for a seed. */
export function refIndex(seed: number, salt: string, i: number, parentRows: number, skew = false): number {
  // Called once per child row with the same few salts: hashing the salt each time was a tenth of the generation time.
  let h = saltCache.get(salt);
  if (h === undefined) saltCache.set(salt, (h = hashString(salt)));
  const r = new Rng(seed, h, i);
  return skew ? r.skewed(parentRows) : r.int(parentRows);
}

/** An instant as ISO text (Postgres reads it as timestamptz regardless of the session TimeZone). */
export function isoAt(ms: number): string {
  // Date#toISOString is the hottest call when seeding; days are cached, the time of day is assembled.
  if (!(ms >= 0 && ms < 253402300800000)) return new Date(ms).toISOString();
  const day = Math.floor(ms / 86_400_000);
  let d = dayCache.get(day);
  if (d === undefined) {
    d = new Date(day * 86_400_000).toISOString().slice(0, 10) + 'T';
    dayCache.set(day, d);
  }
  let t = ms - day * 86_400_000;
  const milli = t % 1000;
  t = (t - milli) / 1000;
  const sec = t % 60;
  t = (t - sec) / 60;
  const min = t % 60;
  const hour = (t - min) / 60;
  return d + P2[hour] + ':' + P2[min] + ':' + P2[sec] + '.' + P3[milli] + 'Z';
}
const dayCache = new Map<number, string>();
const P2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const P3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

export const EPOCH_2024 = Date.UTC(2024, 0, 1);
export const DAY_MS = 86_400_000;

const CENTS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));

export function money(cents: number): string {
  const a = cents < 0 ? -cents : cents;
  const whole = Math.floor(a / 100);
  return (cents < 0 ? '-' : '') + whole + '.' + CENTS[a - whole * 100];
}

/** Array literal with every element quoted (COPY escaping is applied on top by the seeder). */
export function arrayLiteral(items: readonly (string | number | null)[]): string {
  return '{' + items.map((x) => (x === null ? 'NULL' : typeof x === 'number' ? String(x) : '"' + x.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"')).join(',') + '}';
}

/** Rows of a table given its share of the scale (never below `min`). */
export function share(scale: number, weight: number, min = 1): number {
  return Math.max(min, Math.round(scale * weight));
}

// ---------------------------------------------------------------------------------------------
// Faker pools (built once per seed)

export interface Pools {
  firstNames: string[];
  lastNames: string[];
  companies: string[];
  words: string[];
  sentences: string[];
  cities: string[];
  domains: string[];
  /** Build a pool of any faker method ("faker.internet.email") for column overrides. */
  of(spec: string, size?: number): Value[];
}

const poolCache = new Map<number, Pools>();

export function fakerFor(seed: number): Faker {
  const f = new Faker({ locale: [en] });
  f.seed(seed);
  return f;
}

export function pools(seed: number): Pools {
  const hit = poolCache.get(seed);
  if (hit) return hit;
  const f = fakerFor(seed);
  const n = 512;
  const many = <T>(fn: () => T, size = n) => Array.from({ length: size }, fn);
  const custom = new Map<string, Value[]>();
  const p: Pools = {
    firstNames: many(() => f.person.firstName()),
    lastNames: many(() => f.person.lastName()),
    companies: many(() => f.company.name(), 256),
    words: many(() => f.lorem.word(), 1024),
    sentences: many(() => f.lorem.sentence(), 256),
    cities: many(() => f.location.city(), 128),
    domains: many(() => f.internet.domainName(), 64),
    of(spec: string, size = 1024): Value[] {
      const key = `${spec}#${size}`;
      const cached = custom.get(key);
      if (cached) return cached;
      if (spec === 'null') return [null];
      const m = /^faker\.([A-Za-z]+)\.([A-Za-z]+)$/.exec(spec);
      const fn = m && (f as any)[m[1]]?.[m[2]];
      if (typeof fn !== 'function') throw new CutoverError('CONFIG', `generator "${spec}" is not a faker method`, { hint: 'use faker.<module>.<method>, e.g. faker.internet.email', exitCode: 2 });
      // A faker per spec seeded from the spec: adding an override does not shift the other pools.
      const ff = fakerFor(hash3(seed, hashString(spec), 0));
      const mod = (ff as any)[m![1]];
      const values = Array.from({ length: size }, () => toValue(mod[m![2]]()));
      custom.set(key, values);
      return values;
    },
  };
  poolCache.set(seed, p);
  return p;
}

function toValue(v: unknown): Value {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v);
}

