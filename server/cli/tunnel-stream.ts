import type { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';

/**
 * Largest websocket message made of joined writes: one SSH packet (ssh2 sends at most 32 KiB of
 * channel data per packet, plus its header, padding and tag). Larger messages cost the server
 * more, not less: ws has to copy a frame that spans several socket reads into one buffer before
 * relaying it (measured: 256 KiB messages took the server ~20% more CPU than one packet each).
 */
const MAX_MESSAGE_BYTES = 36 * 1024;

type PendingWrite = { chunk: Buffer };

/**
 * The websocket to a workspace agent as the byte stream ssh2 runs on: ws's
 * `createWebSocketStream`, except that the pieces written in one tick are joined into websocket
 * messages of up to one SSH packet. ssh2 without its native add-on (the downloadable helper is one
 * JavaScript file, so it has none) writes each packet in three pieces — length, ciphertext, tag —
 * and the plain stream sends each as its own frame, which the server then relays as its own
 * write to the agent. Measured with `npm run bench -- tunnel` (docs/benchmarks.md): a quarter
 * less CPU per byte sent from the laptop. Writes are corked only until the end of the current
 * tick, so nothing waits and round trips are not delayed.
 */
export function createTunnelStream(ws: WebSocket): Duplex {
  const stream = createWebSocketStream(ws);

  function sendAll(chunks: PendingWrite[], callback: (err?: Error | null) => void): void {
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.once('open', () => sendAll(chunks, callback));
      return;
    }
    let outstanding = 0;
    let failure: Error | undefined;
    const sent = (err?: Error) => {
      failure ??= err;
      if (--outstanding === 0) callback(failure);
    };
    let group: Buffer[] = [];
    let size = 0;
    const flush = () => {
      outstanding++;
      ws.send(group.length === 1 ? group[0] : Buffer.concat(group, size), sent);
      group = [];
      size = 0;
    };
    for (const { chunk } of chunks) {
      if (size > 0 && size + chunk.length > MAX_MESSAGE_BYTES) flush();
      group.push(chunk);
      size += chunk.length;
    }
    if (size > 0 || outstanding === 0) flush();
  }

  // Called with everything buffered while corked; a write alone still goes through ws's `_write`.
  stream._writev = sendAll;

  let corked = false;
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((...args: unknown[]) => {
    if (!corked && !stream.destroyed) {
      corked = true;
      stream.cork();
      process.nextTick(() => {
        corked = false;
        stream.uncork();
      });
    }
    return write(...args);
  }) as Duplex['write'];
  return stream;
}
