import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeEnvelope, encodeFannedOut, ENVELOPE } from '../envelope.ts';
import { createDocAgentWriter } from './doc-agent-writer.ts';

const BATCH_MS = 4;
const BATCH_MAX_BYTES = 1024;

/** A keystroke the server has already given the other editors here (group version `n`). */
const keystroke = (n: number, bytes = 8) => encodeFannedOut(n, Buffer.alloc(bytes, n));
/** A message only the agent answers (a sync step 1, say). */
const forAgentOnly = (n: number) => encodeEnvelope(ENVELOPE.yjs, Buffer.from([0, 0, n]));

describe('what the server sends the agent on a document channel', () => {
  let written: Buffer[];
  let writer: ReturnType<typeof createDocAgentWriter>;
  beforeEach(() => {
    vi.useFakeTimers();
    written = [];
    writer = createDocAgentWriter({ batchMs: BATCH_MS, batchMaxBytes: BATCH_MAX_BYTES, write: (frames) => written.push(Buffer.from(frames)) });
  });
  afterEach(() => vi.useRealTimers());

  it('sends every frame at once until the agent says nobody else waits for them', () => {
    writer.write(keystroke(1));
    writer.write(forAgentOnly(2));
    writer.write(keystroke(3));
    expect(written).toEqual([keystroke(1), forAgentOnly(2), keystroke(3)]);
  });

  it('holds fanned-out keystrokes for at most the batch time, then sends them in one write, in order', () => {
    writer.setAgentMayWait(true);
    writer.write(keystroke(1));
    vi.advanceTimersByTime(BATCH_MS - 1);
    writer.write(keystroke(2));
    expect(written).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(written).toEqual([Buffer.concat([keystroke(1), keystroke(2)])]);
    writer.write(keystroke(3));
    vi.advanceTimersByTime(BATCH_MS);
    expect(written).toEqual([Buffer.concat([keystroke(1), keystroke(2)]), keystroke(3)]);
  });

  it('sends as soon as the batch size is held', () => {
    writer.setAgentMayWait(true);
    const big = BATCH_MAX_BYTES / 4;
    for (let n = 1; n <= 3; n++) writer.write(keystroke(n, big));
    expect(written).toEqual([]);
    writer.write(keystroke(4, big));
    expect(written).toEqual([Buffer.concat([1, 2, 3, 4].map((n) => keystroke(n, big)))]);
    vi.advanceTimersByTime(BATCH_MS * 10);
    expect(written).toHaveLength(1);
  });

  it('sends any other frame after what is held, never before it', () => {
    writer.setAgentMayWait(true);
    writer.write(keystroke(1));
    writer.write(forAgentOnly(2));
    expect(written).toEqual([keystroke(1), forAgentOnly(2)]);
    vi.advanceTimersByTime(BATCH_MS * 10);
    expect(written).toHaveLength(2);
  });

  it('sends what is held when an editor elsewhere joins, and from then on at once', () => {
    writer.setAgentMayWait(true);
    writer.write(keystroke(1));
    writer.setAgentMayWait(false);
    expect(written).toEqual([keystroke(1)]);
    writer.write(keystroke(2));
    expect(written).toEqual([keystroke(1), keystroke(2)]);
  });

  it('sends what is held when the connection closes, once', () => {
    writer.setAgentMayWait(true);
    writer.write(keystroke(1));
    writer.write(keystroke(2));
    writer.flush();
    expect(written).toEqual([Buffer.concat([keystroke(1), keystroke(2)])]);
    writer.flush();
    vi.advanceTimersByTime(BATCH_MS * 10);
    expect(written).toHaveLength(1);
  });
});
