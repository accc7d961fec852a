import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeUploadHeader, UPLOAD_CONTENT_TYPE } from '../server/okteto/index.ts';
import { ensureRunnerImage, followRun, requireEngine, runToEnd, RUNNER_IMAGE } from './support/images.ts';
import { createSeededWorkspace, startTestServer, type TestServer } from './support/server.ts';

/** What a user sees when a deploy cannot run: plain messages in the run, clear HTTP errors. */
describe('deploy: errors before any command runs', () => {
  let server: TestServer;
  let noBuilder: TestServer;

  beforeAll(async () => {
    const docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    [server, noBuilder] = await Promise.all([
      startTestServer({ argv: ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE] }),
      startTestServer({ argv: ['--builder', 'unix:///tmp/wharf-no-such-builder.sock', '--runner-image', RUNNER_IMAGE] }),
    ]);
    await Promise.all([
      createSeededWorkspace(server, 'noimage', { 'okteto.yml': 'deploy:\n  image: wharf-test/does-not-exist\n  commands: [echo hi]\n' }),
      createSeededWorkspace(server, 'nomanifest', { 'README.md': 'nothing to deploy\n' }),
      createSeededWorkspace(server, 'excluded', { 'okteto.yml': 'deploy:\n  remote: true\n  commands: [echo hi]\n', '.oktetoignore': '*.yml\n' }),
      createSeededWorkspace(server, 'broken', { 'okteto.yml': 'deploy:\n  remote: true\n  commands:\n    - echo ok\n    - [not, a, command]\n' }),
      createSeededWorkspace(server, 'nodestroy', { 'okteto.yml': 'deploy: [echo hi]\n' }),
      createSeededWorkspace(server, 'slow', { 'okteto.yml': 'deploy:\n  remote: false\n  commands: [sleep 1]\n' }),
      createSeededWorkspace(noBuilder, 'unreachable', { 'okteto.yml': 'deploy:\n  remote: true\n  commands: [echo hi]\n' }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.dispose(), noBuilder?.dispose()]);
  });

  it('says the builder cannot be reached', async () => {
    const run = await runToEnd(noBuilder, 'unreachable', 'deploy');
    expect(run.done).toMatchObject({
      status: 'error',
      message: 'cannot reach the builder at unix:///tmp/wharf-no-such-builder.sock: the socket does not exist',
    });
    expect(run.events.some((e) => e.type === 'command-start')).toBe(false);
  });

  it('says the runner image is missing', async () => {
    const run = await runToEnd(server, 'noimage', 'deploy');
    expect(run.done.status).toBe('error');
    expect(run.done.message).toMatch(/^the runner image "wharf-test\/does-not-exist" is not available to the builder: it is not among the builder's images and it could not be pulled/);
  });

  it('says the builder rejected a garbled context', async () => {
    const body = Buffer.concat([encodeUploadHeader({ file: 'okteto.yml', manifest: 'deploy:\n  - echo hi\n' }), Buffer.alloc(4096, 0x41)]);
    const res = await server.api('/api/deploys?kind=deploy', { method: 'POST', body, headers: { 'content-type': UPLOAD_CONTENT_TYPE } });
    expect(res.status).toBe(200);
    const events = (await res.text()).trim().split('\n').map((line) => JSON.parse(line) as { type: string; status?: string; message?: string });
    expect(events.at(-1)).toMatchObject({ type: 'done', status: 'error', message: expect.stringMatching(/^the builder rejected the context: .*invalid tar header/) });
    expect(events.some((e) => e.type === 'command-start')).toBe(false);
    // Not an upload at all: a plain 400.
    const plain = await server.api('/api/deploys?kind=deploy', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(plain.status).toBe(400);
    const badKind = await server.api('/api/deploys?kind=build', { method: 'POST', body, headers: { 'content-type': UPLOAD_CONTENT_TYPE } });
    expect(badKind.status).toBe(400);
  });

  it('says there is no manifest, or that it has no destroy commands', async () => {
    expect((await runToEnd(server, 'nomanifest', 'deploy')).done).toMatchObject({ status: 'error', message: 'there is no okteto.yml (or okteto.yaml) at the root of the workspace' });
    expect((await runToEnd(server, 'nomanifest', 'deploy', { file: 'deploy/okteto.yml' })).done).toMatchObject({ message: 'the manifest deploy/okteto.yml does not exist in the workspace' });
    expect((await runToEnd(server, 'nodestroy', 'destroy')).done).toMatchObject({ status: 'error', message: 'okteto.yml has no "destroy" section: there is nothing to destroy' });
  });

  it('refuses a manifest excluded by .oktetoignore', async () => {
    const run = await runToEnd(server, 'excluded', 'deploy');
    expect(run.done).toMatchObject({ status: 'error', message: 'okteto.yml is excluded by .oktetoignore: the deploy context must contain its manifest (remove the rule, or add "!okteto.yml")' });
  });

  it('points at the line and column of a wrong manifest', async () => {
    const run = await runToEnd(server, 'broken', 'deploy');
    expect(run.done).toMatchObject({ status: 'error', message: 'okteto.yml:5:7: deploy command 2 must be a command: text, or a mapping {name, command}; got a list' });
    const history = (await (await server.api('/api/workspaces/broken/deploys')).json()) as { deploys: Array<Record<string, unknown>> };
    expect(history.deploys[0]).toMatchObject({ status: 'error', message: expect.stringContaining('okteto.yml:5:7') });
  });

  it('answers bad requests, unknown runs and a second concurrent run with clear HTTP errors', async () => {
    const bad = await server.api('/api/workspaces/slow/deploys', { method: 'POST', json: { variables: { 'NOT-A-NAME': 'x' } } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/variable name "NOT-A-NAME" is not valid/);
    expect((await server.api('/api/workspaces/slow/deploys', { method: 'POST', json: { file: '../../etc/passwd' } })).status).toBe(400);
    expect((await server.api('/api/workspaces/slow/deploys', { method: 'POST', body: '[1,2', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await server.api('/api/workspaces/nope/deploys', { method: 'POST', json: {} })).status).toBe(404);
    expect((await server.api('/api/workspaces/slow/deploys/unknown-run')).status).toBe(404);

    const first = await server.api('/api/workspaces/slow/deploys', { method: 'POST' });
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const second = await server.api('/api/workspaces/slow/destroys', { method: 'POST', json: {} });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { details: { id: string } } }).error.details.id).toBe(id);
    const { events, closeCode } = await followRun(server, 'slow', id);
    expect(closeCode).toBe(1000);
    expect(events.at(-1), JSON.stringify(events)).toMatchObject({ type: 'done', status: 'succeeded' });
    // Replay after the end: the same log, then the socket closes.
    const again = await followRun(server, 'slow', id);
    expect(again.events.map((e) => e.type)).toEqual(events.map((e) => e.type));
    const missing = await followRun(server, 'slow', 'unknown-run').catch((err: Error) => err);
    expect(missing).toMatchObject({ closeCode: 4404 });
  });

  it('refuses the runner callback without its token, with a used one, and without credentials', async () => {
    const anonymous = await fetch(`${server.url}/api/deploy-secrets/${'a'.repeat(43)}`);
    expect(anonymous.status).toBe(401);
    const admin = await server.api(`/api/deploy-secrets/${'a'.repeat(43)}`);
    expect(admin.status).toBe(401);
    expect((await fetch(`${server.url}/api/deploy-settings`)).status).toBe(401);
    expect(await (await server.api('/api/deploy-settings')).json()).toEqual({ forceRemote: false, adminVariables: {} });
  });
});
