/**
 * `cutover rollback`: the switchover machine in reverse. Give the SAME --source (old) and --target
 * (new) as the switchover; data then flows new → old through the reverse replication that
 * `switchover --reverse` set up, and traffic moves back to the old primary.
 */
import type { Command } from 'commander';
import { runAndPrint, switchoverOptions } from './switchover.ts';

export function register(program: Command): void {
  switchoverOptions(
    program
      .command('rollback')
      .description('move traffic back to the old primary using the reverse replication (same --source/--target as the switchover)'),
  ).action((opts) => runAndPrint(opts, 'rollback'));
}
