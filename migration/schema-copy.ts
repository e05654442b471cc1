/**
 * Schema copy: the source schema taken with pg_dump and applied to the target in two halves.
 * Pre-data (types, tables, sequences, functions, views) goes before the initial copy, together with
 * the *replication keys*: primary keys, the unique indexes used as REPLICA IDENTITY and the
 * REPLICA IDENTITY settings themselves. The rest of post-data (other indexes, foreign keys,
 * triggers) comes after the copy, so the bulk of the load still writes into lightly indexed heaps.
 *
 * Why keys first: an UPDATE or DELETE that reaches a table while it is still being copied (any
 * live database takes them) is applied by finding the row on the target through its primary key
 * or replica-identity index. Without one the apply worker stops with "logical replication target
 * relation … has neither REPLICA IDENTITY index nor PRIMARY KEY" — the subscription is disabled
 * (15+) or retries forever (before 15). The keys cost the copy some index maintenance (bench:
 * bench/replicate.ts, notes/replication.md); a sync that cannot finish costs the night.
 *
 * Applying is idempotent: each statement runs on its own, and a statement that fails only because
 * its object already exists (duplicate_table, duplicate_object, …) is skipped and reported. A
 * re-run after a crash therefore finishes the job instead of failing on the first CREATE.
 */
import { lexSql } from './sql-lexer.ts';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, delimiter } from 'node:path';
import { promisify } from 'node:util';
import { CutoverError, redactSecrets } from './errors.ts';
import { connect, describeTarget, quoteIdent, serverMajor, sqlError, withClient, type Client, quoteIdentIfNeeded } from './pg.ts';
import { Progress, defaultProgressMode } from './progress.ts';
import { describePrivilegeCopy, isPrivilegeStatement, rolesNamed, type PrivilegeCopy } from './privileges.ts';

const execFileP = promisify(execFile);

export type Section = 'pre-data' | 'post-data';

export interface DumpTool {
  path: string;
  /** e.g. "15.20" */
  version: string;
  major: number;
  /** pg_dump reads any server up to its own major. */
  maxSourceMajor: number;
  /** Where it was found: env CUTOVER_PG_DUMP, env CUTOVER_PG_CLIENT_DIRS, PATH, /usr/lib/postgresql/<n>/bin. */
  origin: string;
  /** Every pg_dump found, newest first. */
  candidates: Array<{ path: string; major: number; version: string; origin: string }>;
}

function parseDumpVersion(out: string): { version: string; major: number } | undefined {
  const m = /pg_dump \(PostgreSQL\) (\d+)(?:\.(\d+))?/.exec(out);
  if (!m) return undefined;
  return { version: m[2] !== undefined ? `${m[1]}.${m[2]}` : m[1], major: Number(m[1]) };
}

function candidatePaths(env: NodeJS.ProcessEnv): Array<{ path: string; origin: string }> {
  const out: Array<{ path: string; origin: string }> = [];
  if (env.CUTOVER_PG_DUMP) out.push({ path: env.CUTOVER_PG_DUMP, origin: 'env CUTOVER_PG_DUMP' });
  // Client installs offered by the caller (the lab sets this to its cached PostgreSQL client);
  // they compete on version with PATH and the distro folders, CUTOVER_PG_DUMP still wins.
  for (const dir of (env.CUTOVER_PG_CLIENT_DIRS ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, 'pg_dump');
    if (existsSync(p)) out.push({ path: p, origin: 'env CUTOVER_PG_CLIENT_DIRS' });
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, 'pg_dump');
    if (existsSync(p)) out.push({ path: p, origin: 'PATH' });
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const v of readdirSync(root)) {
      const p = join(root, v, 'bin', 'pg_dump');
      if (existsSync(p)) out.push({ path: p, origin: root });
    }
  }
  return out;
}

/** Does this URL insist on an encrypted connection (sslmode require / verify-ca / verify-full)? */
export function urlRequiresSsl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    return /^(require|verify-ca|verify-full)$/.test(new URL(url).searchParams.get('sslmode') ?? '');
  } catch {
    return false;
  }
}

