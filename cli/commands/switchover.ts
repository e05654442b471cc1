/**
 * `cutover switchover`: run the switchover state machine (migration/switchover/run.ts) and print
 * its result. `--dry-run` prints the plan and changes nothing; `--resume` continues from --state.
 */
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { describePlan } from '../../migration/switchover/plan.ts';
import { PHASES } from '../../migration/switchover/state.ts';
import { switchover, type SwitchoverOptions, type SwitchoverResult } from '../../migration/switchover/run.ts';
import { makeSwitch, switchConfigFromFlags } from '../../migration/switch/index.ts';
import { formatEvent, type PhaseEvent } from '../../migration/switchover/events.ts';
import { emit, ExitCode, note } from '../output.ts';
import { integer, oneOf, parseOptions, replicationName, SOURCE, TARGET } from '../options.ts';

/** Parsed (and checked) before anything connects: every bad option is one USAGE error, exit 2. */
const schema = {
  source: SOURCE,
  target: TARGET,
  fence: oneOf('--fence', ['terminate', 'read-only', 'pause'] as const, 'terminate'),
  fenceScope: oneOf('--fence-scope', ['roles', 'database'] as const, 'roles'),
  fenceGrace: (raw: unknown) => (raw === undefined ? undefined : integer('--fence-grace', { min: 0, unit: 'ms' })(raw, process.env)),
  name: replicationName(),
  maxLagBytes: integer('--max-lag-bytes', { min: 0, unit: 'bytes' }),
  maxLagSeconds: (raw: unknown) => {
    // decimals allowed (a scenario may ask for 0.5 s)
    const v = String(raw ?? '').trim();
    if (!/^\d+(\.\d+)?$/.test(v)) throw new CutoverError('USAGE', `--max-lag-seconds must be a number of seconds ≥ 0 (got "${v}")`, { hint: 'e.g. --max-lag-seconds 5' });
    return Number(v);
  },
  lagTimeout: integer('--lag-timeout', { min: 1, unit: 'ms' }),
  sequenceBuffer: integer('--sequence-buffer', { min: 0 }),
  maxHold: integer('--max-hold', { min: 1, max: 3_600_000, unit: 'ms', default: 5000 }),
  allowUnfenced: (raw: unknown) => {
    const given = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) as string[];
    const roles = given.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
    if (given.length && !roles.length) throw new CutoverError('USAGE', '--allow-unfenced is empty', { hint: 'name the roles, e.g. --allow-unfenced dba,reporting' });
    return roles.length ? roles : undefined;
  },
  dnsTtl: (raw: unknown, env: NodeJS.ProcessEnv) => (raw === undefined ? undefined : integer('--dns-ttl', { min: 0, max: 2_147_483_647, unit: 'seconds' })(raw, env)),
};

