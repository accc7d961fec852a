import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { CLOSE_CODES, DOC_MESSAGE, DOC_TEXT_NAME, type DocServerMessage } from '../../../server/common/protocol.ts';
import { applyTextDiff, continuesHistory, mergeTexts } from './rebase-text.ts';

/** y-websocket's outer message types. */
const { sync: MESSAGE_SYNC, awareness: MESSAGE_AWARENESS, queryAwareness: MESSAGE_QUERY_AWARENESS } = DOC_MESSAGE;

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set<number>([
  CLOSE_CODES.tooBig,
  CLOSE_CODES.badRequest,
  CLOSE_CODES.unauthorized,
  CLOSE_CODES.forbidden,
  CLOSE_CODES.notFound,
  CLOSE_CODES.payloadTooLarge,
]);

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export type DocStatus = {
  connection: ConnectionState;
  /** The first full exchange with the server is done since the last (re)connect. */
  synced: boolean;
  /** Local edits the server has not yet confirmed on disk. */
  pending: boolean;
  readOnly: boolean;
  reason?: string;
  size?: number;
  /** When the agent last wrote this file (ms since the epoch). */
  savedAt?: number;
  deleted: boolean;
  /** Why the connection ended for good, or the last error the server sent. */
  error?: string;
};

export type DocConnectionOptions = {
  url: string;
  user: { name: string; color: string };
  reconnectDelayMs?: { min: number; max: number };
  onStatus?: (status: DocStatus) => void;
  /** Called after a few reconnects in a row failed: a chance to check the session is still valid. */
  onRepeatedFailure?: () => void;
  /** A restarted agent rebuilt the document: the editor must rebind to the new one. */
  onDocReplaced?: (doc: Y.Doc, awareness: Awareness) => void;
};

/**
 * One open file: a Y.Doc kept across dropped connections, spoken to the server in
 * y-websocket's wire format plus the server's JSON status messages.
 *
 * Every (re)connect asks for the server's whole state first and only then sends ours, so a
 * document that a restarted agent rebuilt from disk is adopted (with our offline edits
 * merged in) rather than merged with our old history, which would duplicate its text.
 */
export class DocConnection {
  doc: Y.Doc;
  awareness: Awareness;
  readonly status: DocStatus = { connection: 'connecting', synced: false, pending: false, readOnly: false, deleted: false };

  private ws: WebSocket | undefined;
  private destroyed = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Until the server's full state arrived on this connection, nothing of ours is sent. */
  private awaitingInitial = true;
  private pendingServerStep1: Uint8Array | undefined;
  private bufferedUpdates: Uint8Array[] = [];
  /** Text as last agreed with the server: the base for merging offline edits. */
  private agreedText = '';
  private everSynced = false;
  private readonly options: DocConnectionOptions;

  constructor(options: DocConnectionOptions) {
    this.options = options;
    this.doc = new Y.Doc();
    this.awareness = this.createAwareness(this.doc);
    this.attachDoc();
  }

  /** Opens the connection; separate from construction so callers can finish wiring first. */
  start(): void {
    if (!this.ws && !this.destroyed) this.connect();
  }

  get text(): Y.Text {
    return this.doc.getText(DOC_TEXT_NAME);
  }

  /** Ends the session: tells others we left, and stops reconnecting. */
  destroy(): void {
    if (this.destroyed) return;
    removeAwarenessStates(this.awareness, [this.doc.clientID], 'local');
    this.destroyed = true;
    clearTimeout(this.retryTimer);
    this.ws?.close(1000);
    this.ws = undefined;
    this.awareness.destroy();
    this.doc.destroy();
    this.setStatus({ connection: 'closed' });
  }

  /** Drops the socket as a network failure would (used by the UI's "reconnect" action too). */
  reconnectNow(): void {
    if (this.destroyed) return;
    this.ws?.close(4000, 'client reconnect');
    clearTimeout(this.retryTimer);
  }

