/**
 * Owners and grants in a schema copy.
 *
 * A schema copied without its owners and GRANTs is a target on which the application gets
 * "permission denied" right after the cutover — drift reports every missing grant as an error, and
 * rightly. pg_dump keeps them (ALTER … OWNER TO, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES), but
 * those statements fail on a target that lacks the roles they name. So the copy keeps them when
 * every role they name exists on the target, and otherwise leaves them all out and names the missing
 * roles (create them first: `cutover replicate start --copy-roles`, or
 * `pg_dumpall --roles-only --no-role-passwords | psql <target>`). Pure functions; the catalog lookup
 * is the caller's.
 */

/** Is this pg_dump statement about ownership or privileges (and nothing else)? */
export function isPrivilegeStatement(sql: string): boolean {
  const s = stripLeadingComments(sql);
  return /^(GRANT|REVOKE)\s/i.test(s) || /^ALTER\s+DEFAULT\s+PRIVILEGES\s/i.test(s) || (/^ALTER\s/i.test(s) && /\sOWNER\s+TO\s+("(?:[^"]|"")+"|[^\s;]+)\s*;?\s*$/i.test(s));
}

/** The role names a privilege statement mentions (owners, grantees, grantors, FOR ROLE); PUBLIC and CURRENT_USER-like keywords excluded. */
export function rolesNamed(sql: string): string[] {
  const s = stripLeadingComments(sql);
  const out: string[] = [];
  const owner = /\sOWNER\s+TO\s+("(?:[^"]|"")+"|[^\s;]+)\s*;?\s*$/i.exec(s);
  if (/^ALTER\s/i.test(s) && !/^ALTER\s+DEFAULT\s+PRIVILEGES\s/i.test(s) && owner) out.push(...roleList(owner[1]));
  const forRole = /^ALTER\s+DEFAULT\s+PRIVILEGES\s+FOR\s+(?:ROLE|USER)\s+(.+?)(?=\s+IN\s+SCHEMA\s|\s+GRANT\s|\s+REVOKE\s)/i.exec(s);
  if (forRole) out.push(...roleList(forRole[1]));
  const grant = /(?:^|\s)GRANT\s[\s\S]*?\sTO\s+([\s\S]+?)(?=\s+WITH\s|\s+GRANTED\s+BY\s|\s*;?\s*$)/i.exec(s);
  if (grant && !/(?:^|\s)REVOKE\s/i.test(s)) out.push(...roleList(grant[1]));
  const revoke = /(?:^|\s)REVOKE\s[\s\S]*?\sFROM\s+([\s\S]+?)(?=\s+GRANTED\s+BY\s|\s+CASCADE\b|\s+RESTRICT\b|\s*;?\s*$)/i.exec(s);
  if (revoke) out.push(...roleList(revoke[1]));
  const by = /\sGRANTED\s+BY\s+("(?:[^"]|"")+"|[^\s;]+)/i.exec(s);
  if (by) out.push(...roleList(by[1]));
  return [...new Set(out)];
}

const KEYWORDS = new Set(['public', 'current_user', 'session_user', 'current_role']);

/** "a, \"B c\", GROUP d" → ['a', 'B c', 'd']. */
function roleList(text: string): string[] {
  const names: string[] = [];
  const re = /\s*(?:GROUP\s+)?("(?:[^"]|"")+"|[^\s,;"]+)\s*(?:,|$)/giy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) && m[0].length) {
    const raw = m[1];
    if (raw.startsWith('"')) names.push(raw.slice(1, -1).replace(/""/g, '"'));
    else if (!KEYWORDS.has(raw.toLowerCase())) names.push(raw.toLowerCase());
  }
  return names;
}

function stripLeadingComments(sql: string): string {
  return sql.replace(/^(\s*--[^\n]*\n)*\s*/, '');
}

/** What happened to owners and grants in one schema copy. */
export interface PrivilegeCopy {
  /** true: ALTER … OWNER TO / GRANT / REVOKE / ALTER DEFAULT PRIVILEGES were applied. */
  kept: boolean;
  /** The roles they name that the target lacks (why they were left out). */
  missingRoles: string[];
}

export function describePrivilegeCopy(p: PrivilegeCopy): string | undefined {
  if (p.kept || !p.missingRoles.length) return undefined;
  const list = p.missingRoles.slice(0, 8).join(', ') + (p.missingRoles.length > 8 ? `, … (${p.missingRoles.length})` : '');
  return `owners and grants were NOT copied: the target lacks the role(s) ${list} — create them first (\`cutover replicate start --copy-roles\`, or pg_dumpall --roles-only --no-role-passwords | psql <target>) and copy again, or the application may get "permission denied" after the cutover (drift lists each grant)`;
}
