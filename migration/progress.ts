/**
 * Progress for long work (seeding, copying, catch-up, rehearsal loops).
 * On a TTY: one self-rewriting line with rate and ETA. Otherwise (CI, --json, pipes): a structured
 * JSON line on stderr at most every `intervalMs`, so logs stay quiet and machine-readable.
 * Time is injected so the arithmetic is testable.
 */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export type ProgressMode = 'tty' | 'json' | 'silent';

export interface ProgressOptions {
  mode?: ProgressMode;
  stream?: NodeJS.WritableStream;
  clock?: Clock;
  intervalMs?: number;
  unit?: string;
}

export function defaultProgressMode(json = false): ProgressMode {
  if (process.env.CUTOVER_PROGRESS === 'silent') return 'silent';
  if (json || process.env.CI || !process.stderr.isTTY) return 'json';
  return 'tty';
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return String(Math.round(n));
}

/** rate per second and ETA in ms from done/total over elapsed ms. */
export function rateAndEta(done: number, total: number | undefined, elapsedMs: number): { rate: number; etaMs: number | undefined } {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const etaMs = total !== undefined && rate > 0 ? ((total - done) / rate) * 1000 : undefined;
  return { rate, etaMs };
}

export class Progress {
  private done = 0;
  private readonly started: number;
  private lastEmit = 0;
  private readonly mode: ProgressMode;
  private readonly stream: NodeJS.WritableStream;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly unit: string;
  private note = '';

  constructor(
    readonly label: string,
    readonly total?: number,
    opts: ProgressOptions = {},
  ) {
    this.mode = opts.mode ?? defaultProgressMode();
    this.stream = opts.stream ?? process.stderr;
    this.clock = opts.clock ?? systemClock;
    this.intervalMs = opts.intervalMs ?? (this.mode === 'tty' ? 200 : 5000);
    this.unit = opts.unit ?? 'rows';
    this.started = this.clock.now();
  }

  /** Add n units of work done; `note` replaces the free-text tail (e.g. the current table). */
  tick(n = 1, note?: string): void {
    this.done += n;
    if (note !== undefined) this.note = note;
    this.maybeEmit(false);
  }

  set(done: number, note?: string): void {
    this.done = done;
    if (note !== undefined) this.note = note;
    this.maybeEmit(false);
  }

  finish(note?: string): { done: number; elapsedMs: number; rate: number } {
    if (note !== undefined) this.note = note;
    this.maybeEmit(true);
    if (this.mode === 'tty') this.stream.write('\n');
    const elapsedMs = this.clock.now() - this.started;
    return { done: this.done, elapsedMs, rate: rateAndEta(this.done, this.total, elapsedMs).rate };
  }

  line(): string {
    const elapsed = this.clock.now() - this.started;
    const { rate, etaMs } = rateAndEta(this.done, this.total, elapsed);
    const pct = this.total ? ` ${((100 * this.done) / this.total).toFixed(1)}%` : '';
    const of = this.total !== undefined ? `/${formatCount(this.total)}` : '';
    const eta = etaMs !== undefined ? ` ETA ${formatDuration(etaMs)}` : '';
    return `${this.label}: ${formatCount(this.done)}${of} ${this.unit}${pct} ${formatCount(rate)}/s${eta}${this.note ? ' ' + this.note : ''}`;
  }

  private maybeEmit(force: boolean): void {
    if (this.mode === 'silent') return;
    const now = this.clock.now();
    if (!force && now - this.lastEmit < this.intervalMs) return;
    this.lastEmit = now;
    if (this.mode === 'tty') {
      this.stream.write('\r\x1b[2K' + this.line());
    } else {
      const elapsed = now - this.started;
      const { rate, etaMs } = rateAndEta(this.done, this.total, elapsed);
      this.stream.write(
        JSON.stringify({ progress: this.label, done: this.done, total: this.total, unit: this.unit, ratePerSec: Math.round(rate), etaMs: etaMs && Math.round(etaMs), note: this.note || undefined, final: force || undefined }) + '\n',
      );
    }
  }
}
