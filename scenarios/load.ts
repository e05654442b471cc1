/**
 * Reading a scenario file: YAML → schema → cross-field rules → one normalised `Scenario`.
 * Everything wrong with a file is collected and reported at once, each problem with its path
 * (`clusters.new.major`), its line and column, what is wrong and how to fix it.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve, dirname, isAbsolute } from 'node:path';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node } from 'yaml';
import type { z } from 'zod';
import { CutoverError } from '../migration/errors.ts';
import { scenarioSchema, scenarioSchemaWithDefaults, MIN_MAJOR, MAX_MAJOR, type Scenario } from './schema.ts';
import { crossFieldProblems, type Problem } from './rules.ts';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export type { Scenario, Problem };

/** A scenario file with problems: `problems` holds each one with its path and hint. */
export class ScenarioError extends CutoverError {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super('CONFIG', formatProblems(file, problems), {
      exitCode: 2,
      hint: `fix the problems above, then re-check with: cutover scenario check ${file}`,
    });
  }
  override toJSON() {
    return { ...super.toJSON(), file: this.file, problems: this.problems };
  }
}

export function formatProblems(file: string, problems: Problem[]): string {
  const head = `scenario ${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:`;
  const lines = problems.map((p) => {
    const where = p.line !== undefined ? ` (line ${p.line}, col ${p.col})` : '';
    return `  - ${p.path || '(top level)'}${where}: ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`;
  });
  return [head, ...lines].join('\n');
}

const pathText = (path: readonly PropertyKey[]) => path.map(String).join('.');

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v: any = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k as any];
  }
  return v;
}

/** Keys the schema knows at an object path (for "did you mean"). */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let s: any = scenarioSchema;
  const unwrap = (x: any): any => {
    for (let i = 0; i < 10 && x; i++) {
      const d = x._zod.def;
      if (d.type === 'object') return x;
      if (d.type === 'pipe') x = d.in;
      else if (d.innerType) x = d.innerType;
      else if (d.type === 'array') return x;
      else return x;
    }
    return x;
  };
  for (const k of path) {
    s = unwrap(s);
    const d = s?._zod.def;
    if (d?.type === 'object') s = d.shape[k as string];
    else if (d?.type === 'array') s = d.element;
    else return [];
  }
  s = unwrap(s);
  return s?._zod.def.type === 'object' ? Object.keys(s._zod.def.shape) : [];
}

function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const dd = distance(word, o);
    if (dd < bestD) [best, bestD] = [o, dd];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Turn zod issues into problems with a message a person can act on. */
