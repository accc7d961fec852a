export { loadServerConfig, readProcessContext } from './load-config.ts';
export type { ServerConfig, SandboxMode, ProcessContext, DriverKind, DriverSettings } from './load-config.ts';
export { loadAgentConfig } from './agent-config.ts';
export type { AgentConfig } from './agent-config.ts';
export { loadCliConfig } from './cli-config.ts';
export type { CliConfig } from './cli-config.ts';
