/** Every command module registers itself here (one line each). */
import type { Command } from 'commander';

export const commands: Array<(program: Command) => void> = [];
