import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunnerImage, largeText, outputOf, requireEngine, runToEnd, RUNNER_IMAGE, type Engine } from './support/images.ts';
import { createSeededWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { workspaceRoot } from './support/workspace-fs.ts';

/** Remote deploys against a real dockerd with BuildKit; local (deprecated) runs through the agent. */
describe('deploy: remote runner on Docker BuildKit', () => {
  let docker: Engine;
  let server: TestServer;
  let forcedServer: TestServer;

  beforeAll(async () => {
    docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    const common = ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE];
    [server, forcedServer] = await Promise.all([
      startTestServer({ argv: [...common, '--admin-var', 'ADMIN_ONLY=from-admin', '--admin-var', 'BOTH=from-admin'] }),
      startTestServer({ argv: [...common, '--admin-var', 'OKTETO_FORCE_REMOTE=true'] }),
    ]);
    const whereAmI = "deploy:\n  - name: where\n    command: 'echo \"where: $(pwd)\"'\n";
    await Promise.all([
      createSeededWorkspace(server, 'live', {
        'okteto.yml': [
          'deploy:',
          '  remote: true',
          '  commands:',
          '    - name: greet',
          '      command: echo "hello $WHO"; echo "to stderr" >&2; sleep 2; echo "still here"',
          '    - name: variables',
          '      command: test "$ADMIN_ONLY" = from-admin && test "$BOTH" = from-caller && echo vars-ok',
        ].join('\n'),
      }),
      createSeededWorkspace(server, 'fails', {
        'okteto.yml': 'deploy:\n  remote: true\n  commands:\n    - echo one\n    - name: breaks\n      command: echo two; exit 3\n    - echo three\n',
      }),
      createSeededWorkspace(server, 'tree', {
        'okteto.yml': [
          'deploy:',
          '  remote: true',
          '  commands:',
          '    - name: inspect',
          '      command: find . | sort; echo "link -> $(readlink link)"; test -d empty && echo empty-dir-ok; test -x run.sh && echo exec-ok; test -x keep.txt || echo plain-ok',
          'destroy:',
          '  remote: true',
          '  commands: [find . | sort]',
        ].join('\n'),
        '.oktetoignore': ['# deploy context rules', 'secret.env', 'build', '!build/keep/important.txt', 'node_modules', '*.log', '[destroy]', 'keep.txt', '!top.log'].join('\n'),
        'keep.txt': 'kept\n',
        'secret.env': 'TOKEN=123\n',
        'top.log': 'log\n',
        'sub/deep.log': 'not matched by *.log at the root\n',
        'build/out.bin': 'binary\n',
        'build/keep/important.txt': 'brought back\n',
        'build/keep/other.txt': 'stays out\n',
        'node_modules/pkg/index.js': 'module.exports = 1;\n',
        'run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
        link: { symlink: 'keep.txt' },
        empty: { dir: true },
      }),
      createSeededWorkspace(server, 'large', {
        'okteto.yml': "deploy:\n  remote: true\n  commands:\n    - 'md5sum data/*.bin | sort -k 2; find . -type f | wc -l'\n",
        ...Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`data/part${i}.bin`, largeText(`seed-${i}`)])),
        ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`small/f${i}.txt`, `file ${i}\n`])),
      }),
      createSeededWorkspace(server, 'loud', {
        'okteto.yml': "deploy:\n  remote: false\n  commands:\n    - 'sleep 1; for i in 1 2 3 4 5 6; do head -c 2000000 /dev/zero | tr \"\\\\000\" x; echo; echo \"err $i\" >&2; done'\n",
      }),
      createSeededWorkspace(server, 'slow', {
        'okteto.yml': [
          'deploy:',
          '  remote: true',
          '  commands:',
          '    - name: waits',
          '      command: wget -q -O /dev/null "$MARKER/early"; echo started; sleep 4; wget -q -O /dev/null "$MARKER/late"; echo after',
          '    - echo never',
        ].join('\n'),
      }),
      createSeededWorkspace(server, 'where', { 'okteto.yml': whereAmI }),
      createSeededWorkspace(forcedServer, 'where', { 'okteto.yml': whereAmI }),
      createSeededWorkspace(server, 'local', {
        'okteto.yml': 'deploy:\n  remote: false\n  commands:\n    - echo "local in $(pwd) with $WHO"\n    - name: four\n      command: exit 4\n    - echo never\n',
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([server?.dispose(), forcedServer?.dispose()]);
  });

  it('runs the commands in the runner and streams their output while they run', async () => {
    const run = await runToEnd(server, 'live', 'deploy', { variables: { WHO: 'world', BOTH: 'from-caller' } });
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const { events } = run;
    expect(events.find((e) => e.type === 'plan')).toMatchObject({ mode: 'remote', image: RUNNER_IMAGE, commands: [{ index: 1, name: 'greet' }, { index: 2, name: 'variables' }] });
    expect(outputOf(events, 1)).toBe('hello world\nstill here\n');
    expect(outputOf(events, 1, 'stderr')).toBe('to stderr\n');
    expect(outputOf(events, 2)).toBe('vars-ok\n');
    // The first line arrived while the command was still sleeping, not with the build's end.
    const hello = events.find((e) => e.type === 'output' && e.text.startsWith('hello'));
    const done = events.find((e) => e.type === 'done');
    expect(done!.receivedAt - hello!.receivedAt).toBeGreaterThan(1500);
    const ends = events.filter((e) => e.type === 'command-end');
    expect(ends).toMatchObject([{ index: 1, exitCode: 0 }, { index: 2, exitCode: 0 }]);
    expect((ends[0] as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(1900);
    // Each command's events come between its start and its end.
    const order = events.filter((e) => e.type.startsWith('command') || e.type === 'output').map((e) => `${e.type}:${(e as { index: number }).index}`);
    expect(order.indexOf('command-start:1')).toBe(0);
    expect(order.lastIndexOf('output:1')).toBeLessThan(order.indexOf('command-end:1'));

    const history = (await (await server.api('/api/workspaces/live/deploys')).json()) as { deploys: Array<Record<string, unknown>> };
    expect(history.deploys[0]).toMatchObject({ id: run.id, kind: 'deploy', mode: 'remote', status: 'succeeded' });
    expect(history.deploys[0].durationMs).toBeGreaterThan(2000);
    expect(history.deploys[0].events).toBeUndefined();
    const stored = (await (await server.api(`/api/workspaces/live/deploys/${run.id}`)).json()) as { events: Array<{ type: string; text?: string }> };
    expect(stored.events.filter((e) => e.type === 'output').map((e) => e.text).join('')).toContain('hello world');
  });

  it('stops at the first failing command and reports it with its exit code', async () => {
    const run = await runToEnd(server, 'fails', 'deploy');
    expect(run.done).toMatchObject({ status: 'failed', failedCommand: { index: 2, name: 'breaks', exitCode: 3 }, message: 'command 2 (breaks) failed with exit code 3' });
    expect(run.events.filter((e) => e.type === 'command-start').map((e) => (e as { index: number }).index)).toEqual([1, 2]);
    expect(run.events.some((e) => e.type === 'output' && e.text.includes('three'))).toBe(false);
    expect(outputOf(run.events, 2)).toBe('two\n');
    const history = (await (await server.api('/api/workspaces/fails/deploys')).json()) as { deploys: Array<Record<string, unknown>> };
    expect(history.deploys[0]).toMatchObject({ status: 'failed', failedCommand: { index: 2, exitCode: 3 } });
  });

  it('sends the context filtered by .oktetoignore, with links, empty folders and modes intact', async () => {
    const run = await runToEnd(server, 'tree', 'deploy');
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const listing = outputOf(run.events, 1).split('\n');
    expect(listing).toEqual(expect.arrayContaining(['./keep.txt', './build/keep/important.txt', './sub/deep.log', './run.sh', './link', './empty', '.oktetoignore'.replace(/^/, './')]));
    for (const absent of ['./secret.env', './build/out.bin', './build/keep/other.txt', './node_modules', './top.log']) expect(listing).not.toContain(absent);
    expect(listing).toEqual(expect.arrayContaining(['link -> keep.txt', 'empty-dir-ok', 'exec-ok', 'plain-ok']));
    const context = run.events.find((e) => e.type === 'context');
    // okteto.yml, .oktetoignore, keep.txt, run.sh, sub/deep.log, build/keep/important.txt
    expect(context).toMatchObject({ files: 6 });
  });

  it('streams a context much larger than the SSH window from the agent intact', async () => {
    const run = await runToEnd(server, 'large', 'deploy');
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const expected = Array.from({ length: 4 }, (_, i) => `${createHash('md5').update(largeText(`seed-${i}`)).digest('hex')}  data/part${i}.bin`);
    expect(outputOf(run.events, 1)).toBe(`${expected.join('\n')}\n305\n`);
    expect(run.events.find((e) => e.type === 'context')).toMatchObject({ files: 305 });
  });

  it('applies the [destroy] section of .oktetoignore to destroys only', async () => {
    // A deploy first, so the history shows both kinds whatever ran before.
    expect((await runToEnd(server, 'tree', 'deploy')).done).toMatchObject({ status: 'succeeded' });
    const run = await runToEnd(server, 'tree', 'destroy');
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const listing = outputOf(run.events, 1).split('\n');
    expect(listing).not.toContain('./keep.txt');
    expect(listing).toContain('./top.log');
    expect(listing).toContain('./run.sh');
    expect(listing).not.toContain('./secret.env');
    const history = (await (await server.api('/api/workspaces/tree/deploys')).json()) as { deploys: Array<{ kind: string }> };
    expect(history.deploys.map((d) => d.kind).slice(0, 2)).toEqual(['destroy', 'deploy']);
  });

  it('runs remotely when OKTETO_FORCE_REMOTE is a caller variable, locally otherwise', async () => {
    const local = await runToEnd(server, 'where', 'deploy');
    expect(local.done.status).toBe('succeeded');
    expect(local.events.find((e) => e.type === 'plan')).toMatchObject({ mode: 'local' });
    expect(outputOf(local.events, 1)).toBe(`where: ${await workspaceRoot(server, 'where')}\n`);
    const forced = await runToEnd(server, 'where', 'deploy', { variables: { OKTETO_FORCE_REMOTE: 'true' } });
    expect(forced.events.find((e) => e.type === 'plan')).toMatchObject({ mode: 'remote' });
    expect(outputOf(forced.events, 1)).toBe('where: /okteto/src\n');
  });

  it('runs remotely when OKTETO_FORCE_REMOTE is an admin variable, unless the caller turns it off', async () => {
    const forced = await runToEnd(forcedServer, 'where', 'deploy');
    expect(forced.done.status).toBe('succeeded');
    expect(outputOf(forced.events, 1)).toBe('where: /okteto/src\n');
    expect(forced.events.find((e) => e.type === 'phase' && e.phase === 'packing')).toMatchObject({ message: expect.stringContaining('OKTETO_FORCE_REMOTE is set by the server administrator') });
    const off = await runToEnd(forcedServer, 'where', 'deploy', { remote: false });
    expect(off.events.find((e) => e.type === 'plan')).toMatchObject({ mode: 'local' });
    expect(outputOf(off.events, 1)).toBe(`where: ${await workspaceRoot(forcedServer, 'where')}\n`);
  });

  it('keeps both streams of a local command that prints far more than the SSH window', async () => {
    // (The command waits a second so the events socket is open before the 12 MB arrive: the
    // replay of a run keeps only its first MiB of output.)
    const run = await runToEnd(server, 'loud', 'deploy');
    expect(run.done).toMatchObject({ status: 'succeeded' });
    expect(outputOf(run.events, 1, 'stderr')).toBe('err 1\nerr 2\nerr 3\nerr 4\nerr 5\nerr 6\n');
    expect(outputOf(run.events, 1)).toBe(`${'x'.repeat(2_000_000)}\n`.repeat(6));
  });

  it('cancels a running deploy on request: the runner stops, and the run ends as cancelled', async () => {
    // The command calls this server before and after a pause: the first call shows it can
    // reach it, the second must never come once the run is cancelled.
    const hits: string[] = [];
    const marker = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((r) => marker.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(marker.address() as AddressInfo).port}`;
      const res = await server.api('/api/workspaces/slow/deploys', { method: 'POST', json: { variables: { MARKER: url } } });
      const { id } = (await res.json()) as { id: string };
      const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/workspaces/slow/deploys/${id}/events`, { headers: { authorization: `Bearer ${server.token}` } });
      const events: Array<{ type: string; text?: string; index?: number; status?: string; message?: string }> = [];
      let cancelled: Promise<Response> | undefined;
      const closed = new Promise<void>((resolve, reject) => {
        socket.on('message', (data) => {
          const event = JSON.parse(String(data)) as (typeof events)[number];
          events.push(event);
          if (event.type === 'output' && event.text === 'started\n') cancelled = server.api(`/api/workspaces/slow/deploys/${id}`, { method: 'DELETE' });
        });
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
      await closed;
      expect(cancelled).toBeDefined();
      const answer = await (cancelled as Promise<Response>);
      expect(answer.status).toBe(200);
      expect(await answer.json()).toMatchObject({ id, status: 'cancelled', message: 'the run was cancelled' });
      expect(events.at(-1)).toMatchObject({ type: 'done', status: 'cancelled', message: 'the run was cancelled' });
      expect(events.some((e) => e.type === 'command-end' || (e.type === 'command-start' && e.index === 2))).toBe(false);
      // Long enough for the command to have reached its second call, had it still been running.
      await new Promise((r) => setTimeout(r, 6000));
      expect(hits).toEqual(['/early']);

      const history = (await (await server.api('/api/workspaces/slow/deploys')).json()) as { deploys: Array<Record<string, unknown>> };
      expect(history.deploys[0]).toMatchObject({ id, status: 'cancelled', message: 'the run was cancelled' });
      // Cancelling an ended run changes nothing; an unknown run is 404.
      const again = await server.api(`/api/workspaces/slow/deploys/${id}`, { method: 'DELETE' });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ id, status: 'cancelled' });
      expect((await server.api('/api/workspaces/slow/deploys/no-such-run', { method: 'DELETE' })).status).toBe(404);
    } finally {
      marker.close();
    }
  });

  it('runs "remote: false" commands inside the workspace through the agent, with a deprecation warning', async () => {
    const run = await runToEnd(server, 'local', 'deploy', { variables: { WHO: 'vars' } });
    expect(run.events.find((e) => e.type === 'plan')).toMatchObject({ mode: 'local' });
    expect(run.events.some((e) => e.type === 'warning' && /local execution is deprecated/.test(e.message))).toBe(true);
    // In the workspace's root folder, as its own programs name it (whatever the driver).
    expect(outputOf(run.events, 1)).toBe(`local in ${await workspaceRoot(server, 'local')} with vars\n`);
    expect(run.done).toMatchObject({ status: 'failed', failedCommand: { index: 2, name: 'four', exitCode: 4 } });
    expect(run.events.some((e) => e.type === 'command-start' && e.index === 3)).toBe(false);
  });
});
