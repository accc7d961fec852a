import type { Duplex } from 'node:stream';
import { createFrameDecoder, encodeFrame } from '../common/index.ts';
import type { FeatureStore } from './feature-store.ts';
import type { KeyStore } from './key-store.ts';
import type { SubsystemHandler } from './session.ts';

/**
 * `wharf-control`: requests from the control server to the agent (register a helper's
 * short-lived key, ping). JSON frames `{id, op, ...}` answered by `{id, ok, error?}`.
 * Only the server's own (admin) key may open it.
 */
export type ControlRequest =
  | { id: number; op: 'ping' }
  | {
      id: number;
      op: 'add-key';
      publicKey: string;
      label: string;
      ttlMs: number;
      forward?: string[];
      reverse?: number[];
    }
  | { id: number; op: 'remove-key'; label: string }
  /** Revokes a session key by its id (fingerprint) and closes the connections it opened. */
  | { id: number; op: 'revoke-key'; keyId: string }
  /** The live session keys: `{keys: SessionKeyInfo[]}`. */
  | { id: number; op: 'list-keys' }
  /** Feature data (see feature-store.ts): `{version, value?}`; version 0 is a key never written. */
  | { id: number; op: 'store-read'; key: string }
  /** Refused with `error: 'conflict'` (and the current `version`) unless the key is still at `expectVersion`. */
  | { id: number; op: 'store-write'; key: string; value: unknown; expectVersion: number };

export type ControlResponse = { id: number; ok: boolean; error?: string; [key: string]: unknown };

export type ControlOptions = {
  store: FeatureStore;
  /** Largest request frame: a store write carries a whole value, so it follows the store's bound. */
  maxFrameBytes: number;
  /** A session key asked for longer is granted this long (the server refuses longer asks itself). */
  maxKeyTtlMs: number;
};

export function createControlSubsystem(keys: KeyStore, options: ControlOptions): SubsystemHandler {
  const { store } = options;
  return (stream: Duplex, context) => {
    if (context.grant.role !== 'admin') {
      stream.end(encodeFrame(Buffer.from(JSON.stringify({ id: 0, ok: false, error: 'forbidden' }))));
      return;
    }
    // Store answers come after a disk round trip: the server may have closed the channel meanwhile.
    stream.on('error', () => {});
    const reply = (response: ControlResponse) => {
      if (stream.writable) stream.write(encodeFrame(Buffer.from(JSON.stringify(response))));
    };
    const decoder = createFrameDecoder(options.maxFrameBytes, {
      onError: (e) => {
        reply({ id: 0, ok: false, error: e.message });
        stream.end();
      },
      onFrame: (frame) => {
        let request: ControlRequest;
        try {
          request = JSON.parse(frame.toString('utf8')) as ControlRequest;
        } catch {
          return reply({ id: 0, ok: false, error: 'request is not JSON' });
        }
        switch (request.op) {
          case 'ping':
            return reply({ id: request.id, ok: true });
          case 'add-key': {
            const ttl = Math.min(Math.max(1000, Number(request.ttlMs) || 0), options.maxKeyTtlMs);
            const result = keys.add(String(request.publicKey), {
              role: 'session',
              label: String(request.label),
              expiresAt: Date.now() + ttl,
              forward: Array.isArray(request.forward) ? request.forward.map(String) : [],
              reverse: Array.isArray(request.reverse) ? request.reverse.map(Number) : [],
            });
            return reply(result.ok ? { id: request.id, ok: true, keyId: result.id } : { id: request.id, ok: false, error: result.error });
          }
          case 'remove-key':
            return reply({ id: request.id, ok: true, removed: keys.remove(String(request.label)) });
          case 'revoke-key':
            return reply({ id: request.id, ok: true, removed: keys.revoke(String(request.keyId)) });
          case 'list-keys':
            return reply({ id: request.id, ok: true, keys: keys.list() });
          case 'store-read': {
            const id = request.id;
            store.read(request.key).then(
              (r) => reply(r.ok ? { id, ok: true, ...r.value } : { id, ok: false, error: r.error.code, message: r.error.message }),
              (err: Error) => reply({ id, ok: false, error: 'internal', message: err.message }),
            );
            return;
          }
          case 'store-write': {
            const id = request.id;
            store.write(request.key, request.value, Number(request.expectVersion)).then(
              (r) => reply(r.ok ? { id, ok: true, version: r.value.version } : { id, ok: false, error: r.error.code, message: r.error.message, version: r.error.version }),
              (err: Error) => reply({ id, ok: false, error: 'internal', message: err.message }),
            );
            return;
          }
          default:
            return reply({ id: (request as { id?: number }).id ?? 0, ok: false, error: 'unknown op' });
        }
      },
    });
    stream.on('data', (chunk: Buffer) => decoder.push(chunk));
  };
}
