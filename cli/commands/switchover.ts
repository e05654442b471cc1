/**
 * `cutover switchover`: run the switchover state machine (migration/switchover/run.ts) and print
 * its result. `--dry-run` prints the plan and changes nothing; `--resume` continues from --state.
 */
import { Option, type Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { describePlan } from '../../migration/switchover/plan.ts';
import { PHASES } from '../../migration/switchover/state.ts';
import { switchover, type SwitchoverOptions, type SwitchoverResult } from '../../migration/switchover/run.ts';
import { makeSwitch } from '../../migration/switch/index.ts';
import { emit, ExitCode, note } from '../output.ts';
import { writeSync } from 'node:fs';
import { formatEvent } from '../../migration/switchover/events.ts';

/** Options shared by `switchover` and `rollback`. */
export function switchoverOptions(cmd: Command): Command {
  return cmd
    // URLs may come from the environment so that passwords stay out of `ps` and shell history
    .addOption(new Option('--source <url>', 'the old primary (superuser or a role that can ALTER ROLE and read pg_replication_slots)').env('CUTOVER_SOURCE_URL').makeOptionMandatory())
    .addOption(new Option('--target <url>', 'the new primary').env('CUTOVER_TARGET_URL').makeOptionMandatory())
    .option('--switch <strategy>', 'dns | proxy | pgbouncer | command', 'dns')
    .option('--fence <strategy>', 'terminate | read-only | pause', 'terminate')
    .option('--fence-scope <scope>', 'read-only fence: roles | database', 'roles')
    .option('--state <file>', 'state file (JSON, rewritten after every phase)')
    .option('--dry-run', 'print the plan and what it would change; change nothing')
    .option('--resume', 'continue the run recorded in --state')
    .option('--abort', 'undo what --state records (switch back, unfence) and end the run')
    .option('--reverse', 'set up reverse replication (new → old) so that `cutover rollback` loses nothing')
    .option('--app-roles <roles>', 'comma-separated application roles to fence (default: every login role except superusers, replication roles and ours)')
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
    .option('--pgbouncer-db <alias>', 'pgbouncer switch: the [databases] alias (default: the source database name)')
    .option('--command <cmd>', 'command switch: run with CUTOVER_PHASE, CUTOVER_SIDE, CUTOVER_TO_HOST… in the environment')
    .option('--events-fd <n>', 'write phase events (migration/switchover/events.ts) as JSON lines to this open file descriptor')
    .option('--hold <phase=ms>', 'rehearsal fault injection: wait this long right after the phase starts (to kill or break something mid-phase)')
    .option('--json', 'print the result as JSON');
}

const num = (v: string, flag: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new CutoverError('USAGE', `${flag} must be a number ≥ 0 (got ${v})`);
  return n;
};

export function toOptions(opts: any, direction: 'forward' | 'rollback'): SwitchoverOptions {
  if (!['terminate', 'read-only', 'pause'].includes(opts.fence)) throw new CutoverError('USAGE', `--fence must be terminate, read-only or pause (got ${opts.fence})`);
  const timeouts: Record<string, number> = {};
  for (const t of opts.phaseTimeout as string[]) {
    const [k, v] = t.split('=');
    timeouts[k] = num(v, `--phase-timeout ${k}`);
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
    switch: makeSwitch(opts.switch, {
      dnsAdmin: opts.dnsAdmin,
      dnsName: opts.dnsName,
      dnsTtl: opts.dnsTtl === undefined ? undefined : num(opts.dnsTtl, '--dns-ttl'),
      proxyOldUpstream: opts.proxyOldUpstream,
      proxyNewUpstream: opts.proxyNewUpstream,
      dnsOldAddress: opts.dnsOldAddress,
      dnsNewAddress: opts.dnsNewAddress,
      proxyApi: opts.proxyApi,
      proxyName: opts.proxyName,
      pgbouncerAdmin: opts.pgbouncerAdmin,
      pgbouncerIni: opts.pgbouncerIni,
      pgbouncerDb: opts.pgbouncerDb,
      command: opts.command,
    }),
    fence: opts.fence,
    fenceScope: opts.fenceScope,
    appRoles: opts.appRoles ? String(opts.appRoles).split(',').map((s: string) => s.trim()).filter(Boolean) : undefined,
    lag: { maxBytes: num(opts.maxLagBytes, '--max-lag-bytes'), maxSeconds: num(opts.maxLagSeconds, '--max-lag-seconds'), timeoutMs: num(opts.lagTimeout, '--lag-timeout') },
    sequenceBuffer: num(opts.sequenceBuffer, '--sequence-buffer'),
    stateFile: opts.state ?? (forward ? 'cutover-switchover.json' : 'cutover-rollback.json'),
    dryRun: !!opts.dryRun,
    resume: !!opts.resume,
    abort: !!opts.abort,
    reverse: !!opts.reverse,
    timeouts,
    log: opts.json ? undefined : note,
    hooks: composeHooks(opts.eventsFd === undefined ? undefined : eventsHook(num(String(opts.eventsFd), '--events-fd')), opts.hold ? holdHook(String(opts.hold)) : undefined),
  };
}

type Hooks = NonNullable<SwitchoverOptions['hooks']>;

/** Hooks run in order: the event is out before a --hold makes the phase wait. */
function composeHooks(...hs: (Hooks | undefined)[]): Hooks | undefined {
  const list = hs.filter((h): h is Hooks => !!h?.onPhase);
  if (!list.length) return undefined;
  return { onPhase: async (name, event, info) => { for (const h of list) await h.onPhase!(name, event, info); } };
}

/**
 * Minimal producer of the shared phase-event contract (phase-start / phase-end lines on an fd).
 * The engine branch owns the full one; this is only what the rehearsal consumes.
 */
function eventsHook(fd: number): Hooks {
  const write = (e: Parameters<typeof formatEvent>[0]) => {
    try {
      writeSync(fd, formatEvent(e));
    } catch {
      // the reader went away (the rehearsal was interrupted): the switchover itself goes on
    }
  };
  return {
    onPhase: (name, event, info) => {
      const at = new Date().toISOString();
      if (event === 'start') write({ type: 'phase-start', phase: name, at, attempt: info.state.phases.find((p) => p.name === name)?.attempts ?? 1 });
      else write({ type: 'phase-end', phase: name, at, outcome: event === 'end' ? 'ok' : event === 'fail' ? 'failed' : 'skipped', ...(info.error ? { error: info.error } : {}) });
    },
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
    if (r.lagAtFence) lines.push(`current lag: ${JSON.stringify(r.lagAtFence)}`);
    if (r.switch.from) lines.push(`traffic now points at: ${r.switch.from}`);
    for (const m of r.sequences ?? []) lines.push(`  sequence ${m.sequence}: target ${m.before ?? '-'} → ${m.value}${m.changed ? '' : ' (unchanged)'}${m.note ? ` (${m.note})` : ''}`);
    if (r.error) lines.push(`could not read the servers: ${r.error.message}`);
    lines.push('dry run: nothing was changed');
    return lines.join('\n');
  }
  const lines = [`switchover ${r.direction} ${r.outcome} in ${(r.durationMs / 1000).toFixed(1)} s (run ${r.runId}, state ${r.stateFile})`];
  for (const p of r.phases) lines.push(`  ${p.name.padEnd(10)} ${String(p.outcome).padEnd(8)} ${p.ms !== undefined ? `${p.ms} ms` : ''}${p.attempts > 1 ? ` (${p.attempts} attempts)` : ''}${p.error ? `  ${p.error}` : ''}`);
  if (r.lagAtFence) lines.push(`lag at fence: ${r.lagAtFence.bytes ?? '?'} bytes, ${r.lagAtFence.seconds ?? '?'} s`);
  if (r.sentinelLatencyMs !== undefined) lines.push(`sentinel latency: ${r.sentinelLatencyMs} ms`);
  if (r.writeUnavailableMs !== undefined) lines.push(`writes fenced for: ${r.writeUnavailableMs} ms (fence → switch done)`);
  const moved = (r.sequences ?? []).filter((m) => m.changed);
  if (r.sequences) lines.push(`sequences: ${moved.length} moved of ${r.sequences.length}`);
  for (const m of moved.slice(0, 20)) lines.push(`  ${m.sequence}: ${m.before ?? '-'} → ${m.value} (source ${m.source ?? '-'})`);
  lines.push(`switch: ${r.switch.strategy} → ${r.switch.to}`);
  if (r.error) lines.push(`error in ${r.error.phase ?? 'run'}: ${r.error.message}${r.error.hint ? `\n  hint: ${r.error.hint}` : ''}`);
  lines.push(`next: ${r.next}`);
  return lines.join('\n');
}

export async function runAndPrint(opts: any, direction: 'forward' | 'rollback'): Promise<void> {
  const r = await switchover(toOptions(opts, direction));
  emit(opts.json, r, () => formatResult(r));
  // 2 = nothing could be checked (connection, usage); 1 = the switchover did not complete
  if (r.error && ['CONNECT', 'AUTH', 'USAGE', 'CONFIG'].includes(r.error.code) && r.outcome !== 'rolled-back') throw new ExitCode(2);
  if (!r.ok) throw new ExitCode(1);
}

export function register(program: Command): void {
  switchoverOptions(
    program
      .command('switchover')
      .description('move the primary from the source to the target: catch up, fence, sentinel, sequences, switch, verify (resumable)'),
  ).action((opts) => runAndPrint(opts, 'forward'));
}
