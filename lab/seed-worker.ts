/**
 * A seed generator thread: rebuilds the same dataset from its description (every value is a pure
 * function of seed, table, column and row index, so a thread computes exactly the rows the main
 * thread would) and turns row ranges into COPY text. The main thread only moves the buffers into
 * the COPY streams. Flow control by credits: at most CREDITS batches of a chunk are in flight.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyOverrides, getPreset, type Dataset, type DatasetContext } from '../scenarios/datasets/index.ts';
import { planCustom, type TableInfo } from '../scenarios/datasets/custom.ts';
import { EncodeError, copyBatches } from './seed-copy.ts';

export interface WorkerInit {
  preset: string;
  ctx: DatasetContext;
  generators: Record<string, string>;
  /** Preset custom: the tables as read from the catalogs (planCustom is pure). */
  schema?: TableInfo[];
}

export type ToWorker = { chunk: number; table: number; from: number; to: number; types?: string[]; credits: number } | { chunk: number; credit: number };
export type FromWorker = { chunk: number; buf: ArrayBuffer; rows: number } | { chunk: number; done: true } | { chunk: number; error: string; encode?: boolean } | { ready: true; chunk?: undefined };

function build(init: WorkerInit): Dataset {
  const ds = init.schema ? planCustom(init.schema, init.ctx, { generators: init.generators }) : getPreset(init.preset).build(init.ctx);
  if (!init.schema) applyOverrides(ds, init.generators, init.ctx.seed);
  return ds;
}

if (parentPort) {
  const port = parentPort;
  const ds = build(workerData as WorkerInit);
  port.postMessage({ ready: true });
  const credit = new Map<number, number>();
  const waiting = new Map<number, () => void>();
  port.on('message', async (m: ToWorker) => {
    if ('credit' in m) {
      credit.set(m.chunk, (credit.get(m.chunk) ?? 0) + m.credit);
      waiting.get(m.chunk)?.();
      return;
    }
    credit.set(m.chunk, m.credits);
    try {
      for (const { buf, rows } of copyBatches(ds.tables[m.table], m.from, m.to, m.types)) {
        while ((credit.get(m.chunk) ?? 0) <= 0) await new Promise<void>((r) => waiting.set(m.chunk, r));
        credit.set(m.chunk, credit.get(m.chunk)! - 1);
        const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
        port.postMessage({ chunk: m.chunk, buf: ab, rows } satisfies FromWorker, [ab]);
      }
      port.postMessage({ chunk: m.chunk, done: true } satisfies FromWorker);
    } catch (e: any) {
      // A value with no exact binary form: the main thread loads the chunk again as text.
      port.postMessage({ chunk: m.chunk, error: e instanceof EncodeError ? e.message : String(e?.stack ?? e), encode: e instanceof EncodeError } satisfies FromWorker);
    } finally {
      credit.delete(m.chunk);
      waiting.delete(m.chunk);
    }
  });
}
