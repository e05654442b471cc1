/**
 * The steps of one rehearsal run. Each step does one thing, registers what it started on the run's
 * AsyncDisposableStack (so teardown is declared where the resource is made, and runs in reverse:
 * load, faults, app, pgbouncer, DNS, lab), and returns what the next steps need. `runOnce`
 * (run.ts) only strings them together.
 */
import { existsSync, readFileSync, copyFileSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Scenario } from '../../scenarios/schema.ts';
import { clusterSpec, type Golden } from '../golden.ts';
import { seed, seedOptionsFor } from '../seed.ts';
import { startLab, type Lab } from '../lab.ts';
import { startDnsServer, type StartedDnsServer } from '../dns.ts';
import { startPgbouncer, type StartedPgbouncer } from '../pgbouncer.ts';
import { runK6, type K6Result } from '../k6.ts';
import { FaultInjector, detectConflict, conflictRecovery, type FaultSpec, type AppliedFault } from '../faults.ts';
import { stoppedPids } from '../night-faults.ts';
import { LabAsyncDisposableStack } from '../disposable.ts';
import { paths, PROJECT_ROOT } from '../paths.ts';
import { sleep, freePort, freeLoopbackAddress } from '../net.ts';
import { isIPv4 } from 'node:net';
import { startUserApp, type StartedUserApp } from '../app.ts';
import { copyRoles, copySchema } from '../../migration/schema-copy.ts';
import { describePrivilegeCopy } from '../../migration/privileges.ts';
import { startReplication, startCloneReplication, stopReplication, waitForSync, lag, objectNames, parseTableName } from '../../migration/replication.ts';
import { labCloneBuilder } from '../clone.ts';
import { ClusterTimelineSampler } from '../../migration/timeline.ts';
import { drift, type DriftCategory } from '../../migration/drift/index.ts';
import { ShadowTally, shadowQueries } from '../../migration/drift/shadow-compare.ts';
import { withClient, quoteIdent, quoteLiteral } from '../../migration/pg.ts';
import { CutoverError, describeError } from '../../migration/errors.ts';
import { ensureAppSchema, APP_WRITES_TABLE, APP_DOMAIN_TABLES } from '../../load/app/server.ts';
import { readAckKeys } from '../../load/check.ts';
import { notMeasured, type ClusterTimelinePoint, type DriftFinding, type InjectedFault, type NotMeasured, type Replication, type Run } from '../../reports/model.ts';
import { startAppProcess, stopAppProcess, type AppProcess } from './app-process.ts';
import { runSwitchoverChild, type SwitchoverRun } from './switchover-child.ts';
import type { PhaseTiming } from './measure-run.ts';
import { ExternalLedger, externalUrls, assertEmptyForSeed, markServerLog, collectServerLog, urlPasswords, type LedgerResult } from './external.ts';

export const DB_NAME = 'db.lab.internal';
export const APP_ROLE = 'cutover_app';
/** How long the initial sync may take before the run gives up. */
export const SYNC_TIMEOUT_MS = 600_000;

export interface ProgressEvent {
  run: number;
  runs: number;
  step: string;
  okPerSec?: number;
  lagBytes?: number | null;
  /** Estimated time to the end of the last run (from the runs so far). */
  etaMs?: number;
}

export interface RunContext {
  outDir: string;
  log: (s: string) => void;
  progress: (run: number, step: string, extra?: Partial<ProgressEvent>) => void;
  withDrift: boolean;
  signal?: AbortSignal;
}

/** What every step of one run shares. */
export interface RunState {
  s: Scenario;
  /** The golden copy old is cloned from (embedded); undefined: old is seeded in the run (docker). */
  golden?: Golden;
  /** The old cluster's superuser password (the golden copy's, or the run's own). */
  oldPassword: string;
  index: number;
  runs: number;
  ctx: RunContext;
  runDir: string;
  runId: string;
  appPassword: string;
  startedMs: number;
  startedAt: string;
  /** The step running now (a crash names it). */
  step: string;
  stack: LabAsyncDisposableStack;
  phases: PhaseTiming[];
  faults?: FaultInjector;
  /** The clusters' timeline sampler once the load started (a crashed run still shows what it saw). */
  timeline?: ClusterTimelineSampler;
  loadStartMs?: number;
  /** provider external: what the servers held at the start and what the lab created on them. */
  ledger?: ExternalLedger;
  /** provider external: where each server's log went, or why it was not collected (run.serverLogs). */
  serverLogs?: string[];
  /** provider external: what the teardown removed of it, and what it could not. */
  externalCleanup?: LedgerResult;
  log: (line: string) => void;
}

export function newRunState(s: Scenario, golden: Golden | undefined, index: number, runs: number, ctx: RunContext): RunState {
  const runDir = join(ctx.outDir, `run-${index}`);
  // a run directory holds the switchover's state file: an old one would be "resumed"
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  const startedMs = Date.now();
  return {
    s, golden, index, runs, ctx, runDir,
    oldPassword: golden?.password ?? randomBytes(12).toString('hex'),
    runId: `r${index}x${randomBytes(3).toString('hex')}`,
    appPassword: randomBytes(12).toString('hex'),
    startedMs,
    startedAt: new Date(startedMs).toISOString(),
    step: 'start',
    stack: new LabAsyncDisposableStack(),
    phases: [],
    log: (line) => ctx.log(`[run ${index}/${runs}] ${line}`),
  };
}

const interrupted = (r: RunState, step: string) => new CutoverError('STATE', `run ${r.index} was interrupted before step "${step}"`);

/** Wait until `atMs` (epoch); an interrupted run stops waiting. */
async function waitUntil(r: RunState, atMs: number, next: string): Promise<void> {
  await delay(Math.max(0, atMs - Date.now()), undefined, { signal: r.ctx.signal }).catch(() => {
    throw interrupted(r, next);
  });
}

export function enter(r: RunState, step: string, extra: Partial<ProgressEvent> = {}): void {
  // an interrupted run starts nothing new: its teardown is already under way
  if (r.ctx.signal?.aborted) throw interrupted(r, step);
  r.step = step;
  r.ctx.progress(r.index, step, extra);
}

/**
 * Put a resource on the run's stack. If the run is already being torn down (Ctrl-C came while
 * this resource was starting), release it at once instead of leaking it.
 */
export async function own<T extends object>(r: RunState, value: T, dispose: (v: T) => unknown | Promise<unknown>): Promise<T> {
  if (typeof (value as { then?: unknown }).then === 'function') throw new TypeError('own() of a promise would wait for it: box it ({ p })');
  if (r.stack.disposed) {
    await Promise.resolve(dispose(value)).catch(() => {});
    throw new CutoverError('INTERNAL', `run ${r.index} was interrupted while step "${r.step}" was starting`);
  }
  r.stack.adopt(value, async (v) => {
    try {
      await dispose(v);
    } catch (e) {
      r.log(`teardown: ${describeError(e)}`);
    }
  });
  return value;
}

