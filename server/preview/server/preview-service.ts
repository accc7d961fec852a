import type { Duplex } from 'node:stream';
import type { WorkspaceService } from '../../workspace/index.ts';
import { createPortShareService, type PortShareRecord, type VerifiedPortShare } from './port-shares.ts';
import { createPortWatch } from './port-watch.ts';
import { createPreviewProxy } from './preview-proxy.ts';

export type PreviewServiceOptions = {
  workspaces: Pick<WorkspaceService, 'agent' | 'readFeatureData' | 'updateFeatureData'>;
  /** Signs port share links. */
  secret: Buffer;
  limits: {
    maxShareTtlMs: number;
    maxSharesPerWorkspace: number;
    /** How often the live websockets of share links are re-checked, for revocations made on other replicas. */
    shareRecheckMs: number;
    /** How long a lookup waits for the agent's first port list. */
    agentTimeoutMs: number;
  };
  log: (event: string, fields?: Record<string, unknown>) => void;
};

const SHARES_KEY = 'portShares';

export type PreviewService = ReturnType<typeof createPreviewService>;

/** The control server's side of previews: the port lists, the proxy and the port share links. */
export function createPreviewService(options: PreviewServiceOptions) {
  const { workspaces, limits, log } = options;
  const ports = createPortWatch({ agent: (id) => workspaces.agent(id), retryMs: 1000, idleMs: 60_000, firstListTimeoutMs: limits.agentTimeoutMs, log });
  const proxy = createPreviewProxy({ agent: (id) => workspaces.agent(id), ports, maxIdleChannels: 32, log });
  const shares = createPortShareService({
    secret: options.secret,
    maxTtlMs: limits.maxShareTtlMs,
    maxShares: limits.maxSharesPerWorkspace,
    store: {
      read: async (workspace) => (await workspaces.readFeatureData<PortShareRecord[]>(workspace, SHARES_KEY)) ?? [],
      update: (workspace, update) => workspaces.updateFeatureData<PortShareRecord[]>(workspace, SHARES_KEY, (current) => update(current ?? [])),
    },
  });

  /** Websockets opened through a share link, by link: a revocation closes them. */
  const shareSockets = new Map<string, { share: VerifiedPortShare; sockets: Set<Duplex> }>();
  let recheckTimer: NodeJS.Timeout | undefined;

  async function recheck(): Promise<void> {
    for (const [shareId, entry] of shareSockets) {
      const checked = await shares.check(entry.share);
      if (!checked.ok) closeShareSockets(shareId);
    }
  }

  function closeShareSockets(shareId: string): void {
    const entry = shareSockets.get(shareId);
    shareSockets.delete(shareId);
    for (const socket of entry?.sockets ?? []) socket.destroy();
  }

  return {
    ports,
    proxy,
    shares,

    /** Keeps a websocket opened through a share link in view until it closes; it is cut when the link is revoked or expires. */
    trackShareSocket(share: VerifiedPortShare, socket: Duplex): void {
      let entry = shareSockets.get(share.shareId);
      if (!entry) shareSockets.set(share.shareId, (entry = { share, sockets: new Set() }));
      entry.sockets.add(socket);
      const expiry = setTimeout(() => socket.destroy(), Math.max(0, Math.min(share.exp - Date.now(), 2 ** 31 - 1)));
      socket.once('close', () => {
        clearTimeout(expiry);
        entry.sockets.delete(socket);
        if (entry.sockets.size === 0 && shareSockets.get(share.shareId) === entry) shareSockets.delete(share.shareId);
        if (shareSockets.size === 0) {
          clearInterval(recheckTimer);
          recheckTimer = undefined;
        }
      });
      if (!recheckTimer) {
        recheckTimer = setInterval(() => void recheck().catch(() => {}), limits.shareRecheckMs);
        recheckTimer.unref();
      }
    },

    /** Revokes a link and cuts its websockets on this replica; false when there is no such live link. */
    async revokeShare(workspace: string, shareId: string): Promise<boolean> {
      if (!(await shares.revoke(workspace, shareId))) return false;
      closeShareSockets(shareId);
      return true;
    },

    shutdown(): void {
      clearInterval(recheckTimer);
      for (const shareId of [...shareSockets.keys()]) closeShareSockets(shareId);
      ports.shutdown();
      proxy.shutdown();
    },
  };
}
