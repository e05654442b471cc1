/**
 * `cutover switchover`/`rollback` options are parsed before anything connects: a bad value is one
 * USAGE error (exit 2) with a hint, and the connections may come from CUTOVER_*_URL.
 */
import { describe, expect, it } from 'vitest';
import { toOptions } from '../../cli/commands/switchover.ts';
import { CutoverError } from '../../migration/errors.ts';
import { endpointOf } from '../../migration/switch/types.ts';

const base = { switch: 'command', command: 'true', fence: 'terminate', fenceScope: 'roles', name: 'main', maxLagBytes: '262144', maxLagSeconds: '5', lagTimeout: '300000', sequenceBuffer: '1000', phaseTimeout: [] as string[] };
const env = { CUTOVER_SOURCE_URL: 'postgres://admin:pw@127.0.0.2:5432/app', CUTOVER_TARGET_URL: 'postgres://admin:pw@127.0.0.3:5432/app' };

function usage(f: () => unknown): CutoverError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CutoverError);
    expect((e as CutoverError).code).toBe('USAGE');
    expect((e as CutoverError).exitCode).toBe(2);
    return e as CutoverError;
  }
  throw new Error('no error');
}

describe('switchover options', () => {
  it('takes --source/--target from CUTOVER_SOURCE_URL/CUTOVER_TARGET_URL; a rollback swaps them', () => {
    const f = toOptions(base, 'forward', env);
    expect(f.source).toContain('127.0.0.2');
    expect(f.target).toContain('127.0.0.3');
    const r = toOptions(base, 'rollback', env);
    expect(r.source).toContain('127.0.0.3');
    expect(r.name).toBe('main_reverse');
  });

  it('a missing connection names the flag and the variable', () => {
    const e = usage(() => toOptions(base, 'forward', {}));
    expect(e.message).toMatch(/--source is required/);
    expect(e.message).toMatch(/--target is required/);
    expect(e.hint).toMatch(/CUTOVER_SOURCE_URL/);
  });

  it('an invalid URL and a literal % in a password are usage errors, not TypeError/URIError', () => {
    usage(() => toOptions({ ...base, source: 'postgres://a:b@[bad' }, 'forward', env));
    const e = usage(() => toOptions({ ...base, source: 'postgres://admin:50%off@127.0.0.2/app' }, 'forward', env));
    expect(e.message + (e.hint ?? '')).not.toContain('50%off');
  });

  it('numbers, names, strategies and --allow-unfenced are checked', () => {
    expect(usage(() => toOptions({ ...base, maxLagBytes: 'abc' }, 'forward', env)).message).toMatch(/--max-lag-bytes must be a whole number/);
    expect(toOptions({ ...base, appRoles: '' }, 'forward', env).appRoles).toEqual([]);
    expect(toOptions({ ...base, appRoles: 'a, b' }, 'forward', env).appRoles).toEqual(['a', 'b']);
    expect(toOptions({ ...base, switch: 'pgbouncer', pgbouncerAdmin: 'postgres://x@127.0.0.1:6432/pgbouncer', pgbouncerIni: '/nonexistent.ini', maxHold: '2500' }, 'forward', env).switch).toMatchObject({ name: 'pgbouncer' });
    expect(toOptions({ ...base, maxLagSeconds: '0.5' }, 'forward', env).lag?.maxSeconds).toBe(0.5);
    expect(usage(() => toOptions({ ...base, maxLagSeconds: '-1' }, 'forward', env)).message).toMatch(/--max-lag-seconds/);
    expect(usage(() => toOptions({ ...base, fence: 'nope' }, 'forward', env)).message).toMatch(/--fence must be one of/);
    expect(usage(() => toOptions({ ...base, name: '数据' }, 'forward', env)).message).toMatch(/--name/);
    expect(usage(() => toOptions({ ...base, phaseTimeout: ['sentinal=5'] }, 'forward', env)).message).toMatch(/names no phase/);
    expect(usage(() => toOptions({ ...base, phaseTimeout: ['sentinel='] }, 'forward', env)).message).toMatch(/sentinel/);
    expect(usage(() => toOptions({ ...base, maxHold: '0' }, 'forward', env)).message).toMatch(/--max-hold/);
    expect(toOptions({ ...base, allowUnfenced: ['dba,owner', 'x'] }, 'forward', env).allowUnfenced).toEqual(['dba', 'owner', 'x']);
    expect(usage(() => toOptions({ ...base, allowUnfenced: [' , '] }, 'forward', env)).message).toMatch(/--allow-unfenced/);
  });

  it('an IPv6 endpoint loses its URL brackets (pgbouncer.ini wants host=::1)', () => {
    expect(endpointOf('postgres://u@[::1]:5433/app')).toEqual({ host: '::1', port: 5433, database: 'app' });
    expect(endpointOf('postgres://u@127.0.0.2/app').host).toBe('127.0.0.2');
  });
});
