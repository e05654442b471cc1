/**
 * The `cutover` command: parse, call a library function, print, exit.
 *
 * Exit codes (documented in the README):
 *   0  success / the check passed
 *   1  the check failed (findings with severity error, mismatches, budgets missed)
 *   2  usage, configuration or connection problem (nothing was checked)
 *
 * Commands live in cli/commands/<name>.ts, each exporting `register(program)`; this file is the
 * one place that catches errors and maps them to exit codes.
 */
import { Command, CommanderError } from 'commander';
import { CutoverError, describeError } from '../migration/errors.ts';
import { commands } from './commands/index.ts';
import { ExitCode } from './output.ts';
export { ExitCode, emit } from './output.ts';

export function buildProgram(): Command {
  const program = new Command('cutover')
    .description('rehearse zero-downtime PostgreSQL major-version cutovers by logical replication')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const register of commands) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    process.exitCode = process.exitCode ?? 0;
  } catch (caught) {
    let e: unknown = caught;
    if (e instanceof ExitCode) {
      process.exitCode = e.code;
      return;
    }
    if (e instanceof CommanderError) {
      // help and version end with code 0; usage errors with 2 (commander already printed them)
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    // Errors the library did not expect but that are still bad input, not bugs: a URL Node cannot
    // parse, a percent-escape that does not decode. Exit 2 with a hint, like any usage error.
    if (!(e instanceof CutoverError) && ((e as any)?.code === 'ERR_INVALID_URL' || e instanceof URIError))
      e = new CutoverError('USAGE', e instanceof URIError ? 'a value contains a % that is not a valid percent-escape' : `not a valid URL: ${(e as any)?.input ?? ''}`, {
        hint: 'URLs look like postgres://user@host:5432/dbname (a password after the user name and a colon, percent-encoded: % as %25, @ as %40)',
        cause: e,
      });
    const json = argv.includes('--json');
    if (json) process.stdout.write(JSON.stringify({ ok: false, error: e instanceof CutoverError ? e.toJSON() : { code: 'INTERNAL', message: describeError(e) } }) + '\n');
    process.stderr.write(describeError(e) + '\n');
    if (!(e instanceof CutoverError) && process.env.CUTOVER_DEBUG) console.error(e);
    process.exitCode = e instanceof CutoverError ? e.exitCode : 1;
  }
}