/**
 * Was this client's libpq built with SSL? Asked without a server: an sslmode it cannot honour
 * fails while the options are parsed, before any connection (a unix socket path that does not
 * exist makes the other case fail at once too). Some clients are built without it.
 */
async function hasSsl(path: string): Promise<boolean> {
  try {
    await execFileP(path, ['--schema-only', '--no-password', '--dbname=host=/nonexistent-cutover-ssl-probe sslmode=require'], { timeout: 10_000 });
    return true;
  } catch (e: any) {
    return !/SSL support is not compiled in/i.test(String(e?.stderr ?? ''));
  }
}

/**
 * Find the pg_dump to use. With `sourceMajor`, the newest client is checked against it and a
 * TOOL_MISSING error says which client to install. CUTOVER_PG_DUMP wins when it is new enough.
 * With `sslRequired` (the source URL says sslmode=require or stricter), clients built without
 * SSL are passed over.
 */
export async function dumpTool(sourceMajor?: number, env: NodeJS.ProcessEnv = process.env, opts: { sslRequired?: boolean } = {}): Promise<DumpTool> {
  const seen = new Set<string>();
  const found: DumpTool['candidates'] = [];
  const noSsl: string[] = [];
  for (const c of candidatePaths(env)) {
    if (seen.has(c.path)) continue;
    seen.add(c.path);
    try {
      const { stdout } = await execFileP(c.path, ['--version'], { timeout: 10_000 });
      const v = parseDumpVersion(stdout);
      if (v && opts.sslRequired && !(await hasSsl(c.path))) noSsl.push(`${v.version} ${c.path}`);
      else if (v) found.push({ path: c.path, ...v, origin: c.origin });
    } catch {
      /* not runnable: ignore */
    }
  }
  if (found.length === 0 && noSsl.length) {
    throw new CutoverError('TOOL_MISSING', `the source URL requires SSL (sslmode) but no pg_dump found was built with SSL support (${noSsl.join(', ')})`, {
      hint: `install a PostgreSQL client${sourceMajor ? ` ${sourceMajor} or newer` : ''} with SSL and set CUTOVER_PG_DUMP to its pg_dump`,
    });
  }
  if (found.length === 0) {
    throw new CutoverError('TOOL_MISSING', 'no pg_dump found (looked at $CUTOVER_PG_DUMP, $CUTOVER_PG_CLIENT_DIRS, PATH and /usr/lib/postgresql/*/bin)', {
      hint: `install the PostgreSQL client${sourceMajor ? ` ${sourceMajor} or newer` : ''} (Debian/Ubuntu: apt-get install postgresql-client-${sourceMajor ?? 'NN'} from apt.postgresql.org) or set CUTOVER_PG_DUMP=/path/to/pg_dump; \`npx cutover doctor --fetch client\` caches the lab's pg_dump 18`,
    });
  }
  // The env override is honoured first when it is new enough; otherwise the newest client.
  const byNewest = [...found].sort((a, b) => b.major - a.major);
  const override = found.find((f) => f.origin === 'env CUTOVER_PG_DUMP' && (sourceMajor === undefined || f.major >= sourceMajor));
  const best = override ?? byNewest[0];
  if (sourceMajor !== undefined && best.major < sourceMajor) {
    throw new CutoverError(
      'TOOL_MISSING',
      `the source runs PostgreSQL ${sourceMajor} but the newest pg_dump found is ${best.version} (${best.path}); pg_dump must be at least as new as the server it dumps${noSsl.length ? ` (passed over because the source URL requires SSL and they were built without it: ${noSsl.join(', ')})` : ''}`,
      {
        hint: `install postgresql-client-${sourceMajor} or newer (Debian/Ubuntu: from apt.postgresql.org) or set CUTOVER_PG_DUMP to a pg_dump ≥ ${sourceMajor}; \`npx cutover doctor --fetch client\` caches the lab's pg_dump 18`,
      },
    );
  }
  return { path: best.path, version: best.version, major: best.major, maxSourceMajor: best.major, origin: best.origin, candidates: byNewest };
}

