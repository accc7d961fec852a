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
 * Incremental decoder. A frame that lies within one chunk is passed on as a view of that chunk,
 * without copying (terminal output crosses this for every byte); a frame spread over chunks is
 * copied once into its own buffer. Rejects (once, then ignores input) a frame whose declared
 * length exceeds `maxFrameBytes`, so a hostile peer cannot make us buffer without bound.
 */
export function createFrameDecoder(maxFrameBytes: number, events: FrameDecoderEvents) {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  let headerFill = 0;
  let frame: Buffer | undefined;
  let frameFill = 0;
  let failed = false;

  function fail(length: number): void {
    failed = true;
    frame = undefined;
    events.onError({ code: 'frame_too_large', message: `frame of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes` });
  }

  /** Starts a frame of `length` bytes whose payload is not all in the current chunk. */
  function begin(length: number): void {
    if (length === 0) return events.onFrame(Buffer.alloc(0));
    frame = Buffer.allocUnsafe(length);
    frameFill = 0;
  }

  return {
    push(chunk: Buffer): void {
      let at = 0;
      while (!failed && at < chunk.length) {
        if (frame) {
          const n = Math.min(frame.length - frameFill, chunk.length - at);
          chunk.copy(frame, frameFill, at, at + n);
          frameFill += n;
          at += n;
          if (frameFill === frame.length) {
            const done = frame;
            frame = undefined;
            events.onFrame(done);
          }
          continue;
        }
        if (headerFill === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
          const length = chunk.readUInt32BE(at);
          if (length > maxFrameBytes) return fail(length);
          const start = at + FRAME_HEADER_BYTES;
          if (chunk.length - start >= length) {
            at = start + length;
            events.onFrame(chunk.subarray(start, at));
          } else {
            at = start;
            begin(length);
          }
          continue;
        }
        header[headerFill++] = chunk[at++];
        if (headerFill === FRAME_HEADER_BYTES) {
          headerFill = 0;
          const length = header.readUInt32BE(0);
          if (length > maxFrameBytes) return fail(length);
          begin(length);
        }
      }
    },
  };
}
