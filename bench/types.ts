export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** value / baseline.value (for times: < 1 is faster than the baseline). */
  ratio?: number;
  goal?: string;
}

/** The one median (reports/stats.ts), so bench figures and report figures agree. */
export { median } from '../reports/stats.ts';
import { median } from '../reports/stats.ts';

export async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Run fn n times (sequentially) and return the median duration in ms. */
export async function medianMs(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await timeIt(() => fn(i)));
  return median(xs);
}
