import { WharfError } from '../../common/index.ts';
import type { ShareRefusal, ShareService, VerifiedShare } from './shares.ts';

/** A live client that came in through a share link; the tracker ends it when its link stops being valid. */
export type ShareClient = { close(error: WharfError): void };

export type ShareClientsOptions = {
  shares: Pick<ShareService, 'check'>;
  /** How often live clients' links are re-checked, for revocations made on other replicas. */
  recheckMs: number;
};

/** setTimeout fires at once for delays beyond a signed 32-bit number of milliseconds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function refusalError(code: ShareRefusal['code']): WharfError {
  if (code === 'expired') return new WharfError('unauthorized', 'this share link has expired');
  return new WharfError('forbidden', code === 'revoked' ? 'this share link was revoked' : 'this share link is no longer valid');
}

export type ShareClients = ReturnType<typeof createShareClients>;

/**
 * Live share-link clients on this replica, so a revocation here disconnects them at once, an
 * expiry when it comes, and one on another replica within `recheckMs`.
 */
export function createShareClients(options: ShareClientsOptions) {
  const byShare = new Map<string, Set<{ client: ShareClient; share: VerifiedShare }>>();
  let recheckTimer: NodeJS.Timeout | undefined;

  /** Other replicas learn of a revocation from the workspace's record: look again every few seconds. */
  async function recheck(): Promise<void> {
    for (const entries of byShare.values()) {
      const first = entries.values().next().value;
      if (!first) continue;
      const checked = await options.shares.check(first.share);
      if (!checked.ok) for (const entry of [...entries]) entry.client.close(refusalError(checked.error.code));
    }
  }

  return {
    /** Keeps `client` in view until the returned function is called (when it has gone). */
    track(share: VerifiedShare, client: ShareClient): () => void {
      const entry = { client, share };
      let entries = byShare.get(share.shareId);
      if (!entries) byShare.set(share.shareId, (entries = new Set()));
      entries.add(entry);
      const expiry = setTimeout(() => client.close(refusalError('expired')), Math.max(0, Math.min(share.exp - Date.now(), MAX_TIMER_MS)));
      if (!recheckTimer) {
        recheckTimer = setInterval(() => void recheck().catch(() => {}), options.recheckMs);
        recheckTimer.unref();
      }
      return () => {
        clearTimeout(expiry);
        entries.delete(entry);
        if (entries.size === 0) byShare.delete(share.shareId);
        if (byShare.size === 0) {
          clearInterval(recheckTimer);
          recheckTimer = undefined;
        }
      };
    },

    /** Ends the clients of a link revoked here. */
    revoked(shareId: string): void {
      for (const entry of [...(byShare.get(shareId) ?? [])]) entry.client.close(refusalError('revoked'));
    },
  };
}
