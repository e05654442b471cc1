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
    return { code: this.code, message: redactSecrets(this.message), hint: this.hint && redactSecrets(this.hint), detail: this.detail && redactSecrets(this.detail) };
  }
}

/** A short human line for any thrown value, never including a password. */
export function describeError(e: unknown): string {
  if (e instanceof CutoverError) {
    // Messages are built from user input (URLs, conninfo, server text): redact here too, once.
    return [`error[${e.code}]: ${redactSecrets(e.message)}`, e.detail ? `  detail: ${redactSecrets(e.detail)}` : '', e.hint ? `  hint: ${redactSecrets(e.hint)}` : '']
      .filter(Boolean)
      .join('\n');
  }
  if (e instanceof Error) return `error: ${redactSecrets(e.message)}`;
  return `error: ${redactSecrets(String(e))}`;
}

const MASK = '***';

/**
 * The one redaction function: removes secrets from any text that may quote a connection string.
 * Forms covered (each has a test in test/unit/redact.test.ts):
 *  - URL userinfo `scheme://user:secret@host` for any scheme (postgres, http, …), the password may
 *    itself contain `@` or `%` (everything up to the last `@` of the authority is userinfo);
 *  - URL query parameters `?password=`, `&sslpassword=` (node-pg and libpq honour them), and
 *    token-like parameters (`token`, `secret`, `access_token`, `api_key`);
 *  - libpq conninfo `password=secret` and `password='it\'s'` (backslash-escaped quotes kept inside);
 *  - environment and JSON forms: `PGPASSWORD=…`, `"password": "…"`;
 *  - HTTP `Authorization:` header values.
 */
export function redactSecrets(s: string): string {
  if (!s) return s;
  return (
    s
      // userinfo: greedy to the last '@' before the host (the host part holds no '@', '/', space)
      .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*:)(\S*)@(?=[^@\s/?#]*(?:[/?#\s"'<>]|$))/gi, (_m, pre) => `${pre}${MASK}@`)
      // query parameters
      .replace(/([?&](?:ssl)?(?:password|passwd|pass|pwd|token|access_token|secret|api_key|apikey)=)[^&#\s"'<>]*/gi, `$1${MASK}`)
      // JSON "password": "…"
      .replace(/("(?:ssl)?(?:password|passwd|secret|token)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${MASK}"`)
      // conninfo / env: password='…' (with \' escapes) or password=word
      .replace(/(\b(?:pg|ssl)?(?:password|passwd)\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s'"&]+)/gi, `$1${MASK}`)
      .replace(/(\bauthorization\s*:\s*)(?:(?:basic|bearer)\s+)?\S+/gi, `$1${MASK}`)
  );
}

/** Names of environment variables whose values are secrets (their values are redacted wherever they appear). */
export const SECRET_ENV_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|AUTHORIZATION)|^CUTOVER_.*_URL$|^DATABASE_URL$/i;

/**
 * Replace every literal occurrence of the given secret values (≥ 6 characters, so that "1" or
 * "true" are left alone) and then apply redactSecrets. For output of commands we run: a token
 * printed by a cloud CLI has no recognisable shape, but we know the values we gave it.
 */
export function redactValues(s: string, values: Iterable<string | undefined>): string {
  let out = s;
  const sorted = [...new Set([...values].filter((v): v is string => typeof v === 'string' && v.length >= 6))].sort((a, b) => b.length - a.length);
  for (const v of sorted) {
    out = out.split(v).join(MASK);
    // the same value percent-encoded (inside a URL)
    const enc = encodeURIComponent(v);
    if (enc !== v) out = out.split(enc).join(MASK);
  }
  return redactSecrets(out);
}

/** The secret values in an environment (see SECRET_ENV_NAME), for redactValues. */
export function secretEnvValues(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!v || !SECRET_ENV_NAME.test(k)) continue;
    out.push(v);
    // a URL's password on its own, too
    try {
      const u = new URL(v);
      if (u.password) out.push(decodeURIComponent(u.password));
    } catch {
      /* not a URL */
    }
  }
  return out;
}
