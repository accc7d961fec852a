export { createDeployService } from './deploy-service.ts';
export type { DeployService, DeployServiceOptions, DeployLimits, DeployWorkspaces, RunSubscription } from './deploy-service.ts';
export { createDeployAgentFeature, DEPLOY_SUBSYSTEM } from './agent-feature.ts';
export type { DeployAgentOptions } from './agent-feature.ts';
export { packRunnerFiles, renderDockerfile, runnerBuildArgs } from './runner-files.ts';
