import { encodeFrame, FRAME_HEADER_BYTES } from '../common/index.ts';
import { FRAME_DATA, FRAME_JSON } from './protocol.ts';

/** Output and input bytes go in one allocation: this path carries every byte of every terminal. */
export function encodeDataFrame(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + data.length);
  out.writeUInt32BE(data.length + 1, 0);
  out[FRAME_HEADER_BYTES] = FRAME_DATA;
  out.set(data, FRAME_HEADER_BYTES + 1);
  return out;
}

/** Payloads made by `encodeOutputFrame`, and the frame each one sits in. */
const framedPayloads = new WeakMap<Buffer, Buffer>();

/**
 * Gathers pty reads straight into a data frame (one copy instead of a concatenation and then a
 * frame) and returns the payload, a view of that frame: `dataFrameOf` later hands out the frame
 * itself instead of copying the payload again.
 */
export function encodeOutputFrame(chunks: readonly Uint8Array[], totalBytes: number): Buffer {
  let sum = 0;
  for (const chunk of chunks) sum += chunk.length;
  if (sum !== totalBytes) throw new Error(`output chunks hold ${sum} bytes, not ${totalBytes}`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + totalBytes);
  frame.writeUInt32BE(totalBytes + 1, 0);
  frame[FRAME_HEADER_BYTES] = FRAME_DATA;
  let at = FRAME_HEADER_BYTES + 1;
  for (const chunk of chunks) {
    frame.set(chunk, at);
    at += chunk.length;
  }
  const payload = frame.subarray(FRAME_HEADER_BYTES + 1);
  framedPayloads.set(payload, frame);
  return payload;
}

/** The data frame carrying `payload`: the one it was gathered into, or a fresh copy. */
export function dataFrameOf(payload: Buffer): Buffer {
  return framedPayloads.get(payload) ?? encodeDataFrame(payload);
}

export function encodeJsonFrame(message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const payload = Buffer.allocUnsafe(json.length + 1);
  payload[0] = FRAME_JSON;
  json.copy(payload, 1);
  return encodeFrame(payload);
}

export type TypedFrameEvents = {
  onData: (data: Buffer) => void;
  onJson: (message: Record<string, unknown>) => void;
  onError: (message: string) => void;
};

/**
 * Decodes typed frames from a subsystem channel: the same framing as `createFrameDecoder` in
 * server/common (4-byte big-endian length, then the payload), rewritten for this path because
 * every output byte of a terminal crosses it. A frame that lies within one chunk is passed on as
 * a view of it, without copying; a frame spread over chunks is copied once into its own buffer.
 * A frame that is not JSON where JSON is expected, or has an unknown type, is reported and
 * skipped: the channel carries on. A frame longer than `maxFrameBytes` is reported once and
 * everything after it ignored, so a hostile peer cannot make us buffer without bound.
 */
export function createTypedFrameDecoder(maxFrameBytes: number, events: TypedFrameEvents) {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  let headerFill = 0;
  let frame: Buffer | undefined;
  let frameFill = 0;
  let failed = false;

  function deliver(payload: Buffer): void {
    if (payload.length === 0) return events.onError('empty frame');
    if (payload[0] === FRAME_DATA) return events.onData(payload.subarray(1));
    if (payload[0] !== FRAME_JSON) return events.onError(`unknown frame type ${payload[0]}`);
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8', 1));
    } catch {
      return events.onError('frame is not JSON');
    }
    if (!message || typeof message !== 'object' || Array.isArray(message)) return events.onError('frame is not a JSON object');
    events.onJson(message as Record<string, unknown>);
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
            deliver(done);
          }
          continue;
        }
        if (headerFill === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
          const length = chunk.readUInt32BE(at);
          if (length > maxFrameBytes) return fail(length);
          if (chunk.length - at - FRAME_HEADER_BYTES >= length) {
            // The whole frame is in this chunk: hand out a view.
            const start = at + FRAME_HEADER_BYTES;
            at = start + length;
            deliver(chunk.subarray(start, at));
            continue;
          }
          frame = Buffer.allocUnsafe(length);
          frameFill = 0;
          at += FRAME_HEADER_BYTES;
          continue;
        }
        header[headerFill++] = chunk[at++];
        if (headerFill === FRAME_HEADER_BYTES) {
          headerFill = 0;
          const length = header.readUInt32BE(0);
          if (length > maxFrameBytes) return fail(length);
          frame = Buffer.allocUnsafe(length);
          frameFill = 0;
          if (length === 0) {
            frame = undefined;
            deliver(Buffer.alloc(0));
          }
        }
      }
    },
  };

  function fail(length: number): void {
    failed = true;
    frame = undefined;
    events.onError(`frame of ${length} bytes exceeds the limit of ${maxFrameBytes} bytes`);
  }
}
