import { defineConfig, type TestProjectConfiguration } from 'vitest/config';

/**
 * The driver matrix (docs/testing.md): these files run a second time with their test servers on
 * the docker driver. Together they cover what issue 16 asks to work unchanged on it: files, live
 * editing, shared terminals (across a control-server restart), local deploy execution,
 * `wharf ssh`, plain OpenSSH through `wharf proxy`, hybrid sessions.
 */
export const DRIVER_MATRIX_FILES = [
  'test/files-api.test.ts',
  'test/live-editing.test.ts',
  'test/terminals.test.ts',
  'test/deploy-remote.test.ts',
  'test/cli.test.ts',
  'test/openssh-proxy.test.ts',
  'test/hybrid-forwarding.test.ts',
  'test/replicas.test.ts',
  'test/deploy-paths.test.ts',
];

const integration = {
  environment: 'node' as const,
  // Servers under test run agents from dist/agent and serve the helper downloads of dist/: built first if stale.
  globalSetup: ['test/support/build-artifacts.ts'],
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Tests that start engines and browsers share one machine of 2 cores.
  fileParallelism: false,
};

/**
 * The docker leg of the matrix runs by default; WHARF_TEST_MATRIX=process leaves it out (a quick
 * run on the process driver alone). Its servers find the engine in WHARF_TEST_DOCKER_HOST
 * (scripts/engines.sh exports it) and the image in WHARF_TEST_WORKSPACE_IMAGE, which its
 * globalSetup sets to the matrix image it imports (test/support/matrix-image.ts) unless given.
 */
const dockerMatrix: TestProjectConfiguration[] =
  process.env.WHARF_TEST_MATRIX?.trim() !== 'process'
    ? [
        {
          test: {
            name: 'integration-docker',
            include: DRIVER_MATRIX_FILES,
            ...integration,
            // The matrix's workspace image is imported (once per content) after the bundles are built.
            globalSetup: [...integration.globalSetup, 'test/support/matrix-image.ts'],
            env: { WHARF_TEST_DRIVER: 'docker' },
          },
        },
      ]
    : [];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['server/**/*.test.ts', 'web/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          ...integration,
        },
      },
      ...dockerMatrix,
    ],
  },
});