/** libpq environment for a URL, so the password never appears on a command line (ps shows argv). */
export function libpqEnv(url: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const u = new URL(url);
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
  env.PGHOST = u.hostname.replace(/^\[|\]$/g, '');
  env.PGPORT = u.port || '5432';
  env.PGDATABASE = decodeURIComponent(u.pathname.slice(1)) || 'postgres';
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const map: Record<string, string> = { sslmode: 'PGSSLMODE', sslrootcert: 'PGSSLROOTCERT', sslcert: 'PGSSLCERT', sslkey: 'PGSSLKEY', connect_timeout: 'PGCONNECT_TIMEOUT', application_name: 'PGAPPNAME' };
  for (const [k, v] of u.searchParams) if (map[k]) env[map[k]] = v;
  env.PGCONNECT_TIMEOUT ??= '10';
  return env;
}

async function runTool(path: string, args: string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const child = spawn(path, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => reject(new CutoverError('TOOL_MISSING', `cannot run ${path}: ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const stderr = redactSecrets(Buffer.concat(err).toString('utf8').trim());
      reject(
        new CutoverError(/password authentication failed/i.test(stderr) ? 'AUTH' : /could not connect|connection to server/i.test(stderr) ? 'CONNECT' : 'SQL', `${what} failed (exit ${code}): ${stderr.split('\n').slice(-3).join(' ')}`, {
          hint: 'check that the source URL works with psql and that the role may read the whole schema',
        }),
      );
    });
  });
}

/** The schema section as SQL text (pg_dump --schema-only --section=…). */
export async function dumpSchema(sourceUrl: string, section: Section, opts: { owners?: boolean; tool?: DumpTool; schemas?: string[]; tables?: Array<{ schema: string; name: string }> } = {}): Promise<string> {
  const major = await withClient(sourceUrl, serverMajor, { role: 'source' });
  const tool = opts.tool ?? (await dumpTool(major, process.env, { sslRequired: urlRequiresSsl(sourceUrl) }));
  // Publications and subscriptions are replication plumbing (ours included), never schema to copy.
  const args = ['--schema-only', `--section=${section}`, '--no-password', '--no-publications', '--no-subscriptions'];
  if (!opts.owners) args.push('--no-owner', '--no-privileges');
  for (const s of opts.schemas ?? []) args.push('--schema', s);
  // Exact names: inside double quotes pg_dump's pattern characters (* ? .) are literal.
  for (const t of opts.tables ?? []) args.push('--table', dumpPattern(t));
  if (opts.tables?.length) args.push('--strict-names');
  const sql = await runTool(tool.path, args, libpqEnv(sourceUrl), `pg_dump ${section} of the source at ${describeTarget(sourceUrl)}`);
  return tool.major > major ? await dropSettingsUnknownTo(sourceUrl, sql) : sql;
}

const SESSION_SET = /^SET ([a-z_]+) = [^\n]*;$\n?/gm;

/**
 * A pg_dump newer than the source opens its output with the session settings of its own major
 * (pg_dump 17+: `SET transaction_timeout = 0;`), which a target older than the client rejects
 * ("unrecognized configuration parameter"): a 13 source dumped by pg_dump 18 onto a 16 target.
 * A setting the source server does not have cannot matter for reproducing its schema, so those
 * lines are dropped; every setting the source knows stays.
 */
export async function dropSettingsUnknownTo(sourceUrl: string, sql: string): Promise<string> {
  const names = [...new Set([...sql.matchAll(SESSION_SET)].map((m) => m[1]))];
  if (!names.length) return sql;
  const known = await withClient(sourceUrl, async (c) => new Set((await c.query<{ name: string }>('select name from pg_settings where name = any($1)', [names])).rows.map((r) => r.name)), { role: 'source' });
  return sql.replace(SESSION_SET, (line, name: string) => (known.has(name) ? line : ''));
}

/** pg_dump -t pattern matching exactly this table (or sequence). */
export function dumpPattern(t: { schema: string; name: string }): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** A dump split into statements, each tagged with the object it belongs to (from pg_dump's "-- Name:" headers). */
export interface DumpStatement {
  sql: string;
  /** e.g. "TABLE public.Order Items" (from the header comment; "" when none) */
  object: string;
  /** The header's parts, unquoted: type "CONSTRAINT", schema "public", name "accounts accounts_pkey". */
  entry?: { type: string; schema: string; name: string };
}

/**
 * Split SQL text into statements, honouring quotes, dollar quotes and comments, dropping psql
 * meta-commands (\connect, \restrict …). Pure, so it is unit-tested.
 */
export function splitSql(text: string): DumpStatement[] {
  const out: DumpStatement[] = [];
  let object = '';
  let entry: DumpStatement['entry'];
  let buf = '';
  let atLineStart = true;
  let metaCommand = false;
  // A SQL-standard body (CREATE FUNCTION/PROCEDURE … BEGIN ATOMIC stmt; stmt; END) holds semicolons:
  // like psql, count BEGIN ATOMIC / CASE … END and split only outside them.
  let atomic = 0;
  let word = '';
  let prevWord = '';
  const endWord = () => {
    if (!word) return;
    const w = word.toUpperCase();
    word = '';
    if (atomic === 0) {
      if (w === 'ATOMIC' && prevWord === 'BEGIN' && /^\s*CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE)\b/i.test(buf)) atomic = 1;
    } else if (w === 'CASE') atomic++;
    else if (w === 'END') atomic--;
    prevWord = w;
  };
  const flush = () => {
    const sql = buf.trim();
    if (sql && sql !== ';') out.push(entry ? { sql, object, entry } : { sql, object });
    buf = '';
    atomic = 0;
    word = prevWord = '';
  };
  for (const seg of lexSql(text)) {
    if (metaCommand && seg.kind !== 'code') continue;
    if (seg.kind === 'line-comment') {
      // pg_dump's "-- Name: …; Type: …; Schema: …;" header names the object of the next statement
      const m = /^-- Name: (.*?); Type: (.*?); Schema: (.*?);/.exec(seg.text);
      if (m && buf.trim() === '') {
        object = `${m[2]} ${m[3] === '-' ? '' : m[3] + '.'}${m[1]}`;
        entry = { type: m[2], schema: m[3], name: m[1] };
      }
      continue;
    }
    if (seg.kind !== 'code') {
      endWord();
      buf += seg.text;
      atLineStart = false;
      continue;
    }
    for (const ch of seg.text) {
      if (metaCommand) {
        if (ch === '\n') (metaCommand = false), (atLineStart = true);
        continue;
      }
      // psql meta-command (\connect, \restrict …): a line starting with a backslash, outside any statement
      if (atLineStart && ch === '\\' && buf.trim() === '') {
        metaCommand = true;
        continue;
      }
      atLineStart = ch === '\n';
      if (/[A-Za-z0-9_$]/.test(ch)) word += ch;
      else endWord();
      buf += ch;
      if (ch === ';' && atomic <= 0) flush();
    }
  }
  endWord();
  flush();
  return out;
}

/** SQLSTATEs that mean "this object is already there" — the statement is skipped on a re-run. */
const EXISTS_CODES = new Set(['42P07', '42710', '42P06', '42723', '42P04', '42P16']);

export function isAlreadyExists(e: { code?: string; message?: string }): boolean {
  if (e.code && EXISTS_CODES.has(e.code)) return true;
  return /already exists|is already an identity column|is already a partition|multiple primary keys/i.test(e.message ?? '');
}

export interface ApplyResult {
  section: Section | 'keys' | 'roles' | 'settings';
  statements: number;
  applied: number;
  /** Objects skipped because they already existed on the target. */
  skipped: Array<{ object: string; reason: string }>;
  elapsedMs: number;
}

/** Apply statements one by one on the target, skipping those whose object already exists. */
export async function applyStatements(c: Client, statements: DumpStatement[], section: ApplyResult['section'], opts: { progress?: boolean } = {}): Promise<ApplyResult> {
  const t0 = Date.now();
  const res: ApplyResult = { section, statements: statements.length, applied: 0, skipped: [], elapsedMs: 0 };
  const p = opts.progress ? new Progress(`schema ${section}`, statements.length, { unit: 'statements', mode: defaultProgressMode() }) : undefined;
  for (const st of statements) {
    try {
      await c.query(st.sql);
      res.applied++;
    } catch (e: any) {
      // A grant or owner the connecting role may not set (a managed service's non-superuser
      // target) is left out and listed, like an object that exists: drift then shows what is missing.
      if (isAlreadyExists(e) || (e.code === '42501' && isPrivilegeStatement(st.sql))) {
        res.skipped.push({ object: st.object || st.sql.split('\n')[0].slice(0, 120), reason: redactSecrets(e.message) });
      } else {
        throw sqlError(e, `applying ${section} schema to the target (${st.object || st.sql.split('\n')[0].slice(0, 120)})`);
      }
    }
    p?.tick(1, st.object);
  }
  p?.finish();
  res.elapsedMs = Date.now() - t0;
  return res;
}

export interface SchemaCopyOptions {
  source: string;
  target: string;
  section: Section;
  /**
   * pre-data: also create the replication keys (primary keys, replica-identity indexes and their
   * REPLICA IDENTITY settings) right after it, before any row is copied. Default true; false gives
   * the old order (every key after the copy) and exists for the bench and for tables without
   * UPDATE/DELETE during the sync.
   */
  keys?: boolean;
  /**
   * Owners and grants (ALTER … OWNER TO, GRANT/REVOKE, default privileges): 'auto' (the default)
   * keeps them when every role they name exists on the target and otherwise leaves them out and
   * says which roles are missing (see copyRoles and migration/privileges.ts); true always keeps,
   * false always drops them.
   */
  owners?: boolean | 'auto';
  progress?: boolean;
  /** Only these schemas (pg_dump --schema). */
  schemas?: string[];
  /** Only these tables/sequences (pg_dump --table, exact names); partitions are not implied. */
  tables?: Array<{ schema: string; name: string }>;
}

export type SchemaCopyResult = ApplyResult & { tool: { path: string; version: string }; keys?: ApplyResult; privileges: PrivilegeCopy };

/** One pg_dump TOC entry, as its header names it: "<type>\0<schema>\0<name>". */
function entryKey(type: string, schema: string, name: string): string {
  return `${type}\u0000${schema}\u0000${name}`;
}

/**
 * The pg_dump post-data entries that carry a replication key, read from a server's catalog:
 * PRIMARY KEY constraints, unique constraints or unique indexes marked as replica identity (their
 * entry also holds the `ALTER TABLE … REPLICA IDENTITY USING INDEX`), and the INDEX ATTACH entries
 * that hook a partition's key index to its partitioned parent's (the parent's key only becomes
 * valid once every partition's is attached, which is how keys on a partitioned table cascade).
 */
export async function replicationKeyEntries(c: Client): Promise<Set<string>> {
  const r = await c.query<{ type: string; schema: string; name: string }>(
    `with k as (
       select i.indexrelid as idx from pg_index i
        where i.indisreplident or exists (select 1 from pg_constraint con where con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype = 'p'))
     select 'CONSTRAINT' as type, n.nspname as schema, t.relname || ' ' || con.conname as name
       from pg_constraint con join k on k.idx = con.conindid join pg_class t on t.oid = con.conrelid join pg_namespace n on n.oid = t.relnamespace
      where con.contype in ('p', 'u') and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
     union all
     select 'INDEX', n.nspname, ic.relname from k join pg_class ic on ic.oid = k.idx join pg_namespace n on n.oid = ic.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')
        and not exists (select 1 from pg_constraint con where con.conindid = k.idx and con.contype in ('p', 'u', 'x'))
     union all
     select 'INDEX ATTACH', n.nspname, ic.relname from k join pg_inherits h on h.inhrelid = k.idx join pg_class ic on ic.oid = k.idx join pg_namespace n on n.oid = ic.relnamespace
      where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')`,
  );
  return new Set(r.rows.map((x) => entryKey(x.type, x.schema, x.name)));
}

/** Split post-data statements into the replication keys (by their TOC entry) and the rest, order kept. Pure. */
export function splitKeys(statements: DumpStatement[], keyEntries: Set<string>): { keys: DumpStatement[]; rest: DumpStatement[] } {
  const keys: DumpStatement[] = [];
  const rest: DumpStatement[] = [];
  for (const st of statements) (st.entry && keyEntries.has(entryKey(st.entry.type, st.entry.schema, st.entry.name)) ? keys : rest).push(st);
  return { keys, rest };
}

/**
 * Dump one section of the source schema and apply it to the target. Safe to re-run.
 * pre-data is followed by the replication keys (unless keys: false); post-data leaves out the keys
 * the target already has, so a key built before the copy is neither rebuilt nor reported as skipped.
 */
export async function copySchema(opts: SchemaCopyOptions): Promise<SchemaCopyResult> {
  const major = await withClient(opts.source, serverMajor, { role: 'source' });
  const tool = await dumpTool(major, process.env, { sslRequired: urlRequiresSsl(opts.source) });
  const owners = opts.owners ?? 'auto';
  const dumpOpts = { owners: owners !== false, tool, schemas: opts.schemas, tables: opts.tables };
  const sql = await dumpSchema(opts.source, opts.section, dumpOpts);
  const c = await connect(opts.target, { role: 'target' });
  try {
    const { statements, privileges } = await withPrivilegesIfRolesExist(c, splitSql(sql), owners);
    const done = { tool: { path: tool.path, version: tool.version }, privileges };
    if (opts.section === 'pre-data') {
      const r = await applyStatements(c, statements, 'pre-data', { progress: opts.progress });
      if (opts.keys === false) return { ...r, ...done };
      const keys = await copyKeys(opts.source, c, { ...dumpOpts, progress: opts.progress });
      return { ...r, keys, ...done };
    }
    const sourceKeys = await withClient(opts.source, replicationKeyEntries, { role: 'source' });
    const targetKeys = await replicationKeyEntries(c);
    const present = new Set([...sourceKeys].filter((k) => targetKeys.has(k)));
    const { rest } = splitKeys(statements, present);
    const r = await applyStatements(c, rest, 'post-data', { progress: opts.progress });
    if (!opts.tables) await refreshMaterializedViews(opts.source, c, r, opts.schemas);
    return { ...r, ...done };
  } finally {
    await c.end().catch(() => {});
  }
}

const MATVIEWS = (populated: boolean) => `select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind = 'm' and ${populated ? '' : 'not '}c.relispopulated and n.nspname not in ('pg_catalog', 'information_schema') and ($1::text[] is null or n.nspname = any($1))`;

/**
 * pg_dump --schema-only creates materialized views WITH NO DATA (their REFRESH belongs to the data
 * section), so every SELECT on one fails on the target until it is refreshed. After post-data the
 * target's tables hold the copied rows: populate the materialized views the source has populated,
 * as pg_restore of a whole dump does (a view over another view waits for it: passes until no
 * progress). One that cannot be refreshed is listed as skipped, with the reason; drift then
 * reports it unpopulated.
 */
async function refreshMaterializedViews(source: string, c: Client, res: ApplyResult, schemas?: string[]): Promise<void> {
  const wanted = await withClient(source, async (s) => (await s.query<{ name: string }>(MATVIEWS(true), [schemas ?? null])).rows.map((r) => r.name), { role: 'source' });
  if (!wanted.length) return;
  const have = new Set((await c.query<{ name: string }>(MATVIEWS(false), [schemas ?? null])).rows.map((r) => r.name));
  let pending = wanted.filter((n) => have.has(n));
  const failed = new Map<string, string>();
  while (pending.length) {
    const next: string[] = [];
    for (const name of pending) {
      try {
        // name is format('%I.%I'), already quoted.
        await c.query(`refresh materialized view ${name}`);
      } catch (e: any) {
        failed.set(name, redactSecrets(e?.message ?? String(e)));
        next.push(name);
      }
    }
    if (next.length === pending.length) break;
    pending = next;
  }
  for (const name of pending) res.skipped.push({ object: `MATERIALIZED VIEW DATA ${name}`, reason: `not refreshed: ${failed.get(name)}` });
}

/** Owners and grants stay when every role they name exists on the target ('auto'); otherwise they all go, and the missing roles are named. */
async function withPrivilegesIfRolesExist(target: Client, statements: DumpStatement[], owners: boolean | 'auto'): Promise<{ statements: DumpStatement[]; privileges: PrivilegeCopy }> {
  if (owners !== 'auto') return { statements, privileges: { kept: owners, missingRoles: [] } };
  const named = [...new Set(statements.filter((s) => isPrivilegeStatement(s.sql)).flatMap((s) => rolesNamed(s.sql)))];
  if (!named.length) return { statements, privileges: { kept: true, missingRoles: [] } };
  const have = new Set((await target.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1)', [named])).rows.map((r) => r.rolname));
  const missingRoles = named.filter((n) => !have.has(n)).sort();
  if (!missingRoles.length) return { statements, privileges: { kept: true, missingRoles } };
  return { statements: statements.filter((s) => !isPrivilegeStatement(s.sql)), privileges: { kept: false, missingRoles } };
}

/** The replication keys alone (taken from post-data), applied to the target. Safe to re-run. */
export async function copyKeys(source: string, target: Client, opts: { owners?: boolean; tool?: DumpTool; schemas?: string[]; tables?: Array<{ schema: string; name: string }>; progress?: boolean } = {}): Promise<ApplyResult> {
  const post = splitSql(await dumpSchema(source, 'post-data', opts));
  const entries = await withClient(source, replicationKeyEntries, { role: 'source' });
  const { keys } = splitKeys(post, entries);
  return await applyStatements(target, keys, 'keys', { progress: opts.progress });
}

/** Roles without passwords (pg_dumpall --roles-only --no-role-passwords), applied to the target. */
export async function copyRoles(opts: { source: string; target: string }): Promise<ApplyResult> {
  const major = await withClient(opts.source, serverMajor, { role: 'source' });
  const tool = await dumpTool(major, process.env, { sslRequired: urlRequiresSsl(opts.source) });
  const dumpall = join(tool.path, '..', 'pg_dumpall');
  const raw = await runTool(dumpall, ['--roles-only', '--no-role-passwords', '--no-password'], libpqEnv(opts.source), 'pg_dumpall --roles-only');
  const sql = tool.major > major ? await dropSettingsUnknownTo(opts.source, raw) : raw;
  const targetUser = await withClient(opts.target, async (c) => (await c.query<{ u: string }>('select current_user as u')).rows[0].u, { role: 'target' });
  // Never touch the role we are connected as on the target (it may be the managed superuser).
  const statements = splitSql(sql).filter((s) => !new RegExp(`^(CREATE|ALTER) ROLE ${escapeRe(quoteIdentIfNeeded(targetUser))}[ ;]`, 'i').test(s.sql));
  return await withClient(opts.target, (c) => applyStatements(c, statements, 'roles'), { role: 'target' });
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function describeApply(r: ApplyResult & { keys?: ApplyResult; privileges?: PrivilegeCopy }): string {
  const skipped = r.skipped.length ? `; skipped ${r.skipped.length} already present or not permitted (${r.skipped.slice(0, 5).map((s) => s.object).join(', ')}${r.skipped.length > 5 ? ', …' : ''})` : '';
  const priv = r.privileges ? describePrivilegeCopy(r.privileges) : undefined;
  const line = `schema ${r.section}: ${r.applied}/${r.statements} statements applied in ${r.elapsedMs} ms${skipped}${priv ? `\n${priv}` : ''}`;
  return r.keys ? `${line}\n${describeApply(r.keys)} (primary keys and replica identities, before the copy)` : line;
}