/** Options shared by `switchover` and `rollback`. */
export function switchoverOptions(cmd: Command): Command {
  return cmd
    // URLs may come from the environment so that passwords stay out of `ps` and shell history
    // URLs may come from the environment (CUTOVER_SOURCE_URL/CUTOVER_TARGET_URL, PGPASSWORD, a
    // passfile, a service): parsed by cli/options.ts before anything connects
    .addOption(new Option('--source <url>', 'the old primary (superuser or a role that can ALTER ROLE and read pg_replication_slots; URL or key=value conninfo; env CUTOVER_SOURCE_URL)'))
    .addOption(new Option('--target <url>', 'the new primary (URL or key=value conninfo; env CUTOVER_TARGET_URL)'))
    .option('--switch <strategy>', 'dns | proxy | pgbouncer | command', 'dns')
    .option('--fence <strategy>', 'terminate | read-only | pause', 'terminate')
    .option('--fence-scope <scope>', 'read-only fence: roles | database', 'roles')
    .option('--fence-grace <ms>', 'terminate fence: in-flight transactions get up to <ms> to finish before they are terminated; idle sessions are ended at once (default: all at once)')
    .option('--state <file>', 'state file (JSON, rewritten after every phase)')
    .option('--dry-run', 'print the plan and what it would change; change nothing')
    .option('--resume', 'continue the run recorded in --state')
    .option('--abort', 'undo what --state records (switch back, unfence) and end the run')
    .option('--reverse', 'set up reverse replication (new → old) so that `cutover rollback` loses nothing')
    .option('--no-readiness', 'skip the readiness phase (ANALYZE and warm-up of the target before the fence)')
    .option('--warmup <file>', 'SQL statements replayed read-only on the target before the fence when pg_prewarm is not installed there')
    .option('--app-roles <roles>', 'comma-separated application roles to fence; group roles are expanded to their members (default: the login roles that use this database, except superusers, replication roles and ours)')
    .option('--allow-unfenced <role,...>', 'accept that these roles keep sessions on the database the fence does not reach (superusers, REPLICATION roles, the connecting role, unlisted roles); repeatable. Without it such sessions make preflight refuse (split brain)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--name <name>', 'replication name (objects cutover_<name>)', 'main')
    .option('--max-lag-bytes <n>', 'catch-up threshold in bytes', '262144')
    .option('--max-lag-seconds <n>', 'catch-up threshold in seconds', '5')
    .option('--lag-timeout <ms>', 'give up waiting for catch-up after this many ms', '300000')
    .option('--sequence-buffer <n>', 'added to every source sequence value on the target', '1000')
    .option('--phase-timeout <phase=ms...>', 'per-phase timeouts, e.g. sentinel=30000 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--dns-admin <url>', 'dns switch: the DNS server admin API (e.g. http://127.0.0.1:8053)')
    .option('--dns-name <name>', 'dns switch: the record to move (e.g. db.lab.internal)')
    .option('--dns-ttl <s>', 'dns switch: TTL to set on the record (default: keep it, else 1)')
    .option('--dns-old-address <ip>', 'dns switch: A-record address of the old side (default: the host of --source)')
    .option('--dns-new-address <ip>', 'dns switch: A-record address of the new side (default: the host of --target)')
    .option('--proxy-api <url>', 'proxy switch: the Toxiproxy API (e.g. http://127.0.0.1:8474)')
    .option('--proxy-name <name>', 'proxy switch: the proxy whose upstream moves')
    .option('--proxy-old-upstream <host:port>', 'proxy switch: upstream of the old side (default: the source host:port)')
    .option('--proxy-new-upstream <host:port>', 'proxy switch: upstream of the new side (default: the target host:port)')
    .option('--pgbouncer-admin <url>', 'pgbouncer switch: admin console URL (…/pgbouncer)')
    .option('--pgbouncer-ini <file>', 'pgbouncer switch: the pgbouncer.ini to rewrite')
    .option('--max-hold <ms>', 'pause fence: pgbouncer releases a query held longer than this with an error (query_wait_timeout, restored after); never held forever', '5000')
    .option('--pgbouncer-db <alias>', 'pgbouncer switch: the [databases] alias (default: the source database name)')
    .option('--command <cmd>', 'command switch: run with CUTOVER_PHASE, CUTOVER_SIDE, CUTOVER_TO_HOST… in the environment (in its own process group: a timed-out switch is killed with its children)')
    .option('--check-command <cmd>', 'command switch: prints `old` or `new`, where traffic points now; lets a timed-out switch be resolved instead of stopping the run')
    .option('--events-fd <n>', 'write one JSON line per phase-start / phase-end / undo / run event to this open file descriptor (migration/switchover/events.ts)')
    .option('--hold <phase=ms>', 'rehearsal fault injection: wait this long right after the phase starts (to kill or break something mid-phase)')
    .option('--json', 'print the result as JSON');
}

const num = (v: string, flag: string): number => {
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CutoverError('USAGE', `${flag} must be a number ≥ 0 (got ${v})`);
  return n;
};

