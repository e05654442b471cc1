/**
 * `cutover replicate watch`: the replication's health live, with thresholds and a webhook. Registered
 * under `replicate` by cli/commands/replicate.ts (one line there).
 */
import { Option, type Command } from 'commander';
import { CutoverError } from '../../migration/errors.ts';
import { formatSample, parseBytes, redactWebhook, watchReplication, WATCH_PRIVILEGES, type Thresholds } from '../../migration/watch.ts';
import { ExitCode, note } from '../output.ts';

function bytesOpt(flag: string) {
  return (v: string): number => {
    const n = parseBytes(v);
    if (n === undefined) throw new CutoverError('USAGE', `${flag} must be a size such as 16MB, 1.5GB or a number of bytes (got ${JSON.stringify(v)})`, { hint: `e.g. ${flag} 64MB` });
    return n;
  };
}

function numberOpt(flag: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new CutoverError('USAGE', `${flag} must be a number ≥ ${min} (got ${JSON.stringify(v)})`);
    return n;
  };
}

export function registerWatch(rep: Command): void {
  rep
    .command('watch')
    .description(`sample the replication every interval: WAL kept by the slot, lag (bytes, seconds), apply worker state and errors, xid ages, connections; alert on thresholds. Read-only. ${WATCH_PRIVILEGES}`)
    // URLs may come from the environment so that passwords stay out of `ps` and shell history
    .addOption(new Option('--source <url>', 'old primary (publisher)').env('CUTOVER_SOURCE_URL').makeOptionMandatory())
    .addOption(new Option('--target <url>', 'new primary (subscriber)').env('CUTOVER_TARGET_URL').makeOptionMandatory())
    .option('--name <name>', 'replication name: objects are called cutover_<name>', 'main')
    .option('--subscription <name>', 'watch this subscription instead of cutover_<name> (a replication cutover did not create)')
    .option('--slot <name>', 'watch this slot on the source instead of cutover_<name>')
    .option('--publication <name>', 'compare the tables of this publication instead of cutover_<name>')
    .option('--schema-interval <seconds>', 'compare the published tables on both sides this often (DDL is not replicated); 0 = never', numberOpt('--schema-interval'), 60)
    .option('--interval <seconds>', 'seconds between samples', numberOpt('--interval', 0.1), 5)
    .option('--once', 'check once and exit: 0 healthy, 1 a threshold crossed (named), 2 a side does not answer')
    .option('--max-lag-bytes <size>', 'alert when confirmed-flush lag exceeds this (16MB, 1GB, bytes)', bytesOpt('--max-lag-bytes'))
    .option('--max-lag-seconds <s>', 'alert when lag in seconds exceeds this', numberOpt('--max-lag-seconds'))
    .option('--max-wal-retained <size>', 'alert when the slot keeps more WAL than this on the source', bytesOpt('--max-wal-retained'))
    .option('--max-xmin-age <xids>', "alert when the slot's xmin/catalog_xmin age exceeds this many transactions", numberOpt('--max-xmin-age'))
    .addOption(new Option('--webhook <url>', 'POST a JSON alert when a threshold is crossed and when it clears (no URL or password is in it)').env('CUTOVER_WATCH_WEBHOOK'))
    .option('--json', 'JSON lines (the default when stdout is not a terminal or CI is set)')
    .action(async (opts) => {
      const thresholds: Thresholds = { maxLagBytes: opts.maxLagBytes, maxLagSeconds: opts.maxLagSeconds, maxWalRetainedBytes: opts.maxWalRetained, maxXminAge: opts.maxXminAge };
      const json = !!opts.json || !process.stdout.isTTY || !!process.env.CI;
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const r = await watchReplication({
          source: opts.source,
          target: opts.target,
          name: opts.name,
          subscription: opts.subscription,
          slot: opts.slot,
          publication: opts.publication,
          schemaEveryMs: opts.schemaInterval * 1000,
          thresholds,
          intervalMs: opts.interval * 1000,
          once: !!opts.once,
          webhook: opts.webhook,
          signal: ac.signal,
          onSample: (s, crossings) => {
            if (json) process.stdout.write(JSON.stringify({ type: 'sample', ok: crossings.length === 0, ...s, crossings }) + '\n');
            else {
              process.stdout.write(formatSample(s, crossings) + '\n');
              if (opts.once) for (const c of crossings) process.stdout.write(`  CROSSED ${c.id}: ${c.message}\n`);
            }
          },
          onAlert: (a, d) => {
            if (json) process.stdout.write(JSON.stringify({ type: 'alert', delivered: d.ok, ...(d.error ? { deliveryError: d.error } : {}), alert: a }) + '\n');
            note(d.ok ? `alert ${a.event} ${a.threshold} sent to ${redactWebhook(opts.webhook)}` : `alert ${a.event} ${a.threshold} NOT delivered: ${d.error}`);
          },
        });
        if (opts.once && r.crossings.length) throw new ExitCode(1);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
