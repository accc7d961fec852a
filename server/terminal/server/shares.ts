import { randomBytes } from 'node:crypto';
import { fail, ok, signToken, verifyToken, type Result } from '../../common/index.ts';
import type { TerminalRole } from '../protocol.ts';

/** A share link as stored with its workspace (the token itself is re-derived, never stored). */
export type ShareRecord = {
  id: string;
  terminal: string;
  role: TerminalRole;
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
};

export type ShareStore = {
  read(workspace: string): Promise<ShareRecord[]>;
  /** Atomic read-modify-write of the workspace's list; `update` may run again on a concurrent write. */
  update(workspace: string, update: (current: ShareRecord[]) => ShareRecord[]): Promise<ShareRecord[]>;
};

export type VerifiedShare = { workspace: string; terminal: string; role: TerminalRole; shareId: string; exp: number };

export type ShareRefusal = { code: 'invalid' | 'expired' | 'revoked'; message: string };

type SharePayload = { exp: number; kind: 'share'; ws: string; tid: string; role: TerminalRole; sid: string };

export type ShareServiceOptions = {
  secret: Buffer;
  store: ShareStore;
  maxTtlMs: number;
  maxShares: number;
  now?: () => number;
};

export type ShareService = ReturnType<typeof createShareService>;

/**
 * Share links: signed, expiring tokens naming one terminal and a role. The signature makes them
 * unforgeable; the record kept with the workspace makes them revocable by every replica, and a
 * revocation survives restarts. Records are dropped once their link has expired anyway.
 */
export function createShareService(options: ShareServiceOptions) {
  const now = options.now ?? Date.now;

  function issueToken(workspace: string, record: ShareRecord): string {
    const payload: SharePayload = { exp: Date.parse(record.expiresAt), kind: 'share', ws: workspace, tid: record.terminal, role: record.role, sid: record.id };
    return signToken(options.secret, payload);
  }

  const live = (t: number) => (r: ShareRecord) => Date.parse(r.expiresAt) > t;

  return {
    issueToken,

    async create(
      workspace: string,
      terminal: string,
      input: { role: unknown; expiresInSeconds: unknown },
    ): Promise<Result<{ record: ShareRecord; token: string }, { code: 'bad_request' | 'conflict'; message: string }>> {
      if (input.role !== 'editor' && input.role !== 'viewer') return fail({ code: 'bad_request', message: '"role" must be "editor" or "viewer"' });
      const maxSeconds = Math.floor(options.maxTtlMs / 1000);
      const seconds = input.expiresInSeconds;
      if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > maxSeconds) {
        return fail({ code: 'bad_request', message: `"expiresInSeconds" is required: a whole number from 1 to ${maxSeconds} (7 days)` });
      }
      const t = now();
      const record: ShareRecord = {
        id: randomBytes(9).toString('base64url'),
        terminal,
        role: input.role,
        createdAt: new Date(t).toISOString(),
        expiresAt: new Date(t + seconds * 1000).toISOString(),
      };
      let full = false;
      await options.store.update(workspace, (current) => {
        full = false;
        const kept = current.filter(live(t));
        if (kept.length >= options.maxShares) {
          full = true;
          return kept;
        }
        return [...kept, record];
      });
      if (full) return fail({ code: 'conflict', message: `this workspace already has ${options.maxShares} live share links; revoke some first` });
      return ok({ record, token: issueToken(workspace, record) });
    },

    async list(workspace: string, terminal: string): Promise<Array<ShareRecord & { token: string }>> {
      const t = now();
      const records = (await options.store.read(workspace)).filter((r) => r.terminal === terminal && live(t)(r));
      return records.map((r) => ({ ...r, token: issueToken(workspace, r) }));
    },

    /** Marks a link revoked; false when there is no such live link for that terminal. */
    async revoke(workspace: string, terminal: string, shareId: string): Promise<boolean> {
      const t = now();
      let found = false;
      await options.store.update(workspace, (current) => {
        found = false;
        return current.filter(live(t)).map((r) => {
          if (r.id !== shareId || r.terminal !== terminal) return r;
          found = true;
          return r.revokedAt ? r : { ...r, revokedAt: new Date(t).toISOString() };
        });
      });
      return found;
    },

    /** Checks signature, expiry and revocation of a presented token. */
    async verify(token: string): Promise<Result<VerifiedShare, ShareRefusal>> {
      const verified = verifyToken<SharePayload>(options.secret, token, now());
      if (!verified.ok) {
        return fail(verified.error.code === 'expired' ? { code: 'expired', message: 'this share link has expired' } : { code: 'invalid', message: 'this share link is not valid' });
      }
      const p = verified.value;
      if (p.kind !== 'share' || typeof p.ws !== 'string' || typeof p.tid !== 'string' || typeof p.sid !== 'string' || (p.role !== 'editor' && p.role !== 'viewer')) {
        return fail({ code: 'invalid', message: 'this share link is not valid' });
      }
      return this.check({ workspace: p.ws, terminal: p.tid, role: p.role, shareId: p.sid, exp: p.exp });
    },

    /** Re-checks a share already admitted (live clients are re-checked periodically). */
    async check(share: VerifiedShare): Promise<Result<VerifiedShare, ShareRefusal>> {
      if (share.exp <= now()) return fail({ code: 'expired', message: 'this share link has expired' });
      let records: ShareRecord[];
      try {
        records = await options.store.read(share.workspace);
      } catch {
        return fail({ code: 'invalid', message: 'this share link is not valid' });
      }
      const record = records.find((r) => r.id === share.shareId);
      // A record that is missing (its workspace was re-created, say) is as good as revoked.
      if (!record || record.terminal !== share.terminal || record.role !== share.role) return fail({ code: 'invalid', message: 'this share link is not valid' });
      if (record.revokedAt) return fail({ code: 'revoked', message: 'this share link was revoked' });
      return ok(share);
    },
  };
}
