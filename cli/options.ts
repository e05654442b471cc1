/**
 * Option parsing for the commands: one schema per command, each option parsed once and checked
 * before anything runs (no `Number("abc")` reaching a timer, no URL reaching a driver unchecked).
 *
 * A schema is an object of parsers; `parseOptions` runs all of them and reports every bad option
 * at once as one USAGE error (exit 2) with a hint per option.
 */
import { existsSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CutoverError } from '../migration/errors.ts';
import { resolveConnection } from '../migration/pg.ts';
import { objectNames, parseRowFilter, parseTableList, type RowFilter, type TableName } from '../migration/replication.ts';

export type Parser<T> = (raw: unknown, env: NodeJS.ProcessEnv) => T;
export type Schema = Record<string, Parser<unknown>>;
export type Parsed<S extends Schema> = { [K in keyof S]: ReturnType<S[K]> };

/** Thrown by a parser: the message names the option; the hint says how to fix it. */
class OptionError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function parseOptions<S extends Schema>(schema: S, raw: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Parsed<S> {
  const out: Record<string, unknown> = {};
  const errors: OptionError[] = [];
  for (const [key, parse] of Object.entries(schema)) {
    try {
      out[key] = parse(raw[key], env);
    } catch (e) {
      if (e instanceof OptionError) errors.push(e);
      else if (e instanceof CutoverError) errors.push(new OptionError(e.message, e.hint));
      else throw e;
    }
  }
  if (errors.length === 1) throw new CutoverError('USAGE', errors[0].message, { hint: errors[0].hint });
  if (errors.length > 1)
    throw new CutoverError('USAGE', `${errors.length} options are wrong:\n  - ${errors.map((e) => e.message).join('\n  - ')}`, {
      hint: errors.map((e) => e.hint).filter(Boolean).join('; ') || undefined,
    });
  return out as Parsed<S>;
}

// ---------------------------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------------------------

/**
 * A database connection: `--flag`, else the environment variable, as a URL or key=value conninfo
 * (service=…), completed from PGPASSWORD/the password file/PGSERVICE (migration/pg.ts).
 */
export function connection(flag: string, envVar: string, opts: { optional?: boolean; forServer?: boolean } = {}): Parser<string> {
  return (raw, env) => {
    const v = typeof raw === 'string' && raw !== '' ? raw : env[envVar];
    if (v === undefined || v === '') {
      if (opts.optional) return undefined as unknown as string;
      throw new OptionError(`${flag} is required`, `give ${flag} postgres://user@host:5432/db, or set ${envVar} (keeps the password out of ps); the password may come from PGPASSWORD or ~/.pgpass`);
    }
    return resolveConnection(v, typeof raw === 'string' && raw !== '' ? flag : `${envVar}`, env, { forServer: opts.forServer });
  };
}

export function optionalConnection(flag: string, envVar: string, opts: { forServer?: boolean } = {}): Parser<string | undefined> {
  return connection(flag, envVar, { optional: true, ...opts }) as Parser<string | undefined>;
}

export function integer(flag: string, o: { min?: number; max?: number; default?: number; unit?: string } = {}): Parser<number> {
  return (raw) => {
    if (raw === undefined || raw === null || raw === '') {
      if (o.default !== undefined) return o.default;
      throw new OptionError(`${flag} is required`);
    }
    const s = String(raw).trim();
    const range = `${o.min !== undefined ? ` ≥ ${o.min}` : ''}${o.max !== undefined ? ` and ≤ ${o.max}` : ''}`;
    if (!/^[+-]?\d+$/.test(s)) throw new OptionError(`${flag} must be a whole number${o.unit ? ` of ${o.unit}` : ''} (got "${s}")`, `e.g. ${flag} ${o.default ?? o.min ?? 1}`);
    const n = Number(s);
    if (!Number.isSafeInteger(n) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max))
      throw new OptionError(`${flag} must be a whole number${range} (got ${s})`, `e.g. ${flag} ${o.default ?? o.min ?? 1}`);
    return n;
  };
}

/** Seconds (decimals allowed), > 0, bounded so that setTimeout does not overflow (~24.8 days). */
export function seconds(flag: string, o: { default?: number; min?: number; max?: number } = {}): Parser<number> {
  const max = o.max ?? 2_000_000;
  return (raw) => {
    if (raw === undefined || raw === '') {
      if (o.default !== undefined) return o.default;
      throw new OptionError(`${flag} is required`);
    }
    const s = String(raw).trim();
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : NaN;
    if (!Number.isFinite(n) || n <= (o.min ?? 0) || n > max) throw new OptionError(`${flag} must be a number of seconds > ${o.min ?? 0} and ≤ ${max} (got "${s}")`, `e.g. ${flag} 3600`);
    return n;
  };
}

export function flag(): Parser<boolean> {
  return (raw) => raw === true;
}

/** Commander's --no-x: true unless given. */
export function negatable(): Parser<boolean> {
  return (raw) => raw !== false;
}

export function oneOf<T extends string>(flagName: string, values: readonly T[], def?: T): Parser<T> {
  return (raw) => {
    if (raw === undefined || raw === '') {
      if (def !== undefined) return def;
      throw new OptionError(`${flagName} is required`, `one of ${values.join(', ')}`);
    }
    if (!values.includes(raw as T)) throw new OptionError(`${flagName} must be one of ${values.join(', ')} (got "${String(raw)}")`);
    return raw as T;
  };
}

