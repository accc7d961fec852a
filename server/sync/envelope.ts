import { FRAME_HEADER_BYTES, type DocServerMessage, type DocStateMessage } from '../common/index.ts';

/**
 * What travels on a `wharf-doc` channel between the control server and the agent. Each frame
 * (common/frame.ts: 4-byte length + payload) starts with one kind byte, so the server can relay a
 * websocket message by prefixing a header, without parsing or re-encoding it.
 */
export const DOC_SUBSYSTEM = 'wharf-doc';

export const ENVELOPE = {
  /** A y-websocket message (varUint type, then sync or awareness payload), both directions. */
  yjs: 0,
  /** A JSON text message for the browser (state, saved, deleted, error); agent → server only. */
  json: 1,
  /** `{code, message}`: close this connection; agent → server only, last frame on the channel. */
  close: 2,
  /** The first frame from the server: a JSON `DocRequest`. */
  request: 3,
  /** JSON answer to a non-`open` request; the channel ends after it. */
  reply: 4,
  /**
   * server → agent: a y-websocket message the server has already handed to its own other
   * sockets of this document (see `RelayMembership`). Payload: uint32 BE group version, then the
   * message. The agent relays it only to editors outside that group, or that joined it later.
   */
  fannedOut: 5,
  /**
   * agent → server, one byte: 1 when the document has editors outside this channel's relay
   * group (they wait for what the server sends the agent), 0 when it has none (what the server
   * sends only feeds the disk, so it may be sent in batches). Sent when that changes.
   */
  audience: 6,
} as const;

export type EnvelopeKind = (typeof ENVELOPE)[keyof typeof ENVELOPE];

/**
 * A control server passes a browser's updates straight to the other browsers it serves on the
 * same document. Those sockets form a relay group: `group` names it (unique per server process
 * and requested path), `member` is the group's version when this channel's socket joined it. A
 * `fannedOut` frame carries the group's version when it was sent, so the agent knows exactly which
 * members already have it: those of the same group with `member` ≤ that version.
 */
export type RelayMembership = { group: string; member: number };

export type DocRequest = { op: 'open'; path: string; relay?: RelayMembership } | { op: 'ignored'; dir: string };

/** `code` is a WharfError code, or `normal` for an orderly end (a deleted file). */
export type CloseInstruction = { code: string; message: string };

/** JSON messages the browser receives as websocket text frames (in server/common: the web UI reads them too). */
export type { DocServerMessage, DocStateMessage };

/** One allocation, one copy: the frame header, the kind byte and the payload. */
export function encodeEnvelope(kind: EnvelopeKind, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[FRAME_HEADER_BYTES] = kind;
  out.set(payload, FRAME_HEADER_BYTES + 1);
  return out;
}

export function encodeJsonEnvelope(kind: EnvelopeKind, value: unknown): Buffer {
  return encodeEnvelope(kind, Buffer.from(JSON.stringify(value)));
}

const VERSION_BYTES = 4;

/** A `fannedOut` frame: header, kind, the relay group's version, the browser's message. */
export function encodeFannedOut(version: number, message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + VERSION_BYTES + message.length);
  out.writeUInt32BE(1 + VERSION_BYTES + message.length, 0);
  out[FRAME_HEADER_BYTES] = ENVELOPE.fannedOut;
  out.writeUInt32BE(version, FRAME_HEADER_BYTES + 1);
  out.set(message, FRAME_HEADER_BYTES + 1 + VERSION_BYTES);
  return out;
}

/** Whether an encoded frame (header included, as `encodeFannedOut` makes it) is a `fannedOut` one. */
export function isFannedOutFrame(frame: Uint8Array): boolean {
  return frame[FRAME_HEADER_BYTES] === ENVELOPE.fannedOut;
}

/** The payload of a `fannedOut` envelope, or undefined when it is too short to hold a version. */
export function readFannedOut(payload: Buffer): { version: number; message: Buffer } | undefined {
  if (payload.length < VERSION_BYTES) return undefined;
  return { version: payload.readUInt32BE(0), message: payload.subarray(VERSION_BYTES) };
}

/** Splits a decoded frame into its kind and a view of its payload (no copy). */
export function readEnvelope(frame: Buffer): { kind: number; payload: Buffer } | undefined {
  if (frame.length < 1) return undefined;
  return { kind: frame[0], payload: frame.subarray(1) };
}
