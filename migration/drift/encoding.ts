/**
 * Encoding drift: the database encodings, and text on the source that the target's encoding
 * cannot hold. The scan runs on the source only: convert_to(col, <target encoding>) raises on the
 * first unmappable character, and for the common targets a regex counts the affected rows.
 */
import { quoteIdent, qualified, quoteIdentIfNeeded } from '../pg.ts';
import { finding, rows, type DriftContext, type DriftFinding, type Side } from './types.ts';

/** A regex (server side, on the source) matching values the target encoding cannot store; null = use convert_to. */
export function unrepresentablePattern(sourceEncoding: string, targetEncoding: string): string | null {
  const s = sourceEncoding.toUpperCase();
  const t = targetEncoding.toUpperCase();
  if (s !== 'UTF8') return null;
  if (t === 'LATIN1') return '[^\\u0001-\\u00ff]';
  if (t === 'SQL_ASCII') return '[^\\u0001-\\u007f]';
  return null;
}

/** Pure: the encoding pair's own finding (null when equal). */
export function diffEncodings(src: string, tgt: string, database: string): DriftFinding | null {
  if (src === tgt) return null;
  const widening = tgt === 'UTF8' && src !== 'SQL_ASCII';
  return finding('encoding', widening ? 'warning' : 'error', `database ${database} encoding`, src, tgt,
    widening
      ? `the database encoding changes from ${src} to UTF8: every character fits, but octet_length(), byte-based limits and client_encoding assumptions change`
      : tgt === 'UTF8'
        ? `the source is SQL_ASCII (bytes without a declared encoding) and the target is UTF8: any byte sequence that is not valid UTF-8 will be rejected by the target`
        : `the target encoding ${tgt} cannot represent every character the source (${src}) can: replication apply and COPY fail on the first unmappable character`,
    widening ? 'check byte-length constraints and client_encoding settings in the application' : `create the target database with ENCODING '${src === 'SQL_ASCII' ? 'UTF8' : src}' (CREATE DATABASE … ENCODING … TEMPLATE template0, or initdb --encoding)`);
}

interface TextColumn { table: string; schema: string; rel: string; column: string }

async function textColumns(side: Side): Promise<TextColumn[]> {
  return rows(side.client, `select format('%I.%I', n.nspname, c.relname) as table, n.nspname as schema, c.relname as rel, a.attname as column
     from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace join pg_type t on t.oid = a.atttypid
     where a.attnum > 0 and not a.attisdropped and c.relkind in ('r','p') and (t.typcategory = 'S' or a.atttypid in ('json'::regtype, 'jsonb'::regtype))
       and n.nspname not in ('pg_catalog','information_schema') and n.nspname !~ '^pg_(toast|temp)' order by 1, 4`);
}

/** Source text the target encoding cannot represent, per column. */
export async function unrepresentableText(src: Side, targetEncoding: string): Promise<DriftFinding[]> {
  const out: DriftFinding[] = [];
  const pattern = unrepresentablePattern(src.encoding, targetEncoding);
  for (const col of await textColumns(src)) {
    const rel = qualified(col.schema, col.rel);
    const c = quoteIdent(col.column);
    const object = `column ${col.table}.${quoteIdentIfNeeded(col.column)}`;
    let count: number | null = null;
    let sample: string | null = null;
    let error: string | null = null;
    try {
      if (pattern) {
        const [r] = await rows(src.client, `select count(*) as n, min(${c}::text) filter (where ${c}::text ~ $1) as sample from ${rel} where ${c}::text ~ $1`, [pattern]);
        count = r.n;
        sample = r.sample;
      } else if (src.encoding.toUpperCase() === 'SQL_ASCII') {
        const [r] = await rows(src.client, `select count(*) as n from ${rel} where ${c}::text ~ '[^\\x01-\\x7f]'`);
        if (r.n > 0) error = `${r.n} rows hold bytes above 0x7F, whose encoding SQL_ASCII does not know`;
        count = r.n;
      } else {
        await src.client.query(`select count(convert_to(${c}::text, $1)) from ${rel}`, [targetEncoding]);
        count = 0;
      }
    } catch (e: any) {
      if (e?.code === '22P05' || e?.code === '22021') error = e.message;
      else throw e;
    }
    if ((count ?? 0) > 0 || error) {
      out.push(finding('encoding', 'error', object, sample ?? error, targetEncoding,
        `${count ? `${count} rows of ${object} hold` : `${object} holds`} characters the target encoding ${targetEncoding} cannot represent${error ? ` (${error})` : ''}${sample ? `, e.g. ${JSON.stringify(sample.slice(0, 40))}` : ''}`,
        `use a target database in ${src.encoding === 'SQL_ASCII' ? 'UTF8 (after cleaning invalid bytes)' : src.encoding} or clean these values before the copy`));
    }
  }
  return out;
}


export async function checkEncoding(ctx: DriftContext): Promise<DriftFinding[]> {
  const out: DriftFinding[] = [];
  const f = diffEncodings(ctx.source.encoding, ctx.target.encoding, ctx.target.database);
  if (f) out.push(f);
  const needsScan = ctx.source.encoding !== ctx.target.encoding && ctx.target.encoding !== 'UTF8' || ctx.source.encoding === 'SQL_ASCII' && ctx.target.encoding !== 'SQL_ASCII';
  if (needsScan) out.push(...(await unrepresentableText(ctx.source, ctx.target.encoding)));
  // client_encoding mismatch at the database/role level is a settings concern; the connection here is always UTF8.
  return out;
}
