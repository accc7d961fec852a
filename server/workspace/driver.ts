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
 * Hybrid mode's layers from a service's original workload where the driver runs beside one (a
 * Deployment or StatefulSet in the workspace's cluster), in the order DESIGN.md gives them. Values
 * are resolved as the cluster would resolve them (valueFrom, `$(VAR)`).
 */
export type WorkloadEnvironment = {
  /** What it was read from, e.g. `deployment/api`, container `api`. */
  workload: string;
  /** The container spec's `env`; `secretEnv` the names among them whose values came from a Secret. */
  env: Record<string, string>;
  secretEnv: string[];
  /** `envFrom` configmaps and secrets, each a set named after the object, in the spec's order. */
  configSets: Array<{ name: string; variables: Record<string, string> }>;
  secretSets: Array<{ name: string; variables: Record<string, string> }>;
  /** The image's own environment when the driver could read it; undefined when it could not (a note says why). */
  image: Record<string, string> | undefined;
  /** Plain sentences: what could not be resolved, and why. */
  notes: string[];
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
  /**
   * Hybrid mode: the environment of `service`'s original workload (matched by name, or by the
   * manifest's `selector` labels), for a driver that runs beside such workloads; undefined when
   * none matches. Drivers without workloads (process, docker) do not have it. Features ask this,
   * never a driver's kind.
   */
  workloadEnvironment?(id: string, service: string, selector?: Record<string, string>): Promise<WorkloadEnvironment | undefined>;
  /** Stop supervising; stop agents unless they are meant to outlive this server process. */
  shutdown(options: { stopAgents: boolean }): Promise<void>;
}
