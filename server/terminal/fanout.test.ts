import { describe, expect, it } from 'vitest';
import { createFanout, type FanoutSink } from './fanout.ts';
import type { Snapshot } from './protocol.ts';

type Received = { kind: string; text: string };

/** A client whose socket we control: `done` callbacks fire only when it "reads". */
function makeClient(autoRead: boolean) {
  const received: Received[] = [];
  const unread: Array<() => void> = [];
  const settle = (done: () => void) => (autoRead ? queueMicrotask(done) : unread.push(done));
  const sink: FanoutSink = {
    snapshot: (s, kind, done) => {
      received.push({ kind, text: s.data });
      settle(done);
    },
    output: (data, done) => {
      received.push({ kind: 'output', text: data.toString() });
      settle(done);
    },
    event: (event, done) => {
      received.push({ kind: event.type, text: JSON.stringify(event) });
      settle(done);
    },
  };
  return {
    sink,
    received,
    readAll() {
      for (const done of unread.splice(0)) done();
    },
  };
}

/** A screen that renders "everything so far" as the concatenation of the output items. */
function makeFanout(queueBytes: number) {
  const history: string[] = [];
  const congestion: boolean[] = [];
  const fanout = createFanout({
    queueBytes,
    requestSnapshot: async () => {
      const seq = fanout.seq;
      return { seq, data: history.slice(0, seq).join(''), cols: 80, rows: 24 } satisfies Snapshot;
    },
    onCongestionChange: (all) => congestion.push(all),
  });
  return {
    fanout,
    congestion,
    write(text: string) {
      history.push(text);
      fanout.output(Buffer.from(text));
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** What a client shows: the last snapshot plus the output after it. */
function screenOf(received: Received[]): string {
  let screen = '';
  for (const r of received) {
    if (r.kind === 'snapshot' || r.kind === 'resync') screen = r.text;
    else if (r.kind === 'output') screen += r.text;
  }
  return screen;
}

describe('terminal fan-out', () => {
  it('starts every client with a snapshot and continues exactly where it ends', async () => {
    const t = makeFanout(1024);
    const early = makeClient(true);
    t.fanout.add(early.sink);
    t.write('a');
    await tick();
    t.write('b');
    const late = makeClient(true);
    t.fanout.add(late.sink);
    t.write('c');
    await tick();
    t.write('d');
    await tick();
    expect(early.received[0].kind).toBe('snapshot');
    expect(late.received[0]).toEqual({ kind: 'snapshot', text: 'ab' });
    expect(late.received.slice(1).map((r) => r.text)).toEqual(['c', 'd']);
    expect(screenOf(early.received)).toBe('abcd');
    expect(screenOf(late.received)).toBe('abcd');
  });

  it('cuts off a client that stops reading, never the others, and resyncs it once it drains', async () => {
    const t = makeFanout(100);
    const fast = makeClient(true);
    const slow = makeClient(false);
    t.fanout.add(fast.sink);
    t.fanout.add(slow.sink);
    await tick();
    for (let i = 0; i < 50; i++) {
      t.write(`${String(i).padStart(9, '0')}|`);
      await tick();
    }
    const expected = Array.from({ length: 50 }, (_, i) => `${String(i).padStart(9, '0')}|`).join('');
    expect(screenOf(fast.received)).toBe(expected);
    // The slow client got only what fits in its queue, and the source was never paused for it.
    const slowBytes = slow.received.filter((r) => r.kind === 'output').reduce((n, r) => n + r.text.length, 0);
    expect(slowBytes).toBeLessThanOrEqual(100);
    expect(t.congestion).not.toContain(true);
    slow.readAll();
    await tick();
    t.write('tail');
    await tick();
    slow.readAll();
    expect(slow.received.some((r) => r.kind === 'resync')).toBe(true);
    expect(screenOf(slow.received)).toBe(`${expected}tail`);
  });

  it('asks the source to pause only while every client is congested', async () => {
    const t = makeFanout(100);
    const a = makeClient(false);
    const b = makeClient(false);
    t.fanout.add(a.sink);
    t.fanout.add(b.sink);
    await tick();
    a.readAll();
    b.readAll();
    t.write('x'.repeat(60));
    expect(t.congestion).toEqual([true]);
    a.readAll();
    await tick();
    expect(t.congestion).toEqual([true, false]);
  });

  it('moves every client to a new numbering on reset', async () => {
    const t = makeFanout(1024);
    const live = makeClient(true);
    t.fanout.add(live.sink);
    await tick();
    t.write('old');
    t.fanout.reset({ seq: 40, data: 'fresh screen', cols: 80, rows: 24 });
    expect(t.fanout.seq).toBe(40);
    expect(live.received.at(-1)).toEqual({ kind: 'resync', text: 'fresh screen' });
  });
});
