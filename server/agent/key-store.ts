import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

const { utils } = ssh2;

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

type Entry = { key: ParsedKey; publicSSH: Buffer; grant: KeyGrant };

export type KeyStore = ReturnType<typeof createKeyStore>;

function parsePublicKey(text: string) {
  const parsed = utils.parseKey(text.trim());
  if (parsed instanceof Error) return { ok: false as const, error: parsed.message };
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) return { ok: false as const, error: 'no key found' };
  return { ok: true as const, key };
}

/**
 * Authorized keys of one workspace: the permanent keys from the authorized_keys file written by
 * the server, plus short-lived session keys registered at run time (kept in memory only, so a
 * restarted agent forgets them and helpers re-register).
 */
export function createKeyStore(now: () => number = Date.now) {
  const entries: Entry[] = [];

  function add(publicKey: string, grant: KeyGrant): { ok: true } | { ok: false; error: string } {
    const parsed = parsePublicKey(publicKey);
    if (!parsed.ok) return parsed;
    entries.push({ key: parsed.key, publicSSH: parsed.key.getPublicSSH(), grant });
    return { ok: true };
  }

  function find(algo: string, data: Buffer): Entry | undefined {
    const t = now();
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i];
      if (e.grant.expiresAt !== undefined && e.grant.expiresAt <= t) {
        entries.splice(i, 1);
        continue;
      }
      if (e.key.type === algo && e.publicSSH.length === data.length && timingSafeEqual(e.publicSSH, data)) return e;
    }
    return undefined;
  }

  return {
    add,
    find,
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
