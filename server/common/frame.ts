/**
 * Length-prefixed frames for wharf's own SSH subsystems (`wharf-doc`, `wharf-terminal`, ...):
 * an SSH channel is a byte stream, but the messages we carry (Yjs updates, terminal events) are
 * discrete. Each frame is a 4-byte big-endian length followed by that many bytes.
 */
export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

export type FrameDecoderEvents = {
  onFrame: (payload: Buffer) => void;
  onError: (error: { code: 'frame_too_large'; message: string }) => void;
};

/**
 * Incremental decoder. Rejects (once, then ignores input) a frame whose declared length exceeds
 * `maxFrameBytes`, so a hostile peer cannot make us buffer without bound.
 */
export function createFrameDecoder(maxFrameBytes: number, events: FrameDecoderEvents) {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let failed = false;

  function take(n: number): Buffer {
    const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return head;
  }

  function peekLength(): number {
    if (pending[0].length >= FRAME_HEADER_BYTES) return pending[0].readUInt32BE(0);
    return Buffer.concat(pending, pendingBytes).readUInt32BE(0);
  }

  return {
    push(chunk: Buffer): void {
      if (failed) return;
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= FRAME_HEADER_BYTES) {
        const length = peekLength();
        if (length > maxFrameBytes) {
          failed = true;
          pending = [];
          pendingBytes = 0;
          events.onError({
            code: 'frame_too_large',
            message: `frame of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes`,
          });
          return;
        }
        if (pendingBytes < FRAME_HEADER_BYTES + length) return;
        const frame = take(FRAME_HEADER_BYTES + length);
        events.onFrame(Buffer.from(frame.subarray(FRAME_HEADER_BYTES)));
      }
    },
  };
}
