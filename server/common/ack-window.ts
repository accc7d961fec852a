import { fail, ok, type Result } from './result.ts';

/**
 * Output a websocket client has been sent but not yet said it has displayed. A browser never
 * pushes back on a websocket: what it cannot render piles up in xterm.js's write buffer (which
 * throws output away past 50 MB), so a slow tab would otherwise look to the server like a fast
 * one. A client that acknowledges (`{"type":"ack","bytes":n}`, n counting every binary output
 * byte it has rendered since it attached) gets each output's `done` only once acknowledged: its
 * queue in the fan-out then measures how far behind the screen really is, and it is cut off and
 * resynced like any slow client.
 */
export function createAckWindow(options: { maxPending?: number } = {}) {
  // Output can come in one-byte messages: bound the bookkeeping, not just the bytes. Past this
  // many, the oldest counts as acknowledged (only a client that does not acknowledge loses by it).
  const maxPending = options.maxPending ?? 8192;
  let sent = 0;
  let acked = 0;
  /** Outputs not yet acknowledged, in order: `end` is `sent` just after each. */
  const waiting: Array<{ end: number; done: () => void }> = [];

  return {
    /** Records output of `bytes` about to be sent; `done` runs once the client has rendered it. */
    track(bytes: number, done: () => void): void {
      sent += bytes;
      waiting.push({ end: sent, done });
      if (waiting.length > maxPending) waiting.shift()?.done();
    },

    /** The client's acknowledgement, a running total. */
    ack(total: unknown): Result<void, string> {
      if (typeof total !== 'number' || !Number.isSafeInteger(total) || total < 0) return fail('"bytes" must be a whole number of bytes');
      if (total < acked) return fail(`"bytes" cannot go back (${total} after ${acked})`);
      if (total > sent) return fail(`"bytes" is more than was sent (${total} of ${sent})`);
      acked = total;
      let released = 0;
      while (released < waiting.length && waiting[released].end <= acked) released++;
      for (const entry of waiting.splice(0, released)) entry.done();
      return ok(undefined);
    },

    /** The client is gone: nothing will be acknowledged any more. */
    release(): void {
      for (const entry of waiting.splice(0)) entry.done();
    },
  };
}

export type AckWindow = ReturnType<typeof createAckWindow>;
