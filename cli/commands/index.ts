/** Every command module registers itself here (one line each). */
import type { Command } from 'commander';
import { register as doctor } from './doctor.ts';
import { register as lab } from './lab.ts';
import { register as switchover } from './switchover.ts';
import { register as rollback } from './rollback.ts';

export const commands: Array<(program: Command) => void> = [doctor, lab, switchover, rollback];
import { register as drift } from './drift.ts'; commands.push(drift);
import { register as preflightCommand } from './preflight.ts'; commands.push(preflightCommand);
import { register as replicateCommand } from './replicate.ts'; commands.push(replicateCommand);
import { register as verifyCommand } from './verify.ts'; commands.push(verifyCommand);
import { register as scenarioCommand } from './scenario.ts'; import { register as seedCommand } from './seed.ts'; commands.push(scenarioCommand, seedCommand);
import { register as rehearseCommand } from './rehearse.ts'; commands.push(rehearseCommand);
