/** The switch command sees only the documented context, and what is stored of its run is redacted (issue 20). */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { redactCommandRun, switchCommandEnv } from '../../migration/command-env.ts';
import { redactValues } from '../../migration/errors.ts';

const base = {
  PATH: process.env.PATH,
  HOME: '/home/x',
  CUTOVER_SOURCE_URL: 'postgres://app:src-Secret-1@old/app',
  CUTOVER_TARGET_URL: 'postgres://app:tgt-Secret-2@new/app',
  CUTOVER_STATE_DIR: '/var/lib/x',
  PGPASSWORD: 'pg-Secret-3',
  AWS_SECRET_ACCESS_KEY: 'aws-Secret-4',
} as NodeJS.ProcessEnv;

describe('switch command environment', () => {
  it('a real child sees the context and the user environment, not our connection secrets', () => {
    const env = switchCommandEnv({ CUTOVER_PHASE: 'switch', CUTOVER_TO_HOST: '10.0.0.2' }, base);
    const out = execFileSync('sh', ['-c', 'env'], { env, encoding: 'utf8' });
    expect(out).toContain('CUTOVER_PHASE=switch');
    expect(out).toContain('CUTOVER_TO_HOST=10.0.0.2');
    expect(out).toContain('HOME=/home/x');
    expect(out).toContain('AWS_SECRET_ACCESS_KEY='); // the user's own command may need it
    for (const s of ['src-Secret-1', 'tgt-Secret-2', 'pg-Secret-3', 'CUTOVER_STATE_DIR']) expect(out).not.toContain(s);
  });

  it('the stored run has no secret in command, stdout or stderr', () => {
    const run = {
      command: `aws route53 change --token aws-Secret-4 --db postgres://app:src-Secret-1@old/app`,
      stdout: 'token: aws-Secret-4\nok',
      stderr: 'warning: pg-Secret-3 and tgt-Secret-2 and tgt-Secret-2 url-encoded: ' + encodeURIComponent('p@ss w0rd!'),
      exitCode: 0,
    };
    const stored = redactCommandRun(run, { ...base, CUTOVER_DNS_TOKEN: 'p@ss w0rd!' });
    const text = JSON.stringify(stored);
    for (const s of ['aws-Secret-4', 'src-Secret-1', 'tgt-Secret-2', 'pg-Secret-3', encodeURIComponent('p@ss w0rd!')]) expect(text).not.toContain(s);
    expect(stored.stdout).toBe('token: ***\nok');
    expect(stored.exitCode).toBe(0);
  });

  it('short values are not redacted everywhere', () => {
    expect(redactValues('port 5432 is on', ['on', '5432'])).toBe('port 5432 is on');
  });
});