  private createAwareness(doc: Y.Doc): Awareness {
    const awareness = new Awareness(doc);
    awareness.setLocalStateField('user', this.options.user);
    awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
      if (origin === this) return;
      this.sendIfReady((encoder) => {
        encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
        encoding.writeVarUint8Array(encoder, encodeAwarenessUpdate(awareness, [...added, ...updated, ...removed]));
      });
    });
    return awareness;
  }

  private attachDoc(): void {
    const doc = this.doc;
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === this || doc !== this.doc) return;
      this.setStatus({ pending: true });
      // While offline or before the initial exchange, the edit stays in the doc and goes out
      // with the state diff sent once the server's state is known.
      this.sendIfReady((encoder) => {
        encoding.writeVarUint(encoder, MESSAGE_SYNC);
        syncProtocol.writeUpdate(encoder, update);
      });
    });
  }

  private setStatus(patch: Partial<DocStatus>): void {
    Object.assign(this.status, patch);
    this.options.onStatus?.({ ...this.status });
  }

  private connect(): void {
    if (this.destroyed) return;
    this.awaitingInitial = true;
    this.pendingServerStep1 = undefined;
    this.bufferedUpdates = [];
    this.setStatus({ connection: 'connecting', synced: false });
    const ws = new WebSocket(this.options.url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
      this.setStatus({ connection: 'connected', error: undefined });
      // An empty state vector: the server answers with its whole document, which tells us
      // whether it still holds the history we know.
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      syncProtocol.writeSyncStep1(encoder, new Y.Doc());
      ws.send(encoding.toUint8Array(encoder));
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === 'string') this.handleText(event.data);
      else this.handleBinary(new Uint8Array(event.data as ArrayBuffer));
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = undefined;
      // What we typed while connected reached the server; later edits are offline ones.
      if (!this.awaitingInitial) this.agreedText = this.text.toString();
      this.forgetRemoteAwareness();
      if (this.destroyed) return;
      if (this.status.deleted || FINAL_CLOSE_CODES.has(event.code)) {
        if (event.code === CLOSE_CODES.unauthorized) location.assign('/login');
        this.setStatus({ connection: 'closed', synced: false, error: this.status.error ?? (event.reason || `connection closed (${event.code})`) });
        return;
      }
      this.setStatus({ connection: 'disconnected', synced: false });
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const { min, max } = this.options.reconnectDelayMs ?? { min: 250, max: 5000 };
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt++;
    // A refused upgrade (expired session, deleted workspace) looks like any network failure here.
    if (this.attempt === 3) this.options.onRepeatedFailure?.();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private forgetRemoteAwareness(): void {
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.doc.clientID);
    if (others.length > 0) removeAwarenessStates(this.awareness, others, this);
  }

  private sendIfReady(write: (encoder: encoding.Encoder) => void): void {
    if (this.awaitingInitial || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const encoder = encoding.createEncoder();
    write(encoder);
    this.ws.send(encoding.toUint8Array(encoder));
  }

  private send(bytes: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  private handleText(raw: string): void {
    let message: DocServerMessage;
    try {
      message = JSON.parse(raw) as DocServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case 'state':
        this.setStatus({ readOnly: Boolean(message.readOnly), reason: message.reason, size: message.size });
        break;
      case 'saved':
        this.setStatus({ savedAt: message.at, pending: false, error: undefined });
        break;
      case 'deleted':
        this.setStatus({ deleted: true });
        this.ws?.close(1000);
        break;
      case 'error':
        this.setStatus({ error: message.message });
        break;
    }
  }

  private handleBinary(data: Uint8Array): void {
    const decoder = decoding.createDecoder(data);
    const type = decoding.readVarUint(decoder);
    if (type === MESSAGE_SYNC) this.handleSync(decoder);
    else if (type === MESSAGE_AWARENESS) applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), this);
    else if (type === MESSAGE_QUERY_AWARENESS) {
      this.sendIfReady((encoder) => {
        encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
        encoding.writeVarUint8Array(encoder, encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()]));
      });
    }
  }

  private handleSync(decoder: decoding.Decoder): void {
    const kind = decoding.readVarUint(decoder);
    const payload = decoding.readVarUint8Array(decoder);
    if (kind === syncProtocol.messageYjsSyncStep1) {
      if (this.awaitingInitial) this.pendingServerStep1 = payload;
      else this.replyToStep1(payload);
    } else if (kind === syncProtocol.messageYjsSyncStep2 && this.awaitingInitial) {
      this.adoptServerState(payload);
    } else if (this.awaitingInitial) {
      this.bufferedUpdates.push(payload);
    } else {
      Y.applyUpdate(this.doc, payload, this);
    }
  }

  private replyToStep1(stateVector: Uint8Array): void {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.writeSyncStep2(encoder, this.doc, stateVector);
    this.send(encoding.toUint8Array(encoder));
  }

  /** The server's whole document arrived: merge with ours, or adopt it if it is a new one. */
  private adoptServerState(serverState: Uint8Array): void {
    const serverVector = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(serverState));
    const localVector = Y.decodeStateVector(Y.encodeStateVector(this.doc));
    if (!this.everSynced || continuesHistory(localVector, serverVector, this.doc.clientID)) {
      Y.applyUpdate(this.doc, serverState, this);
    } else {
      this.replaceDoc(serverState);
    }
    this.awaitingInitial = false;
    for (const update of this.bufferedUpdates) Y.applyUpdate(this.doc, update, this);
    this.bufferedUpdates = [];
    const missing = Y.encodeStateAsUpdate(this.doc, Y.encodeStateVectorFromUpdate(serverState));
    // An update with no structs and no deletions is two zero bytes: nothing to send.
    if (missing.length > 2) {
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, MESSAGE_SYNC);
      syncProtocol.writeUpdate(encoder, missing);
      this.send(encoding.toUint8Array(encoder));
      this.setStatus({ pending: true });
    }
    if (this.pendingServerStep1) this.replyToStep1(this.pendingServerStep1);
    this.pendingServerStep1 = undefined;
    this.sendIfReady((encoder) => {
      encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
      encoding.writeVarUint8Array(encoder, encodeAwarenessUpdate(this.awareness, [this.doc.clientID]));
    });
    this.everSynced = true;
    this.agreedText = this.text.toString();
    this.setStatus({ synced: true });
  }

  /** Starts over from the server's document, keeping the edits made here since we last agreed. */
  private replaceDoc(serverState: Uint8Array): void {
    const ours = this.text.toString();
    const base = this.agreedText;
    const localUser = this.awareness.getLocalState();
    removeAwarenessStates(this.awareness, [this.doc.clientID], this);
    this.awareness.destroy();
    this.doc.destroy();

    this.doc = new Y.Doc();
    Y.applyUpdate(this.doc, serverState, this);
    const merged = mergeTexts(base, ours, this.text.toString());
    // Our offline edits become ordinary local edits of the new document; they are sent with
    // the state diff right after this.
    applyTextDiff(this.text, merged, 'rebase');
    this.awareness = this.createAwareness(this.doc);
    if (localUser) this.awareness.setLocalState(localUser);
    this.attachDoc();
    this.options.onDocReplaced?.(this.doc, this.awareness);
  }
}