export function toOptions(raw: any, direction: 'forward' | 'rollback', env: NodeJS.ProcessEnv = process.env): SwitchoverOptions {
  const opts = { ...raw, ...parseOptions(schema, raw, env) };
  const timeouts: Record<string, number> = {};
  for (const t of opts.phaseTimeout as string[]) {
    const [k, v] = t.split('=');
    if (!(PHASES as readonly string[]).includes(k)) throw new CutoverError('USAGE', `--phase-timeout names no phase: ${k}`, { hint: `one of ${PHASES.join(', ')}, e.g. --phase-timeout sentinel=30000` });
    timeouts[k] = num(v ?? '', `--phase-timeout ${k}`);
  }
  const name = opts.name as string;
  const forward = direction === 'forward';
  return {
    // a rollback runs the same machine with the data flowing new → old
    source: forward ? opts.source : opts.target,
    target: forward ? opts.target : opts.source,
    direction,
    name: forward ? name : `${name}_reverse`,
    reverseName: forward ? `${name}_reverse` : name,
    switch: makeSwitch(switchConfigFromFlags(opts.switch, opts)),
    fence: opts.fence,
    fenceScope: opts.fenceScope,
    fenceGrace: opts.fenceGrace,
    allowUnfenced: opts.allowUnfenced,
    // `--app-roles ''` is an explicit empty list (refused unless --allow-unfenced '*')
    appRoles: opts.appRoles !== undefined ? String(opts.appRoles).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined,
    lag: { maxBytes: opts.maxLagBytes, maxSeconds: opts.maxLagSeconds, timeoutMs: opts.lagTimeout },
    sequenceBuffer: opts.sequenceBuffer,
    stateFile: opts.state ?? (forward ? 'cutover-switchover.json' : 'cutover-rollback.json'),
    dryRun: !!opts.dryRun,
    resume: !!opts.resume,
    abort: !!opts.abort,
    reverse: !!opts.reverse,
    readiness: opts.readiness !== false,
    warmupSql: opts.warmup ? readWarmup(String(opts.warmup)) : undefined,
    timeouts,
    log: opts.json ? undefined : note,
    hooks: opts.hold ? holdHook(String(opts.hold)) : undefined,
    onEvent: opts.eventsFd === undefined ? undefined : eventWriter(String(opts.eventsFd)),
  };
}

function readWarmup(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e: any) {
    throw new CutoverError('USAGE', `--warmup ${file}: ${e?.code === 'ENOENT' ? 'no such file' : e?.message}`, { hint: 'a file of SQL read queries (SELECT …;), replayed once each on the target before the fence' });
  }
}

/** Events as JSON lines on an inherited file descriptor (the rehearsal passes a pipe as fd 3). */
function eventWriter(spec: string): (e: PhaseEvent) => void {
  const fd = Number(spec);
  if (!Number.isInteger(fd) || fd < 1) throw new CutoverError('USAGE', `--events-fd must be an open file descriptor number (got ${spec})`);
  try {
    fstatSync(fd);
  } catch {
    throw new CutoverError('USAGE', `--events-fd ${fd} is not an open file descriptor`, { hint: 'spawn the switchover with that fd open (e.g. stdio[3] = "pipe" and --events-fd 3)' });
  }
  let broken = false;
  return (e) => {
    if (broken) return;
    const line = Buffer.from(formatEvent(e));
    // a pipe may be non-blocking: retry a full pipe, but a reader that went away must not stop the switchover
    for (let off = 0, tries = 0; off < line.length && tries < 10_000; tries++) {
      try {
        off += writeSync(fd, line, off);
      } catch (err: any) {
        if (err?.code === 'EAGAIN') continue;
        broken = true;
        note(`--events-fd ${fd}: cannot write events any more (${err?.code ?? err}); the switchover goes on`);
        return;
      }
    }
  };
}

function holdHook(spec: string): NonNullable<SwitchoverOptions['hooks']> {
  const [phase, ms] = spec.split('=');
  if (!(PHASES as readonly string[]).includes(phase)) throw new CutoverError('USAGE', `--hold names no phase: ${phase}`, { hint: `one of ${PHASES.join(', ')}` });
  const wait = num(ms ?? '0', '--hold');
  return { onPhase: async (name, event) => void (name === phase && event === 'start' && (await new Promise((r) => setTimeout(r, wait)))) };
}

