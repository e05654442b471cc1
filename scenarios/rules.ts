/**
 * Rules that involve more than one field of a scenario. Each section is parsed on its own first, so
 * a rule still runs when an unrelated part of the file is broken — the user gets every problem in
 * one pass instead of fixing them one at a time.
 */
import { faker } from '@faker-js/faker';
import { clusterSchema, conflictModes, datasetSchema, dbFaultKinds, faultAttributes, lockModeOf, lockModes, nightFaultKinds, pauseTargets, faultSchema, loadSchema, migrationSchema, providerKinds, type ClusterSettings } from './schema.ts';

export interface Problem {
  /** Dotted path into the file, e.g. `clusters.new.major` or `faults.0.hop`. */
  path: string;
  message: string;
  hint?: string;
  line?: number;
  col?: number;
}

function section<T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }, value: unknown): T | undefined {
  if (value === undefined) value = {};
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}

function get(raw: unknown, ...keys: (string | number)[]): unknown {
  let v: any = raw;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k];
  }
  return v;
}

const UTF8_LOCALE = /\.(utf-?8)$/i;
const SINGLE_BYTE_LOCALE = /\.(iso-?8859-?\d+|latin\d|cp125\d)$/i;

/** Does `faker.<module>.<method>` name a function? */
export function fakerMethodExists(spec: string): boolean {
  const m = /^faker\.([A-Za-z]+)\.([A-Za-z]+)$/.exec(spec);
  if (!m) return false;
  const mod = (faker as any)[m[1]];
  return !!mod && typeof mod[m[2]] === 'function';
}

