/**
 * CHECK expressions as Postgres renders them (pg_get_constraintdef, pg_get_partition_constraintdef):
 * a small parser, an evaluator with SQL's three-valued logic, and the per-column bounds the seeder
 * generates within (ranges, value lists, lengths, regular expressions, column-to-column order).
 *
 * Why our own: the seeder must know BEFORE loading whether a generated row passes a CHECK, and must
 * re-draw the rows that do not, millions of times a second — a round trip to Postgres per row is
 * out of the question. Postgres still has the last word: the plan's sample rows are checked by the
 * server itself (lab/seed.ts) before a row is loaded. Anything this parser does not know
 * (functions, operators) makes `compileCheck` return undefined and the server probe decides. Pure.
 */
export type Val = string | number | boolean | null | Val[];

export type Node =
  | { k: 'lit'; v: Val }
  | { k: 'col'; name: string }
  | { k: 'cast'; e: Node; type: string }
  | { k: 'un'; op: string; e: Node }
  | { k: 'bin'; op: string; l: Node; r: Node }
  | { k: 'any'; op: string; l: Node; r: Node; all?: boolean }
  | { k: 'isnull'; e: Node; not: boolean }
  | { k: 'isbool'; e: Node; v: boolean; not: boolean }
  | { k: 'fn'; name: string; args: Node[] }
  | { k: 'arr'; items: Node[] };

