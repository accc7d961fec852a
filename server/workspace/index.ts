export type { WorkspaceDriver, WorkspaceRecord, CreateWorkspaceInput, WorkloadEnvironment } from './driver.ts';
// The agent's runtime as files (node, libraries, agent, supervisor): `wharf agent install-runtime` writes it.
export { collectRuntime, writeRuntimeTo, RUNTIME_MOUNT } from './agent-runtime.ts';
export { createWorkspaceService, toWorkspace } from './service.ts';
export { createDriverSet } from './driver-set.ts';
export type { DriverSet } from './driver-set.ts';
export type { WorkspaceService, SessionKeyGrant } from './service.ts';
export type { AgentConnection, ExecResult } from './agent-connection.ts';
export { loadOrCreateServerKey } from './keys.ts';
// Kept here for the callers (and tests) that reach keys through the workspace: the helper lives in common.
export { generateKeyPair } from '../common/index.ts';
export type { KeyPair } from '../common/index.ts';
export { createReplicaRegistry } from './replica-registry.ts';
export type { ReplicaRegistry } from './replica-registry.ts';