// ---- lab and replication ------------------------------------------------------------------------

/** provider external: the servers are someone else's, and the lab keeps a ledger of what it makes there. */
export const isExternal = (s: Scenario): boolean => s.clusters.provider === 'external';

/**
 * Run a step that creates objects on the servers; on external servers whatever appears on either
 * side meanwhile is recorded in the run's ledger as the lab's (and removed at the end of the run).
 */
export function labMade<T>(r: RunState, step: () => Promise<T>): Promise<T> {
  const l = r.ledger;
  return l ? l.sides.new.around(() => l.sides.old.around(step)) : step();
}

/** The database the app and the replication use: `app` on the lab's clusters, the URL's on external ones. */
export const appDatabase = (lab: Lab): string => lab.old.record.database;

/** Fresh clusters (old cloned from the golden copy), or the external servers, and Toxiproxy; server logs kept on teardown. */
export async function startRunLab(r: RunState): Promise<{ lab: Lab; labDir: string; versions: { old: string; new: string } }> {
  enter(r, 'lab');
  const labDir = join(paths.labs(), `rehearse-${r.s.name}-${process.pid}-${r.index}`);
  rmSync(labDir, { recursive: true, force: true });
  const urls = isExternal(r.s) ? externalUrls(r.s) : undefined;
  const lab = await startLab({
    name: `${r.s.name}-${r.index}`,
    dir: labDir,
    provider: r.s.clusters.provider,
    old: { ...clusterSpec('old', r.s.clusters.old), password: r.oldPassword, ...(urls ? { url: urls.old } : {}) },
    new: { ...clusterSpec('new', r.s.clusters.new), ...(urls ? { url: urls.new } : {}) },
    oldFromDataDir: r.golden?.dataDir,
    log: r.log,
  });
  // external servers: their logs as far as the URL's role may read them, only the run's window
  const marks = urls ? { old: await markServerLog(urls.old), new: await markServerLog(urls.new) } : undefined;
  await own(r, lab, async (l) => {
    if (urls && marks) {
      const secrets = [...urlPasswords(urls), r.appPassword];
      r.serverLogs = [];
      for (const side of ['old', 'new'] as const) r.serverLogs.push(await collectServerLog(side, urls[side], marks[side], join(r.runDir, `${side}-server.log`), secrets));
      for (const line of r.serverLogs) r.log(line);
    }
    for (const side of ['old', 'new'] as const) {
      await l[side].collectLog?.().catch(() => {});
      const f = l[side].record.logFile;
      if (f && existsSync(f)) copyFileSync(f, join(r.runDir, `${side}-server.log`));
    }
    await l.down();
  });
  if (urls) {
    // taken before the lab changes anything; the sweep is torn down before the lab (Toxiproxy) goes
    const ledger = await ExternalLedger.open(r.s, urls, APP_ROLE);
    r.ledger = ledger;
    await own(r, ledger, async (l) => {
      r.externalCleanup = await l.sweep(r.log);
      l.write(join(r.runDir, 'external-ledger.json'), r.externalCleanup);
    });
    if (r.s.dataset.preset !== 'none') {
      enter(r, 'seed');
      await assertEmptyForSeed(r.s, lab.old.url);
      const res = await labMade(r, () => seed(seedOptionsFor(r.s, lab.old.url, { progress: 'silent' })));
      r.log(`seeded ${res.rows} rows into the old server's empty database (the scenario asked for dataset ${r.s.dataset.preset})`);
    }
  } else if (!r.golden) {
    // containers cannot be cloned from a stopped data directory: the dataset is seeded in each run
    enter(r, 'seed');
    const res = await seed(seedOptionsFor(r.s, lab.old.url, { progress: 'silent' }));
    r.log(`seeded ${res.rows} rows into the old container`);
  }
  return { lab, labDir, versions: { old: await serverVersion(lab.old.url), new: await serverVersion(lab.new.url) } };
}

async function serverVersion(url: string): Promise<string> {
  return withClient(url, async (c) => (await c.query<{ v: string }>(`select current_setting('server_version') as v`)).rows[0].v.split(' ')[0]);
}

/** The application role (not a superuser: the fence must be able to lock it out). */
async function ensureAppRole(url: string, password: string): Promise<void> {
  await withClient(url, async (c) => {
    // a failing statement would be written to the server log with its text: not this one's password
    await c.query(`set log_min_error_statement = panic`);
    const exists = await c.query('select 1 from pg_roles where rolname = $1', [APP_ROLE]);
    await c.query(`${exists.rowCount ? 'alter' : 'create'} role ${quoteIdent(APP_ROLE)} login password ${quoteLiteral(password)}`);
  });
}

/** The app role may read and write every table of the dataset, in every schema it uses. */
async function grantApp(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const role = quoteIdent(APP_ROLE);
    const schemas = await c.query<{ n: string }>(`select nspname as n from pg_namespace where nspname not in ('pg_catalog', 'information_schema', 'pg_toast') and nspname !~ '^pg_'`);
    for (const { n } of schemas.rows) {
      const sch = quoteIdent(n);
      await c.query(`grant usage on schema ${sch} to ${role}`);
      await c.query(`grant select, insert, update, delete on all tables in schema ${sch} to ${role}`);
      await c.query(`grant usage, select, update on all sequences in schema ${sch} to ${role}`);
    }
  });
}

/**
 * Shadow reads (scenario `shadow.queries`): every SELECT of the file on both primaries while
 * replication carries the load, compared ordering-aware; a mismatch that goes away on a re-read
 * after `settleMs` was replication lag, not drift. Mismatches are counted per cause (timezone,
 * NULL → default, collation, encoding, float text, other), with latency old vs new per query and an
 * event per mismatch on the run's timeline (offset from the load start).
 */
