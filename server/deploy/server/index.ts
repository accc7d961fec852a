export { createDeployService } from './deploy-service.ts';
export type { DeployService, DeployServiceOptions, DeployLimits, DeployWorkspaces, RunSubscription } from './deploy-service.ts';
export { packRunnerFiles, renderDockerfile, runnerBuildArgs } from './runner-files.ts';
