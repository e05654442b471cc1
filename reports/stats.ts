/**
 * The one median / percentile / summary implementation. Every figure over runs (reports/model.ts),
 * every latency percentile of a run (load/measure.ts) and every bench figure (bench/) goes through
 * these, so "p95" and "median" mean the same thing in every file the tool writes.
 *
 * Pure, dependency-free: reports/, load/ and bench/ may all import it.
 */

/** Ascending copy of the finite values (NaN / ±Infinity are figures nobody measured: left out). */
export function sortedFinite(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
}

/**
 * Nearest-rank percentile of an ascending array (p in 0..100): the smallest value that at least
 * p % of the values are at or below. 0 for an empty array.
 */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sortedAsc.length);
  return sortedAsc[Math.min(sortedAsc.length, Math.max(1, rank)) - 1];
}

/** The middle value (the mean of the two middle values for an even count); 0 for none. */
export function median(values: readonly number[]): number {
  const s = sortedFinite(values);
  const n = s.length;
  if (n === 0) return 0;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

export interface Summary {
  median: number;
  /** nearest-rank p95 */
  p95: number;
  max: number;
  min: number;
  /** rounded to 0.001 */
  mean: number;
  /** how many values entered the summary */
  n: number;
}

/** median / nearest-rank p95 / max / min / mean of the finite values, or undefined when there are none. */
export function summarise(values: readonly number[]): Summary | undefined {
  const s = sortedFinite(values);
  const n = s.length;
  if (n === 0) return undefined;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  return { median: median(s), p95: percentile(s, 95), max: s[n - 1], min: s[0], mean: Math.round(mean * 1000) / 1000, n };
}