export function text(flagName: string, o: { required?: boolean; default?: string } = {}): Parser<string | undefined> {
  return (raw) => {
    if (raw === undefined || raw === '') {
      if (o.required) throw new OptionError(`${flagName} is required`);
      return o.default;
    }
    return String(raw);
  };
}

export function tables(flagName: string): Parser<TableName[] | undefined> {
  return (raw) => {
    if (raw === undefined) return undefined;
    let list: TableName[];
    try {
      list = parseTableList(String(raw));
    } catch (e) {
      if (e instanceof CutoverError) throw new OptionError(`${flagName}: ${e.message}`, e.hint);
      throw e;
    }
    if (!list.length) throw new OptionError(`${flagName} is empty`, `list tables: ${flagName} orders,public."Order Items"`);
    return list;
  };
}

/** A repeatable `table:where-clause` option (commander collects the values into an array). */
export function rowFilters(flagName: string): Parser<RowFilter[] | undefined> {
  return (raw) => {
    if (raw === undefined) return undefined;
    const list = (Array.isArray(raw) ? raw : [raw]).map((x) => {
      try {
        return parseRowFilter(String(x));
      } catch (e) {
        if (e instanceof CutoverError) throw new OptionError(`${flagName}: ${e.message}`, e.hint);
        throw e;
      }
    });
    const seen = new Set<string>();
    for (const f of list) {
      const k = `${f.schema}\u0000${f.name}`;
      if (seen.has(k)) throw new OptionError(`${flagName}: two filters for ${f.schema}.${f.name}`, 'combine them into one clause with AND / OR');
      seen.add(k);
    }
    return list;
  };
}

export function readableFile(flagName: string): Parser<string | undefined> {
  return (raw) => {
    if (raw === undefined) return undefined;
    const f = String(raw);
    if (!existsSync(f)) throw new OptionError(`${flagName}: no such file ${f}`);
    if (!statSync(f).isFile()) throw new OptionError(`${flagName}: ${f} is not a file`);
    return f;
  };
}

/** Comma-separated list of known words. */
export function wordList<T extends string>(flagName: string, known: readonly T[]): Parser<T[] | undefined> {
  return (raw) => {
    if (raw === undefined) return undefined;
    const items = String(raw).split(',').map((s) => s.trim()).filter(Boolean);
    if (!items.length) throw new OptionError(`${flagName} is empty`, `use e.g. ${flagName} ${known.slice(0, 2).join(',')}`);
    const bad = items.filter((x) => !known.includes(x as T));
    if (bad.length) throw new OptionError(`${flagName}: unknown ${bad.map((b) => `"${b}"`).join(', ')}`, `known: ${known.join(', ')}`);
    return items as T[];
  };
}

/**
 * Why `name` does not map one-to-one onto the object names `cutover_<name>`, or null. Object
 * names are folded to [a-z0-9_] and cut to fit: two different names must never reach the same
 * objects (`replicate stop --name 数据` once dropped the `main` replication).
 */
export function replicationNameProblem(name: string): string | null {
  if (name === '') return 'it is empty';
  const clean = objectNames(name).name;
  if (/[^\x20-\x7e]/.test(name)) return 'it has non-ASCII characters, which object names fold away';
  if (/[A-Z]/.test(name)) return `it has upper-case letters: objects are named in lower case, so it would be the same replication as "${name.toLowerCase()}"`;
  if (!/[a-z0-9]/.test(name)) return 'it has no letter or digit (it would become "main")';
  if (/[^a-z0-9_]/.test(name)) return `it has characters other than a-z, 0-9 and _: it would become "${clean}", the same objects as --name ${clean}`;
  if (/^_|_$/.test(name)) return `leading or trailing _ is dropped: it would be the same replication as "${clean}"`;
  if (`cutover_${name}`.length > 50) return `it is ${name.length} characters; names longer than 42 are cut, so two long names could reach the same objects`;
  return null;
}

export function replicationName(flagName = '--name', def = 'main'): Parser<string> {
  return (raw) => {
    const name = raw === undefined ? def : String(raw);
    const why = replicationNameProblem(name);
    if (why) throw new OptionError(`${flagName} "${name}" cannot be used: ${why}`, 'use lower-case letters, digits and _ (at most 42), e.g. --name orders_2');
    return name;
  };
}

// ---------------------------------------------------------------------------------------------
// Commander glue
// ---------------------------------------------------------------------------------------------

/** --source/--target with their environment fallbacks, shown in --help. */
export function connectionOptions(cmd: Command, what: { source: string; target: string }): Command {
  return cmd
    .addOption(new Option('--source <url>', `${what.source} (postgres:// URL or key=value conninfo; env CUTOVER_SOURCE_URL)`))
    .addOption(new Option('--target <url>', `${what.target} (postgres:// URL or key=value conninfo; env CUTOVER_TARGET_URL)`));
}

export const SOURCE = connection('--source', 'CUTOVER_SOURCE_URL');
export const TARGET = connection('--target', 'CUTOVER_TARGET_URL');