function issueProblems(issue: z.core.$ZodIssue, raw: unknown): Problem[] {
  const path = pathText(issue.path);
  const got = valueAt(raw, issue.path);
  const last = String(issue.path[issue.path.length - 1] ?? '');
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(issue.path);
      return issue.keys.map((k) => {
        const guess = closest(k, known);
        return {
          path: path ? `${path}.${k}` : k,
          message: 'unknown key',
          hint: guess ? `did you mean "${guess}"? (known keys here: ${known.join(', ')})` : `known keys here: ${known.join(', ')}`,
        };
      });
    }
    case 'invalid_type': {
      if (got === undefined) return [{ path, message: 'is required', hint: requiredHint(path) }];
      if (/major$/.test(path)) return [{ path, message: `${issue.message} (got ${typeName(got)})`, hint: `write the major as a number, e.g. 15 (supported: ${MIN_MAJOR}–${MAX_MAJOR})` }];
      return [{ path, message: `must be ${issue.expected === 'int' ? 'an integer' : issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`} (got ${typeName(got)})`, hint: typeHint(path) }];
    }
    case 'invalid_value':
      return [{ path, message: `${JSON.stringify(got)} is not one of the allowed values`, hint: `use one of: ${issue.values.map(String).join(', ')}` }];
    case 'invalid_union': {
      if (got === undefined) return [{ path, message: 'is required', hint: requiredHint(path) }];
      return [{ path, message: `${issue.message} (got ${typeName(got)})`, hint: typeHint(path) }];
    }
    case 'too_small':
    case 'too_big': {
      let hint = typeHint(path);
      if (last === 'major') hint = `supported PostgreSQL majors are ${MIN_MAJOR} to ${MAX_MAJOR}`;
      if (last === 'scale') hint = 'scale is roughly the total number of rows to seed, e.g. 5000';
      const msg = issue.message.startsWith('Too') ? (issue.code === 'too_small' ? `must be at least ${issue.minimum}` : `must be at most ${issue.maximum}`) : issue.message;
      return [{ path, message: `${msg} (got ${JSON.stringify(got)})`, hint }];
    }
    case 'invalid_format':
      return [{ path, message: `${issue.message} (got ${JSON.stringify(got)})`, hint: typeHint(path) }];
    default:
      return [{ path, message: issue.message, hint: typeHint(path) }];
  }
}

function requiredHint(path: string): string | undefined {
  if (path === 'name') return 'add name: my-scenario at the top of the file';
  if (path === 'clusters') return 'add clusters: { old: { major: 13 }, new: { major: 17 } }';
  if (/^clusters\.(old|new)$/.test(path)) return `add ${path.split('.')[1]}: { major: 15 } under clusters`;
  if (/major$/.test(path)) return `add major: <${MIN_MAJOR}–${MAX_MAJOR}>`;
  if (/^faults\.\d+\.kind$/.test(path)) return 'kind: latency | bandwidth | timeout | reset_peer | slicer | limit_data | partition | kill | ddl | conflict | long-transaction | burst | pause | lock | connections | slot-loss';
  return undefined;
}

function typeHint(path: string): string | undefined {
  if (/(duration|switchAt|\.at|timeout|dnsTtl|maxErrorWindow|maxStall)$/.test(path)) return 'durations look like 500ms, 20s, 2m or 1h (a bare number is milliseconds)';
  if (/gucs/.test(path)) return "GUCs are name: value pairs, e.g. work_mem: '64MB'";
  if (/generators/.test(path)) return 'generators map "table.column" to "faker.<module>.<method>" or "null"';
  if (/attributes/.test(path)) return 'attributes are name: value pairs, e.g. latency: 200 (toxics) or table: orders (database faults)';
  if (/readRatio$/.test(path)) return 'readRatio is the share of reads, e.g. 0.1 for 10 % reads';
  if (/name$/.test(path)) return 'e.g. name: quickstart';
  return undefined;
}

/** Where a path points in the YAML text (1-based line and column), if it exists there. */
function position(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: string): { line: number; col: number } | undefined {
  const keys = path ? path.split('.') : [];
  let node: unknown = doc.contents;
  let best: Node | undefined = doc.contents ?? undefined;
  let keyNode: Node | undefined;
  for (const k of keys) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (isScalar(it.key) ? String(it.key.value) : String(it.key)) === k);
      if (!pair) break;
      keyNode = pair.key as Node;
      node = pair.value;
      best = (pair.value as Node) ?? keyNode;
    } else if (isSeq(node)) {
      const item = node.items[Number(k)];
      if (item === undefined) break;
      keyNode = undefined;
      node = item;
      best = item as Node;
    } else break;
  }
  // An unknown key: point at the key itself.
  const target = keys.length && keyNode && isScalar(keyNode) && String(keyNode.value) === keys[keys.length - 1] && !best?.range ? keyNode : best;
  const offset = (target?.range ?? keyNode?.range)?.[0];
  if (offset === undefined) return undefined;
  const p = lc.linePos(offset);
  return { line: p.line, col: p.col };
}

/** Parse scenario text. `file` is used in messages and to resolve relative paths (dataset.ddl). */
export function parseScenario(text: string, file = '<scenario>'): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    // One syntax mistake makes the parser report several errors (each later line it cannot place):
    // show the first, which is where the mistake is, and say how many followed. Duplicate keys are
    // independent mistakes: all of them are listed.
    const syntax = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY');
    const shown = [...doc.errors.filter((e) => e.code === 'DUPLICATE_KEY'), ...syntax.slice(0, 1)];
    const problems: Problem[] = shown.map((e) => ({
      path: '',
      message: `invalid YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      hint:
        e.code === 'DUPLICATE_KEY'
          ? 'remove one of the two keys'
          : `check indentation, colons and quotes on that line${syntax.length > 1 ? ` (the parser reported ${syntax.length - 1} more error(s) after it, most likely caused by this one)` : ''}`,
      line: e.linePos?.[0].line,
      col: e.linePos?.[0].col,
    }));
    throw new ScenarioError(file, problems);
  }
  const raw = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ScenarioError(file, [{ path: '', message: `the file must be a YAML mapping (got ${typeName(raw)})`, hint: 'start with name: my-scenario, then clusters:, dataset:, …' }]);
  }
  const problems: Problem[] = [];
  const r = scenarioSchemaWithDefaults.safeParse(raw);
  if (!r.success) for (const issue of r.error.issues) problems.push(...issueProblems(issue, raw));
  problems.push(...crossFieldProblems(raw));
  // Files the scenario names are checked in the same pass: every problem of a file at once.
  if (r.success) problems.push(...pathProblems(r.data, file));
  // One problem per path and message (a rule may restate what the schema said).
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  for (const p of unique) {
    if (p.line === undefined) Object.assign(p, position(doc, lc, p.path));
  }
  if (unique.length) throw new ScenarioError(file, unique);
  const scenario: Scenario = r.data!;
  // Relative dataset files are relative to the scenario file.
  if (scenario.dataset.ddl && file !== '<scenario>' && !isAbsolute(scenario.dataset.ddl)) scenario.dataset.ddl = resolve(dirname(file), scenario.dataset.ddl);
  if (file !== '<scenario>') scenario.file = resolve(file);
  return scenario;
}

