import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../common/index.ts';
import { createKeyStore } from './key-store.ts';

const session = { role: 'session' as const, label: 'laptop', forward: [], reverse: [] };

describe('key store: revoking session keys', () => {
  it('forgets a revoked key at once, by id or by its SHA256 fingerprint, and tells its connections', () => {
    const keys = createKeyStore();
    const a = generateKeyPair('a');
    const b = generateKeyPair('b');
    const addedA = keys.add(a.publicKey, { ...session, expiresAt: Date.now() + 60_000 });
    const addedB = keys.add(b.publicKey, { ...session, expiresAt: Date.now() + 60_000 });
    if (!addedA.ok || !addedB.ok) throw new Error('keys refused');
    const [algoA, blobA] = a.publicKey.split(' ');
    const found = keys.find(algoA, Buffer.from(blobA, 'base64'));
    expect(found).toBeDefined();
    let closed = 0;
    keys.watch(found!.grant, () => closed++);

    expect(keys.revoke('not-a-key')).toBe(0);
    expect(keys.revoke(addedA.id)).toBe(1);
    expect(keys.find(algoA, Buffer.from(blobA, 'base64'))).toBeUndefined();
    expect(closed).toBe(1);
    // Watching a grant that is already revoked closes at once (a login racing the revocation).
    keys.watch(found!.grant, () => closed++);
    expect(closed).toBe(2);

    const openSsh = `SHA256:${Buffer.from(addedB.id, 'base64url').toString('base64').replace(/=+$/, '')}`;
    expect(keys.revoke(openSsh)).toBe(1);
    const [algoB, blobB] = b.publicKey.split(' ');
    expect(keys.find(algoB, Buffer.from(blobB, 'base64'))).toBeUndefined();
  });

  it('lists live session keys with their grants and open connections, and keeps an expired one while it has connections', () => {
    let clock = 1_000_000;
    const keys = createKeyStore(() => clock);
    const a = generateKeyPair('a');
    const b = generateKeyPair('b');
    const addedA = keys.add(a.publicKey, { ...session, label: 'wharf up api', forward: ['db:5432'], reverse: [9000], expiresAt: clock + 60_000 });
    clock += 1;
    const addedB = keys.add(b.publicKey, { ...session, label: 'wharf ssh', expiresAt: clock + 60_000 });
    if (!addedA.ok || !addedB.ok) throw new Error('keys refused');
    const [algoA, blobA] = a.publicKey.split(' ');
    const grantA = keys.find(algoA, Buffer.from(blobA, 'base64'))!.grant;
    const unwatch = keys.watch(grantA, () => {});
    expect(keys.list()).toEqual([
      { id: addedB.id, label: 'wharf ssh', forward: [], reverse: [], addedAt: 1_000_001, expiresAt: 1_060_001, connections: 0 },
      { id: addedA.id, label: 'wharf up api', forward: ['db:5432'], reverse: [9000], addedAt: 1_000_000, expiresAt: 1_060_000, connections: 1 },
    ]);
    // Past their life: b is gone; a logs in no more, but its open connection keeps it listed and revocable.
    clock += 120_000;
    expect(keys.find(algoA, Buffer.from(blobA, 'base64'))).toBeUndefined();
    expect(keys.list().map((k) => k.id)).toEqual([addedA.id]);
    expect(keys.revoke(addedA.id)).toBe(1);
    unwatch();
    expect(keys.list()).toEqual([]);
  });
});
