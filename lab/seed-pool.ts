/**
 * Seed generator threads, main side. Profiling a preset seed showed the main thread busy for the
 * whole load building COPY data (custom schemas: the server's share is larger); so rows can be generated in worker threads (lab/seed-worker.ts) and the
 * main thread only moves buffers into the COPY streams. Which seeds use them: see `threads` in seed(). Each chunk is
 * streamed with credits (at most CREDITS batches of 128–256 KB in flight), so memory stays bounded
 * however far generation runs ahead of the server.
 */
import { Worker } from 'node:worker_threads';
import type { SeedChunk } from './seed.ts';
import type { Dataset } from '../scenarios/datasets/gen.ts';
import { EncodeError } from './seed-copy.ts';
import type { FromWorker, ToWorker, WorkerInit } from './seed-worker.ts';

const CREDITS = 16;

interface Sink {
  push(b: { buf: Buffer; rows: number }): void;
  end(): void;
  fail(e: Error): void;
}

export class GeneratorPool {
  private readonly workers: Worker[] = [];
  private readonly sinks = new Map<number, Sink>();
  private nextChunk = 0;
  private nextWorker = 0;

  private readonly ready: Promise<void>[] = [];

  private constructor(
    private readonly ds: Dataset,
    init: WorkerInit,
    threads: number,
  ) {
    for (let k = 0; k < threads; k++) {
      const w = new Worker(new URL('./seed-worker.mjs', import.meta.url), { workerData: init });
      this.ready.push(
        new Promise<void>((resolve, reject) => {
          w.once('message', (m: FromWorker) => ('ready' in m ? resolve() : reject(new Error('unexpected first message'))));
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`exited with ${code}`)));
        }),
      );
      w.on('message', (m: FromWorker) => {
        if (m.chunk === undefined) return;
        const sink = this.sinks.get(m.chunk);
        if (!sink) return;
        if ('buf' in m) sink.push({ buf: Buffer.from(m.buf), rows: m.rows });
        else if ('done' in m) sink.end();
        else sink.fail(m.encode ? new EncodeError(m.error) : new Error(`seed generator thread: ${m.error}`));
      });
      w.on('error', (e) => {
        for (const s of this.sinks.values()) s.fail(e);
      });
      w.unref();
      this.workers.push(w);
    }
  }

  /** A pool whose threads have all built the dataset, or undefined (the caller then generates on the main thread). */
  static async create(ds: Dataset, init: WorkerInit, threads: number, timeoutMs = 60_000): Promise<GeneratorPool | undefined> {
    let pool: GeneratorPool | undefined;
    try {
      pool = new GeneratorPool(ds, init, threads);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pool.ready), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]).finally(() => clearTimeout(timer));
      return pool;
    } catch {
      await pool?.close();
      return undefined;
    }
  }

  /** The chunk's COPY batches, in order (binary for these column types when they allow, see copyBatches). */
  async *stream(chunk: SeedChunk, types?: string[]): AsyncGenerator<{ buf: Buffer; rows: number }> {
    const id = this.nextChunk++;
    const worker = this.workers[this.nextWorker++ % this.workers.length];
    const queue: { buf: Buffer; rows: number }[] = [];
    let done = false;
    let error: Error | undefined;
    let wake: (() => void) | undefined;
    this.sinks.set(id, {
      push: (b) => (queue.push(b), wake?.()),
      end: () => ((done = true), wake?.()),
      fail: (e) => ((error = e), wake?.()),
    });
    worker.postMessage({ chunk: id, table: this.ds.tables.indexOf(chunk.table), from: chunk.from, to: chunk.to, types, credits: CREDITS } satisfies ToWorker);
    try {
      for (;;) {
        if (error) throw error;
        const b = queue.shift();
        if (b) {
          worker.postMessage({ chunk: id, credit: 1 } satisfies ToWorker);
          yield b;
          continue;
        }
        if (done) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.sinks.delete(id);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.terminate()));
  }
}
