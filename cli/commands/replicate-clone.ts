/**
 * `cutover replicate start --initial-sync clone`: clone-then-follow (README "Clone-then-follow").
 *
 *   --lab <name>       the lab builds the target itself (lab/clone.ts) and follows it
 *   --slot-only        production step 1: publication + slot; prints the LSN the copy must reach
 *   --from-lsn <lsn>   production step 2: the target is the upgraded copy; subscribe from <lsn>
 */
import { CutoverError } from '../../migration/errors.ts';
import { createCloneSlot, followClone, objectNames, startCloneReplication, stopReplication, waitForSync, type StartResult } from '../../migration/replication.ts';
import { emit, note } from '../output.ts';
import { readLab, attachLab, saveLab } from '../../lab/lab.ts';
import { labCloneBuilder } from '../../lab/clone.ts';
import type { Parsed } from '../options.ts';
import type { startSchema } from './replicate.ts';

type StartOpts = Parsed<typeof startSchema>;

const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

function sameServer(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    return x.hostname === y.hostname && (x.port || '5432') === (y.port || '5432');
  } catch {
    return false;
  }
}

export async function cloneStart(opts: StartOpts, signal: AbortSignal): Promise<void> {
  const how = [opts.lab && '--lab', opts.slotOnly && '--slot-only', opts.fromLsn && '--from-lsn'].filter(Boolean) as string[];
  if (opts.initialSync !== 'clone') throw new CutoverError('USAGE', `${how.join(', ')} belong(s) to --initial-sync clone`, { hint: 'add --initial-sync clone, or leave them out' });
  if (how.length !== 1)
    throw new CutoverError('USAGE', how.length ? `--initial-sync clone takes one of --lab, --slot-only, --from-lsn (got ${how.join(', ')})` : '--initial-sync clone needs to know who makes the copy', {
      hint: 'in the lab: --lab <name> (it copies, recovers and upgrades old itself); in production: --slot-only first, then take the copy and pg_upgrade it, then --from-lsn <the copy\'s LSN>',
    });
  if (opts.incremental || opts.skipCopy) throw new CutoverError('USAGE', 'clone-then-follow brings every row from the copy: --incremental and --skip-copy do not apply', { hint: 'drop them, or use --initial-sync copy' });
  if (opts.fromLsn !== undefined && !LSN.test(opts.fromLsn)) throw new CutoverError('USAGE', `--from-lsn "${opts.fromLsn}" is not an LSN`, { hint: 'an LSN looks like 0/3005628: the position the copy holds everything before (the "recovery stopping before WAL location" of its log, or aurora_volume_logical_start_lsn() on an Aurora clone)' });
  const base = { source: opts.source, target: opts.target, name: opts.name, tables: opts.tables, allTables: opts.allTables === true, sourceConninfoUrl: opts.sourceConninfo, signal, log: note };

  if (opts.slotOnly) {
    const slot = await createCloneSlot(base);
    emit(opts.json, slot, () =>
      [
        `publication ${slot.publication} (${slot.tables.length} table(s)) and slot ${slot.slot} created; consistent point ${slot.lsn}`,
        `next: a copy of the source holding every transaction up to ${slot.lsn} (a pg_basebackup taken before this command, recovered with recovery_target_lsn = '${slot.lsn}' and recovery_target_inclusive = off; or an Aurora clone made after it),`,
        `      pg_upgrade it to the new major, start it, then: cutover replicate start --initial-sync clone --from-lsn <the copy's LSN> --source … --target <the copy>`,
        `      (the slot retains WAL on the source until then; \`cutover replicate stop --name ${slot.name}\` removes it)`,
      ].join('\n'),
    );
    return;
  }

  let started: StartResult;
  if (opts.lab) {
    const record = readLab(opts.lab);
    if (!record) throw new CutoverError('STATE', `no lab named "${opts.lab}"`, { hint: 'cutover lab list shows the labs that exist' });
    if (!sameServer(opts.source, record.old.url) || !sameServer(opts.target, record.new.url))
      throw new CutoverError('USAGE', `--source and --target must be lab "${opts.lab}"'s old and new clusters (${record.old.host}:${record.old.port} and ${record.new.host}:${record.new.port}): the clone replaces the new cluster's data`, { hint: `use the URLs of \`cutover lab up --name ${opts.lab} --json\`` });
    const lab = attachLab(record);
    try {
      started = await startCloneReplication({ ...base, clone: labCloneBuilder({ old: lab.old, target: lab.new, slot: objectNames(opts.name).slot, log: note }) });
    } finally {
      // the new cluster was restarted from the upgraded copy: lab status / lab down must find its new pid
      saveLab(record);
    }
  } else {
    started = await followClone({ ...base, lsn: opts.fromLsn! });
  }

  const out: Record<string, unknown> = { started };
  if (opts.wait !== false) {
    try {
      out.status = await waitForSync({ source: opts.source, target: opts.target, name: opts.name, timeoutMs: opts.timeout * 1000, signal, progress: true });
    } catch (e) {
      if (signal.aborted) {
        const stop = await stopReplication({ source: opts.source, target: opts.target, name: opts.name, log: note });
        throw new CutoverError('STATE', 'replication start interrupted', { detail: stop.complete ? `removed: ${stop.dropped.join(', ')}` : `STILL PRESENT: ${stop.remaining.join(', ')}`, cause: e });
      }
      throw e;
    }
  }
  const t = started.clone?.timings ?? {};
  emit(opts.json, out, () =>
    `replication ${started.name} started by clone-then-follow at ${started.clone?.lsn}: ${started.tables.length} table(s)${out.status ? ', all ready' : ''}; objects ${started.publication} (publication, slot, subscription)` +
      (Object.keys(t).length ? `\nclone: basebackup ${t.basebackup} ms, recovery ${t.recover} ms, pg_upgrade ${t.upgrade} ms, start ${t.start} ms` : ''),
  );
}
