import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ParsedKey } from 'ssh2';
import { parseSshKey } from '../common/index.ts';

/** What a key may do. The server's own key is `admin`; helper sessions get narrower grants. */
export type KeyGrant = {
  role: 'admin' | 'session';
  label: string;
  /** ms since epoch; absent for the server's permanent key */
  expiresAt?: number;
  /** host:port patterns a direct-tcpip (forward) channel may reach; `*` allows any */
  forward: string[];
  /** ports a tcpip-forward (reverse) request may bind in the workspace */
  reverse: number[];
};

type Entry = { key: ParsedKey; publicSSH: Buffer; grant: KeyGrant; id: string; addedAt: number };

/** A live session key as the server lists it (never the admin key, never the key itself). */
export type SessionKeyInfo = { id: string; label: string; forward: string[]; reverse: number[]; addedAt: number; expiresAt?: number; connections: number };

/**
 * A key's id: its SHA-256 fingerprint as OpenSSH prints it (`SHA256:<base64>`), but base64url,
 * so it can stand in a URL path. `toKeyId` accepts either spelling.
 */
function fingerprintOf(publicSSH: Buffer): string {
  return createHash('sha256').update(publicSSH).digest('base64url');
}

export function toKeyId(given: string): string {
  return given.startsWith('SHA256:') ? given.slice(7).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_') : given;
}

export type KeyStore = ReturnType<typeof createKeyStore>;

/**
 * Authorized keys of one workspace: the permanent keys from the authorized_keys file written by
 * the server, plus short-lived session keys registered at run time (kept in memory only, so a
 * restarted agent forgets them and helpers re-register).
 */
export function createKeyStore(now: () => number = Date.now) {
  const entries: Entry[] = [];
  /** Who to tell when a grant is revoked: the SSH connections it opened, so they are closed. */
  const watchers = new Map<KeyGrant, Set<() => void>>();
  const revoked = new WeakSet<KeyGrant>();

  function add(publicKey: string, grant: KeyGrant): { ok: true; id: string } | { ok: false; error: string } {
    const parsed = parseSshKey(publicKey);
    if (!parsed.ok) return parsed;
    const publicSSH = parsed.value.getPublicSSH();
    const id = fingerprintOf(publicSSH);
    entries.push({ key: parsed.value, publicSSH, grant, id, addedAt: now() });
    return { ok: true, id };
  }

  function find(algo: string, data: Buffer): Entry | undefined {
    const t = now();
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (e.grant.expiresAt !== undefined && e.grant.expiresAt <= t) {
        // An expired key logs in no more, but is kept while its connections last: they can
        // still be listed and ended by revoking it.
        if (!watchers.has(e.grant)) entries.splice(i, 1);
        continue;
      }
      if (e.key.type === algo && e.publicSSH.length === data.length && timingSafeEqual(e.publicSSH, data)) return e;
    }
    return undefined;
  }

  return {
    add,
    find,
    /**
     * Session keys that can still log in or still have connections open, newest first, with how
     * many SSH connections each has open (the connections watching it for revocation).
     */
    list(): SessionKeyInfo[] {
      const t = now();
      return entries
        .filter((e) => e.grant.role !== 'admin')
        .map((e) => ({ e, connections: watchers.get(e.grant)?.size ?? 0 }))
        .filter(({ e, connections }) => connections > 0 || e.grant.expiresAt === undefined || e.grant.expiresAt > t)
        .reverse()
        .map(({ e, connections }) => ({
          id: e.id,
          label: e.grant.label,
          forward: e.grant.forward,
          reverse: e.grant.reverse,
          addedAt: e.addedAt,
          ...(e.grant.expiresAt === undefined ? {} : { expiresAt: e.grant.expiresAt }),
          connections,
        }));
    },
    remove(label: string): number {
      let removed = 0;
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i].grant.label === label && entries[i].grant.role !== 'admin') {
          entries.splice(i, 1);
          removed++;
        }
      }
      return removed;
    },
    /**
     * Revokes a session key before it expires (`id` from `add`, or its `SHA256:` fingerprint):
     * it can open no new connection, and the connections it opened are told to close.
     */
    revoke(given: string): number {
      const id = toKeyId(given);
      let removed = 0;
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i];
        if (entry.id !== id || entry.grant.role === 'admin') continue;
        entries.splice(i, 1);
        removed++;
        revoked.add(entry.grant);
        for (const close of watchers.get(entry.grant) ?? []) close();
        watchers.delete(entry.grant);
      }
      return removed;
    },
    /** Calls `onRevoke` when `grant` is revoked (at once if it already was); returns the unwatch. */
    watch(grant: KeyGrant, onRevoke: () => void): () => void {
      if (revoked.has(grant)) {
        onRevoke();
        return () => {};
      }
      let set = watchers.get(grant);
      if (!set) watchers.set(grant, (set = new Set()));
      set.add(onRevoke);
      return () => {
        set.delete(onRevoke);
        if (set.size === 0 && watchers.get(grant) === set) watchers.delete(grant);
      };
    },
    async loadAuthorizedKeysFile(path: string): Promise<void> {
      const text = await readFile(path, 'utf8');
      for (const line of text.split('\n')) {
        if (!line.trim() || line.startsWith('#')) continue;
        const result = add(line, { role: 'admin', label: 'server', forward: ['*'], reverse: [] });
        if (!result.ok) throw new Error(`${path}: ${result.error}`);
      }
    },
  };
}
