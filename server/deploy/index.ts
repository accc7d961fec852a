export { createDeployService } from './deploy-service.ts';
export type { DeployService, DeployServiceOptions, DeployLimits, DeployWorkspaces, RunSubscription } from './deploy-service.ts';
export { createDeployAgentFeature, DEPLOY_SUBSYSTEM } from './agent-feature.ts';
export type { DeployAgentOptions } from './agent-feature.ts';
export type { CommandInfo, DeployEvent, DeployRun, DeployRequest, DeployStatus, DeployPhase, FailedCommand } from './deploy-types.ts';
export { packRunnerFiles, renderDockerfile, runnerBuildArgs } from './runner-files.ts';
export { createLineSplitter } from './local-runner.ts';
