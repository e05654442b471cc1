/**
 * One error type for everything the tool reports to a person: a stable code, the fact, and the fix.
 * The CLI maps `exitCode` to the process exit status (see cli/main.ts); library callers get the
 * structured fields instead of parsing messages.
 */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG'
  | 'CONNECT'
  | 'AUTH'
  | 'PRIVILEGE'
  | 'TOOL_MISSING'
  | 'PLATFORM'
  | 'PORT_IN_USE'
  | 'DISK'
  | 'POSTMASTER_DIED'
  | 'TIMEOUT'
  | 'PRECONDITION'
  | 'SQL'
  | 'STATE'
  | 'LOCKED'
  | 'INTERNAL';

export class CutoverError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  /** 2 = usage/configuration/connection, 1 = the thing checked failed. */
  readonly exitCode: number;
  readonly detail?: string;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; detail?: string; cause?: unknown; exitCode?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CutoverError';
    this.code = code;
    this.hint = opts.hint;
    this.detail = opts.detail;
    this.exitCode = opts.exitCode ?? (['USAGE', 'CONFIG', 'CONNECT', 'AUTH', 'TOOL_MISSING', 'PLATFORM', 'PORT_IN_USE', 'DISK'].includes(code) ? 2 : 1);
  }

  toJSON() {
    return { code: this.code, message: this.message, hint: this.hint, detail: this.detail };
  }
}

/** A short human line for any thrown value, never including a password. */
export function describeError(e: unknown): string {
  if (e instanceof CutoverError) {
    return [`error[${e.code}]: ${e.message}`, e.detail ? `  detail: ${e.detail}` : '', e.hint ? `  hint: ${e.hint}` : '']
      .filter(Boolean)
      .join('\n');
  }
  if (e instanceof Error) return `error: ${redactSecrets(e.message)}`;
  return `error: ${redactSecrets(String(e))}`;
}

/** Removes passwords from anything that looks like a connection URL or a password=... pair. */
export function redactSecrets(s: string): string {
  return s
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)([^@\s]*)(@)/gi, '$1***$3')
    .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***');
}
