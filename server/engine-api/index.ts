/**
 * The Docker Engine API transport (server/engine-api/engine-client.ts says why docker-modem), for
 * the control server's code that talks to an engine: deploy's builder and the docker workspace
 * driver. Engine-specific meaning (BuildKit's status messages, what a build's answer says) stays
 * with the feature that needs it.
 */
export { parseEngineEndpoint } from './endpoint.ts';
export type { EngineEndpoint } from './endpoint.ts';
export { createEngineClient, engineMessage } from './engine-client.ts';
export type { EngineAnswer, EngineClient, EngineFailure, EngineRequest, HijackedStream } from './engine-client.ts';