export async function shadowStep(r: RunState, lab: Lab, loadStartMs: number): Promise<Run['shadow']> {
  const block = r.s.shadow;
  if (!block?.queries) return undefined;
  enter(r, 'shadow reads');
  try {
    const text = readFileSync(block.queries, 'utf8');
    return await withClient(lab.old.url, (src) =>
      withClient(lab.new.url, async (tgt) => {
        const tally = new ShadowTally({ startedAt: loadStartMs });
        await shadowQueries(src, tgt, { text }, tally, { statementTimeoutMs: block.statementTimeoutMs, settleMs: block.settleMs });
        const sum = tally.summary();
        r.log(`shadow reads: ${sum.compared} compared, ${sum.mismatches} mismatch(es)${sum.mismatches ? ` (${Object.entries(sum.byCause).filter(([, n]) => n).map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}, ${sum.settled} settled on a re-read`);
        return sum;
      }, { role: 'new primary', applicationName: 'cutover-shadow' }),
    { role: 'old primary', applicationName: 'cutover-shadow' });
  } catch (e) {
    return notMeasured(`the shadow reads could not run: ${describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0]}`);
  }
}

/** The scenario names its own application (not the sample app). */
export const isUserApp = (s: Scenario): boolean => s.app !== 'sample';

/**
 * The app role on both sides and the app's tables on old, before anything is copied: the tables
 * the acknowledged-write check reads on the new side must be in the schema copy and the
 * publication, whether the load starts before replication (load.during: sync) or after.
 */
export async function prepareOld(r: RunState, lab: Lab): Promise<void> {
  enter(r, 'app schema');
  await labMade(r, async () => {
    await ensureAppRole(lab.old.url, r.appPassword);
    // the sample app's tables only for the sample app: a user app writes its own (the dataset's)
    if (!isUserApp(r.s)) await withClient(lab.old.url, (c) => ensureAppSchema(c));
    await grantApp(lab.old.url);
    await ensureAppRole(lab.new.url, r.appPassword);
  });
  // A broken ack.query would only show after the whole run: try it now on the old primary, whose
  // tables it reads (no keys yet, so it finds nothing), and stop the run with its error.
  if (isUserApp(r.s) && r.s.ack) await readAckKeys(lab.old.url, r.s.ack.query, [], 'old primary');
}

/**
 * A scenario that lists its tables still needs the sample app's tables replicated: they are what
 * the acknowledged-write check reads on the new primary.
 */
function replicatedTables(s: Scenario): string[] | undefined {
  return s.migration.tables ? [...s.migration.tables, ...(isUserApp(s) ? [] : [APP_WRITES_TABLE, ...APP_DOMAIN_TABLES])] : undefined;
}

/** Schema pre-data, publication/subscription, initial sync, post-data — timed. */
export async function replicate(r: RunState, lab: Lab, underLoad: boolean): Promise<Replication & { doneAtMs: number }> {
  enter(r, underLoad ? 'replication (under load)' : 'replication');
  if (r.s.migration.initialSync === 'clone') return cloneAndFollow(r, lab, underLoad);
  const signal = r.ctx.signal;
  await labMade(r, async () => {
    // Roles first, as a real migration does, so that owners and grants come with the schema (a
    // target without them is "permission denied" after the switch; on external servers the roles
    // the lab creates are in its ledger and removed with the rest).
    await copyRoles({ source: lab.old.url, target: lab.new.url });
    const pre = await copySchema({ source: lab.old.url, target: lab.new.url, section: 'pre-data' });
    const priv = describePrivilegeCopy(pre.privileges);
    if (priv) r.log(priv);
    await grantApp(lab.new.url);
  });
  // (on external servers the ledger's look after it — a few ms — counts into the sync time)
  let t0 = 0;
  const rowFilters = Object.entries(r.s.migration.rowFilters).map(([table, where]) => ({ ...parseTableName(table), where }));
  const backfill = r.s.migration.skipCopy.map((t) => parseTableName(t));
  const started = await labMade(r, () => ((t0 = Date.now()), startReplication({ source: lab.old.url, target: lab.new.url, sourceConninfoUrl: viaProxy(r.s, 'replication') ? lab.proxiedUrl('replication') : undefined, mode: r.s.migration.publication, tables: replicatedTables(r.s), rowFilters, backfill, log: r.log, signal })));
  if (started.backfill && !started.backfill.ok) throw new CutoverError('STATE', `back-fill count check failed: ${started.backfill.tables.filter((b) => !b.ok).map((b) => `${b.table} ${b.read}/${b.snapshotRows} read, ${b.presentOnTarget} on the target`).join('; ')}`);
  await waitForSync({ source: lab.old.url, target: lab.new.url, timeoutMs: SYNC_TIMEOUT_MS, progress: false, signal });
  const t1 = Date.now();
  enter(r, underLoad ? 'post-data (under load)' : 'post-data');
  await labMade(r, () => copySchema({ source: lab.old.url, target: lab.new.url, section: 'post-data' }));
  const t2 = Date.now();
  r.log(`sync ${t1 - t0} ms, post-data ${t2 - t1} ms${underLoad ? ' (under load)' : ''}`);
  return { underLoad, syncMs: t1 - t0, postDataMs: t2 - t1, doneAtMs: t2 };
}

/**
 * initialSync: clone — the new cluster becomes old's physical copy at the slot's consistent point,
 * upgraded with pg_upgrade (lab/clone.ts), and follows from there: no schema copy and no post-data
 * (the copy has the schema, the indexes and the app role), no logical initial copy.
 */
async function cloneAndFollow(r: RunState, lab: Lab, underLoad: boolean): Promise<Replication & { doneAtMs: number }> {
  const t0 = Date.now();
  const clone = labCloneBuilder({ old: lab.old, target: lab.new, slot: objectNames().slot, log: r.log });
  const res = await startCloneReplication({ source: lab.old.url, target: lab.new.url, sourceConninfoUrl: viaProxy(r.s, 'replication') ? lab.proxiedUrl('replication') : undefined, tables: replicatedTables(r.s), clone, log: r.log, signal: r.ctx.signal });
  await waitForSync({ source: lab.old.url, target: lab.new.url, timeoutMs: SYNC_TIMEOUT_MS, progress: false });
  const t1 = Date.now();
  const t = res.clone!.timings;
  r.log(`clone-then-follow ${t1 - t0} ms (basebackup ${t.basebackup} ms, recovery to ${res.clone!.lsn} ${t.recover} ms, pg_upgrade ${t.upgrade} ms, start ${t.start} ms)${underLoad ? ' (under load)' : ''}`);
  return {
    underLoad,
    syncMs: t1 - t0,
    postDataMs: 0,
    initialSync: 'clone',
    clone: { lsn: res.clone!.lsn, basebackupMs: t.basebackup ?? 0, recoverMs: t.recover ?? 0, upgradeMs: t.upgrade ?? 0, startMs: t.start ?? 0 },
    doneAtMs: t1,
  };
}

// ---- drift ----------------------------------------------------------------------------------------

/** A role difference that the fence itself made (NOLOGIN / read-only on the old side's app role). */
function isFenceArtefact(f: any): boolean {
  return (f.category === 'schema' && f.object === `role ${APP_ROLE}`) || (f.category === 'settings' && String(f.object).includes(APP_ROLE));
}

export function toReportFinding(f: any): DriftFinding {
  const scalar = (v: unknown) => (v === undefined ? undefined : v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v));
  const o: DriftFinding = { category: f.category, severity: f.severity, object: String(f.object ?? ''), message: String(f.message ?? '') };
  const ov = scalar(f.old);
  const nv = scalar(f.new);
  if (ov !== undefined) o.old = ov as any;
  if (nv !== undefined) o.new = nv as any;
  if (f.hint) o.hint = String(f.hint);
  if (Array.isArray(f.objects) && f.objects.length) o.objects = f.objects.map(String);
  return o;
}

/**
 * Drift between old and new: the findings, or NotMeasured when the check threw or a category could
 * not complete (drift() turns that into a warning finding, which the default budget would pass).
 * After the switch the sides differ on purpose (writes go on on the new one, the app roles are
 * fenced on the old one): no data category, no finding about the fence. Before the switch with the
 * load running (load.during sync) the rows differ by the replication lag: no data category either.
 */
export async function driftStep(r: RunState, lab: Lab, stage: 'before' | 'after', underLoad = false): Promise<DriftFinding[] | NotMeasured> {
  enter(r, `drift (${stage})`);
  // under load (after the switch, or before it with load.during sync) the rows differ by design
  const categories: DriftCategory[] | undefined = stage === 'after' || underLoad ? ['schema', 'collation', 'timezone', 'encoding', 'settings', 'incompatibility'] : undefined;
  try {
    const d = await drift({ source: lab.old.url, target: lab.new.url, categories });
    const failed = d.notes.filter((n) => /: check failed: /.test(n));
    if (failed.length) return notMeasured(`the drift check could not complete: ${failed.join('; ')}`);
    return d.findings.filter((f: any) => stage === 'before' || !isFenceArtefact(f)).map(toReportFinding);
  } catch (e) {
    const why = describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0];
    r.log(`drift (${stage}) failed: ${why}`);
    return notMeasured(`the drift check failed: ${why}`);
  }
}

// ---- front, app, faults, load --------------------------------------------------------------------

export interface Front {
  dns: StartedDnsServer;
  pgb?: StartedPgbouncer;
  oldFront: { host: string; port: number };
  newFront: { host: string; port: number };
  front: { host: string; port: number };
}

/**
 * Toxiproxy on a hop costs CPU on every byte (at 1000 writes/s a quarter of a core on the app
 * path): the app and the replication go through it only when the scenario needs it there — a
 * fault on that hop, or the proxy switch (or a switch command, which may drive Toxiproxy).
 */
export function viaProxy(s: Scenario, hop: 'app' | 'replication'): boolean {
  const hops = hop === 'app' ? ['app-old', 'app-new'] : ['replication'];
  if (s.faults.some((f) => f.hop !== null && hops.includes(f.hop))) return true;
  return hop === 'app' && (s.migration.switch === 'proxy' || s.migration.switch === 'command');
}

/** Where the app's traffic to old and new goes: the clusters themselves, or their proxies (viaProxy). */
export function appEndpoints(s: Scenario, lab: Lab): { oldFront: { host: string; port: number }; newFront: { host: string; port: number } } {
  const proxies = { oldFront: lab.record.proxies['app-old' as never] as { host: string; port: number }, newFront: lab.record.proxies['app-new' as never] as { host: string; port: number } };
  const { old, new: neu } = lab.record;
  // the switches move an address, never a port: straight to the clusters only when they share one
  if (viaProxy(s, 'app') || old.port !== neu.port || !isIPv4(old.host) || !isIPv4(neu.host)) return proxies;
  return { oldFront: { host: old.host, port: old.port }, newFront: { host: neu.host, port: neu.port } };
}

/** Lab DNS (db.lab.internal → old, or its proxy, or pgbouncer in front of it). */
export async function startFront(r: RunState, lab: Lab, labDir: string): Promise<Front> {
  enter(r, 'app');
  // A user app resolves db.lab.internal with its own resolver (libc, the JVM's), which only asks
  // port 53: the lab DNS then listens on port 53 of a loopback address of its own (root only).
  const userDns = isUserApp(r.s) && r.s.migration.switch === 'dns';
  if (userDns && process.getuid?.() !== 0)
    throw new CutoverError('CONFIG', `your own app behind the dns switch needs the lab DNS on port 53 and a private mount namespace for its resolv.conf: run the rehearsal as root`, {
      hint: 'run as root, or use migration.switch: proxy or pgbouncer (the app then connects to an address, no name to resolve)',
    });
  const dns = await own(r, await startDnsServer(userDns ? { host: await freeLoopbackAddress(53), port: 53 } : { host: '127.0.0.1' }), (d) => d.close());
  const { oldFront, newFront } = appEndpoints(r.s, lab);
  let front = oldFront;
  let pgb: StartedPgbouncer | undefined;
  if (r.s.migration.switch === 'pgbouncer') {
    const started = await startPgbouncer({
      dir: join(labDir, 'pgbouncer'),
      alias: 'app',
      upstream: { host: oldFront.host, port: oldFront.port, dbname: appDatabase(lab) },
      // the app role, and the old server's own admin role (the lab's postgres, or the external URL's user)
      users: { [APP_ROLE]: r.appPassword, [decodeURIComponent(new URL(lab.old.url).username) || 'postgres']: decodeURIComponent(new URL(lab.old.url).password) || r.oldPassword },
      port: oldFront.port,
    });
    pgb = await own(r, started, async (p) => {
      await p.stop();
      const f = join(labDir, 'pgbouncer', 'pgbouncer.log');
      if (existsSync(f)) copyFileSync(f, join(r.runDir, 'pgbouncer.log'));
    });
    front = { host: pgb.host, port: pgb.port };
  }
  const ttl = Math.max(1, Math.round(r.s.migration.dnsTtlMs / 1000));
  if (r.s.migration.switch === 'dns') dns.setRecord(DB_NAME, { targets: [{ address: oldFront.host, weight: 100 }, { address: newFront.host, weight: 0 }], ttl });
  else dns.setRecord(DB_NAME, { targets: [{ address: front.host, weight: 100 }], ttl });
  return { dns, pgb, oldFront, newFront, front };
}

export interface App {
  current: AppProcess | StartedUserApp;
  /** processes killed by a kill-app fault (their exit is not a finding) */
  killed: Set<AppProcess['child']>;
  restart(): Promise<void>;
  /** Epoch ms of each move to a new database address, over every process of the run; undefined: a user app (it does not say). */
  addressChangesMs(): number[] | undefined;
}

export async function startApp(r: RunState, f: Front, database: string): Promise<App> {
  const port = await freePort('127.0.0.1');
  if (r.s.app !== 'sample') return startOwnApp(r, f, port, r.s.app, database);
  const args = ['--host', '127.0.0.1', '--port', String(port), '--db-host', DB_NAME, '--db-port', String(f.front.port), '--user', APP_ROLE, '--database', database, '--dns', `127.0.0.1:${f.dns.dnsPort}`, '--retry', r.s.load.retry, '--retries', String(r.s.load.retries), '--no-create-tables',
    // pgbouncer (transaction mode, 1.18) hands the next write another server: no prepared statements there
    ...(r.s.migration.switch === 'pgbouncer' ? ['--no-prepared-statements'] : [])];
  const env = { CUTOVER_APP_DB_PASSWORD: r.appPassword };
  const started: AppProcess[] = [await startAppProcess(args, env, join(r.runDir, 'app.log'))];
  const app: App = {
    current: started[0],
    killed: new Set(),
    restart: async () => void started.push((app.current = await startAppProcess(args, env, join(r.runDir, 'app-restarted.log')))),
    addressChangesMs: () => started.flatMap((p) => p.events.filter((e) => e.event === 'db-address-changed' && typeof e.at === 'number').map((e) => e.at as number)).sort((a, b) => a - b),
  };
  // registered on the app handle, not the process: a restarted app is the one stopped
  await own(r, app, (a) => stopApp(a.current));
  return app;
}

export function toFaultSpecs(s: Scenario): FaultSpec[] {
  return s.faults.map((f) => ({
    kind: f.kind,
    hop: f.hop ?? undefined,
    target: f.target ?? undefined,
    atMs: f.atMs ?? undefined,
    phase: f.phase ?? undefined,
    durationMs: f.durationMs > 0 ? f.durationMs : undefined,
    // database faults take text (sql, table, mode); toxics keep only their numbers (FaultInjector.apply)
    attributes: Object.fromEntries(Object.entries(f.attributes).filter(([k, v]) => k !== 'stream' && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'))) as Record<string, number | string | boolean>,
    stream: (f.attributes as any).stream === 'upstream' ? 'upstream' : 'downstream',
  }));
}

export function toInjected(f: AppliedFault): InjectedFault {
  return {
    kind: f.kind,
    ...(f.hop ? { hop: f.hop } : {}),
    ...(f.target ? { target: f.target } : {}),
    ...(f.phase ? { phase: f.phase } : {}),
    atMs: Math.round(f.atMs),
    ...(f.durationMs !== undefined ? { durationMs: f.durationMs } : {}),
    ...(f.attributes && Object.keys(f.attributes).length ? { attributes: f.attributes } : {}),
    ...(f.error ? { error: f.error } : {}),
    ...(f.effect ? { effect: f.effect } : {}),
    ...(f.recovery ? { recovery: f.recovery } : {}),
    // the subscriber log's path and offset are the lab's business, not the report's
    ...(f.outcome ? { outcome: jsonSafe(Object.fromEntries(Object.entries(f.outcome).filter(([k]) => k !== 'logFile' && k !== 'logFromOffset'))) } : {}),
    ...(f.detection ? { detection: f.detection } : {}),
  };
}

/** Plain JSON (no undefined, no class instances): what report.json can hold. */
function jsonSafe(o: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(o));
}

/**
 * The faults as they went: every applied one, and every planned one that never fired (its phase
 * never started, or its time came after the load) — a fault the run did not inject is not a pass.
 */
export function faultsAsInjected(s: Scenario, applied: readonly AppliedFault[], loadMs: number): InjectedFault[] {
  const left = [...applied];
  const out = applied.map(toInjected);
  for (const f of toFaultSpecs(s)) {
    // side/table tell two faults of one kind at one phase apart (a lock on old and one on new)
    const same = (a: AppliedFault, k: 'side' | 'table') => String(a.attributes?.[k] ?? '') === String(f.attributes?.[k] ?? '');
    const i = left.findIndex((a) => a.kind === f.kind && a.hop === f.hop && a.target === f.target && a.phase === f.phase && same(a, 'side') && same(a, 'table'));
    if (i >= 0) {
      left.splice(i, 1);
      continue;
    }
    const when = f.phase ? `the switchover never started phase ${f.phase}` : `it was due at ${f.atMs ?? 0} ms, after the load had ended (${Math.round(loadMs)} ms)`;
    out.push({ ...toInjected({ ...f, atMs: f.atMs ?? loadMs, attributes: f.attributes }), error: `never fired: ${when}` });
  }
  return out;
}

/** Holder for the running switchover's kill, so a fault can reach it. */
export interface SwitchoverHandle {
  kill?: () => Promise<void>;
}

/** The app role's URL straight to the old cluster: long-transaction and burst run as a role the fence knows. */
export function oldAppUrl(r: RunState, lab: Lab): string {
  const u = new URL(lab.old.url);
  u.username = APP_ROLE;
  u.password = r.appPassword;
  return u.toString();
}

export async function armFaults(r: RunState, lab: Lab, app: App, sw: SwitchoverHandle): Promise<FaultInjector> {
  const faults = new FaultInjector(
    lab,
    toFaultSpecs(r.s),
    {
      killApp: async () => {
        app.killed.add(app.current.child);
        // a user app is killed with its whole process group (its shell and everything it started)
        if (isUser(app.current)) await app.current.kill();
        else app.current.child.kill('SIGKILL');
      },
      restartApp: () => app.restart(),
      killSwitchover: async () => {
        // a kill that finds no switchover running did not happen: say so, do not count it as applied
        if (!sw.kill) throw new Error('the switchover is not running at this moment (schedule the kill at a phase, or after load.switchAt)');
        await sw.kill();
      },
      oldAppUrl: oldAppUrl(r, lab),
      loadRate: r.s.load.rate,
      appPid: () => app.current.child.pid,
    },
    undefined,
    r.log,
  );
  r.faults = await own(r, faults, (f) => f.clear());
  return faults;
}

/** The scenario's own application (lab/app.ts): its database is what the switch moves. */
async function startOwnApp(r: RunState, f: Front, port: number, spec: Exclude<Scenario['app'], 'sample'>, database: string): Promise<App> {
  const host = r.s.migration.switch === 'dns' ? DB_NAME : f.front.host;
  const start = (log: string) =>
    startUserApp({
      spec: { command: spec.command, cwd: spec.cwd, env: spec.env, healthPath: spec.healthPath, readyTimeoutMs: spec.readyTimeoutMs },
      baseDir: r.s.file ? dirname(r.s.file) : process.cwd(),
      port,
      db: { host, port: f.front.port, user: APP_ROLE, password: r.appPassword, database },
      resolver: r.s.migration.switch === 'dns' ? f.dns.host : undefined,
      logFile: join(r.runDir, log),
      log: r.log,
    });
  const app: App = { current: await start('app.log'), killed: new Set(), restart: async () => void (app.current = await start('app-restarted.log')), addressChangesMs: () => undefined };
  await own(r, app, (a) => stopApp(a.current));
  return app;
}

const isUser = (a: AppProcess | StartedUserApp): a is StartedUserApp => 'stop' in a;
const stopApp = (a: AppProcess | StartedUserApp) => (isUser(a) ? a.stop() : stopAppProcess(a));

export interface Load {
  k6: Promise<K6Result>;
  /** Stop k6 before its scheduled end (load.during: sync, whose length is not known in advance). */
  stop: () => void;
  startMs: number;
  lagSamples: Array<{ tMs: number; bytes: number }>;
  front: Front;
  app: App;
  faults: FaultInjector;
  sw: SwitchoverHandle;
  /** Last commit count sampled on both clusters (for the commits/s progress figure). */
  lastCommits?: { t: number; n: number };
  /** The clusters' own timeline, sampled from the load start (same origin as the client's). */
  timeline: ClusterTimelineSampler;
  /** Its points, once the load is over (finishLoad). */
  clusterTimeline?: ClusterTimelinePoint[];
  /** After a switch with reverse replication: the reverse replication's figures (followReverse). */
  reverseTimeline?: ClusterTimelineSampler;
}

/**
 * After a switch that set up the reverse replication (new → old), the forward slot is gone: sample
 * the reverse one too, so the timeline goes on showing the slot, lag and apply that matter (the
 * rollback's catch-up waits on them). finishLoad merges it into the timeline.
 */
export async function followReverse(r: RunState, lab: Lab, load: Load): Promise<void> {
  const t = new ClusterTimelineSampler({
    source: lab.new.url,
    target: lab.old.url,
    name: 'main_reverse',
    t0: load.startMs,
    pids: { old: () => undefined, new: () => undefined },
  });
  t.start();
  load.reverseTimeline = t;
  await own(r, t, (x) => x.stop());
}

/**
 * The forward timeline with the reverse replication's slot, lag and apply figures in place of the
 * forward ones from the first reverse sample on (the sides' own figures — connections, CPU, ages —
 * stay the forward sampler's, whose old and new are the clusters' names).
 */
export function mergeReverse(forward: readonly ClusterTimelinePoint[], reverse: readonly ClusterTimelinePoint[]): ClusterTimelinePoint[] {
  if (!reverse.length) return [...forward];
  const from = reverse[0].tMs;
  return forward.map((p) => {
    if (p.tMs < from - 500) return p;
    let best: ClusterTimelinePoint | undefined;
    for (const q of reverse) if (Math.abs(q.tMs - p.tMs) <= 600 && (!best || Math.abs(q.tMs - p.tMs) < Math.abs(best.tMs - p.tMs))) best = q;
    if (!best) return p;
    return { ...p, walRetainedBytes: best.walRetainedBytes, lagBytes: best.lagBytes, lagSeconds: best.lagSeconds, applyState: best.applyState, applyErrorCount: best.applyErrorCount, xminAge: best.xminAge, replication: 'reverse' };
  });
}

/** Front, app, faults and k6 — the load, with replication lag and commit rate sampled each second. */
export async function startLoad(r: RunState, lab: Lab, labDir: string, open: boolean): Promise<Load> {
  const front = await startFront(r, lab, labDir);
  // through pgbouncer the app names its alias `app`; otherwise the database itself
  const app = await startApp(r, front, r.s.migration.switch === 'pgbouncer' ? 'app' : appDatabase(lab));
  const sw: SwitchoverHandle = {};
  const faults = await armFaults(r, lab, app, sw);
  enter(r, 'load');
  const s = r.s;
  // load.during sync runs until the rehearsal stops it: k6's arrival-rate executor cannot be
  // extended once started, so it is given the longest the run may need
  const durationMs = open ? SYNC_TIMEOUT_MS + s.load.durationMs + 60_000 : s.load.durationMs;
  const stopper = new AbortController();
  const onAbort = () => stopper.abort();
  r.ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const startMs = Date.now();
  r.loadStartMs = startMs;
  const k6 = runK6({
    script: resolve(PROJECT_ROOT, s.load.script),
    outDir: r.runDir,
    env: { APP_URL: app.current.url, RATE: s.load.rate, DURATION: `${Math.round(durationMs / 1000)}s`, READ_RATIO: s.load.readRatio, RUN_ID: r.runId, MAX_VUS: s.load.maxVus },
    signal: stopper.signal,
  });
  k6.catch(() => {});
  // (the promise goes in a box: an async function returning a promise would wait for it)
  await own(r, { k6 }, async (v) => {
    stopper.abort();
    r.ctx.signal?.removeEventListener('abort', onAbort);
    await v.k6.catch(() => {});
  });
  faults.start(startMs);
  // faults with a duration end with the load at the latest, even while the switchover still runs (a
  // server paused for longer than the load must not hold a switchover, and the run, until it resumes)
  if (!open) await own(r, setTimeout(() => void faults.cancelPending(), durationMs + 500), (t) => clearTimeout(t));
  const timeline = new ClusterTimelineSampler({
    source: lab.old.url,
    target: lab.new.url,
    t0: startMs,
    // asked at every sample: a postmaster restarted after a kill fault has a new pid
    pids: { old: () => (lab.old.record.pid ? [lab.old.record.pid] : undefined), new: () => (lab.new.record.pid ? [lab.new.record.pid] : undefined) },
  });
  timeline.start();
  r.timeline = timeline;
  await own(r, timeline, (t) => t.stop());
  const load: Load = { k6, stop: () => stopper.abort(), startMs, lagSamples: [], front, app, faults, sw, timeline };
  const timer = setInterval(() => void sampleLag(r, lab, load), 1000);
  await own(r, timer, (t) => clearInterval(t));
  // torn down before the samplers and k6 (the stack runs in reverse): they may be waiting for an
  // answer from a server a pause fault stopped, and would wait for ever (an interrupted run hung so)
  await own(r, faults, (f) => f.resumePaused());
  return load;
}

async function sampleLag(r: RunState, lab: Lab, load: Load): Promise<void> {
  let bytes: number | null = null;
  try {
    const l = await lag({ source: lab.old.url });
    bytes = l.bytes;
    if (l.bytes !== null) load.lagSamples.push({ tMs: Date.now(), bytes: l.bytes });
  } catch {}
  let n = 0;
  for (const url of [lab.old.url, lab.new.url])
    n += await withClient(url, async (c) => Number((await c.query(`select sum(xact_commit)::bigint as n from pg_stat_database`)).rows[0].n), { connectTimeoutMs: 1000 }).catch(() => 0);
  const now = Date.now();
  const last = load.lastCommits;
  const rate = last ? Math.max(0, ((n - last.n) * 1000) / (now - last.t)) : undefined;
  load.lastCommits = { t: now, n };
  r.ctx.progress(r.index, r.step, { okPerSec: rate === undefined ? undefined : Math.round(rate), lagBytes: bytes });
}

// ---- switchover, end of load ---------------------------------------------------------------------

export interface SwitchoverStep extends SwitchoverRun {
  info?: Run['switchover'];
}

/**
 * Wait until `atMs` (epoch), then run `cutover switchover` as a child; phase events arm faults.
 * `rollback`: `cutover rollback` with the same flags (the machine in reverse over the reverse
 * replication), its own state file; phase-bound faults belong to the forward leg and do not fire again.
 */
export async function switchoverStep(r: RunState, lab: Lab, load: Load, atMs: number, direction: 'forward' | 'rollback' = 'forward'): Promise<SwitchoverStep> {
  await waitUntil(r, atMs, direction === 'forward' ? 'switchover' : 'rollback');
  const forward = direction === 'forward';
  enter(r, forward ? 'switchover' : 'rollback');
  const s = r.s;
  const sw = s.migration.switch;
  const { dns, pgb, oldFront, newFront } = load.front;
  const stateFile = join(r.runDir, forward ? 'switchover.json' : 'rollback.json');
  const args = [
    '--switch', sw,
    '--fence', s.migration.fence,
    '--app-roles', APP_ROLE,
    '--state', stateFile,
    '--max-lag-bytes', String(s.migration.lag.maxBytes),
    '--max-lag-seconds', String(s.migration.lag.maxSeconds),
    '--lag-timeout', String(s.migration.lag.timeoutMs),
    '--sequence-buffer', String(s.migration.sequenceBuffer),
    '--json',
    ...(s.migration.reverseReplication && forward ? ['--reverse'] : []),
    ...(s.migration.fenceGraceMs ? ['--fence-grace', String(s.migration.fenceGraceMs)] : []),
    ...(s.migration.readiness ? [] : ['--no-readiness']),
    // the record's addresses are the proxies in front of old and new, not the clusters themselves
    ...(sw === 'dns' ? ['--dns-admin', dns.adminUrl, '--dns-name', DB_NAME, '--dns-old-address', oldFront.host, '--dns-new-address', newFront.host] : []),
    ...(sw === 'proxy' ? ['--proxy-api', lab.toxiproxy!.record.apiUrl, '--proxy-name', 'app-old'] : []),
    ...(sw === 'pgbouncer' ? ['--pgbouncer-admin', pgb!.adminUrl, '--pgbouncer-ini', pgb!.iniFile, '--pgbouncer-db', 'app'] : []),
    ...(sw === 'command' && s.migration.switchCommand ? ['--command', s.migration.switchCommand] : []),
  ];
  // torn down first of all on Ctrl-C: a switchover still running must not outlive the lab it moves
  await own(r, load.sw, (h) => h.kill?.());
  const so = await runSwitchoverChild({
    args,
    command: forward ? 'switchover' : 'rollback',
    env: { CUTOVER_SOURCE_URL: lab.old.url, CUTOVER_TARGET_URL: lab.new.url },
    stateFile,
    onPhaseStart: forward ? (phase) => load.faults.onPhase(phase) : async () => {},
    register: (kill) => (load.sw.kill = kill),
    log: r.log,
  });
  if (forward) r.phases = so.phases;
  const res = so.result;
  const info: Run['switchover'] = res
    ? {
        ...(res.lagAtFence?.bytes != null ? { lagAtFenceBytes: res.lagAtFence.bytes } : {}),
        ...(res.sentinelLatencyMs !== undefined ? { sentinelMs: res.sentinelLatencyMs } : {}),
        ...(res.sequences ? { sequences: res.sequences.map((m: any) => ({ name: m.sequence, old: Number(m.source ?? m.before ?? 0), new: Number(m.value) })) } : {}),
      }
    : undefined;
  return { ...so, info };
}

/** Let the load run to its end (or stop it at `stopAtMs`); no fault fires after it. */
export async function finishLoad(r: RunState, load: Load, stopAtMs?: number): Promise<{ k6: K6Result; endMs: number; error?: string }> {
  enter(r, 'load (after switch)');
  if (stopAtMs !== undefined) {
    await waitUntil(r, stopAtMs, 'load (after switch)').catch(() => {});
    load.stop();
  }
  const k6 = await load.k6;
  const endMs = Date.now();
  load.clusterTimeline = await load.timeline.stop().catch((e) => {
    r.log(`cluster timeline: ${describeError(e)}`);
    return load.timeline.snapshot();
  });
  if (load.reverseTimeline) {
    const rev = load.reverseTimeline;
    load.clusterTimeline = mergeReverse(load.clusterTimeline, await rev.stop().catch(() => rev.snapshot()));
  }
  if (load.timeline.errors.length) r.log(`cluster timeline: ${load.timeline.errors.length} sample(s) failed, first: ${load.timeline.errors[0]}`);
  // faults "until the end of the run" (a server killed for good) hold while the run is measured;
  // the stack removes them at teardown
  await load.faults.cancelPending();
  // The app dying on its own (not by a kill fault) is a finding in itself, whatever k6 saw.
  const app = load.app.current;
  // (a process killed by a signal has no exit code: its signal says how it ended)
  const { exitCode, signalCode } = app.child;
  if ((exitCode !== null || signalCode !== null) && !load.app.killed.has(app.child)) {
    await sleep(100);
    const how = exitCode !== null ? `code ${exitCode}` : `signal ${signalCode}`;
    if (isUser(app)) return { k6, endMs, error: `the app exited during the load (${how}); its last output lines: ${app.tail(5).replace(/\n/g, ' | ') || '(none)'}` };
    const logFile = join(r.runDir, 'app.log');
    const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => /error|Error/.test(l)).slice(0, 3).join(' | ') : '';
    return { k6, endMs, error: `the sample app exited during the load (${how})${tail ? `: ${tail}` : ''}` };
  }
  return { k6, endMs };
}

// ---- after the load: what the faults left, and the replication objects --------------------------

/**
 * Conflict faults: what the subscriber shows now (stats, disabled subscription, its log's ERROR
 * line and the failed transaction's finish LSN), and the recovery text with that LSN filled in.
 * Run when the load is over, whether the switchover went through, aborted at catch-up or at the
 * sentinel.
 */
export async function detectFaultConflicts(r: RunState, lab: Lab, applied: readonly AppliedFault[]): Promise<void> {
  for (const f of applied) {
    if (f.kind !== 'conflict' || f.error || !f.outcome) continue;
    const o = f.outcome as { table?: string; pk?: string; keys?: Array<string | number>; logFile?: string; logFromOffset?: number };
    try {
      const d = await detectConflict({ oldUrl: lab.old.url, newUrl: lab.new.url, logFile: o.logFile, logFromOffset: o.logFromOffset });
      f.detection = { detected: d.detected, via: d.via, ...(d.message ? { message: d.message } : {}), ...(d.finishLsn ? { finishLsn: d.finishLsn } : {}) };
      if (o.table && o.pk && o.keys) f.recovery = conflictRecovery({ subscription: objectNames().subscription, table: o.table, pk: o.pk, keys: o.keys, targetMajor: r.s.clusters.new.major, finishLsn: d.finishLsn });
      r.log(`conflict on ${o.table}: ${d.detected ? `detected via ${d.via.join(', ')}` : 'not detected'}${d.message ? ` (${d.message})` : ''}`);
    } catch (e) {
      f.detection = { detected: false, via: [`the subscriber could not be read: ${describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0]}`] };
    }
  }
}

/**
 * Remove the forward replication (and the reverse one a switch set up), as `cutover replicate stop`
 * does, and say what could not be removed: a fault that leaves a slot, publication or subscription
 * behind (a slot held by a worker that never exits, a subscription that cannot be dropped) is a
 * finding, whatever the lab's teardown would have hidden.
 */
export async function cleanupReplication(r: RunState, lab: Lab): Promise<NonNullable<Run['cleanup']>> {
  enter(r, 'cleanup');
  const dropped: string[] = [];
  const remaining: string[] = [];
  const notes: string[] = [];
  // a side that does not answer (killed for good by a fault) cannot be cleaned or checked: say so
  // at once rather than wait out stop's connect timeouts on it
  const down: string[] = [];
  for (const [side, url] of [['old', lab.old.url], ['new', lab.new.url]] as const)
    if (!(await withClient(url, async () => true, { connectTimeoutMs: 3000 }).catch(() => false))) down.push(side);
  if (down.length) {
    for (const side of down) remaining.push(`not checked: the ${side} primary did not answer at the end of the run (its slots, publications and subscriptions may remain)`);
    r.log(`cleanup: ${remaining.join('; ')}`);
    return { dropped, remaining };
  }
  for (const leg of [
    { name: 'main', source: lab.old.url, target: lab.new.url },
    { name: 'main_reverse', source: lab.new.url, target: lab.old.url },
  ]) {
    try {
      const res = await stopReplication({ source: leg.source, target: leg.target, name: leg.name });
      dropped.push(...res.dropped);
      remaining.push(...res.remaining);
      notes.push(...res.notes);
    } catch (e) {
      remaining.push(`${leg.name}: ${describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0]}`);
    }
  }
  // stop says what it removed; look for ourselves too (a name it did not know about)
  for (const [side, url] of [['old', lab.old.url], ['new', lab.new.url]] as const) {
    try {
      const left = await withClient(url, async (c) => {
        const q = async (sql: string) => (await c.query<{ n: string }>(sql)).rows.map((x) => x.n);
        return [
          ...(await q(`select 'slot ' || slot_name as n from pg_replication_slots where slot_name like 'cutover%' or slot_name like 'pg_%_sync_%'`)),
          ...(await q(`select 'publication ' || pubname as n from pg_publication where pubname like 'cutover%'`)),
          ...(await q(`select 'subscription ' || subname as n from pg_subscription where subname like 'cutover%'`)),
        ];
      });
      for (const x of left) if (!remaining.includes(`${x} on ${side}`)) remaining.push(`${x} on ${side}`);
    } catch (e) {
      remaining.push(`the ${side} primary could not be checked: ${describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0]}`);
    }
  }
  if (remaining.length) r.log(`cleanup: left behind: ${remaining.join(', ')}`);
  return { dropped, remaining, ...(notes.length ? { notes } : {}) };
}

/**
 * What the faults and the switchover left, once every fault has been removed (FaultInjector.clear:
 * servers restarted, processes resumed, locks, slots and connections released, toxics deleted): a
 * process still stopped, a toxic still on a proxy or a proxy still disabled, a fault's role or
 * session still on a server, max_slot_wal_keep_size still the fault's, and traffic half-switched
 * (the record or the app role's login not where the switchover's outcome says traffic is). Each is
 * a line for the run's cleanup.remaining — it fails the run, named.
 */
export async function faultLeftovers(r: RunState, lab: Lab, load: Load, outcome: string | undefined): Promise<string[]> {
  const left: string[] = [];
  const why = (e: unknown) => describeError(e).replace(/^error(\[\w+\])?: /, '').split('\n')[0];
  const stopped = stoppedPids();
  if (stopped.length) left.push(`fault leftover: process(es) ${stopped.join(', ')} still stopped (SIGSTOP)`);
  if (lab.toxiproxy) {
    try {
      const res = await fetch(`${lab.toxiproxy.record.apiUrl}/proxies`, { signal: AbortSignal.timeout(5000) });
      const proxies = (await res.json()) as Record<string, { enabled: boolean; toxics?: Array<{ name: string; type: string }> }>;
      for (const [name, p] of Object.entries(proxies)) {
        if (!p.enabled) left.push(`fault leftover: proxy ${name} still disabled`);
        for (const t of p.toxics ?? []) left.push(`fault leftover: toxic ${t.name} (${t.type}) still on proxy ${name}`);
      }
    } catch (e) {
      left.push(`fault leftover: Toxiproxy could not be checked: ${why(e)}`);
    }
  }
  const slotLoss = load.faults.applied.filter((f) => f.kind === 'slot-loss' && !f.error);
  for (const [side, url] of [['old', lab.old.url], ['new', lab.new.url]] as const) {
    try {
      await withClient(url, async (c) => {
        for (const x of (await c.query<{ n: string }>(`select rolname as n from pg_roles where rolname like 'lab\_fault\_conn\_%'`)).rows) left.push(`fault leftover: role ${x.n} on ${side}`);
        // a session the fault closed a moment ago may still be exiting: give it a few seconds
        let sessions: Array<{ pid: number; a: string }> = [];
        for (let i = 0; i < 20; i++) {
          sessions = (await c.query<{ pid: number; a: string }>(`select pid, application_name as a from pg_stat_activity where application_name like 'cutover-fault-%' and pid <> pg_backend_pid()`)).rows;
          if (!sessions.length) break;
          await sleep(150);
        }
        for (const x of sessions) left.push(`fault leftover: session ${x.pid} (${x.a}) on ${side}`);
        if (side === 'old' && slotLoss.length) {
          const sizes = slotLoss.map((f) => `${f.attributes?.size ?? 1}MB`);
          const auto = (await c.query<{ v: string }>(`select setting as v from pg_file_settings where name = 'max_slot_wal_keep_size' and sourcefile like '%postgresql.auto.conf' and applied`).catch(() => ({ rows: [] as { v: string }[] }))).rows[0]?.v;
          if (auto !== undefined && sizes.includes(auto)) left.push(`fault leftover: max_slot_wal_keep_size is still the slot-loss fault's ${auto} on old`);
        }
        // traffic not half-switched: the app role can log in where traffic is, and only there
        if (outcome === 'completed' || outcome === 'rolled-back') {
          const serving = outcome === 'completed' ? 'new' : 'old';
          const role = (await c.query<{ login: boolean; ro: boolean }>(
            `select r.rolcanlogin as login, exists (select 1 from pg_db_role_setting s where s.setrole = r.oid and 'default_transaction_read_only=on' = any(s.setconfig))
                    or exists (select 1 from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase where s.setrole = 0 and d.datname = current_database() and 'default_transaction_read_only=on' = any(s.setconfig)) as ro
               from pg_roles r where r.rolname = $1`, [APP_ROLE])).rows[0];
          if (side === serving && role && (!role.login || role.ro)) left.push(`traffic half-switched: the switchover ended ${outcome}, but the app role cannot write on ${side} (${!role.login ? 'NOLOGIN' : 'read-only'})`);
        }
      }, { role: `${side} primary`, connectTimeoutMs: 5000 });
    } catch (e) {
      left.push(`fault leftover: the ${side} primary could not be checked for what the faults left: ${why(e)}`);
    }
  }
  if ((outcome === 'completed' || outcome === 'rolled-back') && r.s.migration.switch === 'dns') {
    const rec = load.front.dns.getRecord(DB_NAME);
    const want = outcome === 'completed' ? load.front.newFront.host : load.front.oldFront.host;
    const top = rec?.targets.filter((t) => t.weight > 0).map((t) => t.address) ?? [];
    if (top.length !== 1 || top[0] !== want) left.push(`traffic half-switched: the switchover ended ${outcome}, but ${DB_NAME} answers ${top.join(', ') || 'nothing'} (expected ${want} only)`);
  }
  if (left.length) r.log(`left behind: ${left.join('; ')}`);
  return left;
}