function clusterRules(p: Problem[], role: 'old' | 'new', c: ClusterSettings, provider: string | undefined): void {
  const at = (k: string) => `clusters.${role}.${k}`;
  if (c.localeProvider === 'icu' && c.major < 15)
    p.push({ path: at('localeProvider'), message: `icu as the default locale provider needs PostgreSQL 15 or newer (major is ${c.major})`, hint: 'use localeProvider: libc on this major, or raise major to 15+' });
  if (c.localeProvider === 'builtin' && c.major < 17)
    p.push({ path: at('localeProvider'), message: `the builtin locale provider needs PostgreSQL 17 or newer (major is ${c.major})`, hint: 'use libc or icu on this major, or raise major to 17+' });
  if (c.localeProvider === 'libc' && c.icuLocale !== null)
    p.push({ path: at('icuLocale'), message: 'icuLocale is only used with localeProvider icu or builtin', hint: 'set localeProvider: icu (or builtin), or remove icuLocale' });
  if (c.localeProvider === 'builtin' && c.icuLocale !== null && !['C', 'C.UTF-8', 'PG_C_UTF8', 'PG_UNICODE_FAST'].includes(c.icuLocale))
    p.push({ path: at('icuLocale'), message: `"${c.icuLocale}" is not a builtin locale`, hint: 'the builtin provider knows C and C.UTF-8 (PG_UNICODE_FAST on 18)' });
  if (c.localeProvider === 'icu' && c.encoding === 'SQL_ASCII')
    p.push({ path: at('encoding'), message: 'ICU collations cannot be used with encoding SQL_ASCII', hint: 'use encoding UTF8 with localeProvider icu' });
  if (c.encoding !== 'UTF8' && c.encoding !== 'SQL_ASCII' && UTF8_LOCALE.test(c.locale))
    p.push({ path: at('encoding'), message: `encoding ${c.encoding} does not match locale ${c.locale} (a UTF-8 locale)`, hint: `use locale C (or a ${c.encoding} locale such as en_US.ISO-8859-1 for LATIN1), or encoding UTF8` });
  if (c.encoding === 'UTF8' && SINGLE_BYTE_LOCALE.test(c.locale))
    p.push({ path: at('encoding'), message: `encoding UTF8 does not match locale ${c.locale} (a single-byte locale)`, hint: 'use a .UTF-8 locale with UTF8, or the encoding of that locale (e.g. LATIN1)' });
  if (c.image !== null && provider !== 'docker')
    p.push({ path: at('image'), message: `image is only used with provider docker (provider is ${provider ?? 'embedded'})`, hint: 'set clusters.provider: docker, or remove image' });
  if (provider === 'external') {
    if (c.url === null) p.push({ path: at('url'), message: 'provider external needs the URL of each cluster', hint: `add url: postgres://user:password@host:5432/db under clusters.${role}, or url: \${STAGING_${role.toUpperCase()}_URL} to take it from the environment` });
    else {
      const env = ENV_URL.exec(c.url);
      if (env && !process.env[env[1]]) p.push({ path: at('url'), message: `names the environment variable ${env[1]}, which is not set`, hint: `export ${env[1]}=<the server's postgres:// URL> before running cutover` });
      else if (!env && !/^postgres(ql)?:\/\//.test(c.url)) p.push({ path: at('url'), message: 'must be a postgres:// connection URL', hint: 'use the form postgres://user:password@host:5432/dbname, or ${NAME} for an environment variable' });
    }
  } else if (provider !== undefined && c.url !== null) {
    p.push({ path: at('url'), message: `url is only used with provider external (provider is ${provider})`, hint: 'remove url, or set clusters.provider: external' });
  }
}

/** `${NAME}`: a cluster URL taken from the environment variable NAME. */
export const ENV_URL = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** A cluster URL as the rehearsal uses it: `${NAME}` read from the environment. */
export function resolveClusterUrl(url: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = ENV_URL.exec(url);
  if (!m) return url;
  const v = env[m[1]];
  if (!v) throw new Error(`the environment variable ${m[1]} (a cluster URL) is not set`);
  return v;
}

/** The database a URL names (postgres when it names none), or undefined when it cannot be read. */
function urlDatabase(url: string | null): string | undefined {
  if (url === null) return undefined;
  try {
    return decodeURIComponent(new URL(resolveClusterUrl(url)).pathname.slice(1)) || 'postgres';
  } catch {
    return undefined;
  }
}

/**
 * provider external: what the lab cannot do on someone else's servers. It does not run them (no
 * kill of old/new), and it has no copy to start the next run from (more runs need clusters.reset).
 */
function externalRules(p: Problem[], raw: unknown, oldC: ClusterSettings | undefined, newC: ClusterSettings | undefined): void {
  const runs = get(raw, 'runs');
  const reset = get(raw, 'clusters', 'reset');
  if (typeof runs === 'number' && runs > 1 && (reset === undefined || reset === null))
    p.push({ path: 'runs', message: `${runs} runs on external servers need a way back to the starting point between runs: the first run changes their data (the load's writes, the switchover's fence and sequences)`, hint: 'add clusters.reset: { command: ./reset.sh } (restore a snapshot, re-create the databases from a template, truncate…), or runs: 1' });
  const faults = get(raw, 'faults');
  if (Array.isArray(faults))
    faults.forEach((f, i) => {
      const target = get(f, 'target');
      if (get(f, 'kind') === 'kill' && (target === 'old' || target === 'new'))
        p.push({ path: `faults.${i}.target`, message: `a kill of the ${target} server stops a Postgres process: with provider external the lab does not run the servers, so it cannot kill or restart them`, hint: 'use a network fault on its hop instead (partition, reset_peer on app-old / app-new / replication), kill target app or switchover, or rehearse kills on embedded or docker clusters' });
    });
  const [od, nd] = [urlDatabase(oldC?.url ?? null), urlDatabase(newC?.url ?? null)];
  if (od && nd && od !== nd)
    p.push({ path: 'clusters.new.url', message: `names database ${nd}, the old URL names ${od}: the app keeps its database name when the switch moves it`, hint: `point both URLs at a database of the same name (e.g. ${od} on both servers)` });
}

type ParsedFault = NonNullable<ReturnType<typeof faultSchema.safeParse>['data']>;

/** The database faults (ddl, conflict, long-transaction, burst): what each needs to be applied. */
function dbFaultRules(p: Problem[], at: (k: string) => string, f: ParsedFault): void {
  const a = f.attributes as Record<string, unknown>;
  if (f.hop !== null) p.push({ path: at('hop'), message: `a ${f.kind} fault happens inside the clusters and has no hop`, hint: 'remove hop' });
  if (f.target !== null) p.push({ path: at('target'), message: 'target is only for kind kill', hint: 'remove target' });
  const text = (k: string, example: string) => {
    if (a[k] === undefined) p.push({ path: at(`attributes.${k}`), message: `a ${f.kind} fault needs attributes.${k}`, hint: `e.g. attributes: { ${k}: ${example} }` });
    else if (typeof a[k] !== 'string' || !String(a[k]).trim()) p.push({ path: at(`attributes.${k}`), message: 'must be a non-empty string', hint: `e.g. ${k}: ${example}` });
  };
  const positive = (k: string) => {
    if (a[k] !== undefined && !(typeof a[k] === 'number' && (a[k] as number) > 0)) p.push({ path: at(`attributes.${k}`), message: 'must be a number greater than 0', hint: `e.g. ${k}: 1000` });
  };
  if (f.kind === 'ddl') text('sql', '"alter table orders add column gift boolean"');
  else text('table', 'orders');
  if (f.kind === 'conflict' && a.mode !== undefined && !(conflictModes as readonly unknown[]).includes(a.mode))
    p.push({ path: at('attributes.mode'), message: `${JSON.stringify(a.mode)} is not a conflict mode`, hint: 'mode: now (collides at once) | ahead (collides with the next inserts of the load)' });
  for (const k of ['rows', 'rate', 'multiplier']) positive(k);
  if ((f.kind === 'long-transaction' || f.kind === 'burst') && !(f.durationMs > 0))
    p.push({ path: at('duration'), message: `a ${f.kind} fault needs a duration`, hint: f.kind === 'burst' ? 'how long the burst writes, e.g. duration: 10s' : 'how long the transaction stays open, e.g. duration: 20s (longer than the fence)' });
  if (f.kind === 'burst') {
    const given = ['rows', 'rate', 'multiplier'].filter((k) => a[k] !== undefined);
    if (given.length !== 1) p.push({ path: at('attributes'), message: given.length ? `give one of rows, rate or multiplier (got ${given.join(', ')})` : 'a burst needs rows, rate or multiplier', hint: 'rows: total rows over the duration · rate: rows per second · multiplier: × load.rate' });
  }
}

/** The faults of a real night (pause, lock, connections, slot-loss): what each needs. */
function nightFaultRules(p: Problem[], at: (k: string) => string, f: ParsedFault, oldMajor: number | undefined, provider: string | undefined): void {
  const a = f.attributes as Record<string, unknown>;
  if (f.hop !== null) p.push({ path: at('hop'), message: `a ${f.kind} fault happens inside the lab's processes and has no hop`, hint: 'remove hop' });
  if (f.kind === 'pause') {
    if (f.target === null) p.push({ path: at('target'), message: 'a pause fault needs a target', hint: 'target: old | new | app' });
    else if (!(pauseTargets as readonly string[]).includes(f.target)) p.push({ path: at('target'), message: `a pause stops a process of the lab: ${f.target} cannot be paused`, hint: 'target: old | new | app' });
    if (!(f.durationMs > 0)) p.push({ path: at('duration'), message: 'a pause fault needs a duration (how long the process stays stopped)', hint: 'e.g. duration: 10s — it is always resumed, at the latest when the run ends' });
    if (provider !== undefined && provider !== 'embedded' && (f.target === 'old' || f.target === 'new'))
      p.push({ path: at('target'), message: `pausing the ${f.target} server stops its Postgres processes: only provider embedded runs them as processes of the lab (provider is ${provider})`, hint: 'use provider embedded, or target: app' });
    return;
  }
  if (f.target !== null) p.push({ path: at('target'), message: 'target is only for kinds kill and pause', hint: f.kind === 'slot-loss' ? 'remove target (slot-loss is always on the old side)' : 'remove target; use attributes: { side: old | new }' });
  if (f.kind === 'lock' || f.kind === 'connections') {
    if (a.side === undefined) p.push({ path: at('attributes.side'), message: `a ${f.kind} fault needs attributes.side`, hint: 'attributes: { side: old } (the app\'s writes wait) or { side: new } (apply waits / the new pool cannot connect)' });
    else if (a.side !== 'old' && a.side !== 'new') p.push({ path: at('attributes.side'), message: `${JSON.stringify(a.side)} is not a side`, hint: 'side: old | new' });
    if (!(f.durationMs > 0)) p.push({ path: at('duration'), message: `a ${f.kind} fault needs a duration`, hint: f.kind === 'lock' ? 'how long the lock is held, e.g. duration: 10s' : 'how long the slots stay taken, e.g. duration: 10s' });
  }
  if (f.kind === 'lock') {
    if (a.table === undefined) p.push({ path: at('attributes.table'), message: 'a lock fault needs attributes.table', hint: 'e.g. attributes: { side: new, table: orders }' });
    else if (typeof a.table !== 'string' || !a.table.trim()) p.push({ path: at('attributes.table'), message: 'must be a non-empty string', hint: 'e.g. table: orders' });
    if (!lockModeOf(a.mode))
      p.push({ path: at('attributes.mode'), message: `${JSON.stringify(a.mode)} is not a lock mode`, hint: `mode: ${lockModes.join(' | ')} (default ACCESS EXCLUSIVE)` });
  }
  if (f.kind === 'connections' && a.reserved !== undefined && !(Number.isInteger(a.reserved) && (a.reserved as number) >= 0))
    p.push({ path: at('attributes.reserved'), message: 'must be a whole number of connections, 0 or more', hint: 'e.g. reserved: 2 (slots left free)' });
  if (f.kind === 'slot-loss') {
    if (oldMajor !== undefined && oldMajor < 13)
      p.push({ path: at('kind'), message: `slot-loss needs PostgreSQL 13 or newer on the old side (old is ${oldMajor}): before 13 there is no max_slot_wal_keep_size, a slot keeps all WAL and is never lost`, hint: 'raise clusters.old.major to 13+, or rehearse a full disk another way' });
    if (provider === 'external') p.push({ path: at('kind'), message: 'slot-loss changes max_slot_wal_keep_size on the old server and forces WAL: the lab does not do that to external servers', hint: 'rehearse slot-loss on embedded or docker clusters' });
    if (a.size !== undefined && !(Number.isInteger(a.size) && (a.size as number) >= 1)) p.push({ path: at('attributes.size'), message: 'must be a whole number of megabytes, 1 or more', hint: 'e.g. size: 1 (max_slot_wal_keep_size = 1MB while the fault holds)' });
  }
}

/** initialSync: clone builds the new cluster from old's data directory and pg_upgrade 18 (lab/clone.ts). */
function cloneRules(p: Problem[], mig: { publication: string; tables: string[] | null }, oldC: ClusterSettings | undefined, newC: ClusterSettings | undefined, provider: string | undefined): void {
  const at = 'migration.initialSync';
  if (provider !== undefined && provider !== 'embedded')
    p.push({ path: at, message: `clone-then-follow builds the new cluster from the old one's physical copy in the lab: it needs provider embedded (provider is ${provider})`, hint: 'set clusters.provider: embedded, or initialSync: copy' });
  if (newC && newC.major !== 18)
    p.push({ path: at, message: `clone-then-follow upgrades the copy with pg_upgrade ${newC.major}; the lab has PostgreSQL 18's only`, hint: 'set clusters.new.major: 18, or initialSync: copy' });
  if (oldC && newC && oldC.major >= newC.major) p.push({ path: at, message: `clone-then-follow upgrades the copy: old (${oldC.major}) must be older than new (${newC.major})`, hint: 'use initialSync: copy' });
  if (mig.publication === 'incremental') p.push({ path: at, message: 'clone-then-follow brings every table at once (from the copy): it cannot be combined with publication: incremental', hint: 'set publication: all, or initialSync: copy' });
  if (oldC && newC)
    for (const k of ['locale', 'encoding', 'localeProvider', 'icuLocale', 'dataChecksums'] as const)
      if (newC[k] !== oldC[k] && !(k === 'dataChecksums' && newC[k] === null))
        p.push({ path: `clusters.new.${k}`, message: `with initialSync: clone the new cluster is old's copy: its ${k} is old's (${JSON.stringify(oldC[k])}), not ${JSON.stringify(newC[k])}`, hint: `remove clusters.new.${k} (or make it old's), or use initialSync: copy` });
}

export function crossFieldProblems(raw: unknown): Problem[] {
  const p: Problem[] = [];
  const providerRaw = get(raw, 'clusters', 'provider') ?? 'embedded';
  const provider = (providerKinds as readonly unknown[]).includes(providerRaw) ? (providerRaw as string) : undefined;
  const oldC = section(clusterSchema, get(raw, 'clusters', 'old') ?? null);
  const newC = section(clusterSchema, get(raw, 'clusters', 'new') ?? null);
  if (oldC) clusterRules(p, 'old', oldC, provider);
  if (newC) clusterRules(p, 'new', newC, provider);
  if (provider === 'external') externalRules(p, raw, oldC, newC);
  else if (get(raw, 'clusters', 'reset') !== undefined && get(raw, 'clusters', 'reset') !== null)
    p.push({ path: 'clusters.reset', message: `reset is only used with provider external (provider is ${provider ?? 'embedded'}): the lab's own clusters start fresh in every run`, hint: 'remove clusters.reset, or set clusters.provider: external' });
  if (oldC && newC && newC.major < oldC.major)
    p.push({ path: 'clusters.new.major', message: `the new cluster (${newC.major}) is older than the old one (${oldC.major})`, hint: 'a cutover goes to the same or a newer major; swap old and new' });

  const ds = section(datasetSchema, get(raw, 'dataset'));
  if (ds) {
    if (ds.preset === 'none' && provider !== 'external')
      p.push({ path: 'dataset.preset', message: `preset none seeds nothing: it is for provider external, whose servers hold their own data (provider is ${provider ?? 'embedded'})`, hint: 'use a preset (payments, notifications, edge) or custom with your DDL' });
    if (ds.preset === 'custom' && ds.ddl === null && ds.fromUrl === null)
      p.push({ path: 'dataset.ddl', message: 'preset custom needs a DDL file or an existing database', hint: 'set dataset.ddl: schema.sql (relative to the scenario) or dataset.fromUrl: postgres://…' });
    if (ds.preset !== 'custom' && ds.ddl !== null)
      p.push({ path: 'dataset.ddl', message: `ddl is only used with preset custom (preset is ${ds.preset})`, hint: 'set dataset.preset: custom, or remove ddl' });
    if (ds.preset !== 'custom' && ds.fromUrl !== null)
      p.push({ path: 'dataset.fromUrl', message: `fromUrl is only used with preset custom (preset is ${ds.preset})`, hint: 'set dataset.preset: custom, or remove fromUrl' });
    if (ds.ddl !== null && ds.fromUrl !== null)
      p.push({ path: 'dataset.fromUrl', message: 'give either ddl or fromUrl, not both', hint: 'ddl creates the tables; fromUrl seeds tables that already exist' });
    for (const [col, gen] of Object.entries(ds.generators)) {
      const path = `dataset.generators.${col}`;
      if (!/^[^.]+(\.[^.]+){1,2}$/.test(col)) p.push({ path, message: `"${col}" does not name a column`, hint: 'write the key as table.column or schema.table.column' });
      if (gen !== 'null' && !fakerMethodExists(gen))
        p.push({ path, message: `"${gen}" is not a faker method`, hint: 'use faker.<module>.<method> (e.g. faker.internet.email, faker.person.fullName) or null' });
    }
  }

  const app = get(raw, 'app');
  const userApp = app !== undefined && app !== 'sample';
  const ack = get(raw, 'ack');
  if (userApp && (ack === undefined || ack === null))
    p.push({ path: 'ack', message: 'your own app needs an ack.query: the lab cannot know where it writes', hint: 'add ack: { query: "select id::text from orders where id::text = any($1)" } — $1 is the acknowledged keys as text[], one row per row found' });
  if (typeof ack === 'object' && ack !== null && typeof (ack as any).query === 'string' && !/\$1\b/.test((ack as any).query))
    p.push({ path: 'ack.query', message: 'ack.query must use $1 (the acknowledged keys, as text[])', hint: 'e.g. select id::text from orders where id::text = any($1)' });
  if (userApp && get(raw, 'load', 'script') === undefined)
    p.push({ path: 'load.script', message: "your own app needs your own k6 script (the lab's workloads call the sample app's endpoints)", hint: 'set load.script: orders.js (relative to the scenario file), written against the contract in load/lib/cutover.js' });

  const migRaw = get(raw, "migration") as any;
  if (migRaw && typeof migRaw === "object" && migRaw.fenceGrace !== undefined && migRaw.fenceGrace !== null && (migRaw.fence ?? "terminate") !== "terminate")
    p.push({ path: "migration.fenceGrace", message: `a grace applies to the terminate fence (fence is ${migRaw.fence})`, hint: 'set migration.fence: terminate, or remove fenceGrace' });

  const load = section(loadSchema, get(raw, 'load'));
  // a bare number is milliseconds: `duration: 30` is a 30 ms load, never what was meant
  const rawDuration = get(raw, 'load', 'duration');
  if (typeof rawDuration === 'number' && rawDuration < 1000)
    p.push({ path: 'load.duration', message: `the load would last ${rawDuration} ms: a bare number is milliseconds, and no cutover fits in under a second`, hint: `write the unit: duration: ${rawDuration}s (or 2m)` });
  else if (load && load.switchAtMs >= load.durationMs)
    p.push({ path: 'load.switchAt', message: `the switch (${load.switchAtMs} ms) would start after the load ends (${load.durationMs} ms)`, hint: 'make load.switchAt smaller than load.duration' });

  const faults = get(raw, 'faults');
  if (Array.isArray(faults)) {
    faults.forEach((f, i) => {
      const fault = section(faultSchema, f);
      if (!fault) return;
      const at = (k: string) => `faults.${i}.${k}`;
      if (fault.atMs === null && fault.phase === null) p.push({ path: at('at'), message: 'a fault needs a time (at) or a cutover phase (phase)', hint: 'add at: 5s, or phase: switch' });
      if (fault.atMs !== null && fault.phase !== null) p.push({ path: at('phase'), message: 'give either at or phase, not both', hint: 'at is a time after the load starts; phase fires when that cutover phase begins' });
      const isNight = (nightFaultKinds as readonly string[]).includes(fault.kind);
      const isDb = isNight || (dbFaultKinds as readonly string[]).includes(fault.kind);
      if (isNight) nightFaultRules(p, at, fault, oldC?.major, provider);
      else if (isDb) dbFaultRules(p, at, fault);
      else if (fault.kind === 'kill') {
        if (fault.target === null) p.push({ path: at('target'), message: 'a kill fault needs a target', hint: 'target: old | new | app | switchover' });
        if (fault.hop !== null) p.push({ path: at('hop'), message: 'a kill fault has a target, not a hop', hint: 'remove hop; use target: old | new | app | switchover' });
      } else {
        if (fault.hop === null) p.push({ path: at('hop'), message: `a ${fault.kind} fault needs a hop`, hint: 'hop: app-old | app-new | replication' });
        if (fault.target !== null) p.push({ path: at('target'), message: 'target is only for kinds kill and pause', hint: 'remove target, or set kind: kill' });
      }
      const allowed = isDb ? [...faultAttributes[fault.kind]] : [...faultAttributes[fault.kind], 'stream', 'toxicity'];
      for (const k of Object.keys(fault.attributes))
        if (!allowed.includes(k)) p.push({ path: at(`attributes.${k}`), message: `unknown attribute for a ${fault.kind} fault`, hint: allowed.length > 2 || fault.kind !== 'partition' ? `known: ${allowed.join(', ')}` : 'a partition takes no attributes' });
      if (load && fault.atMs !== null && fault.atMs >= load.durationMs)
        p.push({ path: at('at'), message: `the fault starts at ${fault.atMs} ms, after the load ends (${load.durationMs} ms)`, hint: 'make at smaller than load.duration' });
    });
  }

  const mig = section(migrationSchema, get(raw, 'migration'));
  if (mig) {
    if (mig.switch === 'command' && mig.switchCommand === null) p.push({ path: 'migration.switchCommand', message: 'switch: command needs the command to run', hint: 'add switchCommand: ./switch-dns.sh (it gets CUTOVER_OLD_URL and CUTOVER_NEW_URL)' });
    if (mig.switch !== 'command' && mig.switchCommand !== null) p.push({ path: 'migration.switchCommand', message: `switchCommand is only used with switch: command (switch is ${mig.switch})`, hint: 'remove switchCommand, or set switch: command' });
    if (mig.fence === 'pause' && mig.switch !== 'pgbouncer') p.push({ path: 'migration.fence', message: 'fence: pause holds writes in the pooler and needs switch: pgbouncer', hint: 'set switch: pgbouncer, or use fence: terminate | read-only' });
    if (mig.rollbackAfterMs !== null && !mig.reverseReplication) p.push({ path: 'migration.rollbackAfter', message: 'a rollback needs the reverse replication the switchover sets up', hint: 'set migration.reverseReplication: true' });
    if (mig.rollbackAfterMs !== null && load && load.switchAtMs + mig.rollbackAfterMs >= load.durationMs)
      p.push({ path: 'migration.rollbackAfter', message: `the rollback (switchAt ${load.switchAtMs} ms + rollbackAfter ${mig.rollbackAfterMs} ms) would start after the load ends (${load.durationMs} ms)`, hint: 'lengthen load.duration: the load must outlast the switch, the wait and the rollback' });
    if (Object.keys(mig.rowFilters).length && oldC && oldC.major < 15)
      p.push({ path: 'migration.rowFilters', message: `row filters need a PostgreSQL 15+ publisher (clusters.old.major is ${oldC.major})`, hint: 'remove migration.rowFilters, or rehearse from a 15+ old cluster' });
    if (mig.initialSync === 'clone') cloneRules(p, mig, oldC, newC, provider);
    if (mig.publication === 'incremental' && mig.tables !== null && mig.tables.length === 0) p.push({ path: 'migration.tables', message: 'an incremental publication needs at least one table', hint: 'list the tables in the order to add them, or remove tables to add all of them one by one' });
  }
  return p;
}
