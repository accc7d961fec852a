import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { DOC_MESSAGE, fail, ok, type Result } from '../common/index.ts';

/** y-websocket's message types (the first varUint of every binary message). */
export const MESSAGE_SYNC = DOC_MESSAGE.sync;
export const MESSAGE_AWARENESS = DOC_MESSAGE.awareness;
export const MESSAGE_QUERY_AWARENESS = DOC_MESSAGE.queryAwareness;

/** A browser's message, decoded far enough to know it is whole and what it asks for. */
export type DocMessage =
  | { type: 'sync-step1'; stateVector: Uint8Array }
  /** Step 2 (a reconnecting client's offline edits) or an update; `empty` when it changes nothing. */
  | { type: 'sync-update'; update: Uint8Array; step2: boolean; empty: boolean }
  | { type: 'awareness'; update: Uint8Array }
  | { type: 'query-awareness' };

export type PeerFailure = { code: 'bad_request'; message: string };

function isEmptyUpdate(update: Uint8Array): boolean {
  const decoded = Y.decodeUpdate(update);
  return decoded.structs.length === 0 && decoded.ds.clients.size === 0;
}

/** Reads an awareness update to its end, JSON states included, the way `applyAwarenessUpdate` will. */
function checkAwarenessUpdate(update: Uint8Array): string | undefined {
  const decoder = decoding.createDecoder(update);
  const count = decoding.readVarUint(decoder);
  for (let i = 0; i < count; i++) {
    decoding.readVarUint(decoder);
    decoding.readVarUint(decoder);
    JSON.parse(decoding.readVarString(decoder));
  }
  return decoder.pos === update.length ? undefined : 'trailing bytes in the awareness update';
}

/**
 * Decodes one y-websocket message from a browser completely, so that a garbled one is refused
 * before anything is applied or passed on. The agent checks every message with it, and the
 * control server checks with it before handing an update straight to the other editors it
 * serves: both refuse exactly the same messages.
 */
export function parseDocMessage(message: Uint8Array): Result<DocMessage, PeerFailure> {
  const garbled = (why: string) => fail({ code: 'bad_request' as const, message: `garbled sync message: ${why}` });
  const decoder = decoding.createDecoder(message);
  try {
    const type = decoding.readVarUint(decoder);
    if (type === MESSAGE_SYNC) {
      const syncType = decoding.readVarUint(decoder);
      const payload = decoding.readVarUint8Array(decoder);
      if (decoder.pos !== message.length) return garbled('trailing bytes');
      if (syncType === syncProtocol.messageYjsSyncStep1) return ok({ type: 'sync-step1', stateVector: payload });
      if (syncType !== syncProtocol.messageYjsSyncStep2 && syncType !== syncProtocol.messageYjsUpdate) return garbled(`unknown sync type ${syncType}`);
      return ok({ type: 'sync-update', update: payload, step2: syncType === syncProtocol.messageYjsSyncStep2, empty: isEmptyUpdate(payload) });
    }
    if (type === MESSAGE_AWARENESS) {
      const update = decoding.readVarUint8Array(decoder);
      if (decoder.pos !== message.length) return garbled('trailing bytes');
      const problem = checkAwarenessUpdate(update);
      return problem ? garbled(problem) : ok({ type: 'awareness', update });
    }
    if (type === MESSAGE_QUERY_AWARENESS) {
      if (decoder.pos !== message.length) return garbled('trailing bytes');
      return ok({ type: 'query-awareness' });
    }
    return garbled(`unknown message type ${type}`);
  } catch (err) {
    return garbled((err as Error).message);
  }
}

/**
 * Where the sync type sits in a sync message: the message type (0) and the sync type (1 or 2)
 * are one-byte varUints.
 */
const SYNC_TYPE_OFFSET = 1;

/**
 * A sync message as the other editors get it: a step 2 is passed on as a plain update (it is
 * one; only the step-1 asker treats a step 2 as "now synced"). Returns the message itself when
 * nothing changes, else a copy.
 */
export function asRelayedUpdate(message: Uint8Array, parsed: Extract<DocMessage, { type: 'sync-update' }>): Uint8Array {
  if (!parsed.step2) return message;
  const copy = Buffer.from(message);
  copy[SYNC_TYPE_OFFSET] = syncProtocol.messageYjsUpdate;
  return copy;
}
