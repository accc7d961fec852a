// The control server's half of hybrid mode: a workspace's environment settings (feature data)
// and their resolution for a service, asking the agent for the dev-container layer. Only
// server/main.ts wires it.
export { createHybridEnvService, FEATURE_KEYS } from './env-service.ts';
export type { HybridEnvService, HybridEnvWorkspaces, SetKind } from './env-service.ts';
