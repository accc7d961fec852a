export type { WorkspaceDriver, WorkspaceRecord, CreateWorkspaceInput } from './driver.ts';
export { createWorkspaceService, toWorkspace } from './service.ts';
export type { WorkspaceService, SessionKeyGrant } from './service.ts';
export type { AgentConnection, ExecResult } from './agent-connection.ts';
export { generateKeyPair, loadOrCreateServerKey } from './keys.ts';
export type { KeyPair } from './keys.ts';
