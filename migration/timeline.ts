/**
 * The cluster's own timeline during a rehearsal (or any window of a real replication): the watch's
 * figures every second, plus each server's CPU, so a report can show what the clusters went through
 * beside what the clients saw — WAL piling up on the old primary, xmin held back, apply stopped.
 *
 * `start()` samples in the background (never two samples at once; a slow sample skips ticks rather
 * than queueing them), `stop()` returns the points. A side that stops answering (a kill fault)
 * gives points with nulls until it is back.
 */
import { CpuMeter, parentPid } from './cpu.ts';
import { systemClock, type Clock } from './progress.ts';
import { WatchSession, type ApplyState, type WatchSample, type WatchTarget } from './watch.ts';

/** One second of the clusters' timeline (report-model shape proposed in notes/watch.md). */
export interface ClusterTimelinePoint {
  /** ms since the caller's origin (the same origin as the client timeline's tMs). */
  tMs: number;
  walRetainedBytes: number | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  applyState: ApplyState;
  /** pg_stat_subscription_stats.apply_error_count (15+ subscriber), else null. */
  applyErrorCount: number | null;
  /** max(age(xmin), age(catalog_xmin)) of the slot. */
  xminAge: number | null;
  datfrozenxidAge: { old: number | null; new: number | null };
  connections: { old: number | null; new: number | null };
  oldestXactSeconds: { old: number | null; new: number | null };
  /** Cores used by each server's process tree over the last interval (1 = one core); null when unknown (remote, container). */
  cpu: { old: number | null; new: number | null };
}

export interface ClusterTimelineSummary {
  points: number;
  maxWalRetainedBytes: number | null;
  maxLagBytes: number | null;
  maxLagSeconds: number | null;
  maxXminAge: number | null;
  /** Seconds in which the apply worker was not streaming (down, disabled, missing). */
  applyNotStreamingSeconds: number;
  applyErrors: number | null;
  maxCpu: { old: number | null; new: number | null };
}

export interface ClusterTimelineOptions extends WatchTarget {
  intervalMs?: number;
  /** Origin of tMs (default: when start() is called). */
  t0?: number;
  /**
   * Root pids of each server's process tree, asked for at every sample (a restarted postmaster has
   * a new pid): e.g. `() => [lab.old.record.pid]`. Default: the parent of our own backend when the
   * server runs on this host (embedded); nothing for remote servers.
   */
  pids?: { old?: () => readonly number[] | undefined; new?: () => readonly number[] | undefined };
  clock?: Clock;
  /** Called with each point as it is taken (progress lines, live charts). */
  onPoint?: (p: ClusterTimelinePoint, s: WatchSample) => void;
}

export function isLocalHost(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return h === 'localhost' || h === '::1' || /^127\./.test(h) || h === '';
  } catch {
    return false;
  }
}

export function toTimelinePoint(s: WatchSample, tMs: number, cpu: { old: number | null; new: number | null }): ClusterTimelinePoint {
  const xa = [s.slot.xminAge, s.slot.catalogXminAge].filter((x): x is number => x !== null);
  return {
    tMs,
    walRetainedBytes: s.slot.walRetainedBytes,
    lagBytes: s.lagBytes,
    lagSeconds: s.lagSeconds,
    applyState: s.subscription.applyState,
    applyErrorCount: s.subscription.applyErrorCount,
    xminAge: xa.length ? Math.max(...xa) : null,
    datfrozenxidAge: { old: s.source.datfrozenxidAge, new: s.target.datfrozenxidAge },
    connections: { old: s.source.connections, new: s.target.connections },
    oldestXactSeconds: { old: s.source.oldestXactSeconds, new: s.target.oldestXactSeconds },
    cpu,
  };
}

/** Worst values over a timeline: what budgets (maxWalRetained, maxXminAge) are checked against. */
export function summariseTimeline(points: readonly ClusterTimelinePoint[], intervalMs = 1000): ClusterTimelineSummary {
  const max = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? Math.max(...v) : null;
  };
  const errs = points.map((p) => p.applyErrorCount).filter((x): x is number => x !== null);
  return {
    points: points.length,
    maxWalRetainedBytes: max(points.map((p) => p.walRetainedBytes)),
    maxLagBytes: max(points.map((p) => p.lagBytes)),
    maxLagSeconds: max(points.map((p) => p.lagSeconds)),
    maxXminAge: max(points.map((p) => p.xminAge)),
    applyNotStreamingSeconds: (points.filter((p) => p.applyState !== 'streaming' && p.applyState !== 'syncing').length * intervalMs) / 1000,
    // counters since stats_reset: the rise over the window is what happened in it
    applyErrors: errs.length ? errs[errs.length - 1] - errs[0] : null,
    maxCpu: { old: max(points.map((p) => p.cpu.old)), new: max(points.map((p) => p.cpu.new)) },
  };
}

export class ClusterTimelineSampler {
  private readonly session: WatchSession;
  private readonly clock: Clock;
  private readonly points: ClusterTimelinePoint[] = [];
  private readonly cpu: { old: CpuMeter; new: CpuMeter };
  private t0 = 0;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Errors of samples that failed as a whole (each side's own failures are in the points as nulls). */
  readonly errors: string[] = [];

  constructor(private readonly opts: ClusterTimelineOptions) {
    this.clock = opts.clock ?? systemClock;
    this.session = new WatchSession(opts, { clock: this.clock, applicationName: 'cutover-timeline' });
    const auto = (side: 'source' | 'target', url: string) => () => {
      if (!isLocalHost(url)) return undefined;
      const pid = this.session.backendPids[side];
      const pm = pid ? parentPid(pid) : undefined;
      return pm ? [pm] : undefined;
    };
    this.cpu = { old: new CpuMeter(opts.pids?.old ?? auto('source', opts.source)), new: new CpuMeter(opts.pids?.new ?? auto('target', opts.target)) };
  }

  start(): void {
    this.t0 = this.opts.t0 ?? this.clock.now();
    const interval = this.opts.intervalMs ?? 1000;
    const tick = () => {
      if (this.stopped) return;
      if (!this.running)
        this.running = this.sampleOnce()
          .catch((e) => void this.errors.push(e instanceof Error ? e.message : String(e)))
          .finally(() => (this.running = undefined));
      // aligned to the origin: point n is taken at t0 + n·interval (ticks missed while busy are skipped)
      const now = this.clock.now();
      const next = interval - ((now - this.t0) % interval);
      this.timer = setTimeout(tick, next);
    };
    tick();
  }

  private async sampleOnce(): Promise<void> {
    const s = await this.session.sample();
    const p = toTimelinePoint(s, s.tMs - this.t0, { old: this.cpu.old.read(s.tMs), new: this.cpu.new.read(s.tMs) });
    this.points.push(p);
    this.opts.onPoint?.(p, s);
  }

  /** Points so far (a copy), e.g. for a live chart. */
  snapshot(): ClusterTimelinePoint[] {
    return [...this.points];
  }

  /**
   * Stop sampling (waits for a sample in flight, at most `waitMs`: a server that stopped answering
   * — SIGSTOPped, a dead link — must not hold whoever stops the sampler) and return the points.
   */
  async stop(waitMs = 10_000): Promise<ClusterTimelinePoint[]> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    let t: NodeJS.Timeout | undefined;
    const bounded = (p: Promise<unknown> | undefined) => Promise.race([p, new Promise<void>((res) => (t = setTimeout(res, waitMs)))]).finally(() => clearTimeout(t));
    await bounded(this.running);
    await bounded(this.session.close().catch(() => {}));
    return [...this.points];
  }
}
