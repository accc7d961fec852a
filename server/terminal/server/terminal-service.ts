import type { Duplex } from 'node:stream';
import { mapAgentFailure, WharfError } from '../../common/index.ts';
import type { WorkspaceService } from '../../workspace/index.ts';
import { createTypedFrameDecoder, encodeJsonFrame } from '../frames.ts';
import { TERMINAL_SUBSYSTEM, type AgentReply, type AgentRequest, type CreateTerminalRequest, type TerminalInfo } from '../protocol.ts';
import { createShareClients, type ShareClient } from './share-clients.ts';
import { createShareService, type ShareRecord, type VerifiedShare } from './shares.ts';
import { createTerminalHubs, type HubAttachment, type HubClient } from './terminal-hub.ts';

export type TerminalServiceOptions = {
  workspaces: WorkspaceService;
  /** Signs share links. */
  secret: Buffer;
  limits: {
    clientQueueBytes: number;
    maxFrameBytes: number;
    requestTimeoutMs: number;
    maxShareTtlMs: number;
    maxSharesPerWorkspace: number;
    /** How often live share-link clients are re-checked for revocation. */
    shareRecheckMs: number;
  };
  log: (event: string, fields?: Record<string, unknown>) => void;
};

const SHARES_KEY = 'terminalShares';

export type TerminalService = ReturnType<typeof createTerminalService>;

/**
 * The control server's side of shared terminals: requests to the agent's `wharf-terminal`
 * subsystem, the per-terminal hubs that fan output out to websocket clients, and share links.
 */
export function createTerminalService(options: TerminalServiceOptions) {
  const { workspaces, limits } = options;

  async function openChannel(workspace: string): Promise<Duplex> {
    const agent = await workspaces.agent(workspace);
    try {
      return await agent.subsystem(TERMINAL_SUBSYSTEM);
    } catch (err) {
      throw new WharfError('unavailable', `the workspace agent has no terminals: ${(err as Error).message}`);
    }
  }

  async function ask(workspace: string, request: AgentRequest): Promise<AgentReply & { ok: true }> {
    const channel = await openChannel(workspace);
    const reply = await new Promise<AgentReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        channel.destroy();
        reject(new WharfError('unavailable', 'the workspace agent did not answer in time'));
      }, limits.requestTimeoutMs);
      const decoder = createTypedFrameDecoder(limits.maxFrameBytes, {
        onData: () => {},
        onJson: (message) => {
          clearTimeout(timer);
          resolve(message as AgentReply);
        },
        onError: (message) => {
          clearTimeout(timer);
          reject(new WharfError('internal', `bad answer from the workspace agent: ${message}`));
        },
      });
      channel.on('data', (chunk: Buffer) => decoder.push(chunk));
      channel.on('error', () => {});
      channel.on('close', () => {
        clearTimeout(timer);
        reject(new WharfError('unavailable', 'the workspace agent closed the terminal channel'));
      });
      channel.write(encodeJsonFrame(request));
    });
    channel.end();
    if (!reply.ok) throw mapAgentFailure(reply.error);
    return reply;
  }

  const hubs = createTerminalHubs({ openChannel, queueBytes: limits.clientQueueBytes, maxFrameBytes: limits.maxFrameBytes, log: options.log });

  const shares = createShareService({
    secret: options.secret,
    maxTtlMs: limits.maxShareTtlMs,
    maxShares: limits.maxSharesPerWorkspace,
    store: {
      read: async (workspace) => (await workspaces.readFeatureData<ShareRecord[]>(workspace, SHARES_KEY)) ?? [],
      update: (workspace, update) => workspaces.updateFeatureData<ShareRecord[]>(workspace, SHARES_KEY, (current) => update(current ?? [])),
    },
  });

  const shareClients = createShareClients({ shares, recheckMs: limits.shareRecheckMs });

  return {
    shares,
    limits,

    async list(workspace: string): Promise<TerminalInfo[]> {
      return (await ask(workspace, { op: 'list' })).terminals ?? [];
    },

    async get(workspace: string, id: string): Promise<TerminalInfo> {
      const found = (await ask(workspace, { op: 'list' })).terminals?.find((t) => t.id === id);
      if (!found) throw new WharfError('not_found', `no terminal "${id}" in workspace "${workspace}"`);
      return found;
    },

    async create(workspace: string, request: CreateTerminalRequest): Promise<TerminalInfo> {
      const reply = await ask(workspace, { op: 'create', ...request });
      if (!reply.terminal) throw new WharfError('internal', 'the workspace agent did not describe the new terminal');
      return reply.terminal;
    },

    async kill(workspace: string, id: string): Promise<void> {
      await ask(workspace, { op: 'kill', id });
    },

    /**
     * Keeps a client that came in through a share link in view: it is closed when its link
     * expires or is revoked, here or on another replica. Call the returned function when it goes.
     */
    trackShareClient(share: VerifiedShare, client: ShareClient): () => void {
      return shareClients.track(share, client);
    },

    /** Revokes a share link and closes its clients on this replica; false when there is no such live link. */
    async revokeShare(workspace: string, terminal: string, shareId: string): Promise<boolean> {
      if (!(await shares.revoke(workspace, terminal, shareId))) return false;
      shareClients.revoked(shareId);
      return true;
    },

    /** Joins a websocket client to the terminal's hub (see `HubClient` for what it must offer). */
    attach(workspace: string, id: string, client: HubClient): HubAttachment {
      return hubs.attach(workspace, id, client);
    },

    shutdown(): void {
      hubs.closeAll('the server is stopping; reconnect');
    },
  };
}
