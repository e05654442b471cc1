/** Output helpers for command modules (kept apart from cli/main.ts to avoid an import cycle). */

/** Thrown by a command to end with a given exit code after it has printed its result. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Print a result: JSON on stdout with --json, else the human text. */
export function emit(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json) process.stdout.write(JSON.stringify(value, null, 2) + '\n');
  else process.stdout.write(human() + '\n');
}

/** Human log line on stderr (stdout is reserved for results, JSON included). */
export function note(line: string): void {
  process.stderr.write(line + '\n');
}
