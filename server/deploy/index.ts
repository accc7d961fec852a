/**
 * Remote deploys (docs/deploy.md). The top holds only what both processes share: the protocol of
 * the agent's `wharf-deploy` subsystem, and a run's log (kept by the replica that runs it and,
 * for every replica to follow, by the workspace's agent: run-board.ts). `agent/` serves it inside the workspace; `server/` runs
 * deploys (builder, runner, secrets, history). The API's event and run types are in
 * server/common, manifest and packing in server/okteto.
 */
export { DEPLOY_SUBSYSTEM } from './protocol.ts';
export type { BoardReply, BoardRequest, DeployAgentRequest, DeployReadReply, DeployRunExit, HostMessage } from './protocol.ts';
export { createRunLog, summariseRun } from './run-log.ts';
export type { RunLog } from './run-log.ts';
