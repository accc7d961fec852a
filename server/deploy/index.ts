/**
 * Remote deploys (docs/deploy.md). The top holds only what both processes share: the protocol of
 * the agent's `wharf-deploy` subsystem. `agent/` serves it inside the workspace; `server/` runs
 * deploys (builder, runner, secrets, history). The API's event and run types are in
 * server/common, manifest and packing in server/okteto.
 */
export { DEPLOY_SUBSYSTEM } from './protocol.ts';
export type { DeployAgentRequest, DeployReadReply, DeployRunExit } from './protocol.ts';
