/** Regenerates scenarios/scenario.schema.json from the zod schema: `npx tsx scenarios/write-schema.ts`. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { JSON_SCHEMA_FILE, scenarioJsonSchema } from './schema.ts';

writeFileSync(JSON_SCHEMA_FILE, JSON.stringify(scenarioJsonSchema(), null, 2) + '\n');
console.log(`wrote ${fileURLToPath(JSON_SCHEMA_FILE)}`);
