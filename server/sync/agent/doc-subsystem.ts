import type { Duplex } from 'node:stream';
import { createFrameDecoder } from '../../common/index.ts';
import type { SubsystemHandler } from '../../agent/index.ts';
import type { DocManager } from './doc-manager.ts';
import { encodeJsonEnvelope, ENVELOPE, readEnvelope, readFannedOut, type CloseInstruction, type DocRequest, type RelayMembership } from '../envelope.ts';
import type { DocPeer, SharedDoc } from './shared-doc.ts';

export type DocSubsystemOptions = {
  manager: DocManager;
  maxFrameBytes: number;
  /** A peer whose unsent output exceeds this is disconnected (it re-syncs when it reconnects). */
  maxQueuedBytes: number;
};

/**
 * `wharf-doc`: one channel per websocket. The first frame is a JSON request: `open` attaches the
 * channel to a document and relays y-websocket messages both ways until either side closes;
 * `ignored` answers once and ends. Only the control server's own key may open it.
 */
export function createDocSubsystem(options: DocSubsystemOptions): SubsystemHandler {
  const { manager } = options;
  return (stream: Duplex, context) => {
    stream.on('error', () => {});
    if (context.grant.role !== 'admin') {
      stream.end(encodeJsonEnvelope(ENVELOPE.close, { code: 'forbidden', message: 'documents are opened by the control server only' }));
      return;
    }
    let phase: 'request' | 'opening' | 'open' | 'done' = 'request';
    let doc: SharedDoc | undefined;
    let queued: Buffer[] = [];
    let queuedBytes = 0;

    function leave(): void {
      if (!doc) return;
      const left = doc;
      doc = undefined;
      left.detach(peer);
      manager.release(left);
    }

    function finish(instruction: CloseInstruction): void {
      if (phase === 'done') return;
      phase = 'done';
      leave();
      stream.end(encodeJsonEnvelope(ENVELOPE.close, instruction));
    }

    /** Set by the `open` request when the server fans this socket's updates out itself. */
    let relay: RelayMembership | undefined;

    const peer: DocPeer = {
      get relay() {
        return relay;
      },
      write(frame) {
        if (phase === 'done') return;
        if (stream.writableLength > options.maxQueuedBytes) {
          finish({ code: 'unavailable', message: 'this connection is not keeping up with the document; reconnect to re-sync' });
          return;
        }
        stream.write(frame);
      },
      close: finish,
    };

    function deliver(frame: Buffer): void {
      const envelope = readEnvelope(frame);
      let message: Buffer;
      let fannedOutAt: number | undefined;
      if (envelope?.kind === ENVELOPE.yjs) message = envelope.payload;
      else if (envelope?.kind === ENVELOPE.fannedOut && relay) {
        const fannedOut = readFannedOut(envelope.payload);
        if (!fannedOut) return finish({ code: 'bad_request', message: 'truncated fanned-out frame' });
        ({ message, version: fannedOutAt } = fannedOut);
      } else return finish({ code: 'bad_request', message: 'unexpected frame on a document channel' });
      const current = doc;
      if (!current) return;
      const result = current.receive(peer, message, fannedOutAt);
      if (!result.ok) finish({ code: result.error.code, message: result.error.message });
    }

    async function handleRequest(frame: Buffer): Promise<void> {
      const envelope = readEnvelope(frame);
      let request: DocRequest;
      try {
        if (!envelope || envelope.kind !== ENVELOPE.request) throw new Error('the first frame must be a request');
        request = JSON.parse(envelope.payload.toString('utf8')) as DocRequest;
      } catch (err) {
        return finish({ code: 'bad_request', message: (err as Error).message });
      }
      if (request.op === 'ignored') {
        phase = 'done';
        const result = await manager.listIgnored(request.dir);
        stream.end(
          encodeJsonEnvelope(ENVELOPE.reply, result.ok ? { ok: true, ignored: result.value } : { ok: false, code: result.error.code, message: result.error.message }),
        );
        return;
      }
      if (request.op !== 'open') return finish({ code: 'bad_request', message: `unknown request "${String((request as { op?: unknown }).op)}"` });
      if (request.relay !== undefined) {
        const { group, member } = request.relay as Partial<RelayMembership>;
        if (typeof group !== 'string' || group === '' || !Number.isSafeInteger(member)) return finish({ code: 'bad_request', message: 'bad relay membership' });
        relay = { group, member: member as number };
      }
      phase = 'opening';
      const opened = await manager.open(request.path);
      if (!opened.ok) return finish({ code: opened.error.code, message: opened.error.message });
      if (phase !== 'opening') {
        // The server hung up while the file was loading.
        manager.release(opened.value);
        return;
      }
      doc = opened.value;
      phase = 'open';
      doc.attach(peer);
      const early = queued;
      queued = [];
      for (const f of early) deliver(f);
    }

    const decoder = createFrameDecoder(options.maxFrameBytes, {
      onError: (e) => finish({ code: 'payload_too_large', message: e.message }),
      onFrame: (frame) => {
        if (phase === 'open') return deliver(frame);
        if (phase === 'opening') {
          queuedBytes += frame.length;
          if (queuedBytes > options.maxFrameBytes) return finish({ code: 'payload_too_large', message: 'too much data before the document was open' });
          queued.push(frame);
          return;
        }
        if (phase === 'request') {
          handleRequest(frame).catch((err: Error) => finish({ code: 'internal', message: err.message }));
        }
      },
    });

    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
    stream.on('close', () => {
      phase = 'done';
      leave();
    });
  };
}
