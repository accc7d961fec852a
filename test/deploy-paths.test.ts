import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunnerImage, makeFolder, requireEngine, runToEnd, RUNNER_IMAGE } from './support/images.ts';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { shq, WorkspaceFs } from './support/workspace-fs.ts';
import { runProgram, userEnv, WHARF } from './support/wharf-cli.ts';

/**
 * A deploy context or a manifest path may not leave the folder it belongs to: not by "..", not
 * by an absolute path, not through a symlink (a hostile repository's `context: link` with
 * `link -> /home/me` must not upload the developer's home).
 */
describe('deploy: paths stay inside the project and the workspace', () => {
  let server: TestServer;
  let outside: string;
  let configHome: string;
  let cleanUp: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    server = await startTestServer({ argv: ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE] });
    configHome = await server.tempDir('wharf-cli-home-');
    outside = await server.tempDir('wharf-outside-');
    await writeFile(join(outside, 'okteto.yml'), 'deploy:\n  remote: true\n  commands: [cat /etc/hostname]\n');
    await mkdir(join(outside, 'sub'));
    await createWorkspace(server, 'paths');
    // In the workspace as its programs see it (any driver): `escape` leads to a folder of its
    // machine outside the workspace, with a manifest and a sub folder of its own.
    const files = new WorkspaceFs(server, 'paths');
    await files.write('okteto.yml', 'deploy:\n  remote: true\n  context: escape\n  commands: [ls]\ndestroy:\n  remote: true\n  context: escape/sub\n  commands: [ls]\n');
    const elsewhere = (await files.sh('mktemp -d')).trim();
    await files.write(`${elsewhere}/okteto.yml`, 'deploy:\n  remote: true\n  commands: [cat /etc/hostname]\n');
    await files.sh(`mkdir ${shq(`${elsewhere}/sub`)} && ln -s ${shq(elsewhere)} escape`);
    cleanUp = async () => {
      await files.sh(`rm -rf ${shq(elsewhere)}`);
      files.close();
    };
  });

  afterAll(async () => {
    await cleanUp?.();
    await server?.dispose();
  });

  it('the agent does not read a manifest through a symlink that leads outside the workspace', async () => {
    const run = await runToEnd(server, 'paths', 'deploy', { file: 'escape/okteto.yml' });
    expect(run.done).toMatchObject({ status: 'error', message: 'cannot read the manifest: "escape/okteto.yml" is not a path inside the workspace' });
  });

  it('the agent does not pack a context that a symlink leads outside the workspace', async () => {
    // Reading the context's .oktetoignore is the first thing that goes through the link; the
    // pack op resolves the context with the same resolver.
    for (const kind of ['deploy', 'destroy'] as const) {
      const run = await runToEnd(server, 'paths', kind);
      expect(run.done).toMatchObject({ status: 'error', message: expect.stringMatching(/"escape(\/sub)?\/\.oktetoignore" is not a path inside the workspace/) });
      expect(run.events.some((e) => e.type === 'command-start')).toBe(false);
    }
  });

  async function deployFrom(files: Parameters<typeof makeFolder>[0]) {
    const project = await makeFolder(files, await server.tempDir('wharf-project-'));
    return runProgram(process.execPath, [WHARF, 'deploy'], { cwd: project, env: userEnv(configHome, { WHARF_URL: server.url, WHARF_TOKEN: server.token }) });
  }

  it('the CLI refuses a context outside the project folder, by "..", an absolute path or a symlink', async () => {
    const parent = await deployFrom({ 'okteto.yml': 'deploy:\n  remote: true\n  context: ../..\n  commands: [ls]\n' });
    expect(parent.code).toBe(1);
    expect(parent.stderr).toContain('okteto.yml:3:12: deploy.context must stay inside');
    const absolute = await deployFrom({ 'okteto.yml': `deploy:\n  remote: true\n  context: ${outside}\n  commands: [ls]\n` });
    expect(absolute.code).toBe(1);
    expect(absolute.stderr).toContain(`okteto.yml:3:12: deploy.context must be a relative path inside the manifest's folder, got "${outside}"`);
    for (const context of ['link', 'link/sub']) {
      const linked = await deployFrom({ 'okteto.yml': `deploy:\n  remote: true\n  context: ${context}\n  commands: [ls]\n`, link: { symlink: outside } });
      expect(linked.code).toBe(1);
      expect(linked.stderr).toMatch(new RegExp(`okteto\\.yml: deploy\\.context "${context}" resolves \\(through a symlink\\) outside .*; the deploy context must be a folder inside the project folder`));
      expect(linked.stderr).not.toContain('packing');
    }
  });
});
