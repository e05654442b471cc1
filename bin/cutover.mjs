#!/usr/bin/env node
// The `cutover` command. The package is TypeScript run through tsx, so there is no build step
// between a `git pull` and a rehearsal.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../cli/main.ts');
await main(process.argv);
