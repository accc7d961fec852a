import type { Stats } from 'node:fs';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { DOC_TEXT_NAME, fail, ok, type Result } from '../../common/index.ts';
import { readDocFile, sameStamp, stampOf, statInPlace, writeFileAtomic, type DiskStamp } from './doc-file.ts';
import { asRelayedUpdate, MESSAGE_AWARENESS, MESSAGE_SYNC, parseDocMessage, type PeerFailure } from '../doc-message.ts';
import type { DocStateStore } from './doc-state-store.ts';
import { encodeEnvelope, encodeJsonEnvelope, ENVELOPE, type CloseInstruction, type DocServerMessage, type DocStateMessage, type RelayMembership } from '../envelope.ts';
import { applyTextChange } from './text-diff.ts';

/** The Y.Text every client binds its editor to (server/common: the web UI binds it too). */
export const TEXT_NAME = DOC_TEXT_NAME;

/** Origin of changes read from disk, so they are told apart from any client's. */
const DISK_ORIGIN = Symbol('disk');

/** Once a document's update log holds this much, it is rewritten as one update. */
const COMPACT_AFTER_BYTES = 4 * 1024 * 1024;

/** Saved updates reach the state log at most this long after the save. */
const STATE_LOG_DELAY_MS = 1000;

/** If a save fails (disk full, permissions), try again after this long. */
const SAVE_RETRY_MS = 1000;

/** One connection to the document (a websocket, relayed by the server over its own SSH channel). */
export type DocPeer = {
  /** Sends an encoded envelope frame. */
  write(frame: Buffer): void;
  /** Ends the connection with this close instruction. */
  close(instruction: CloseInstruction): void;
  /** The server's relay group this connection belongs to, if its server fans updates out itself. */
  readonly relay?: RelayMembership;
};

export type SharedDocOptions = {
  real: string;
  rel: string;
  /** Saved this long after the last change... */
  flushDelayMs: number;
  /** ...but no later than this after the first unsaved one. */
  flushMaxWaitMs: number;
  /** Also the time a burst of watcher events on the file must go quiet before we read it. */
  settleMs: number;
  maxDocBytes: number;
  store: DocStateStore;
  log: (event: string, fields?: Record<string, unknown>) => void;
  /** Called once when the file is gone from disk and the document closed itself. */
  onGone: () => void;
};

export type { PeerFailure };

export type SharedDoc = {
  readonly real: string;
  readonly rel: string;
  readonly peerCount: number;
  readonly closed: boolean;
  readonly readOnly: false | 'binary' | 'too_large';
  attach(peer: DocPeer): void;
  detach(peer: DocPeer): void;
  /**
   * One binary message from a peer. A failure means the message was garbled: close that peer.
   * `fannedOutAt` is set when the peer's server already gave the message to the members of the
   * peer's relay group up to that version; they are skipped when relaying it.
   */
  receive(peer: DocPeer, message: Uint8Array, fannedOutAt?: number): Result<void, PeerFailure>;
  /** The watcher saw something happen to the file. */
  noteDiskEvent(): void;
  /** Looks at the file now (not after the settle delay); resolves once any change is merged. */
  checkDisk(): Promise<void>;
  /** Writes what is unsaved, stores the CRDT state and frees the document. */
  close(instruction?: CloseInstruction): Promise<void>;
  /** Current text (tests and diagnostics). */
  text(): string;
};

/** One update standing for all of `updates` (the update itself when there is only one). */
function mergeBatch(updates: Uint8Array[]): Uint8Array {
  return updates.length === 1 ? updates[0] : Y.mergeUpdates(updates);
}

/** A y-websocket sync message: its type, then what `write` puts in. */
function syncMessage(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients));
  return encoding.toUint8Array(encoder);
}

/**
 * Does what a peer's message asks once it has decoded cleanly. Should that still throw (not seen
 * in practice), the message was garbled after all: that peer's fault, not the document's.
 */
