export { runAgent } from './run-agent.ts';
export type { AgentFeature, RunningAgent } from './run-agent.ts';
export { createAgentServer } from './ssh-server.ts';
export { createKeyStore } from './key-store.ts';
export type { KeyGrant, KeyStore } from './key-store.ts';
export type { SubsystemHandler, SubsystemContext, ProcessEnvironment } from './session.ts';
export type { ControlRequest, ControlResponse } from './control.ts';
export { createPathJail } from './sftp-server.ts';
export type { PathJail } from './sftp-server.ts';
