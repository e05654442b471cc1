/**
 * Bounded concurrency: one helper instead of hand-written worker pools. `mapLimit` runs `fn` over
 * `items` with at most `limit` in flight and returns results in input order. The first rejection
 * stops new work from starting and is rethrown once the work already in flight has settled, so no
 * connection or COPY is left running behind the caller's back.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapLimit: limit must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.error;
  return results;
}

/**
 * The same bounded pool where each worker holds a resource for its whole life (a connection, a
 * pair of sessions): `open(worker)` once per worker, `fn(resource, item, index)` for each item it
 * takes, `close(resource)` always, also after a failure. At most `limit` workers, never more than
 * there are items. The first failure stops new items from starting and is rethrown once every
 * worker has closed its resource.
 */
export async function poolEach<T, R>(
  items: readonly T[],
  limit: number,
  resource: { open: (worker: number) => Promise<R>; close?: (r: R) => Promise<unknown> | unknown },
  fn: (r: R, item: T, index: number) => Promise<void>,
): Promise<void> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`poolEach: limit must be a positive integer, got ${limit}`);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (w: number): Promise<void> => {
    if (failed || next >= items.length) return;
    let r: R;
    try {
      r = await resource.open(w);
    } catch (error) {
      failed ??= { error };
      return;
    }
    try {
      while (!failed && next < items.length) {
        const i = next++;
        try {
          await fn(r, items[i]!, i);
        } catch (error) {
          failed ??= { error };
        }
      }
    } finally {
      await Promise.resolve(resource.close?.(r)).catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, (_, w) => worker(w)));
  if (failed) throw failed.error;
}

/** A sleep that ends early (rejecting with the abort reason) when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
