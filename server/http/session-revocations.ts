import { appendFile, readFile, stat } from 'node:fs/promises';

/**
 * Session cookies are signed and carry their own expiry, so any replica can check them without
 * shared state. To let logout end one session before it expires, its id goes into an append-only
 * list in the data dir (`revoked-sessions`, one `<id> <expiry ms>` line each). Replicas that share
 * the data dir see each other's logouts: the file is re-read whenever its size or mtime changed,
 * so the common case costs one stat per cookie-authenticated request. A list, not a signing-key
 * generation, because a generation would sign every browser out when one of them logs out.
 * Lines whose expiry has passed are ignored; logouts are rare, so the file stays small (a line is
 * about 40 bytes) and is never rewritten, which would race with another replica's append.
 */
export function createSessionRevocations(file: string, now: () => number = Date.now) {
  let cached: { key: string; revoked: Map<string, number> } = { key: 'none', revoked: new Map() };

  async function load(): Promise<Map<string, number>> {
    let key: string;
    try {
      const info = await stat(file);
      key = `${info.size}:${info.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      key = 'none';
    }
    if (key === cached.key) return cached.revoked;
    const revoked = new Map<string, number>();
    const text = key === 'none' ? '' : await readFile(file, 'utf8');
    const t = now();
    for (const line of text.split('\n')) {
      const [id, exp] = line.trim().split(' ');
      if (id && Number(exp) > t) revoked.set(id, Number(exp));
    }
    cached = { key, revoked };
    return revoked;
  }

  return {
    async isRevoked(sessionId: string): Promise<boolean> {
      return (await load()).has(sessionId);
    },
    async revoke(sessionId: string, expiresAt: number): Promise<void> {
      if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) return;
      await appendFile(file, `${sessionId} ${expiresAt}\n`, { mode: 0o600 });
      (await load()).set(sessionId, expiresAt);
    },
  };
}

export type SessionRevocations = ReturnType<typeof createSessionRevocations>;
