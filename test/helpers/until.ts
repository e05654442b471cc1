/** Poll `fn` until it returns something truthy (errors count as not yet), or fail after `timeoutMs` naming `what`. */
export async function until<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, what = 'condition', pollMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
