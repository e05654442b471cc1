/** The dataset presets by name, and per-column generator overrides. Building blocks are in gen.ts. */
export * from './gen.ts';
// ---------------------------------------------------------------------------------------------
// Registry

import { CutoverError } from '../../migration/errors.ts';
import { hash3, hashString, pools, type Dataset, type Preset } from './gen.ts';
import { payments } from './payments.ts';
import { notifications } from './notifications.ts';
import { edge } from './edge.ts';

export const presets: Record<string, Preset> = { payments, notifications, edge };

export function getPreset(name: string): Preset {
  const p = presets[name];
  if (!p)
    throw new CutoverError('USAGE', `unknown dataset preset "${name}"`, {
      hint: `presets: ${Object.keys(presets).join(', ')}, or custom with --ddl <file>`,
      exitCode: 2,
    });
  return p;
}

/** Apply "table.column" → generator overrides to a dataset's tables (presets and custom alike). */
export function applyOverrides(ds: Dataset, generators: Record<string, string>, seed: number): void {
  const pool = pools(seed);
  for (const [key, spec] of Object.entries(generators)) {
    const parts = key.split('.');
    const col = parts.pop()!;
    const tableName = parts.pop()!;
    const schema = parts.pop();
    const t = ds.tables.find((t) => t.name === tableName && (schema === undefined || t.schema === schema));
    if (!t) throw new CutoverError('CONFIG', `generator override ${key}: no table ${schema ? schema + '.' : ''}${tableName} in dataset ${ds.name}`, { hint: `tables: ${ds.tables.map((t) => t.name).join(', ')}`, exitCode: 2 });
    const idx = t.columns.indexOf(col);
    if (idx < 0) throw new CutoverError('CONFIG', `generator override ${key}: table ${t.name} has no column ${col}`, { hint: `columns: ${t.columns.join(', ')}`, exitCode: 2 });
    const values = pool.of(spec);
    const salt = hashString(key);
    const inner = t.row;
    t.row = (i) => {
      const r = inner(i);
      r[idx] = values[hash3(seed, salt, i) % values.length];
      return r;
    };
  }
}