export function formatResult(r: SwitchoverResult): string {
  if (r.dryRun) {
    const lines = [describePlan(r.plan), '', `app roles to fence: ${r.appRoles?.join(', ') || '(none found)'}`];
    for (const w of r.warnings ?? []) lines.push(`warning: ${w}`);
    if (r.lagAtFence) lines.push(`current lag: ${JSON.stringify(r.lagAtFence)}`);
    if (r.switch.from) lines.push(`traffic now points at: ${r.switch.from}`);
    for (const m of r.sequences ?? []) lines.push(`  sequence ${m.sequence}: target ${m.before ?? '-'} → ${m.value}${m.changed ? '' : ' (unchanged)'}${m.note ? ` (${m.note})` : ''}`);
    if (r.error) lines.push(r.error.code === 'PRECONDITION' ? `the switchover would refuse: ${r.error.message}${r.error.hint ? `\n  hint: ${r.error.hint}` : ''}` : `could not read the servers: ${r.error.message}`);
    lines.push('dry run: nothing was changed');
    return lines.join('\n');
  }
  const lines = [`switchover ${r.direction} ${r.outcome} in ${(r.durationMs / 1000).toFixed(1)} s (run ${r.runId}, state ${r.stateFile})`];
  for (const p of r.phases) lines.push(`  ${p.name.padEnd(10)} ${String(p.outcome).padEnd(8)} ${p.ms !== undefined ? `${p.ms} ms` : ''}${p.attempts > 1 ? ` (${p.attempts} attempts)` : ''}${p.error ? `  ${p.error}` : ''}`);
  for (const w of r.warnings ?? []) lines.push(`  warning: ${w}`);
  if (r.lagAtFence) lines.push(`lag at fence: ${r.lagAtFence.bytes ?? '?'} bytes, ${r.lagAtFence.seconds ?? '?'} s`);
  if (r.sentinelLatencyMs !== undefined) lines.push(`sentinel latency: ${r.sentinelLatencyMs} ms`);
  if (r.writeUnavailableMs !== undefined) lines.push(`writes fenced for: ${r.writeUnavailableMs} ms (fence → switch done)`);
  const moved = (r.sequences ?? []).filter((m) => m.changed);
  if (r.sequences) lines.push(`sequences: ${moved.length} moved of ${r.sequences.length}`);
  for (const m of moved.slice(0, 20)) lines.push(`  ${m.sequence}: ${m.before ?? '-'} → ${m.value} (source ${m.source ?? '-'})`);
  lines.push(`switch: ${r.switch.strategy} → ${r.switch.to}`);
  if (r.outcome === 'stopped') lines.push('STOPPED past the point of no return: the old side stays fenced until this is resolved');
  if (r.error) lines.push(`error in ${r.error.phase ?? 'run'}: ${r.error.message}${r.error.hint ? `\n  hint: ${r.error.hint}` : ''}`);
  lines.push(`next: ${r.next}`);
  return lines.join('\n');
}

export async function runAndPrint(opts: any, direction: 'forward' | 'rollback'): Promise<void> {
  const r = await switchover(toOptions(opts, direction));
  emit(opts.json, r, () => formatResult(r));
  // 2 = nothing could be checked (connection, usage); 1 = the switchover did not complete
  if (r.error && ['CONNECT', 'AUTH', 'USAGE', 'CONFIG'].includes(r.error.code) && r.outcome !== 'rolled-back') throw new ExitCode(2);
  // a dry run that shows the run would refuse (e.g. an unfenced writer) is not a green light
  if (!r.ok || (r.dryRun && r.error?.code === 'PRECONDITION')) throw new ExitCode(1);
}

export function register(program: Command): void {
  switchoverOptions(
    program
      .command('switchover')
      .description('move the primary from the source to the target: catch up, fence, sentinel, sequences, switch, verify (resumable)'),
  ).action((opts) => runAndPrint(opts, 'forward'));
}
