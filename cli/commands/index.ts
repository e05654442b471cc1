/** Every command module registers itself here (one line each). */
import type { Command } from 'commander';
import { register as doctor } from './doctor.ts';
import { register as lab } from './lab.ts';

export const commands: Array<(program: Command) => void> = [doctor, lab];
