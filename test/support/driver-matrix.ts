import { describe, it } from 'vitest';

/**
 * The integration suite's driver matrix: the same test files run on the process driver (the
 * default) and on the docker driver, chosen by WHARF_TEST_DRIVER. The `integration-docker`
 * project of vitest.config.ts sets it for the files of the matrix; by hand:
 * `WHARF_TEST_DRIVER=docker npm test -- test/files-api.test.ts`.
 */
export type TestDriver = 'process' | 'docker';

export const DEFAULT_WORKSPACE_IMAGE = 'wharf-test/workspace:latest';

/** The driver the test servers of this run use. */
export function testDriver(env: NodeJS.ProcessEnv = process.env): TestDriver {
  const value = env.WHARF_TEST_DRIVER?.trim() || 'process';
  if (value !== 'process' && value !== 'docker') throw new Error(`WHARF_TEST_DRIVER must be "process" or "docker", not ${JSON.stringify(value)}`);
  return value;
}

/**
 * The server flags that select the driver. The process driver is the server's default and needs
 * none. The docker driver needs an engine (WHARF_TEST_DOCKER_HOST, e.g. unix:///run/wharf-test/docker.sock)
 * and an image (WHARF_TEST_WORKSPACE_IMAGE, else `wharf-test/workspace:latest`). Each test server
 * has its own data dir, and the docker driver labels its containers with an instance id derived
 * from it, so two servers (or two runs) never see each other's workspaces.
 */
export function driverArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  if (testDriver(env) === 'process') return [];
  const host = env.WHARF_TEST_DOCKER_HOST?.trim();
  if (!host) throw new Error('WHARF_TEST_DRIVER=docker needs WHARF_TEST_DOCKER_HOST (the engine the workspaces run on)');
  return ['--driver', 'docker', '--docker-host', host, '--workspace-image', env.WHARF_TEST_WORKSPACE_IMAGE?.trim() || DEFAULT_WORKSPACE_IMAGE];
}

const PROCESS_ONLY = 'process driver only: it is about the process driver itself (host folders, sandbox, run dir or agent processes on this machine)';

/** A `describe` that runs on the process driver and is skipped, saying why, on any other. */
export function describeProcessOnly(name: string, fn: () => void): void {
  if (testDriver() === 'process') describe(name, fn);
  else describe.skip(`${name} [skipped on ${testDriver()}: ${PROCESS_ONLY}]`, fn);
}

/** An `it` that runs on the process driver and is skipped, saying why, on any other. */
export function itProcessOnly(name: string, fn: () => Promise<void> | void, timeout?: number): void {
  if (testDriver() === 'process') it(name, fn, timeout);
  else it.skip(`${name} [skipped on ${testDriver()}: ${PROCESS_ONLY}]`, fn, timeout);
}
