import type { Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { copyRoles, copySchema, describeApply } from '../../migration/schema-copy.ts';
import { addTables, displayName, dropTables, replicationStatus, startReplication, stopReplication, waitForSync, type ReplicationStatus, type TableSpec } from '../../migration/replication.ts';
import { checkBeforeStart } from '../../migration/start-checks.ts';
import { emit, ExitCode, note } from '../output.ts';
import { connectionOptions, flag, negatable, oneOf, optionalConnection, parseOptions, replicationName, rowFilters, seconds, SOURCE, tables, TARGET, text } from '../options.ts';
import { cloneStart } from './replicate-clone.ts';
import { registerWatch } from './watch.ts';
import { registerPlan } from './replicate-plan.ts';

export function formatStatus(s: ReplicationStatus): string {
  const lines = [
    `replication ${s.name}: publication ${s.publicationExists ? 'present' : 'absent'}, subscription ${s.subscriptionExists ? (s.enabled ? 'enabled' : 'DISABLED') : 'absent'}, slot ${s.slotHealth.exists ? (s.slotHealth.active ? 'active' : 'INACTIVE') : 'absent'}`,
  ];
  if (s.slotHealth.exists) lines.push(`lag ${s.lagBytes ?? '?'} bytes, ${s.lagSeconds ?? '?'} s; WAL retained by the slot ${s.slotHealth.walRetainedBytes ?? '?'} bytes${s.slotHealth.walStatus ? ` (${s.slotHealth.walStatus})` : ''}`);
  for (const t of s.tables) lines.push(`  ${t.state} ${t.stateName.padEnd(18)} ${t.table}${t.rowsCopied !== null ? `  ${t.rowsCopied} rows` : ''}${t.rowFilter ? `  WHERE ${t.rowFilter}` : ''}`);
  if (s.tables.length) lines.push(`${s.tables.filter((t) => t.state === 'r').length}/${s.tables.length} tables ready`);
  for (const p of s.problems) lines.push(`PROBLEM: ${p}`);
  return lines.join('\n');
}

function common(cmd: Command): Command {
  return connectionOptions(cmd, { source: 'old primary (publisher)', target: 'new primary (subscriber)' })
    .option('--name <name>', 'replication name: objects are called cutover_<name> (a-z, 0-9, _; default main)')
    .option('--json', 'print the result as JSON');
}

/** Options every replicate subcommand takes. Subcommands spread it into their own schema. */
export const commonSchema = { source: SOURCE, target: TARGET, name: replicationName(), json: flag() };

export const startSchema = {
  ...commonSchema,
  tables: tables('--tables'),
  incremental: flag(),
  allTables: flag(),
  skipCopy: tables('--skip-copy'),
  copyRoles: flag(),
  rowFilter: rowFilters('--row-filter'),
  // the subscription's own conninfo: passfile=<path on the target host> keeps the password out of pg_subscription
  sourceConninfo: optionalConnection('--source-conninfo', 'CUTOVER_SOURCE_CONNINFO_URL', { forServer: true }),
  schema: negatable(),
  wait: negatable(),
  timeout: seconds('--timeout', { default: 21600 }),
  initialSync: oneOf('--initial-sync', ['copy', 'clone'] as const, 'copy'),
  lab: text('--lab'),
  slotOnly: flag(),
  fromLsn: text('--from-lsn'),
};

export const addTableSchema = {
  ...commonSchema,
  tables: tables('--tables'),
  sequences: text('--sequences'),
  schema: negatable(),
  timeout: seconds('--timeout', { default: 21600 }),
};

export function register(program: Command): void {
  const rep = program.command('replicate').description('logical replication from source to target: plan, start, status, add-table, drop-table, watch, stop');
  registerPlan(rep);

  common(rep.command('start'))
    .description('copy the schema (pre-data and the primary keys / replica identities), create publication/slot/subscription, wait for all tables to be ready, then apply the rest of post-data (indexes, FKs)')
    .option('--tables <list>', 'comma-separated tables (default: all); schema."Table Name" allowed')
    .option('--incremental', 'add tables one at a time, each waited on until ready')
    .option('--all-tables', 'publish FOR ALL TABLES (source superuser): tables created later are published at once; create them on the target with `replicate add-table`')
    .option('--skip-copy <list>', 'tables (with a primary key; append-only ones, see `replicate plan`) subscribed without the initial copy and back-filled from the slot\'s snapshot in key chunks (INSERT … ON CONFLICT DO NOTHING), then counted')
    .option('--row-filter <table:where>', "publish only the rows of a table that match (PostgreSQL 15+ both sides; repeatable), e.g. \"orders:region = 'eu'\"", (v: string, prev: string[] = []) => [...prev, v])
    .option('--source-conninfo <url>', 'what the target uses to reach the source (through a proxy; or with passfile=<file on the target host> so pg_subscription holds no password); default --source')
    .option('--copy-roles', 'first create the source\'s roles on the target (pg_dumpall --roles-only, no passwords), so that owners and grants are copied with the schema')
    .option('--no-schema', 'do not copy the schema (pre-data and keys before, post-data after); the target tables must have their keys')
    .option('--no-wait', 'return once the subscription exists (post-data is then not applied)')
    .option('--timeout <seconds>', 'how long to wait for the initial sync (default 21600)')
    .option('--initial-sync <copy|clone>', 'copy (default): the logical initial copy; clone: clone-then-follow, the target is a physical copy of the source at the slot\'s LSN, upgraded (below)')
    .option('--lab <name>', 'clone: the lab (`lab up`) whose new cluster is rebuilt from a pg_basebackup of old, recovered to the slot\'s LSN and pg_upgraded to 18')
    .option('--slot-only', 'clone, production step 1: create the publication and the slot, print the LSN the copy must reach; nothing on the target')
    .option('--from-lsn <lsn>', 'clone, production step 2: the target is the upgraded copy holding everything before <lsn>; subscribe there with copy_data = false')
    .action(async (raw) => {
      const opts = parseOptions(startSchema, raw);
      const ac = new AbortController();
      const onSig = () => ac.abort(new CutoverError('STATE', 'interrupted by signal; replication objects are being removed'));
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        if (opts.initialSync === 'clone' || opts.lab || opts.slotOnly || opts.fromLsn) return await cloneStart(opts, ac.signal);
        const noCopy = opts.skipCopy ?? [];
        const tables: TableSpec[] | undefined = opts.tables;
        const stray = tables ? noCopy.filter((n) => !tables.some((t) => t.schema === n.schema && t.name === n.name)) : [];
        if (stray.length) throw new CutoverError('USAGE', `--skip-copy names table(s) not in --tables: ${stray.map(displayName).join(', ')}`, { hint: 'every --skip-copy table must also be listed in --tables' });
        // Before the schema copy: a typo in --tables, wal_level or a full target must leave the target untouched.
        await checkBeforeStart({ source: opts.source, target: opts.target, tables: opts.tables, skipCopy: noCopy, rowFilters: opts.rowFilter });
        const out: Record<string, unknown> = {};
        if (opts.copyRoles) note(describeApply(await copyRoles({ source: opts.source, target: opts.target })));
        if (opts.schema !== false) {
          const pre = await copySchema({ source: opts.source, target: opts.target, section: 'pre-data' });
          note(describeApply(pre));
          out.preData = pre;
        }
        const started = await startReplication({
          source: opts.source,
          target: opts.target,
          name: opts.name,
          tables,
          rowFilters: opts.rowFilter,
          backfill: noCopy,
          mode: opts.incremental ? 'incremental' : 'all',
          allTables: opts.allTables === true,
          sourceConninfoUrl: opts.sourceConninfo,
          signal: ac.signal,
          progress: true,
          log: note,
        });
        out.started = started;
        if (opts.wait !== false) {
          try {
            out.status = await waitForSync({ source: opts.source, target: opts.target, name: opts.name, timeoutMs: opts.timeout * 1000, signal: ac.signal, progress: true });
          } catch (e) {
            if (ac.signal.aborted) {
              const stop = await stopReplication({ source: opts.source, target: opts.target, name: opts.name, log: note });
              throw new CutoverError('STATE', 'replication start interrupted', { detail: stop.complete ? `removed: ${stop.dropped.join(', ')}` : `STILL PRESENT: ${stop.remaining.join(', ')}`, cause: e });
            }
            throw e;
          }
          if (opts.schema !== false) {
            const post = await copySchema({ source: opts.source, target: opts.target, section: 'post-data', progress: true });
            note(describeApply(post));
            out.postData = post;
          }
        }
        // the back-fill's own lines (counts, count check, rate) were noted as it finished
        const bf = started.backfill;
        emit(opts.json, out, () => `replication ${started.name} started: ${started.tables.length} table(s)${out.status ? ', all ready' : ''}${bf ? `, ${bf.tables.length} back-filled (count check ${bf.ok ? 'ok' : 'FAILED'})` : ''}; objects ${started.publication} (publication, slot, subscription)`);
        if (bf && !bf.ok) throw new ExitCode(1);
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });

  common(rep.command('add-table'))
    .description('bring tables (and sequences) created on the source after start into the replication: their schema and keys on the target, publication, REFRESH PUBLICATION, copy until ready, then their indexes and FKs')
    .option('--tables <list>', 'comma-separated tables; schema."Table Name" allowed')
    .option('--sequences <list>', 'comma-separated standalone sequences to create on the target (owned sequences come with their table)')
    .option('--no-schema', 'the tables already exist on the target with their keys: only publish, refresh and wait')
    .option('--timeout <seconds>', 'how long to wait for the tables to be ready (default 21600)')
    .action(async (raw) => {
      const opts = parseOptions(addTableSchema, raw);
      const ac = new AbortController();
      const onSig = () => ac.abort(new CutoverError('STATE', 'interrupted by signal; run add-table again to finish (it is idempotent)'));
      process.once('SIGINT', onSig);
      process.once('SIGTERM', onSig);
      try {
        if (!opts.tables && !opts.sequences) throw new CutoverError('USAGE', 'add-table needs --tables and/or --sequences', { hint: 'e.g. --tables public.invoices (as `cutover replicate status` lists them)' });
        const r = await addTables({
          source: opts.source,
          target: opts.target,
          name: opts.name,
          tables: opts.tables,
          sequences: opts.sequences ? opts.sequences.split(',').map((x: string) => x.trim()).filter(Boolean) : undefined,
          schema: opts.schema !== false,
          timeoutMs: opts.timeout * 1000,
          signal: ac.signal,
          progress: true,
          log: note,
        });
        emit(opts.json, r, () =>
          [
            r.tables.length ? `added ${r.tables.join(', ')} to replication ${r.name}: ready${r.alreadyPublished.length ? ` (already published: ${r.alreadyPublished.join(', ')})` : ''}` : '',
            r.sequences.length ? `created sequence(s) ${r.sequences.join(', ')} on the target (set at cutover)` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      } finally {
        process.off('SIGINT', onSig);
        process.off('SIGTERM', onSig);
      }
    });

  common(rep.command('drop-table'))
    .description('take tables out of the running replication: dropped from the publication, the subscription refreshed; the target keeps the tables and their rows (no longer updated)')
    .option('--tables <list>', 'comma-separated tables; schema."Table Name" allowed')
    .action(async (raw) => {
      const opts = parseOptions({ ...commonSchema, tables: tables('--tables') }, raw);
      if (!opts.tables) throw new CutoverError('USAGE', 'drop-table needs --tables', { hint: 'e.g. --tables public.audit_log' });
      const r = await dropTables({ source: opts.source, target: opts.target, name: opts.name, tables: opts.tables, log: note });
      emit(opts.json, r, () =>
        [r.dropped.length ? `dropped ${r.dropped.join(', ')} from replication ${r.name}` : '', r.notPublished.length ? `not in the publication (nothing to do): ${r.notPublished.join(', ')}` : ''].filter(Boolean).join('\n'),
      );
    });

  common(rep.command('status'))
    .description('per-table sync state, lag in bytes and seconds, slot health, errors (exit 1 when something is wrong)')
    .action(async (raw) => {
      const opts = parseOptions(commonSchema, raw);
      const s = await replicationStatus({ source: opts.source, target: opts.target, name: opts.name, diagnose: 'always' });
      emit(opts.json, s, () => formatStatus(s));
      if (s.problems.length) throw new ExitCode(1);
    });

  common(rep.command('stop'))
    .description('drop subscription, publication and slot(s); safe after a crash and when the subscriber cannot reach the source')
    .action(async (raw) => {
      const opts = parseOptions(commonSchema, raw);
      const r = await stopReplication({ source: opts.source, target: opts.target, name: opts.name });
      emit(opts.json, r, () =>
        [...r.dropped.map((d) => `dropped ${d}`), ...r.notes, ...r.remaining.map((x) => `STILL PRESENT: ${x}`), r.complete ? 'stop: complete' : 'stop: INCOMPLETE — run it again once both servers answer'].join('\n'),
      );
      if (!r.complete) throw new ExitCode(1);
    });

  registerWatch(rep);
}
