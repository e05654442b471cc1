/** lab/disposable.ts: the AsyncDisposableStack subset the rehearsal pipeline relies on. */
import { describe, it, expect } from 'vitest';
import { LabAsyncDisposableStack } from '../../lab/disposable.ts';

describe('LabAsyncDisposableStack', () => {
  it('disposes in reverse order of registration, through `await using`', async () => {
    const order: string[] = [];
    {
      await using stack = new LabAsyncDisposableStack();
      stack.defer(() => void order.push('first registered'));
      stack.adopt('server', async (v) => void order.push(`adopted ${v}`));
      stack.use({ [Symbol.asyncDispose]: async () => void order.push('used') });
      stack.use(null);
      order.push('body');
    }
    expect(order).toEqual(['body', 'used', 'adopted server', 'first registered']);
  });

  it('runs every disposer when one throws, and throws what failed', async () => {
    const order: string[] = [];
    const stack = new LabAsyncDisposableStack();
    stack.defer(() => void order.push('a'));
    stack.defer(() => {
      throw new Error('b broke');
    });
    stack.defer(() => void order.push('c'));
    await expect(stack.disposeAsync()).rejects.toThrow('b broke');
    expect(order).toEqual(['c', 'a']);
    expect(stack.disposed).toBe(true);
    expect(() => stack.defer(() => {})).toThrow(/already disposed/);
  });

  it('keeps both errors when two disposers throw', async () => {
    const stack = new LabAsyncDisposableStack();
    stack.defer(() => {
      throw new Error('first thrown last');
    });
    stack.defer(() => {
      throw new Error('thrown first');
    });
    const e: any = await stack.disposeAsync().catch((x) => x);
    expect(e.name).toBe('SuppressedError');
    expect(e.error.message).toBe('first thrown last');
    expect(e.suppressed.message).toBe('thrown first');
  });

  it('an interrupt during disposal waits for the same disposal instead of starting another', async () => {
    const stack = new LabAsyncDisposableStack();
    let runs = 0;
    let release!: () => void;
    stack.defer(async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
    });
    const a = stack.disposeAsync();
    let bDone = false;
    const b = stack.disposeAsync().then(() => (bDone = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(bDone).toBe(false);
    release();
    await Promise.all([a, b]);
    expect(runs).toBe(1);
  });

  it('move() hands the registrations to a new stack', async () => {
    const order: string[] = [];
    const a = new LabAsyncDisposableStack();
    a.defer(() => void order.push('x'));
    const b = a.move();
    await a.disposeAsync();
    expect(order).toEqual([]);
    await b.disposeAsync();
    expect(order).toEqual(['x']);
  });
});
