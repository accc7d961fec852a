import { randomBytes } from 'node:crypto';
import { fail, ok, signToken, verifyToken, type Result } from '../../common/index.ts';

/** A port's share link as stored with its workspace (the token is re-derived, never stored). */
export type PortShareRecord = {
  id: string;
  port: number;
  /** Anyone holding the link may open it; otherwise the link also needs a signed-in session. */
  public: boolean;
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
};

export type PortShareStore = {
  read(workspace: string): Promise<PortShareRecord[]>;
  update(workspace: string, update: (current: PortShareRecord[]) => PortShareRecord[]): Promise<PortShareRecord[]>;
};

export type VerifiedPortShare = { workspace: string; port: number; shareId: string; public: boolean; exp: number };

export type PortShareRefusal = { code: 'invalid' | 'expired' | 'revoked'; message: string };

type PortSharePayload = { exp: number; kind: 'port-share'; ws: string; port: number; sid: string; pub: boolean };

export type PortShareService = ReturnType<typeof createPortShareService>;

/**
 * Share links of a workspace port, built like the terminals' (server/terminal/server/shares.ts):
 * a signed, expiring token names the workspace, the port and the record; the record kept with the
 * workspace (its agent's feature data) makes the link revocable on every replica, and it is read
 * on every request, so a revoked link stops at its next request.
 */
export function createPortShareService(options: { secret: Buffer; store: PortShareStore; maxTtlMs: number; maxShares: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const live = (t: number) => (r: PortShareRecord) => Date.parse(r.expiresAt) > t;

  function issueToken(workspace: string, record: PortShareRecord): string {
    const payload: PortSharePayload = { exp: Date.parse(record.expiresAt), kind: 'port-share', ws: workspace, port: record.port, sid: record.id, pub: record.public };
    return signToken(options.secret, payload);
  }

  async function check(share: VerifiedPortShare): Promise<Result<VerifiedPortShare, PortShareRefusal>> {
    if (share.exp <= now()) return fail({ code: 'expired', message: 'this share link has expired' });
    let records: PortShareRecord[];
    try {
      records = await options.store.read(share.workspace);
    } catch {
      return fail({ code: 'invalid', message: 'this share link cannot be checked now (is the workspace running?)' });
    }
    const record = records.find((r) => r.id === share.shareId);
    if (!record || record.port !== share.port || record.public !== share.public) return fail({ code: 'invalid', message: 'this share link is not valid' });
    if (record.revokedAt) return fail({ code: 'revoked', message: 'this share link was revoked' });
    return ok(share);
  }

  return {
    issueToken,
    check,

    async create(workspace: string, port: number, input: { public: unknown; expiresInSeconds: unknown }): Promise<Result<{ record: PortShareRecord; token: string }, { code: 'bad_request' | 'conflict'; message: string }>> {
      if (input.public !== undefined && typeof input.public !== 'boolean') return fail({ code: 'bad_request', message: '"public" must be true (anyone with the link) or false (signed-in people only)' });
      const maxSeconds = Math.floor(options.maxTtlMs / 1000);
      const seconds = input.expiresInSeconds;
      if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > maxSeconds) {
        return fail({ code: 'bad_request', message: `"expiresInSeconds" is required: a whole number from 1 to ${maxSeconds} (7 days)` });
      }
      const t = now();
      const record: PortShareRecord = {
        id: randomBytes(9).toString('base64url'),
        port,
        public: input.public === true,
        createdAt: new Date(t).toISOString(),
        expiresAt: new Date(t + seconds * 1000).toISOString(),
      };
      let full = false;
      await options.store.update(workspace, (current) => {
        const kept = current.filter(live(t));
        full = kept.length >= options.maxShares;
        return full ? kept : [...kept, record];
      });
      if (full) return fail({ code: 'conflict', message: `this workspace already has ${options.maxShares} live port share links; revoke some first` });
      return ok({ record, token: issueToken(workspace, record) });
    },

    async list(workspace: string, port?: number): Promise<Array<PortShareRecord & { token: string }>> {
      const t = now();
      const records = (await options.store.read(workspace)).filter((r) => live(t)(r) && (port === undefined || r.port === port));
      return records.map((r) => ({ ...r, token: issueToken(workspace, r) }));
    },

    /** Marks a link revoked; false when there is no such live link. */
    async revoke(workspace: string, shareId: string): Promise<boolean> {
      const t = now();
      let found = false;
      await options.store.update(workspace, (current) => {
        found = false;
        return current.filter(live(t)).map((r) => {
          if (r.id !== shareId) return r;
          found = true;
          return r.revokedAt ? r : { ...r, revokedAt: new Date(t).toISOString() };
        });
      });
      return found;
    },

    /** Signature, expiry and revocation of a presented token. */
    async verify(token: string): Promise<Result<VerifiedPortShare, PortShareRefusal>> {
      const verified = verifyToken<PortSharePayload>(options.secret, token, now());
      if (!verified.ok) {
        return fail(verified.error.code === 'expired' ? { code: 'expired', message: 'this share link has expired' } : { code: 'invalid', message: 'this share link is not valid' });
      }
      const p = verified.value;
      if (p.kind !== 'port-share' || typeof p.ws !== 'string' || !Number.isInteger(p.port) || typeof p.sid !== 'string' || typeof p.pub !== 'boolean') {
        return fail({ code: 'invalid', message: 'this share link is not valid' });
      }
      return check({ workspace: p.ws, port: p.port, shareId: p.sid, public: p.pub, exp: p.exp });
    },
  };
}
