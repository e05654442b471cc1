/**
 * CPU of a local server process tree from /proc (Linux): the postmaster's own time, the time of
 * its live descendants (backends, walsenders, apply workers), and the time of the children it has
 * already reaped (cutime/cstime) — so the total never drops when a backend exits, and the delta
 * between two readings is the CPU the whole server used in between.
 *
 * Only meaningful for servers on this host in this pid namespace (embedded clusters); a container
 * runtime reports its own figures, a remote server none.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc times; 100 on every Linux build we run on (sysconf(_SC_CLK_TCK)). */
export const CLK_TCK = 100;

export interface ProcStat {
  pid: number;
  comm: string;
  /** R running, S sleeping, T stopped, Z zombie, … */
  state: string;
  ppid: number;
  /** utime + stime, ticks. */
  own: number;
  /** cutime + cstime (reaped children), ticks. */
  reaped: number;
}

/** Parse one /proc/<pid>/stat line (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/);
  // after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  if (f.length < 15) return undefined;
  return { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), state: f[0], ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

function readStat(pid: number, procRoot: string): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Total CPU ticks of the trees rooted at `roots` (see the file comment). */
export function treeTicks(roots: readonly number[], procRoot = '/proc'): number | undefined {
  const live = roots.map((p) => readStat(p, procRoot)).filter((s): s is ProcStat => !!s);
  if (!live.length) return undefined;
  let entries: string[];
  try {
    entries = readdirSync(procRoot).filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const children = new Map<number, ProcStat[]>();
  for (const e of entries) {
    const s = readStat(Number(e), procRoot);
    if (!s) continue;
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  let total = 0;
  const seen = new Set<number>();
  const walk = (s: ProcStat) => {
    if (seen.has(s.pid)) return;
    seen.add(s.pid);
    // a descendant's reaped time is already in its own parent's cutime only once it is reaped;
    // counting own + reaped for every live process is exact for the tree
    total += s.own + s.reaped;
    for (const c of children.get(s.pid) ?? []) walk(c);
  };
  for (const s of live) walk(s);
  return total;
}

/**
 * CPU used between readings, in cores (1.0 = one core busy all the time). The roots are asked for
 * again on every reading, so a restarted server (new postmaster pid) is followed.
 */
export class CpuMeter {
  private last?: { ticks: number; tMs: number; roots: string };

  constructor(
    private readonly roots: () => readonly number[] | undefined,
    private readonly procRoot = '/proc',
  ) {}

  read(tMs: number): number | null {
    const roots = (this.roots() ?? []).filter((p) => Number.isInteger(p) && p > 0);
    if (!roots.length) return (this.last = undefined), null;
    const ticks = treeTicks(roots, this.procRoot);
    if (ticks === undefined) return (this.last = undefined), null;
    const key = roots.join(',');
    const prev = this.last;
    this.last = { ticks, tMs, roots: key };
    // a new postmaster starts its count from zero: no figure for the interval it restarted in
    if (!prev || prev.roots !== key || tMs <= prev.tMs) return null;
    const cores = Math.max(0, ticks - prev.ticks) / CLK_TCK / ((tMs - prev.tMs) / 1000);
    return Math.round(cores * 1000) / 1000;
  }
}

/** The parent pid of a process (a backend's parent is its postmaster), if it is on this host. */
export function parentPid(pid: number, procRoot = '/proc'): number | undefined {
  const s = readStat(pid, procRoot);
  return s && (s.comm === 'postgres' || s.comm === 'postmaster') ? s.ppid : undefined;
}
