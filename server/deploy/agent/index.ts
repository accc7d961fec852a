export { createDeployAgentFeature } from './agent-feature.ts';
export type { DeployAgentOptions } from './agent-feature.ts';
