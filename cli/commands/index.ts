/** Every command module registers itself here (one line each), in the order `cutover --help` lists them. */
import type { Command } from 'commander';
import { register as doctor } from './doctor.ts';
import { register as lab } from './lab.ts';
import { register as scenario } from './scenario.ts';
import { register as seed } from './seed.ts';
import { register as golden } from './golden.ts';
import { register as preflight } from './preflight.ts';
import { register as replicate } from './replicate.ts';
import { register as verify } from './verify.ts';
import { register as drift } from './drift.ts';
import { register as switchover } from './switchover.ts';
import { register as rollback } from './rollback.ts';
import { register as rehearse } from './rehearse.ts';
import { register as report } from './report.ts';

export const commands: Array<(program: Command) => void> = [doctor, lab, scenario, seed, golden, preflight, replicate, verify, drift, switchover, rollback, rehearse, report];
