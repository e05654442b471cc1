/** `cutover rehearse` through the CLI, with its report.json, report.md and junit.xml failure messages. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';

const run = promisify(execFile);

export async function rehearseCli(scenario: string, extra: string[] = [], opts: { json?: boolean } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'cutover-unknowns-'));
  const res = await run(process.execPath, ['bin/cutover.mjs', 'rehearse', scenario, '--out', out, '--format', 'json,md,junit', ...(opts.json === false ? [] : ['--json']), ...extra], { maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
  );
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(junit);
  const cases = [doc.testsuites.testsuite.testcase].flat();
  const failures = cases.filter((c: any) => c.failure).map((c: any) => String(c.failure.message)).join('\n');
  return { ...res, report, md, failures };
}

