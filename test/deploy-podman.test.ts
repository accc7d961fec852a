import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunnerImage, makeFolder, outputOf, requireEngine, runToEnd, RUNNER_IMAGE } from './support/images.ts';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';

/** The same deploys on Podman's Docker-compatible API, whose /build has no BuildKit (classic JSON stream). */
describe('deploy: remote runner on Podman (classic builder stream)', () => {
  let server: TestServer;
  let seed: string;

  beforeAll(async () => {
    const podman = requireEngine('podman');
    await ensureRunnerImage(podman);
    server = await startTestServer({ argv: ['--builder', podman.endpoint, '--runner-image', RUNNER_IMAGE] });
    seed = await makeFolder({
      'okteto.yml': [
        'deploy:',
        '  remote: true',
        '  commands:',
        '    - name: hello',
        '      command: echo "hello from $(pwd)"; echo "warn" >&2',
        '    - name: variables',
        '      command: test "$GREETING" = hi && echo var-ok',
        '    - name: tree',
        '      command: find . | sort; test -x tool.sh && echo exec-ok; echo "link -> $(readlink link)"',
        'destroy:',
        '  remote: true',
        '  commands:',
        '    - echo first',
        '    - name: breaks',
        '      command: exit 3',
        '    - echo never',
      ].join('\n'),
      '.oktetoignore': 'ignored.txt\n',
      'ignored.txt': 'no\n',
      'tool.sh': { content: '#!/bin/sh\n', mode: 0o755 },
      link: { symlink: 'tool.sh' },
      empty: { dir: true },
    });
    await createWorkspace(server, 'pod', { seed });
  });

  afterAll(async () => {
    await server?.dispose();
    await rm(seed, { recursive: true, force: true });
  });

  it('runs the commands with their output, variables and context', async () => {
    const run = await runToEnd(server, 'pod', 'deploy', { variables: { GREETING: 'hi' } });
    expect(run.done).toMatchObject({ status: 'succeeded' });
    expect(run.events.find((e) => e.type === 'phase' && e.phase === 'building')).toMatchObject({ message: expect.stringMatching(/\(podman [\d.]+\)$/) });
    expect(outputOf(run.events, 1)).toBe('hello from /okteto/src\n');
    expect(outputOf(run.events, 1, 'stderr') + outputOf(run.events, 1)).toContain('warn\n');
    expect(outputOf(run.events, 2)).toBe('var-ok\n');
    const tree = outputOf(run.events, 3).split('\n');
    expect(tree).toEqual(expect.arrayContaining(['./tool.sh', './link', './empty', 'exec-ok', 'link -> tool.sh']));
    expect(tree).not.toContain('./ignored.txt');
    expect(run.events.filter((e) => e.type === 'command-end')).toMatchObject([{ index: 1, exitCode: 0 }, { index: 2, exitCode: 0 }, { index: 3, exitCode: 0 }]);
  });

  it('reports the failing command and its exit code', async () => {
    const run = await runToEnd(server, 'pod', 'destroy');
    expect(run.done).toMatchObject({ status: 'failed', failedCommand: { index: 2, name: 'breaks', exitCode: 3 } });
    expect(run.events.some((e) => e.type === 'command-start' && e.index === 3)).toBe(false);
  });
});
