/**
 * `cutover rehearse` through the CLI, end to end on real servers, k6 and Toxiproxy: a scenario
 * whose budget cannot be met exits 1, and the report files name the failing budget.
 */
import { describe, it, expect } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = promisify(execFile);

describe('cutover rehearse (CLI)', () => {
  it('exits 1 when a budget cannot be met, and the report says which one', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cutover-rehearse-'));
    const res = await run(process.execPath, ['bin/cutover.mjs', 'rehearse', 'test/fixtures/scenarios/impossible-budget.yaml', '--out', out, '--json', '--no-drift', '--format', 'json,md,junit'], { maxBuffer: 64 << 20 }).then(
      (r) => ({ code: 0, ...r }),
      (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
    );
    expect(res.code, res.stderr.slice(-2000)).toBe(1);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(JSON.parse(res.stdout).scenario.name).toBe('impossible-budget');
    const r1 = report.runs[0];
    expect(r1.error, r1.error).toBeUndefined();
    expect(r1.requests.total).toBeGreaterThan(500);
    expect(r1.lostWrites).toBe(0);
    expect(r1.phases.map((p: any) => p.name)).toEqual(expect.arrayContaining(['fence', 'sentinel', 'sequences', 'switch']));
    expect(r1.budgets.find((b: any) => b.name === 'maxStallMs').pass).toBe(false);
    expect(report.verdict.pass).toBe(false);
    expect(report.verdict.reasons.join('\n')).toMatch(/maxStallMs/);
    expect(existsSync(join(out, 'report.md'))).toBe(true);
    expect(readFileSync(join(out, 'junit.xml'), 'utf8')).toMatch(/<failure/);
  });

  it('exits 2 with every problem of a broken scenario named by its path', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'cutover-bad-')), 'bad.yaml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, 'name: bad\nclusters: { old: { major: 9 }, new: { major: 17, colour: blue } }\nruns: 0\n');
    const res = await run(process.execPath, ['bin/cutover.mjs', 'rehearse', bad]).then(
      () => ({ code: 0, stderr: '' }),
      (e) => ({ code: e.code as number, stderr: e.stderr as string }),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/clusters\.old\.major/);
    expect(res.stderr).toMatch(/colour/);
    expect(res.stderr).toMatch(/runs/);
  });

  it('exits 2 on an unknown --format before any server starts', async () => {
    const t0 = Date.now();
    const res = await run(process.execPath, ['bin/cutover.mjs', 'rehearse', 'scenarios/quickstart.yaml', '--format', 'html,docx']).then(
      () => ({ code: 0, stderr: '' }),
      (e) => ({ code: e.code as number, stderr: e.stderr as string }),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--format: unknown report format\(s\): docx/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

describe('cutover rehearse (CLI), interrupted', () => {
  it('Ctrl-C tears the run down: no server, proxy, app or k6 of it left, no lab folder', async () => {
    const { spawn } = await import('node:child_process');
    const { readdirSync, existsSync: exists } = await import('node:fs');
    const { paths } = await import('../../lab/paths.ts');
    const out = mkdtempSync(join(tmpdir(), 'cutover-ctrlc-'));
    const child = spawn(process.execPath, ['bin/cutover.mjs', 'rehearse', 'test/fixtures/scenarios/impossible-budget.yaml', '--out', out, '--no-drift', '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    // wait until the load runs (the lab is fully up), then interrupt
    const t0 = Date.now();
    while (!/"step":"load"|step: load|switchover/.test(err) && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
    const mine = `rehearse-impossible-budget-${child.pid}-`;
    expect(readdirSync(paths.labs()).some((d) => d.startsWith(mine))).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, err.slice(-1500)).toBe(130);
    expect(err).toMatch(/interrupted \(SIGINT\): tearing the lab down/);
    const left = exists(paths.labs()) ? readdirSync(paths.labs()).filter((d) => d.startsWith(mine)) : [];
    expect(left).toEqual([]);
    const ps = execFileSync('ps', ['-eo', 'args']).toString();
    expect(ps.split('\n').filter((l) => l.includes(mine))).toEqual([]);
  });
});
