/** The one SQL lexer and the splitters built on it. */
import { describe, it, expect } from 'vitest';
import { lexSql } from '../../migration/sql-lexer.ts';
import { splitStatements, stripComments } from '../../migration/drift/shadow.ts';
import { splitSql } from '../../migration/schema-copy.ts';

describe('lexSql', () => {
  it('tells code from comments, strings, identifiers and dollar bodies, losing nothing', () => {
    const text = `select 'a;''b', "x;y" -- c;\n/* d /* nested; */ e; */ from $f$ g; $f$ where e'h\\';' = $$i;$$;`;
    const segs = lexSql(text);
    expect(segs.map((s) => s.text).join('')).toBe(text);
    expect(segs.filter((s) => s.kind !== 'code').map((s) => s.kind)).toEqual(['string', 'ident', 'line-comment', 'block-comment', 'dollar', 'string', 'dollar']);
    expect(segs.filter((s) => s.kind === 'code').map((s) => s.text).join('').split(';').length).toBe(2);
  });

  it("does not take a word ending in e before a quote for an E'' string, nor $1 for a dollar tag", () => {
    expect(lexSql(`select some'x\\' , 1`).find((s) => s.kind === 'string')?.text).toBe(`'x\\'`);
    expect(lexSql(`select $1, a$b$ from t`).every((s) => s.kind === 'code')).toBe(true);
  });
});

describe('splitters on the lexer', () => {
  it('shadow-read files split on ; outside quotes, E-strings, comments and dollar bodies', () => {
    expect(splitStatements(`select ';'; -- only a comment;\nselect e'it\\'s; fine'; select $$a;b$$;`)).toEqual([`select ';'`, `-- only a comment;\nselect e'it\\'s; fine'`, `select $$a;b$$`]);
    expect(stripComments(`select 'x' /* c */ from "T" -- d`, true)).toBe(`select ''   from "x"  `);
  });

  it('pg_dump output: meta-commands dropped, statements tagged with their Name header', () => {
    const dump = `\\restrict abc\n--\n-- Name: Order Items; Type: TABLE; Schema: public; Owner: -\n--\nCREATE TABLE public."Order Items" (note text DEFAULT ';');\nCREATE FUNCTION f() RETURNS int AS $$ select 1; $$ LANGUAGE sql;\n\\unrestrict abc\n`;
    expect(splitSql(dump)).toMatchObject([
      { sql: `CREATE TABLE public."Order Items" (note text DEFAULT ';');`, object: 'TABLE public.Order Items' },
      { sql: `CREATE FUNCTION f() RETURNS int AS $$ select 1; $$ LANGUAGE sql;`, object: 'TABLE public.Order Items' },
    ]);
  });
});
