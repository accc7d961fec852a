import type ssh2 from 'ssh2';
import type { WebSocket } from 'ws';
import { createFrameDecoder, mapAgentFailure, WharfError } from '../../common/index.ts';
import type { WorkspaceService } from '../../workspace/index.ts';
import { asRelayedUpdate, parseDocMessage } from '../doc-message.ts';
import { DOC_SUBSYSTEM, encodeEnvelope, encodeFannedOut, encodeJsonEnvelope, ENVELOPE, readEnvelope, type CloseInstruction } from '../envelope.ts';
import { createDocAgentWriter } from './doc-agent-writer.ts';
import { createDocRelay, type RelayMember } from './doc-relay.ts';

export type DocServiceLimits = {
  /** Largest websocket message; also what a browser socket may have waiting before it is dropped from its relay group. */
  maxMessageBytes: number;
  /** Stop reading the agent while this much is waiting to go out to a slow browser... */
  highWaterBytes: number;
  /** ...until it is down to this much, looked at this often. */
  lowWaterBytes: number;
  drainCheckMs: number;
  /**
   * Larger messages (a big paste) are not fanned out here but take the agent's path: it alone
   * knows its frame limit, and a message that size is not typing.
   */
  fanOutMaxBytes: number;
  /**
   * When every editor of a document is on this server, what we send the agent only feeds the disk
   * (saved shortly after the last change anyway): fanned-out updates are then sent at most this
   * often, so a burst of typing wakes the agent once, not once per keystroke, and it takes no CPU
   * from the editors that are waiting for those keystrokes...
   */
  agentBatchMs: number;
  /** ...or as soon as this much is held. */
  agentBatchMaxBytes: number;
  /** Largest answer to a one-shot `wharf-doc` request (the ignored names of one directory). */
  replyMaxBytes: number;
};

export type DocServiceOptions = {
  workspaces: WorkspaceService;
  limits: DocServiceLimits;
};

/**
 * How the service ends a browser's websocket: normally (`error` absent; `reason` is at most 120
 * characters) or because something failed. The caller turns the error into a close code.
 */
export type DocSocketClose = (error: WharfError | undefined, reason: string) => void;

/** The error an agent's close instruction (or failed answer) stands for: common's one mapping of agent failures. */
function errorOf(instruction: { code?: unknown; message?: unknown }): WharfError {
  return mapAgentFailure({ code: instruction.code, message: instruction.message ?? 'closed by the workspace agent' });
}

/**
 * Follows the agent's `state` notices: fan-out stops the moment the document turns read-only
 * (binary or too large), and starts only once the agent said it takes edits.
 */
function takesEdits(notice: Buffer, current: boolean): boolean {
  try {
    const parsed = JSON.parse(notice.toString('utf8')) as { type?: unknown; readOnly?: unknown };
    return parsed.type === 'state' ? parsed.readOnly === false : current;
  } catch {
    return false;
  }
}

/** The agent's close instruction; a garbled one is reported as internal. */
function readCloseInstruction(payload: Buffer): CloseInstruction {
  try {
    return JSON.parse(payload.toString('utf8')) as CloseInstruction;
  } catch {
    return { code: 'internal', message: 'garbled close from the workspace agent' };
  }
}

/** Reads the single JSON reply of a one-shot `wharf-doc` request. */
function readReply(channel: ssh2.ClientChannel, maxBytes: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const decoder = createFrameDecoder(maxBytes, {
      onError: (e) => reject(new WharfError('internal', e.message)),
      onFrame: (frame) => {
        const envelope = readEnvelope(frame);
        if (!envelope) return;
        answered = true;
        const body = JSON.parse(envelope.payload.toString('utf8')) as Record<string, unknown>;
        if (envelope.kind === ENVELOPE.close) reject(errorOf(body as CloseInstruction));
        else resolve(body);
      },
    });
    channel.on('data', (chunk: Buffer) => decoder.push(chunk));
    channel.on('close', () => {
      if (!answered) reject(new WharfError('unavailable', 'the workspace agent closed the request without answering'));
    });
  });
}

export type DocService = ReturnType<typeof createDocService>;

/**
 * The control server's side of live editing. It keeps no document state: each websocket gets its
 * own `wharf-doc` channel to the agent, and messages are relayed as they are, with a 5-byte header
 * added or removed. y-websocket binary messages pass through untouched; the agent's JSON notices
 * become text frames; its close instruction ends the websocket with that error.
 *
 * A browser's update is also handed straight to the other websockets of this server that have
 * the same document open (doc-relay.ts), after the same validation the agent does, so an editor
 * next door does not wait for the agent's round trip; the agent skips them when it relays.
 */
