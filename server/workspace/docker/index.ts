export { createDockerDriver, LABELS as DOCKER_LABELS } from './docker-driver.ts';
export type { DockerDriverOptions } from './docker-driver.ts';
