/**
 * The one SQL lexer of the migration core: splits text into code and the parts where a `;`, `--`
 * or keyword means nothing — comments (`--`, nested `/* *\/`), string literals (`'…'` with `''`,
 * `E'…'` with backslash escapes), quoted identifiers (`"…"`) and dollar-quoted bodies (`$tag$…$tag$`).
 * Statement splitting (pg_dump output, shadow-read files) and keyword checks build on it. Pure.
 */
export type SegmentKind = 'code' | 'line-comment' | 'block-comment' | 'string' | 'ident' | 'dollar';

export interface Segment {
  kind: SegmentKind;
  text: string;
}

const DOLLAR_TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;

export function lexSql(text: string): Segment[] {
  const out: Segment[] = [];
  const n = text.length;
  let code = '';
  const push = (kind: SegmentKind, s: string) => {
    if (code) out.push({ kind: 'code', text: code });
    code = '';
    out.push({ kind, text: s });
  };
  let i = 0;
  while (i < n) {
    const ch = text[i];
    const prev = code.length ? code[code.length - 1] : out.length ? out[out.length - 1].text.slice(-1) : '';
    if (ch === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i);
      const end = eol < 0 ? n : eol;
      push('line-comment', text.slice(i, end));
      i = end;
    } else if (ch === '/' && text[i + 1] === '*') {
      let depth = 1;
      let j = i + 2;
      while (j < n && depth > 0) {
        if (text.startsWith('/*', j)) (depth++, (j += 2));
        else if (text.startsWith('*/', j)) (depth--, (j += 2));
        else j++;
      }
      push('block-comment', text.slice(i, j));
      i = j;
    } else if (ch === "'" || ch === '"') {
      // E'…' strings may escape a quote with a backslash (the E is a word of its own, not `some'`)
      const escapes = ch === "'" && /(^|[^A-Za-z0-9_])[eE]$/.test(code);
      let j = i + 1;
      while (j < n) {
        if (escapes && text[j] === '\\') {
          j += 2;
          continue;
        }
        if (text[j] === ch) {
          if (text[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      push(ch === "'" ? 'string' : 'ident', text.slice(i, j + 1));
      i = j + 1;
    } else if (ch === '$' && !/[A-Za-z0-9_$]/.test(prev) && DOLLAR_TAG.test(text.slice(i, i + 64))) {
      const tag = DOLLAR_TAG.exec(text.slice(i, i + 64))![0];
      const end = text.indexOf(tag, i + tag.length);
      const j = end < 0 ? n : end + tag.length;
      push('dollar', text.slice(i, j));
      i = j;
    } else {
      code += ch;
      i++;
    }
  }
  if (code) out.push({ kind: 'code', text: code });
  return out;
}
