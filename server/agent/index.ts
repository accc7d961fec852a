export { runAgent } from './run-agent.ts';
export type { AgentFeature, RunningAgent } from './run-agent.ts';
export { runBridge } from './bridge.ts';
export { createAgentServer } from './ssh-server.ts';
export { createKeyStore } from './key-store.ts';
export type { KeyGrant, KeyStore } from './key-store.ts';
export type { SubsystemHandler, SubsystemContext, ProcessEnvironment } from './session.ts';
export type { ControlRequest, ControlResponse } from './control.ts';
