/** The rehearsal's end of the switchover event pipe (lab/rehearse/switchover-child.ts consumeEvents). */
import { describe, it, expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { consumeEvents } from '../../lab/rehearse/switchover-child.ts';
import { formatEvent } from '../../migration/switchover/events.ts';

const at = '2026-12-02T01:00:00.000Z';

describe('consumeEvents', () => {
  it('hands over each event in order, the next only after the previous handler settled', async () => {
    const s = new PassThrough();
    const seen: string[] = [];
    const done = consumeEvents(s, async (e) => {
      seen.push(`${e.type}:${'phase' in e ? e.phase : ''}`);
      // a phase-bound fault takes a while to arm; the next event must wait for it
      if (e.type === 'phase-start') await new Promise((r) => setTimeout(r, 20));
      seen.push('settled');
    });
    s.write(formatEvent({ type: 'phase-start', phase: 'fence', at, attempt: 1 }));
    // an event split across writes is still one line
    const end = formatEvent({ type: 'phase-end', phase: 'fence', at, outcome: 'ok' });
    s.write(end.slice(0, 10));
    s.end(end.slice(10));
    expect(await done).toEqual({ broken: [] });
    expect(seen).toEqual(['phase-start:fence', 'settled', 'phase-end:fence', 'settled']);
  });

  it('a line that breaks the shared contract is reported, not silently dropped or fatal', async () => {
    const s = new PassThrough();
    const seen: string[] = [];
    const done = consumeEvents(s, (e) => void seen.push(e.type));
    s.write('{"type":"phase-start","phase":"no-such-phase","at":"x","attempt":1}\n');
    s.write('not json\n');
    s.end(formatEvent({ type: 'phase-start', phase: 'switch', at, attempt: 2 }));
    const { broken } = await done;
    expect(broken).toHaveLength(2);
    expect(broken[0]).toMatch(/breaks the contract/);
    expect(broken[1]).toMatch(/not JSON/);
    expect(seen).toEqual(['phase-start']);
  });
});
