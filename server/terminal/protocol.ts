/**
 * Shapes of the shared-terminal protocol: the `wharf-terminal` subsystem spoken between server
 * and agent, and what the HTTP API takes. What the API returns and a websocket client receives
 * and sends is in server/common/protocol.ts, where the web UI reads it too.
 */

import type { ExitStatus, TerminalClientMessage, TerminalInfo, TerminalRole, TerminalServerMessage } from '../common/index.ts';

export type { ExitStatus, TerminalInfo, TerminalRole };
export type ServerToClientMessage = TerminalServerMessage;
export type ClientToServerMessage = TerminalClientMessage;

export type CreateTerminalRequest = {
  command?: string;
  args?: string[];
  cwd?: string;
  env?: Record<string, string>;
  cols?: number;
  rows?: number;
};

/** A rendering of the screen that reflects exactly the first `seq` items of the output stream. */
export type Snapshot = { seq: number; data: string; cols: number; rows: number; exited?: ExitStatus };

/** Events that travel in order with the output bytes (each counts as one stream item). */
export type StreamEvent = { type: 'resize'; cols: number; rows: number } | ({ type: 'exit' } & ExitStatus);

/** The SSH subsystem the agent's terminal feature offers and the control server opens. */
export const TERMINAL_SUBSYSTEM = 'wharf-terminal';

/**
 * Bounds of the terminal protocol, not tunables: a terminal is at most 1000 columns or rows, and
 * a JSON control message (resize, ack) is a few dozen bytes, so 4 KiB means a mistake or an
 * attack. Input travels as binary frames, bounded by the websocket frame limit.
 */
export const TERMINAL_PROTOCOL_BOUNDS = { maxDimension: 1000, maxControlMessageBytes: 4096 } as const;

/** Subsystem frames carry one type byte before their payload. */
export const FRAME_DATA = 0;
export const FRAME_JSON = 1;

/** First frame on a `wharf-terminal` channel. */
export type AgentRequest =
  | { op: 'list' }
  | ({ op: 'create' } & CreateTerminalRequest)
  | { op: 'kill'; id: string }
  | { op: 'attach'; id: string; cols?: number; rows?: number };

export type AgentFailureCode = 'bad_request' | 'not_found' | 'conflict' | 'too_many' | 'internal';

/** Who a websocket client is, as the agent counts attached clients: the admin, or one share link. */
export type AttachPrincipal = { kind: 'admin' } | { kind: 'share'; id: string };

export type AgentReply =
  | { ok: true; terminals?: TerminalInfo[]; terminal?: TerminalInfo }
  | { ok: false; error: { code: AgentFailureCode; message: string } };

/** JSON frames the agent sends on an attach channel, besides output bytes. */
export type AgentAttachMessage =
  | (Snapshot & { type: 'snapshot'; kind: 'snapshot' | 'resync' | 'reply'; rid?: number })
  | StreamEvent
  | { type: 'closed'; reason: string }
  | { type: 'error'; code: AgentFailureCode; message: string }
  /** The answer to a `join`: the client may be served, or it is over a limit. */
  | { type: 'admit'; cid: number }
  | { type: 'refuse'; cid: number; code: 'too_many'; message: string };

/**
 * JSON frames the server sends on an attach channel, besides input bytes. Every websocket client
 * of the channel first `join`s (numbered `cid` by the server, unique on its channel) and is served
 * only once the agent admits it; it `leave`s when it goes. The agent attaches the channel to the
 * pty at the first admitted join.
 */
export type ServerAttachMessage =
  | { type: 'join'; cid: number; principal: AttachPrincipal }
  | { type: 'leave'; cid: number }
  | { type: 'size'; cols: number | null; rows: number | null }
  | { type: 'clients'; count: number }
  | { type: 'snapshot'; rid: number };
