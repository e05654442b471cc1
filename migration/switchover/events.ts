/**
 * Phase events of a switchover, as JSON lines: the contract between `cutover switchover`
 * (`--events-fd <n>` writes one line per event to that file descriptor) and whoever watches it
 * (the rehearsal arms phase-bound faults on `phase-start`). Both ends parse with this schema, so a
 * change to one end that the other does not understand fails loudly instead of silently.
 */
import { z } from 'zod';
import { PHASES } from './state.ts';

export const PhaseEvent = z.discriminatedUnion('type', [
  /** A phase is about to run its side effects (fired after the state file records it running). */
  z.object({ type: z.literal('phase-start'), phase: z.enum(PHASES), at: z.string(), attempt: z.number().int().positive() }),
  z.object({
    type: z.literal('phase-end'),
    phase: z.enum(PHASES),
    at: z.string(),
    outcome: z.enum(['ok', 'failed', 'aborted', 'skipped']),
    error: z.string().optional(),
  }),
  /** An undo step of the abort path ran. */
  z.object({ type: z.literal('undo'), change: z.string(), at: z.string(), outcome: z.enum(['ok', 'failed']), error: z.string().optional() }),
  /** The run reached a state kind (running, aborting, completed, rolled-back, failed, stopped-at-no-return …). */
  z.object({ type: z.literal('run'), kind: z.string(), at: z.string(), next: z.string().optional(), error: z.string().optional() }),
]);
export type PhaseEvent = z.infer<typeof PhaseEvent>;

/** Serialise one event as a JSON line. */
export function formatEvent(e: PhaseEvent): string {
  return JSON.stringify(PhaseEvent.parse(e)) + '\n';
}

/** Parse one JSON line; throws a clear error on a line that breaks the contract. */
export function parseEvent(line: string): PhaseEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error(`switchover event is not JSON: ${line.slice(0, 200)}`);
  }
  const r = PhaseEvent.safeParse(raw);
  if (!r.success) throw new Error(`switchover event breaks the contract (migration/switchover/events.ts): ${r.error.message}`);
  return r.data;
}

/**
 * Call `fn` for every event line on `stream` (the reading end of `--events-fd`), in order. A line
 * that breaks the contract goes to `onError` (default: thrown from the stream's data handler).
 */
export function onEvents(stream: NodeJS.ReadableStream, fn: (e: PhaseEvent) => void, onError: (e: Error) => void = (e) => { throw e; }): void {
  let buf = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (chunk: string | Buffer) => {
    buf += String(chunk);
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.trim()) continue;
      let e: PhaseEvent;
      try {
        e = parseEvent(line);
      } catch (err) {
        onError(err as Error);
        continue;
      }
      fn(e);
    }
  });
}
