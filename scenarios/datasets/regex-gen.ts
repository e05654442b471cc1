/**
 * Strings that match a regular expression, for CHECK (col ~ '…') columns: literals, escapes (\d \w
 * \s \. …), classes with ranges and negation, groups with alternation, ? * + {n} {n,} {n,m}, and
 * anchors. Back-references and look-arounds are not supported (`compileRegexGen` returns
 * undefined; the seeder then re-draws, and names the column when that does not help). Pure.
 */
type RNode =
  | { k: 'set'; chars: string }
  | { k: 'seq'; items: RNode[] }
  | { k: 'alt'; options: RNode[] }
  | { k: 'rep'; e: RNode; min: number; max: number };

const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const WORD = LOWER + UPPER + DIGITS + '_';
const PRINTABLE = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

class Bad extends Error {}

function escapeClass(c: string): string {
  switch (c) {
    case 'd':
      return DIGITS;
    case 'w':
      return WORD;
    case 's':
      return ' ';
    case 'D':
      return PRINTABLE.replace(/[0-9]/g, '');
    case 'W':
      return PRINTABLE.replace(/\w/g, '');
    case 'S':
      return PRINTABLE.replace(/\s/g, '');
    case 'n':
      return '\n';
    case 't':
      return '\t';
  }
  if (/[A-Za-z0-9]/.test(c)) throw new Bad(`\\${c}`);
  return c;
}

function parse(src: string): RNode {
  let p = 0;
  const alt = (): RNode => {
    const options = [seq()];
    while (src[p] === '|') {
      p++;
      options.push(seq());
    }
    return options.length === 1 ? options[0] : { k: 'alt', options };
  };
  const seq = (): RNode => {
    const items: RNode[] = [];
    while (p < src.length && src[p] !== '|' && src[p] !== ')') {
      let atom = one();
      if (!atom) continue;
      for (;;) {
        const q = src[p];
        if (q === '?') (atom = { k: 'rep', e: atom, min: 0, max: 1 }), p++;
        else if (q === '*') (atom = { k: 'rep', e: atom, min: 0, max: 4 }), p++;
        else if (q === '+') (atom = { k: 'rep', e: atom, min: 1, max: 5 }), p++;
        else if (q === '{') {
          const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(p));
          if (!m) throw new Bad('{');
          const min = Number(m[1]);
          const max = m[2] ? (m[3] ? Number(m[3]) : min + 4) : min;
          atom = { k: 'rep', e: atom, min, max };
          p += m[0].length;
        } else break;
        if (src[p] === '?') p++; // lazy quantifier: same strings
      }
      items.push(atom);
    }
    return { k: 'seq', items };
  };
  const one = (): RNode | undefined => {
    const c = src[p++];
    if (c === '^' || c === '$') return undefined;
    if (c === '(') {
      if (src[p] === '?') {
        if (src[p + 1] !== ':') throw new Bad('(?');
        p += 2;
      }
      const e = alt();
      if (src[p++] !== ')') throw new Bad(')');
      return e;
    }
    if (c === '[') {
      let neg = false;
      if (src[p] === '^') (neg = true), p++;
      let chars = '';
      let first = true;
      while (p < src.length && (src[p] !== ']' || first)) {
        first = false;
        let a = src[p++];
        if (a === '[' && src[p] === ':') {
          const m = /^:([a-z]+):\]/.exec(src.slice(p));
          if (!m) throw new Bad('[:');
          chars += { alpha: LOWER + UPPER, digit: DIGITS, alnum: LOWER + UPPER + DIGITS, upper: UPPER, lower: LOWER, space: ' ', xdigit: DIGITS + 'abcdef' }[m[1]] ?? '';
          p += m[0].length;
          continue;
        }
        if (a === '\\') {
          chars += escapeClass(src[p++]);
          continue;
        }
        if (src[p] === '-' && src[p + 1] !== ']' && p + 1 < src.length) {
          let b = src[p + 1];
          p += 2;
          if (b === '\\') b = src[p++];
          for (let x = a.charCodeAt(0); x <= b.charCodeAt(0); x++) chars += String.fromCharCode(x);
          continue;
        }
        chars += a;
      }
      if (src[p++] !== ']') throw new Bad(']');
      if (neg) chars = PRINTABLE.split('').filter((x) => !chars.includes(x)).join('');
      if (!chars) throw new Bad('empty class');
      return { k: 'set', chars };
    }
    if (c === '\\') return { k: 'set', chars: escapeClass(src[p++]) };
    if (c === '.') return { k: 'set', chars: LOWER + DIGITS };
    if (c === ')' || c === '|') throw new Bad(c);
    return { k: 'set', chars: c };
  };
  const e = alt();
  if (p < src.length) throw new Bad(`at ${p}`);
  return e;
}

/** A function from a random source to a matching string; undefined when the pattern is beyond it. */
export function compileRegexGen(pattern: string): ((rnd: () => number) => string) | undefined {
  let tree: RNode;
  try {
    tree = parse(pattern);
  } catch {
    return undefined;
  }
  const gen = (n: RNode, rnd: () => number): string => {
    switch (n.k) {
      case 'set':
        return n.chars[Math.floor(rnd() * n.chars.length)];
      case 'seq':
        return n.items.map((x) => gen(x, rnd)).join('');
      case 'alt':
        return gen(n.options[Math.floor(rnd() * n.options.length)], rnd);
      case 'rep': {
        const times = n.min + Math.floor(rnd() * (n.max - n.min + 1));
        let s = '';
        for (let i = 0; i < times; i++) s += gen(n.e, rnd);
        return s;
      }
    }
  };
  return (rnd) => gen(tree, rnd);
}