/**
 * Files a scenario names must exist: the k6 script (relative to the scenario file, else to the
 * project root) and the app's working directory (relative to the scenario file). Resolved to
 * absolute paths here, once.
 */
function pathProblems(scenario: Scenario, file: string): Problem[] {
  const problems: Problem[] = [];
  const base = file === '<scenario>' ? process.cwd() : dirname(resolve(file));
  const script = scenario.load.script;
  const candidates = isAbsolute(script) ? [script] : [resolve(base, script), resolve(PROJECT_ROOT, script)];
  const found = candidates.find((c) => existsSync(c));
  if (found) scenario.load.script = found;
  else problems.push({ path: 'load.script', message: `k6 script ${script} not found (looked in ${candidates.join(' and ')})`, hint: 'give the path relative to the scenario file (your own script) or the project root (load/writes.js)' });
  if (scenario.shadow?.queries) {
    const q = resolve(base, scenario.shadow.queries);
    if (!existsSync(q)) problems.push({ path: 'shadow.queries', message: `shadow-read queries file ${q} not found`, hint: 'a file of ;-terminated SELECT statements, relative to the scenario file' });
    else scenario.shadow.queries = q;
  }
  if (scenario.app !== 'sample') {
    const cwd = resolve(base, scenario.app.cwd);
    if (!existsSync(cwd)) problems.push({ path: 'app.cwd', message: `app.cwd ${cwd} does not exist`, hint: 'app.cwd is relative to the scenario file' });
    else scenario.app.cwd = cwd;
  }
  return problems;
}

export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e: any) {
    throw new CutoverError('CONFIG', `cannot read scenario ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, {
      exitCode: 2,
      hint: e.code === 'ENOENT' ? 'check the path; shipped scenarios are in scenarios/*.yaml' : undefined,
      cause: e,
    });
  }
  return parseScenario(text, file);
}
