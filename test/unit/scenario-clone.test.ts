/** migration.initialSync in the scenario file: clone's rules, every problem with its path. */
import { describe, expect, it } from 'vitest';
import { parseScenario, loadScenario } from '../../scenarios/load.ts';

function problems(text: string): Array<{ path: string; message: string }> {
  try {
    parseScenario(text);
    return [];
  } catch (e: any) {
    return e.problems.map((p: any) => ({ path: p.path, message: p.message }));
  }
}

describe('migration.initialSync', () => {
  it('defaults to copy; clone-13-18.yaml asks for clone and is valid', async () => {
    expect(parseScenario(`name: t\nclusters: { old: { major: 13 }, new: { major: 17 } }\n`).migration.initialSync).toBe('copy');
    const s = await loadScenario('scenarios/clone-13-18.yaml');
    expect(s.migration.initialSync).toBe('clone');
    expect(s.load.during).toBe('sync');
  });

  it('refuses what clone cannot do, naming the field and the reason', () => {
    const p = problems(`name: t
clusters: { provider: docker, old: { major: 13 }, new: { major: 17, locale: en_US.UTF-8 } }
migration: { initialSync: clone, publication: incremental }
`);
    expect(p).toEqual(
      expect.arrayContaining([
        { path: 'migration.initialSync', message: expect.stringContaining('needs provider embedded (provider is docker)') },
        { path: 'migration.initialSync', message: expect.stringContaining('pg_upgrade 17; the lab has PostgreSQL 18') },
        { path: 'migration.initialSync', message: expect.stringContaining('cannot be combined with publication: incremental') },
        { path: 'clusters.new.locale', message: expect.stringContaining(`its locale is old's ("C.UTF-8")`) },
      ]),
    );
    expect(problems(`name: t\nclusters: { old: { major: 18 }, new: { major: 18 } }\nmigration: { initialSync: clone }\n`)).toEqual([
      { path: 'migration.initialSync', message: expect.stringContaining('old (18) must be older than new (18)') },
    ]);
    expect(problems(`name: t\nclusters: { old: { major: 13 }, new: { major: 18 } }\nmigration: { initialSync: snapshot }\n`)[0].path).toBe('migration.initialSync');
  });
});
