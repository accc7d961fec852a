import type { Duplex } from 'node:stream';
import type { WorkspaceResources, WorkspaceStatus } from '../common/index.ts';

/** Everything a driver keeps about a workspace, stored with the workspace itself. */
export type WorkspaceRecord = {
  id: string;
  name: string;
  driver: string;
  createdAt: string;
  /** What the user asked for; the driver reconciles toward it (restart on crash, start on boot). */
  desired: 'running' | 'stopped';
  status: WorkspaceStatus;
  /** Why the status is `error` (an OOM kill, an agent that keeps crashing), in words for the user. */
  statusReason?: string;
  /** Container drivers: the image the workspace runs, and its limits. */
  image?: string;
  resources?: WorkspaceResources;
  /** Public half of the agent's host key (OpenSSH format). */
  hostPublicKey: string;
};

export type CreateWorkspaceInput = {
  id: string;
  name: string;
  hostPrivateKey: string;
  hostPublicKey: string;
  /** authorized_keys content: the control server's public key. */
  authorizedKeys: string;
  /** Which of the server's drivers makes it (a driver set's choice; a single driver ignores it). */
  driver?: string;
  /** Container drivers: an image instead of the configured one, and limits beyond the configured defaults. */
  image?: string;
  resources?: WorkspaceResources;
};

/**
 * A driver does lifecycle and one thing more: a duplex byte stream to the workspace agent's SSH
 * server. Everything else goes through the agent so every feature works the same on every driver:
 * feature data lives in the agent's store and a seed is written by the agent, not by the driver.
 */
export interface WorkspaceDriver {
  readonly kind: string;
  /** Find existing workspaces and bring those meant to run back up. */
  init(): Promise<void>;
  create(input: CreateWorkspaceInput): Promise<WorkspaceRecord>;
  list(): Promise<WorkspaceRecord[]>;
  get(id: string): Promise<WorkspaceRecord | undefined>;
  start(id: string): Promise<WorkspaceRecord>;
  stop(id: string): Promise<WorkspaceRecord>;
  remove(id: string): Promise<void>;
  /** A fresh byte stream to the agent; the caller speaks SSH over it. */
  connect(id: string): Promise<Duplex>;
  /** Stop supervising; stop agents unless they are meant to outlive this server process. */
  shutdown(options: { stopAgents: boolean }): Promise<void>;
}
