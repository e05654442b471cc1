/** Every form a password takes in text we print or store must come out redacted (issue 20). */
import { describe, expect, it } from 'vitest';
import { describeError, redactSecrets, CutoverError } from '../../migration/errors.ts';
import { redactUrl } from '../../migration/pg.ts';

const S = 'Sup3r-S3cret';
const forms: Array<[string, string]> = [
  ['URL userinfo', `connect postgres://app:${S}@db.example:5432/app failed`],
  ['postgresql scheme', `postgresql://app:${S}@db/app`],
  ['password containing @', `postgres://app:${S}@x@db.example/app`],
  ['password containing %', `postgres://app:${S}%25x@db.example/app`],
  ['literal % (invalid escape)', `postgres://app:${S}%zz@db.example/app`],
  ['?password= query parameter', `postgres://app@db.example/app?password=${S}&sslmode=require`],
  ['&password= after another parameter', `postgres://db.example/app?user=app&password=${S}`],
  ['sslpassword parameter', `postgres://db/app?sslpassword=${S}`],
  ['conninfo plain', `host=db user=app password=${S} dbname=app`],
  ['conninfo quoted', `host='db' password='${S}' dbname='app'`],
  ['conninfo quoted with escaped quote', `host='db' password='it\\'s ${S} \\'x' dbname='app'`],
  ['conninfo spaces around =', `password = ${S}`],
  ['conninfo upper case key', `PASSWORD=${S}`],
  ['env PGPASSWORD', `PGPASSWORD=${S} pg_dump`],
  ['JSON', `{"user":"app","password":"${S}"}`],
  ['JSON with escaped quote', `{"password":"a\\"${S}"}`],
  ['HTTP error with credentials in URL', `request to http://admin:${S}@127.0.0.1:8053/records failed, reason: ECONNREFUSED`],
  ['https token in userinfo', `GET https://u:${S}@api.example/x -> 401`],
  ['HTTP token parameter', `GET http://127.0.0.1/x?token=${S} 500`],
  ['Authorization header', `Authorization: Bearer ${S}`],
  ['two URLs on one line', `postgres://a:${S}@h1/db and postgres://b:${S}@h2/db`],
  ['URL in quotes', `"postgres://a:${S}@h1/db"`],
];

describe('redactSecrets', () => {
  it.each(forms)('%s', (_what, text) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(S);
    expect(out).toContain('***');
  });

  it('keeps what is not secret: user, host, database, other parameters', () => {
    expect(redactSecrets(`postgres://app:${S}@db.example:5432/app?sslmode=require`)).toBe('postgres://app:***@db.example:5432/app?sslmode=require');
    expect(redactSecrets(`postgres://app:${S}@x@db.example/app`)).toBe('postgres://app:***@db.example/app');
    expect(redactSecrets(`host=db password='it\\'s ${S}' dbname=app`)).toBe(`host=db password=*** dbname=app`);
    expect(redactSecrets(`postgres://a:${S}@h1/db and postgres://b:${S}@h2/db`)).toBe('postgres://a:***@h1/db and postgres://b:***@h2/db');
    expect(redactSecrets('postgres://app@db/app')).toBe('postgres://app@db/app');
    expect(redactSecrets('mail me at someone@example.com')).toBe('mail me at someone@example.com');
  });

  it('redactUrl and describeError use it for every form', () => {
    for (const [, text] of forms) {
      expect(redactUrl(text)).not.toContain(S);
      expect(describeError(new Error(text))).not.toContain(S);
      const e = new CutoverError('CONNECT', text, { hint: text, detail: text });
      expect(describeError(e)).not.toContain(S);
      expect(JSON.stringify(e.toJSON())).not.toContain(S);
    }
    expect(redactUrl(`postgres://app@db/app?password=${S}`)).not.toContain(S);
  });
});
