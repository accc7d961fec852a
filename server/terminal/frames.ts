import { createFrameDecoder, encodeFrame, FRAME_HEADER_BYTES } from '../common/index.ts';
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
 * Decodes typed frames from a subsystem channel. A frame that is not JSON where JSON is expected,
 * or has an unknown type, is reported and skipped: the channel carries on.
 */
export function createTypedFrameDecoder(maxFrameBytes: number, events: TypedFrameEvents) {
  return createFrameDecoder(maxFrameBytes, {
    onError: (e) => events.onError(e.message),
    onFrame: (frame) => {
      if (frame.length === 0) return events.onError('empty frame');
      if (frame[0] === FRAME_DATA) return events.onData(frame.subarray(1));
      if (frame[0] !== FRAME_JSON) return events.onError(`unknown frame type ${frame[0]}`);
      let message: unknown;
      try {
        message = JSON.parse(frame.toString('utf8', 1));
      } catch {
        return events.onError('frame is not JSON');
      }
      if (!message || typeof message !== 'object' || Array.isArray(message)) return events.onError('frame is not a JSON object');
      events.onJson(message as Record<string, unknown>);
    },
  });
}