interface Tok {
  t: 'num' | 'str' | 'id' | 'qid' | 'op' | 'p';
  v: string;
}

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'" || ((c === 'E' || c === 'e') && s[i + 1] === "'")) {
      const esc = c !== "'";
      let j = esc ? i + 2 : i + 1;
      let v = '';
      while (j < s.length) {
        if (esc && s[j] === '\\') {
          const n = s[j + 1];
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n;
          j += 2;
          continue;
        }
        if (s[j] === "'") {
          if (s[j + 1] === "'") {
            v += "'";
            j += 2;
            continue;
          }
          break;
        }
        v += s[j++];
      }
      out.push({ t: 'str', v });
      i = j + 1;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      while (j < s.length) {
        if (s[j] === '"') {
          if (s[j + 1] === '"') {
            v += '"';
            j += 2;
            continue;
          }
          break;
        }
        v += s[j++];
      }
      out.push({ t: 'qid', v });
      i = j + 1;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(s[i + 1] ?? ''))) {
      const m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(s.slice(i))!;
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(s.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else if ('(),[]'.includes(c)) {
      out.push({ t: 'p', v: c });
      i++;
    } else {
      const m = /^(?:::|<>|!=|<=|>=|!~~\*|!~~|~~\*|~~|!~\*|!~|~\*|\|\||[-+*/%<>=~.])/.exec(s.slice(i));
      if (!m) throw new Unsupported(`character ${c}`);
      out.push({ t: 'op', v: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

export class Unsupported extends Error {}

const TYPE_WORDS = new Set(['varying', 'precision', 'with', 'without', 'time', 'zone']);

/** Parse an expression (a CHECK body without the CHECK keyword). Throws Unsupported. */
export function parseExpr(text: string): Node {
  const toks = tokenize(text);
  let p = 0;
  const peek = (o = 0) => toks[p + o];
  const isKw = (w: string, o = 0) => peek(o)?.t === 'id' && peek(o)!.v.toUpperCase() === w;
  const isP = (v: string) => peek()?.t === 'p' && peek()!.v === v;
  const isOp = (v: string) => peek()?.t === 'op' && peek()!.v === v;
  const expect = (v: string) => {
    if (!(peek() && peek()!.v === v)) throw new Unsupported(`expected ${v} at token ${p}`);
    p++;
  };
  const or = (): Node => {
    let l = and();
    while (isKw('OR')) {
      p++;
      l = { k: 'bin', op: 'or', l, r: and() };
    }
    return l;
  };
  const and = (): Node => {
    let l = not();
    while (isKw('AND')) {
      p++;
      l = { k: 'bin', op: 'and', l, r: not() };
    }
    return l;
  };
  const not = (): Node => {
    if (isKw('NOT')) {
      p++;
      return { k: 'un', op: 'not', e: not() };
    }
    return cmp();
  };
  const CMP = new Set(['=', '<>', '!=', '<', '<=', '>', '>=', '~', '~*', '!~', '!~*', '~~', '~~*', '!~~', '!~~*']);
  const cmp = (): Node => {
    const l = add();
    if (isKw('IS')) {
      p++;
      const neg = isKw('NOT') ? (p++, true) : false;
      if (isKw('NULL')) return p++, { k: 'isnull', e: l, not: neg };
      if (isKw('TRUE') || isKw('FALSE')) {
        const v = peek()!.v.toUpperCase() === 'TRUE';
        p++;
        return { k: 'isbool', e: l, v, not: neg };
      }
      throw new Unsupported('IS …');
    }
    if (peek()?.t === 'op' && CMP.has(peek()!.v)) {
      const op = peek()!.v === '!=' ? '<>' : peek()!.v;
      p++;
      if (isKw('ANY') || isKw('ALL') || isKw('SOME')) {
        const all = isKw('ALL');
        p++;
        expect('(');
        const r = or();
        expect(')');
        return { k: 'any', op, l, r, all };
      }
      return { k: 'bin', op, l, r: add() };
    }
    return l;
  };
  const add = (): Node => {
    let l = mul();
    while (isOp('+') || isOp('-') || isOp('||')) {
      const op = peek()!.v;
      p++;
      l = { k: 'bin', op, l, r: mul() };
    }
    return l;
  };
  const mul = (): Node => {
    let l = unary();
    while (isOp('*') || isOp('/') || isOp('%')) {
      const op = peek()!.v;
      p++;
      l = { k: 'bin', op, l, r: unary() };
    }
    return l;
  };
  const unary = (): Node => {
    if (isOp('-')) {
      p++;
      return { k: 'un', op: '-', e: unary() };
    }
    if (isOp('+')) {
      p++;
      return unary();
    }
    return postfix();
  };
  const typeName = (): string => {
    const parts: string[] = [];
    const first = peek();
    if (!first || (first.t !== 'id' && first.t !== 'qid')) throw new Unsupported('type name');
    parts.push(first.v.toLowerCase());
    p++;
    // schema-qualified type
    if (isOp('.')) {
      p++;
      parts.length = 0;
      parts.push(peek()!.v.toLowerCase());
      p++;
    }
    while (peek()?.t === 'id' && TYPE_WORDS.has(peek()!.v.toLowerCase())) parts.push(toks[p++].v.toLowerCase());
    if (isP('(')) {
      while (!isP(')')) p++;
      p++;
    }
    let t = parts.join(' ');
    while (isP('[') && peek(1)?.v === ']') {
      p += 2;
      t += '[]';
    }
    return t;
  };
  const postfix = (): Node => {
    let e = primary();
    for (;;) {
      if (isOp('::')) {
        p++;
        e = { k: 'cast', e, type: typeName() };
      } else if (isP('[')) {
        throw new Unsupported('subscript');
      } else return e;
    }
  };
  const primary = (): Node => {
    const t = peek();
    if (!t) throw new Unsupported('end of expression');
    if (t.t === 'num') return p++, { k: 'lit', v: Number(t.v) };
    if (t.t === 'str') return p++, { k: 'lit', v: t.v };
    if (t.t === 'p' && t.v === '(') {
      p++;
      const e = or();
      expect(')');
      return e;
    }
    if (t.t === 'qid') return p++, { k: 'col', name: t.v };
    if (t.t === 'id') {
      const u = t.v.toUpperCase();
      if (u === 'TRUE' || u === 'FALSE') return p++, { k: 'lit', v: u === 'TRUE' };
      if (u === 'NULL') return p++, { k: 'lit', v: null };
      if (u === 'ARRAY' && peek(1)?.v === '[') {
        p += 2;
        const items: Node[] = [];
        while (!isP(']')) {
          items.push(or());
          if (isP(',')) p++;
        }
        p++;
        return { k: 'arr', items };
      }
      if (['CASE', 'SELECT', 'EXISTS', 'ROW'].includes(u)) throw new Unsupported(u);
      p++;
      if (isP('(')) {
        p++;
        const args: Node[] = [];
        while (!isP(')')) {
          args.push(or());
          if (isP(',')) p++;
          else if (!isP(')')) throw new Unsupported('function arguments');
        }
        p++;
        return { k: 'fn', name: t.v.toLowerCase(), args };
      }
      // a column, possibly qualified by its table
      if (isOp('.')) {
        p++;
        const n = peek()!;
        p++;
        return { k: 'col', name: n.t === 'qid' ? n.v : n.v.toLowerCase() };
      }
      return { k: 'col', name: t.v.toLowerCase() === 'value' && t.v === 'VALUE' ? 'VALUE' : t.v.toLowerCase() };
    }
    throw new Unsupported(`token ${t.v}`);
  };
  const e = or();
  if (p !== toks.length) throw new Unsupported(`trailing ${toks[p].v}`);
  return e;
}

/** "CHECK ((a > 0)) NOT VALID" → "(a > 0)". */
export function checkBody(def: string): string {
  const m = /^CHECK\s*\(([\s\S]*)\)(\s+NOT\s+VALID)?(\s+NO\s+INHERIT)?\s*$/i.exec(def.trim());
  return m ? m[1] : def;
}

const NUMERIC_TYPES = /^(integer|int|int2|int4|int8|smallint|bigint|numeric|decimal|real|double precision|float4|float8|money|oid)$/;

function toNum(v: Val): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v))) return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

function likeToRegex(pat: string, ci: boolean): RegExp {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i];
    if (c === '\\') re += (pat[++i] ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, ci ? 'i' : '');
}

const regexCache = new Map<string, RegExp>();
function posixRegex(pat: string, ci: boolean): RegExp {
  const key = (ci ? 'i:' : ':') + pat;
  let r = regexCache.get(key);
  if (!r) {
    // POSIX classes Postgres accepts that JS spells differently.
    const js = pat.replace(/\[:alpha:\]/g, 'A-Za-z').replace(/\[:digit:\]/g, '0-9').replace(/\[:alnum:\]/g, 'A-Za-z0-9').replace(/\[:space:\]/g, '\\s').replace(/\[:upper:\]/g, 'A-Z').replace(/\[:lower:\]/g, 'a-z');
    try {
      r = new RegExp(js, ci ? 'iu' : 'u');
    } catch {
      throw new Unsupported(`regular expression ${pat}`);
    }
    regexCache.set(key, r);
  }
  return r;
}

function compare(a: Val, b: Val): number | null {
  if (a === null || b === null) return null;
  const na = toNum(a);
  const nb = toNum(b);
  if (na !== null && nb !== null && (typeof a === 'number' || typeof b === 'number')) return na - nb;
  if (typeof a === 'boolean' || typeof b === 'boolean') return Number(a === true || a === 't') - Number(b === true || b === 't');
  const sa = String(a);
  const sb = String(b);
  // Instants in ISO text of one shape compare as text; mixed shapes through Date.
  if (/^\d{4}-\d\d-\d\d/.test(sa) && /^\d{4}-\d\d-\d\d/.test(sb) && sa.length !== sb.length) {
    const da = Date.parse(sa.replace(' ', 'T'));
    const db = Date.parse(sb.replace(' ', 'T'));
    if (!isNaN(da) && !isNaN(db)) return da - db;
  }
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function cmpOp(op: string, a: Val, b: Val): boolean | null {
  if (a === null || b === null) return null;
  switch (op) {
    case '~':
    case '~*':
    case '!~':
    case '!~*': {
      const m = posixRegex(String(b), op.includes('*')).test(String(a));
      return op.startsWith('!') ? !m : m;
    }
    case '~~':
    case '~~*':
    case '!~~':
    case '!~~*': {
      const m = likeToRegex(String(b), op.includes('*')).test(String(a));
      return op.startsWith('!') ? !m : m;
    }
  }
  const c = compare(a, b)!;
  switch (op) {
    case '=':
      return c === 0;
    case '<>':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
  throw new Unsupported(op);
}

const FUNCS: Record<string, (args: Val[]) => Val> = {
  length: ([s]) => (s === null ? null : Array.isArray(s) ? null : [...String(s)].length),
  char_length: ([s]) => (s === null ? null : [...String(s)].length),
  character_length: ([s]) => (s === null ? null : [...String(s)].length),
  octet_length: ([s]) => (s === null ? null : Buffer.byteLength(String(s))),
  lower: ([s]) => (s === null ? null : String(s).toLowerCase()),
  upper: ([s]) => (s === null ? null : String(s).toUpperCase()),
  btrim: ([s]) => (s === null ? null : String(s).trim()),
  abs: ([n]) => (toNum(n) === null ? null : Math.abs(toNum(n)!)),
  coalesce: (a) => a.find((x) => x !== null) ?? null,
  // "Exactly one of" (an exclusive arc: num_nonnulls(post_id, comment_id) = 1).
  num_nonnulls: (a) => a.filter((x) => x !== null).length,
  num_nulls: (a) => a.filter((x) => x === null).length,
  cardinality: ([a]) => (Array.isArray(a) ? a.length : a === null ? null : parseArray(String(a)).length),
  array_length: ([a]) => {
    const n = Array.isArray(a) ? a.length : a === null ? 0 : parseArray(String(a)).length;
    return n === 0 ? null : n;
  },
  now: () => new Date().toISOString(),
};

/** Elements of a one-dimensional array literal ({a,"b c",NULL}). */
export function parseArray(s: string): Val[] {
  const inner = s.trim().replace(/^\{|\}$/g, '');
  if (!inner) return [];
  const out: Val[] = [];
  let i = 0;
  while (i < inner.length) {
    if (inner[i] === '"') {
      let v = '';
      i++;
      while (i < inner.length && inner[i] !== '"') {
        if (inner[i] === '\\') i++;
        v += inner[i++];
      }
      out.push(v);
      i += 2;
    } else {
      const j = inner.indexOf(',', i);
      const raw = inner.slice(i, j < 0 ? inner.length : j);
      out.push(raw === 'NULL' ? null : raw);
      i = j < 0 ? inner.length : j + 1;
    }
  }
  return out;
}

function castTo(v: Val, type: string): Val {
  if (v === null) return null;
  if (type.endsWith('[]')) return Array.isArray(v) ? v : typeof v === 'string' ? parseArray(v) : v;
  if (NUMERIC_TYPES.test(type)) {
    const n = toNum(v);
    if (n === null) throw new Unsupported(`cast of ${String(v)} to ${type}`);
    return n;
  }
  if (type === 'boolean' || type === 'bool') return v === true || v === 't' || v === 'true';
  return Array.isArray(v) ? v : typeof v === 'boolean' ? (v ? 'true' : 'false') : String(v);
}

export type Row = Record<string, Val>;

/** Evaluate with three-valued logic: null is "unknown", which a CHECK lets through. */
export function evaluate(n: Node, row: Row): Val {
  switch (n.k) {
    case 'lit':
      return n.v;
    case 'col':
      if (!(n.name in row)) throw new Unsupported(`column ${n.name}`);
      return row[n.name];
    case 'cast':
      return castTo(evaluate(n.e, row), n.type);
    case 'arr':
      return n.items.map((x) => evaluate(x, row));
    case 'isnull': {
      const v = evaluate(n.e, row);
      return n.not ? v !== null : v === null;
    }
    case 'isbool': {
      const v = evaluate(n.e, row);
      const is = v !== null && (v === true || v === 't') === n.v;
      return n.not ? !is : is;
    }
    case 'un': {
      const v = evaluate(n.e, row);
      if (n.op === 'not') return v === null ? null : !truthy(v);
      const x = toNum(v);
      return x === null ? null : -x;
    }
    case 'fn': {
      const f = FUNCS[n.name];
      if (!f) throw new Unsupported(`function ${n.name}`);
      return f(n.args.map((a) => evaluate(a, row)));
    }
    case 'any': {
      const l = evaluate(n.l, row);
      const r = evaluate(n.r, row);
      const items = Array.isArray(r) ? r : r === null ? null : parseArray(String(r));
      if (items === null || l === null) return null;
      let sawNull = false;
      for (const it of items) {
        const c = cmpOp(n.op, l, it);
        if (c === null) sawNull = true;
        else if (c && !n.all) return true;
        else if (!c && n.all) return false;
      }
      return sawNull ? null : !!n.all;
    }
    case 'bin': {
      if (n.op === 'and') {
        const a = evaluate(n.l, row);
        if (a !== null && !truthy(a)) return false;
        const b = evaluate(n.r, row);
        if (b !== null && !truthy(b)) return false;
        return a === null || b === null ? null : true;
      }
      if (n.op === 'or') {
        const a = evaluate(n.l, row);
        if (a !== null && truthy(a)) return true;
        const b = evaluate(n.r, row);
        if (b !== null && truthy(b)) return true;
        return a === null || b === null ? null : false;
      }
      const a = evaluate(n.l, row);
      const b = evaluate(n.r, row);
      if (['+', '-', '*', '/', '%'].includes(n.op)) {
        const x = toNum(a);
        const y = toNum(b);
        if (a === null || b === null) return null;
        if (x === null || y === null) throw new Unsupported(`arithmetic on ${String(a)}`);
        return n.op === '+' ? x + y : n.op === '-' ? x - y : n.op === '*' ? x * y : n.op === '/' ? x / y : x % y;
      }
      if (n.op === '||') return a === null || b === null ? null : String(a) + String(b);
      return cmpOp(n.op, a, b);
    }
  }
}

function truthy(v: Val): boolean {
  return v === true || v === 't' || v === 'true';
}

export function columnsOf(n: Node, out = new Set<string>()): Set<string> {
  switch (n.k) {
    case 'col':
      out.add(n.name);
      break;
    case 'cast':
    case 'un':
    case 'isnull':
    case 'isbool':
      columnsOf(n.e, out);
      break;
    case 'bin':
    case 'any':
      columnsOf(n.l, out);
      columnsOf(n.r, out);
      break;
    case 'fn':
      n.args.forEach((a) => columnsOf(a, out));
      break;
    case 'arr':
      n.items.forEach((a) => columnsOf(a, out));
      break;
  }
  return out;
}

/** A compiled CHECK: its columns and a predicate (true unless the row makes it false). */
export interface CompiledCheck {
  columns: string[];
  passes(row: Row): boolean;
}

export function compileCheck(body: string): CompiledCheck | undefined {
  let node: Node;
  try {
    node = parseExpr(body);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  // Evaluate once on an all-NULL row: an unknown function or operator shows up now, not per row.
  const columns = [...columnsOf(node)];
  try {
    evaluate(node, Object.fromEntries(columns.map((c) => [c, null])));
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  return {
    columns,
    passes(row: Row) {
      try {
        const v = evaluate(node, row);
        return v === null || truthy(v);
      } catch (e) {
        if (e instanceof Unsupported) return false;
        throw e;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Bounds: what a generator can honour up front, so most rows never need a re-draw.

export interface Bounds {
  /** Numeric range (inclusive; a strict bound is moved by `step` where the type is integral). */
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** Value list (= ANY (ARRAY[…]) or = literal). */
  values?: Val[];
  minLength?: number;
  maxLength?: number;
  /** Regular expressions the value must match (~). */
  patterns?: string[];
  notEmpty?: boolean;
  notNull?: boolean;
  /** Values the column must not take (<> literal). */
  not?: Val[];
}

export interface Order {
  /** low op high, both columns of the row. */
  low: string;
  high: string;
  strict: boolean;
}

const flip: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=', '<>': '<>' };

function stripCast(n: Node): Node {
  return n.k === 'cast' ? stripCast(n.e) : n;
}

function literal(n: Node): Val | undefined {
  const s = stripCast(n);
  if (s.k === 'lit') return n.k === 'cast' ? castTo(s.v, n.type) : s.v;
  if (s.k === 'un' && s.op === '-') {
    const v = literal(s.e);
    return typeof v === 'number' ? -v : undefined;
  }
  if (s.k === 'arr') {
    const items = s.items.map(literal);
    return items.every((x) => x !== undefined) ? (items as Val[]) : undefined;
  }
  return undefined;
}

function conjuncts(n: Node): Node[] {
  return n.k === 'bin' && n.op === 'and' ? [...conjuncts(n.l), ...conjuncts(n.r)] : [n];
}

/** Per-column bounds and column orders from the top-level conjuncts of a CHECK body. */
export function deriveBounds(body: string, valueName?: string): { bounds: Map<string, Bounds>; orders: Order[] } {
  const bounds = new Map<string, Bounds>();
  const orders: Order[] = [];
  let node: Node;
  try {
    node = parseExpr(body);
  } catch {
    return { bounds, orders };
  }
  const b = (c: string) => {
    const name = valueName && c === 'VALUE' ? valueName : c;
    let x = bounds.get(name);
    if (!x) bounds.set(name, (x = {}));
    return x;
  };
  for (const c of conjuncts(node)) {
    if (c.k === 'isnull' && c.not && stripCast(c.e).k === 'col') b((stripCast(c.e) as any).name).notNull = true;
    if (c.k === 'any' && !c.all && c.op === '=' && stripCast(c.l).k === 'col') {
      const v = literal(c.r);
      if (Array.isArray(v)) b((stripCast(c.l) as any).name).values = v;
    }
    if (c.k !== 'bin' || !flip[c.op] && !['~', '~*'].includes(c.op)) continue;
    let l = c.l;
    let r = c.r;
    let op = c.op;
    if (literal(l) !== undefined && literal(r) === undefined) {
      [l, r] = [r, l];
      op = flip[op] ?? op;
    }
    const lit = literal(r);
    const ls = stripCast(l);
    if (ls.k === 'col' && lit === undefined && stripCast(r).k === 'col' && ['<', '<=', '>', '>='].includes(op)) {
      const rc = (stripCast(r) as any).name;
      orders.push(op.startsWith('<') ? { low: ls.name, high: rc, strict: op === '<' } : { low: rc, high: ls.name, strict: op === '>' });
      continue;
    }
    if (lit === undefined || Array.isArray(lit)) continue;
    if (ls.k === 'col') {
      const x = b(ls.name);
      // ~* too: a string matching the pattern as written matches it ignoring case.
      if (op === '~' || op === '~*') (x.patterns ??= []).push(String(lit));
      else if (op === '=') x.values = [lit];
      else if (op === '<>') {
        if (lit === '') x.notEmpty = true;
        else (x.not ??= []).push(lit);
      } else if (typeof lit === 'number') {
        if (op === '>' || op === '>=') {
          if (x.min === undefined || lit >= x.min) (x.min = lit), (x.minExclusive = op === '>');
        } else if (op === '<' || op === '<=') {
          if (x.max === undefined || lit <= x.max) (x.max = lit), (x.maxExclusive = op === '<');
        }
      }
    } else if (ls.k === 'fn' && ['length', 'char_length', 'character_length'].includes(ls.name) && ls.args.length === 1 && stripCast(ls.args[0]).k === 'col' && typeof lit === 'number') {
      const x = b((stripCast(ls.args[0]) as any).name);
      if (op === '>') x.minLength = Math.max(x.minLength ?? 0, lit + 1);
      if (op === '>=') x.minLength = Math.max(x.minLength ?? 0, lit);
      if (op === '<') x.maxLength = Math.min(x.maxLength ?? Infinity, lit - 1);
      if (op === '<=') x.maxLength = Math.min(x.maxLength ?? Infinity, lit);
      if (op === '=') (x.minLength = lit), (x.maxLength = lit);
      if (op === '<>' && lit === 0) x.minLength = Math.max(x.minLength ?? 0, 1);
    } else if (ls.k === 'fn' && ls.name === 'btrim' && op === '<>' && lit === '' && stripCast(ls.args[0]).k === 'col') {
      b((stripCast(ls.args[0]) as any).name).notEmpty = true;
    }
  }
  return { bounds, orders };
}

/** Merge b into a (both constraints hold). */
export function mergeBounds(a: Bounds, b: Bounds): Bounds {
  const out: Bounds = { ...a };
  if (b.min !== undefined && (out.min === undefined || b.min > out.min)) (out.min = b.min), (out.minExclusive = b.minExclusive);
  if (b.max !== undefined && (out.max === undefined || b.max < out.max)) (out.max = b.max), (out.maxExclusive = b.maxExclusive);
  if (b.values) out.values = out.values ? out.values.filter((v) => b.values!.some((w) => compare(v, w) === 0)) : b.values;
  if (b.minLength !== undefined) out.minLength = Math.max(out.minLength ?? 0, b.minLength);
  if (b.maxLength !== undefined) out.maxLength = Math.min(out.maxLength ?? Infinity, b.maxLength);
  if (b.patterns) out.patterns = [...(out.patterns ?? []), ...b.patterns];
  if (b.not) out.not = [...(out.not ?? []), ...b.not];
  out.notEmpty = out.notEmpty || b.notEmpty;
  out.notNull = out.notNull || b.notNull;
  return out;
}