export function createDocService(options: DocServiceOptions) {
  const { workspaces, limits } = options;
  const relayGroups = createDocRelay({ maxBufferedBytes: limits.maxMessageBytes });

  /** Stops reading the agent until what waits for a slow browser is down to the low-water mark (or the socket is gone). */
  function pauseUntilDrained(channel: ssh2.ClientChannel, socket: WebSocket): void {
    channel.pause();
    const wait = setInterval(() => {
      if (socket.bufferedAmount < limits.lowWaterBytes || socket.readyState !== socket.OPEN) {
        clearInterval(wait);
        channel.resume();
      }
    }, limits.drainCheckMs);
  }

  /**
   * The frame that takes a browser message to the agent, fanning it out to the other sockets of
   * `member`'s group first when it may be: the document takes edits (`writable`, as the agent said)
   * and the message is a keystroke or a cursor, not too large to be typing.
   */
  function encodeForAgent(data: Buffer, writable: boolean, member: RelayMember): Buffer | WharfError {
    if (!writable || data.length > limits.fanOutMaxBytes || !member.hasOthers) return encodeEnvelope(ENVELOPE.yjs, data);
    const parsed = parseDocMessage(data);
    if (!parsed.ok) return new WharfError('bad_request', parsed.error.message);
    const message = parsed.value;
    if (message.type === 'awareness') return encodeFannedOut(member.fanOut(data), data);
    if (message.type === 'sync-update' && !message.empty) return encodeFannedOut(member.fanOut(asRelayedUpdate(data, message)), data);
    return encodeEnvelope(ENVELOPE.yjs, data);
  }

  return {
    /**
     * Connects a browser's websocket to document `path` of the workspace, until either end goes.
     * Rejects (the socket left open, for the caller to close) when the agent cannot be reached.
     */
    async connect(workspace: string, path: string, socket: WebSocket, close: DocSocketClose): Promise<void> {
      // Keep what the browser sends (its sync step 1) while the channel is being opened.
      const early: Array<[Buffer, boolean]> = [];
      const onEarly = (data: Buffer, isBinary: boolean) => early.push([data, isBinary]);
      socket.on('message', onEarly);
      let channel: ssh2.ClientChannel;
      try {
        const agent = await workspaces.agent(workspace);
        channel = await agent.subsystem(DOC_SUBSYSTEM);
      } finally {
        socket.off('message', onEarly);
      }
      if (socket.readyState !== socket.OPEN) {
        channel.close();
        return;
      }
      let closing = false;
      const member = relayGroups.join(`${workspace}\0${path}`, socket, () =>
        closeWithError(new WharfError('unavailable', 'this connection is not keeping up with the document; reconnect to re-sync')),
      );
      /** Whether the agent said (in its `state` notice on this channel) that the document takes edits. */
      let writable = false;
      const toAgent = createDocAgentWriter({
        batchMs: limits.agentBatchMs,
        batchMaxBytes: limits.agentBatchMaxBytes,
        // A channel the agent closed takes nothing more; the editors re-sync when they reconnect.
        write: (frames) => {
          if (channel.writable && !channel.write(frames)) socket.pause();
        },
      });
      const closeSocket = (error: WharfError | undefined, reason: string) => {
        if (closing) return;
        closing = true;
        member.leave();
        toAgent.flush();
        // A paused socket would never read the browser's half of the closing handshake.
        socket.resume();
        if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) close(error, reason);
        channel.close();
      };
      const closeWithError = (err: WharfError) => closeSocket(err, err.message);

      channel.write(encodeJsonEnvelope(ENVELOPE.request, { op: 'open', path, relay: member.membership }));

      const decoder = createFrameDecoder(limits.maxMessageBytes + 1, {
        onError: (e) => closeWithError(new WharfError('internal', `bad frame from the workspace agent: ${e.message}`)),
        onFrame: (frame) => {
          const envelope = readEnvelope(frame);
          if (!envelope) return;
          if (envelope.kind === ENVELOPE.yjs) {
            socket.send(envelope.payload, { binary: true });
          } else if (envelope.kind === ENVELOPE.json) {
            writable = takesEdits(envelope.payload, writable);
            socket.send(envelope.payload, { binary: false });
          } else if (envelope.kind === ENVELOPE.audience) {
            toAgent.setAgentMayWait(envelope.payload[0] === 0);
          } else if (envelope.kind === ENVELOPE.close) {
            const instruction = readCloseInstruction(envelope.payload);
            if (instruction.code === 'normal') closeSocket(undefined, String(instruction.message ?? '').slice(0, 120));
            else closeWithError(errorOf(instruction));
          }
          if (socket.bufferedAmount > limits.highWaterBytes && !channel.isPaused()) pauseUntilDrained(channel, socket);
        },
      });
      channel.on('data', (chunk: Buffer) => decoder.push(chunk));
      channel.on('close', () => closeWithError(new WharfError('unavailable', 'lost the workspace agent; reconnect')));
      channel.on('error', () => {});

      const relay = (data: Buffer, isBinary: boolean) => {
        if (closing) return;
        if (!isBinary) return closeWithError(new WharfError('bad_request', 'document sync uses binary messages only'));
        const frame = encodeForAgent(data, writable, member);
        if (frame instanceof WharfError) return closeWithError(frame);
        toAgent.write(frame);
      };
      channel.on('drain', () => socket.resume());
      for (const [data, isBinary] of early) relay(data, isBinary);
      socket.on('message', relay);
      socket.on('close', () => closeSocket(undefined, ''));
    },

    /** Names in one directory of the workspace that .gitignore (or .git) hides. */
    async ignored(workspace: string, dir: string): Promise<string[]> {
      const agent = await workspaces.agent(workspace);
      const channel = await agent.subsystem(DOC_SUBSYSTEM);
      const reply = readReply(channel, limits.replyMaxBytes);
      channel.write(encodeJsonEnvelope(ENVELOPE.request, { op: 'ignored', dir }));
      const body = await reply;
      if (!body.ok) {
        throw errorOf(body);
      }
      return body.ignored as string[];
    },
  };
}