function applyPeerMessage<T>(apply: () => T): Result<T, PeerFailure> {
  try {
    return ok(apply());
  } catch (err) {
    return fail({ code: 'bad_request', message: `garbled sync message: ${(err as Error).message}` });
  }
}

/**
 * Loads the document for one file: the stored CRDT state if there is one (so browsers holding
 * an older copy merge instead of duplicating), brought up to date with what is on disk now.
 */
export async function openSharedDoc(options: SharedDocOptions): Promise<SharedDoc> {
  const { real, rel, store, log } = options;
  const { content, stats } = await readDocFile(real, options.maxDocBytes);
  let doc = new Y.Doc();
  let readOnly: false | 'binary' | 'too_large' = content.kind === 'text' ? false : content.kind;
  let size = content.size;
  let stamp: DiskStamp | undefined = stampOf(stats);
  /** What we last wrote or read: the file's content as far as we know. */
  let lastWritten = '';
  /**
   * A second copy of the document as it was when `lastWritten` was written. A change found on
   * disk is diffed against it and applied there, then merged into the live document as a
   * concurrent edit: typing that happened since that save is kept, not overwritten.
   */
  let mirror: Y.Doc | undefined;

  if (content.kind === 'text') {
    const records = await store.load(rel);
    try {
      for (const record of records) Y.applyUpdate(doc, record);
    } catch (err) {
      log('doc.state_discarded', { path: rel, error: (err as Error).message });
      doc.destroy();
      doc = new Y.Doc();
    }
    const stored = doc.getText(TEXT_NAME).toString();
    if (stored !== content.text) applyTextChange(doc.getText(TEXT_NAME), stored, content.text, DISK_ORIGIN);
    lastWritten = content.text;
    mirror = new Y.Doc();
    const state = Y.encodeStateAsUpdate(doc);
    Y.applyUpdate(mirror, state);
    await store.compact(rel, state);
  }

  const text = doc.getText(TEXT_NAME);
  const awareness = new awarenessProtocol.Awareness(doc);
  // The agent is not a participant: no cursor of its own.
  awareness.setLocalState(null);
  const peers = new Map<DocPeer, Set<number>>();
  let pending: Uint8Array[] = [];
  let flushTimer: NodeJS.Timeout | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  let queue: Promise<void> = Promise.resolve();
  let loggedBytes = 0;
  let unlogged: Uint8Array[] = [];
  let logTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let gone = false;

  /** Disk work runs one task at a time: a save never races a read of an outside change. */
  function enqueue(task: () => Promise<void>): Promise<void> {
    queue = queue.then(task).catch((err: Error) => log('doc.disk_error', { path: rel, error: err.message }));
    return queue;
  }

  function broadcast(frame: Buffer, except?: unknown): void {
    for (const peer of peers.keys()) if (peer !== except) peer.write(frame);
  }

  /** What each peer in a relay group was last told by `ENVELOPE.audience`. */
  const toldAudience = new Map<DocPeer, boolean>();

  /** Tells each grouped peer's server whether anyone outside its group waits for its updates. */
  function tellAudience(): void {
    for (const peer of peers.keys()) {
      const group = peer.relay?.group;
      if (group === undefined) continue;
      let outside = false;
      for (const other of peers.keys()) {
        if (other.relay?.group !== group) {
          outside = true;
          break;
        }
      }
      if (toldAudience.get(peer) === outside) continue;
      toldAudience.set(peer, outside);
      peer.write(encodeEnvelope(ENVELOPE.audience, Uint8Array.of(outside ? 1 : 0)));
    }
  }

  /** Whether `peer` already has what `origin`'s server fanned out at version `fannedOutAt`. */
  function hasFannedOut(peer: DocPeer, origin: DocPeer, fannedOutAt: number | undefined): boolean {
    if (fannedOutAt === undefined || !peer.relay || !origin.relay) return false;
    return peer.relay.group === origin.relay.group && peer.relay.member <= fannedOutAt;
  }

  /** A peer's message to everyone else who does not have it yet. */
  function relay(message: () => Buffer, origin: DocPeer, fannedOutAt: number | undefined): void {
    // Encoded only if someone needs it: when every editor is on the origin's server, nobody does.
    let frame: Buffer | undefined;
    for (const peer of peers.keys()) if (peer !== origin && !hasFannedOut(peer, origin, fannedOutAt)) peer.write((frame ??= message()));
  }

  function broadcastJson(message: DocServerMessage): void {
    broadcast(encodeJsonEnvelope(ENVELOPE.json, message));
  }

  function stateMessage(): DocStateMessage {
    return readOnly ? { type: 'state', readOnly: true, reason: readOnly, size } : { type: 'state', readOnly: false, size };
  }

  /** Set while a peer's update, already relayed as it came, is being applied. */
  let relayed = false;

  doc.on('update', (update: Uint8Array, origin: unknown) => {
    // Changes from disk go out here; a peer's update went out before it was applied.
    if (!relayed) broadcast(encodeEnvelope(ENVELOPE.yjs, syncMessage((encoder) => syncProtocol.writeUpdate(encoder, update))), origin);
    if (readOnly || gone) return;
    pending.push(update);
    scheduleFlush();
  });

  /** When the first unsaved change was made (performance.now()), or undefined when all is saved. */
  let unsavedSince: number | undefined;

  function scheduleFlush(): void {
    const now = performance.now();
    unsavedSince ??= now;
    const due = Math.min(now + options.flushDelayMs, unsavedSince + options.flushMaxWaitMs);
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => {
      flushTimer = undefined;
      void enqueue(flush);
    }, Math.max(0, due - now));
  }

  /** Set while a peer's awareness update, already fanned out by its server, is being applied. */
  let awarenessFannedOutAt: number | undefined;

  awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
    const controlled = peers.get(origin as DocPeer);
    if (controlled) {
      for (const id of added) controlled.add(id);
      for (const id of removed) controlled.delete(id);
    }
    // Sent to the origin too, as y-websocket's server does: its client counts any message as a
    // sign of life and reconnects after 30 s of silence.
    const frame = encodeEnvelope(ENVELOPE.yjs, awarenessMessage(awareness, added.concat(updated, removed)));
    for (const peer of peers.keys()) if (peer === origin || !controlled || !hasFannedOut(peer, origin as DocPeer, awarenessFannedOutAt)) peer.write(frame);
  });

  /** Moves saved updates into the mirror now, and into the state log a little later. */
  function commit(batch: Uint8Array[]): void {
    if (batch.length === 0 || !mirror) return;
    const merged = mergeBatch(batch);
    Y.applyUpdate(mirror, merged);
    unlogged.push(merged);
    // The log only matters after a crash; batching it keeps disk work off the typing path.
    logTimer ??= setTimeout(() => {
      logTimer = undefined;
      void enqueue(writeLog);
    }, STATE_LOG_DELAY_MS);
  }

  async function writeLog(): Promise<void> {
    if (unlogged.length === 0 || !mirror || gone || closed) return;
    const merged = mergeBatch(unlogged);
    unlogged = [];
    loggedBytes += merged.length;
    if (loggedBytes > COMPACT_AFTER_BYTES) {
      loggedBytes = 0;
      await store.compact(rel, Y.encodeStateAsUpdate(mirror));
    } else {
      await store.append(rel, merged);
    }
  }

  async function flush(): Promise<void> {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (readOnly || gone || !mirror) return;
    const batch = pending;
    pending = [];
    /** Not saved after all: the batch goes back ahead of the updates that came in meanwhile. */
    const keepUnsaved = () => {
      pending = batch.concat(pending);
    };
    unsavedSince = undefined;
    const current = text.toString();
    if (current === lastWritten) {
      commit(batch);
      return;
    }
    const onDisk = await statInPlace(real);
    if (!onDisk) {
      // Deleted (or replaced by a link) under us: never recreate the file, never write through a
      // link. Look again once things settle, in case the watcher says nothing.
      keepUnsaved();
      scheduleReconcile();
      return;
    }
    if (!sameStamp(stamp, stampOf(onDisk))) {
      // Changed by someone else since we last looked and the watcher has not told us yet:
      // merge that first, or this save would silently drop it.
      keepUnsaved();
      await absorbDiskChange();
      return flush();
    }
    const bytes = Buffer.byteLength(current);
    if (bytes > options.maxDocBytes) {
      keepUnsaved();
      broadcastJson({ type: 'error', message: `not saved: the document is ${bytes} bytes, over the limit of ${options.maxDocBytes}` });
      return;
    }
    let written: DiskStamp | undefined;
    try {
      written = await writeFileAtomic(real, current, onDisk);
    } catch (err) {
      keepUnsaved();
      broadcastJson({ type: 'error', message: `cannot save ${rel}: ${(err as Error).message}` });
      log('doc.save_failed', { path: rel, error: (err as Error).message });
      flushTimer ??= setTimeout(() => {
        flushTimer = undefined;
        void enqueue(flush);
      }, SAVE_RETRY_MS);
      return;
    }
    if (!written) {
      // Changed while we were writing: take that change in, then save the merge.
      keepUnsaved();
      await absorbDiskChange();
      return flush();
    }
    stamp = written;
    lastWritten = current;
    size = bytes;
    broadcastJson({ type: 'saved', at: Date.now() });
    commit(batch);
  }

  /** Reads the file and, if someone else changed it, merges the change into the document. */
  async function absorbDiskChange(): Promise<void> {
    if (gone) return;
    if (!(await statInPlace(real))) return markGone();
    let read: { content: Awaited<ReturnType<typeof readDocFile>>['content']; stats: Stats };
    try {
      read = await readDocFile(real, options.maxDocBytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP') return markGone();
      throw err;
    }
    const seen = stampOf(read.stats);
    if (sameStamp(seen, stamp)) return;
    stamp = seen;
    size = read.content.size;
    if (read.content.kind !== 'text') {
      if (readOnly !== read.content.kind) {
        readOnly = read.content.kind;
        pending = [];
        broadcastJson(stateMessage());
        log('doc.became_read_only', { path: rel, reason: readOnly });
      }
      return;
    }
    // A read-only document never took edits; it stays as it opened until clients reopen it.
    if (readOnly || !mirror) return;
    const incoming = read.content.text;
    if (incoming === lastWritten) return;
    const mirrorText = mirror.getText(TEXT_NAME);
    const before = Y.encodeStateVector(mirror);
    applyTextChange(mirrorText, mirrorText.toString(), incoming, DISK_ORIGIN);
    const change = Y.encodeStateAsUpdate(mirror, before);
    lastWritten = incoming;
    Y.applyUpdate(doc, change, DISK_ORIGIN);
    log('doc.outside_change', { path: rel, bytes: size });
  }

  async function markGone(): Promise<void> {
    if (gone) return;
    gone = true;
    clearTimeout(flushTimer);
    clearTimeout(settleTimer);
    clearTimeout(logTimer);
    pending = [];
    unlogged = [];
    broadcastJson({ type: 'deleted' });
    for (const peer of [...peers.keys()]) peer.close({ code: 'normal', message: 'the file was deleted' });
    peers.clear();
    await store.remove(rel);
    log('doc.deleted', { path: rel });
    options.onGone();
  }

  /** Looks at the file once a burst of events has gone quiet (a writer's truncate-then-write). */
  function scheduleReconcile(): void {
    if (gone || closed) return;
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => void enqueue(reconcileDisk), options.settleMs);
  }

  async function reconcileDisk(): Promise<void> {
    if (gone) return;
    const onDisk = await statInPlace(real);
    if (!onDisk) return markGone();
    if (sameStamp(stamp, stampOf(onDisk))) return;
    await absorbDiskChange();
  }

  function receive(peer: DocPeer, message: Uint8Array, fannedOutAt?: number): Result<void, PeerFailure> {
    const parsed = parseDocMessage(message);
    if (!parsed.ok) return parsed;
    const msg = parsed.value;
    if (msg.type === 'sync-step1') {
      // The state vector is only decoded here.
      const answer = applyPeerMessage(() => syncMessage((encoder) => syncProtocol.writeSyncStep2(encoder, doc, msg.stateVector)));
      if (!answer.ok) return answer;
      peer.write(encodeEnvelope(ENVELOPE.yjs, answer.value));
      return ok(undefined);
    }
    if (msg.type === 'query-awareness') {
      peer.write(encodeEnvelope(ENVELOPE.yjs, awarenessMessage(awareness, [...awareness.getStates().keys()])));
      return ok(undefined);
    }
    if (msg.type === 'awareness') {
      awarenessFannedOutAt = fannedOutAt;
      const applied = applyPeerMessage(() => awarenessProtocol.applyAwarenessUpdate(awareness, msg.update, peer));
      awarenessFannedOutAt = undefined;
      return applied;
    }
    if (msg.empty) return ok(undefined);
    if (readOnly) {
      peer.write(encodeJsonEnvelope(ENVELOPE.json, { type: 'error', message: `${rel} is read-only (${readOnly}): the edit was not applied` }));
      return ok(undefined);
    }
    if (gone || closed) return ok(undefined);
    // Relay the message as it came, then apply it: the other editors see the keystroke without
    // waiting for it to be integrated and re-encoded here. Yjs updates commute, so the order does
    // not matter, and parseDocMessage decoded the update fully (a malformed one is refused whole,
    // never half applied).
    relay(() => encodeEnvelope(ENVELOPE.yjs, asRelayedUpdate(message, msg)), peer, fannedOutAt);
    relayed = true;
    const applied = applyPeerMessage(() => Y.applyUpdate(doc, msg.update, peer));
    relayed = false;
    return applied;
  }

  return {
    real,
    rel,
    get peerCount() {
      return peers.size;
    },
    get closed() {
      return closed || gone;
    },
    get readOnly() {
      return readOnly;
    },
    attach(peer) {
      peers.set(peer, new Set());
      peer.write(encodeJsonEnvelope(ENVELOPE.json, stateMessage()));
      peer.write(encodeEnvelope(ENVELOPE.yjs, syncMessage((encoder) => syncProtocol.writeSyncStep1(encoder, doc))));
      const states = [...awareness.getStates().keys()];
      if (states.length > 0) peer.write(encodeEnvelope(ENVELOPE.yjs, awarenessMessage(awareness, states)));
      tellAudience();
    },
    detach(peer) {
      const controlled = peers.get(peer);
      if (!controlled) return;
      peers.delete(peer);
      toldAudience.delete(peer);
      tellAudience();
      // The others see this client's cursor go away at once, not after the 30 s timeout.
      if (controlled.size > 0) awarenessProtocol.removeAwarenessStates(awareness, [...controlled], null);
    },
    receive,
    noteDiskEvent: scheduleReconcile,
    checkDisk: () => (gone || closed ? Promise.resolve() : enqueue(reconcileDisk)),
    async close(instruction) {
      if (closed) return;
      closed = true;
      clearTimeout(settleTimer);
      if (instruction) for (const peer of [...peers.keys()]) peer.close(instruction);
      peers.clear();
      if (!gone && !readOnly) {
        await enqueue(flush);
        if (mirror && !gone) await store.compact(rel, Y.encodeStateAsUpdate(doc)).catch((err: Error) => log('doc.state_save_failed', { path: rel, error: err.message }));
      }
      clearTimeout(flushTimer);
      clearTimeout(logTimer);
      awareness.destroy();
      doc.destroy();
      mirror?.destroy();
    },
    text: () => text.toString(),
  };
}
