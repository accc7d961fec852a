export { createDockerDriver, LABELS as DOCKER_LABELS } from './docker-driver.ts';
export type { DockerDriverOptions } from './docker-driver.ts';
export { pruneRuntimeVolumes, RUNTIME_VOLUME_PREFIX } from './runtime-volume.ts';
export { createEngineCalls } from './engine-calls.ts';
