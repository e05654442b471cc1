/**
 * A small AsyncDisposableStack (TC39 explicit resource management) for Node 20.
 *
 * Node 20.20 has `Symbol.asyncDispose` and tsx lowers `await using`, but `AsyncDisposableStack`
 * (and `SuppressedError`) arrive only in Node 24. This is the subset the rehearsal needs, with the
 * standard's semantics: resources are disposed in reverse order of registration, every disposer
 * runs even when an earlier one throws, and the errors are kept (the first one thrown is the
 * innermost `error` of a SuppressedError chain). One deliberate difference: concurrent
 * `disposeAsync()` calls share one disposal and all wait for it (Ctrl-C while a run is already
 * tearing itself down must not return before the servers are gone); the standard's second call
 * returns at once. So we use ours even on runtimes that have their own.
 */

export type AsyncDisposer = () => unknown | Promise<unknown>;

/** The runtime's SuppressedError when it has one, else the same shape. */
function suppressed(error: unknown, suppressedErr: unknown): Error {
  const Native = (globalThis as { SuppressedError?: new (e: unknown, s: unknown, m?: string) => Error }).SuppressedError;
  if (Native) return new Native(error, suppressedErr, 'an error was suppressed during disposal');
  const e = new Error('an error was suppressed during disposal') as Error & { error: unknown; suppressed: unknown };
  e.name = 'SuppressedError';
  e.error = error;
  e.suppressed = suppressedErr;
  return e;
}

export class LabAsyncDisposableStack implements AsyncDisposable {
  #stack: AsyncDisposer[] = [];
  #disposed = false;
  #disposing: Promise<void> | undefined;

  get disposed(): boolean {
    return this.#disposed;
  }

  #check(): void {
    if (this.#disposed) throw new ReferenceError('this AsyncDisposableStack is already disposed');
  }

  /** Register a value with [Symbol.asyncDispose] (or [Symbol.dispose]); null/undefined are allowed and ignored. */
  use<T extends AsyncDisposable | Disposable | null | undefined>(value: T): T {
    this.#check();
    if (value === null || value === undefined) return value;
    const v = value as Partial<AsyncDisposable & Disposable>;
    const fn = v[Symbol.asyncDispose] ?? v[Symbol.dispose];
    if (typeof fn !== 'function') throw new TypeError('use() needs a value with [Symbol.asyncDispose] or [Symbol.dispose]');
    this.#stack.push(() => fn.call(value));
    return value;
  }

  /** Register a value with the function that releases it. */
  adopt<T>(value: T, onDispose: (value: T) => unknown | Promise<unknown>): T {
    this.#check();
    this.#stack.push(() => onDispose(value));
    return value;
  }

  /** Register a callback. */
  defer(onDispose: AsyncDisposer): void {
    this.#check();
    this.#stack.push(onDispose);
  }

  /** Move every registration to a new stack (this one becomes disposed without disposing anything). */
  move(): LabAsyncDisposableStack {
    this.#check();
    const next = new LabAsyncDisposableStack();
    next.#stack = this.#stack;
    this.#stack = [];
    this.#disposed = true;
    return next;
  }

  /**
   * Dispose everything, last registered first. Idempotent; concurrent callers (Ctrl-C while the
   * run is tearing down on its own) share one disposal.
   */
  disposeAsync(): Promise<void> {
    this.#disposing ??= (async () => {
      this.#disposed = true;
      let error: unknown;
      let failed = false;
      while (this.#stack.length) {
        const d = this.#stack.pop()!;
        try {
          await d();
        } catch (e) {
          error = failed ? suppressed(e, error) : e;
          failed = true;
        }
      }
      if (failed) throw error;
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.disposeAsync();
  }
}

