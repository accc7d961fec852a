import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRequest, ensureRunnerImage, makeFolder, outputOf, requireEngine, runToEnd, RUNNER_IMAGE, type Engine } from './support/images.ts';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** Streams an engine response once and reports which of the needles occur in it (across chunk edges). */
function scanResponse(engine: Engine, path: string, needles: string[]): Promise<{ found: Set<string> }> {
  const found = new Set<string>();
  const keep = Math.max(...needles.map((n) => n.length));
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: engine.socketPath, method: 'GET', path }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode}`));
      let tail = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        const window = Buffer.concat([tail, chunk]);
        for (const n of needles) if (window.includes(n)) found.add(n);
        tail = window.subarray(Math.max(0, window.length - keep));
      });
      res.on('end', () => resolve({ found }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Variables reach the commands, but nothing the engine keeps contains them. */
describe('deploy: secrets stay out of images and the build cache', () => {
  let docker: Engine;
  let server: TestServer;
  let kubeDir: string;
  let seed: string;
  const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
  const adminSecret = `adm1n-${randomBytes(12).toString('hex')}`;
  const kubeconfig = `apiVersion: v1\nkind: Config\n# kube-${randomBytes(12).toString('hex')}\nclusters: []\n`;
  const kubeMarker = kubeconfig.split('\n')[2].slice(2);
  const startedAt = Math.floor(Date.now() / 1000) - 2;
  const marker = `context-marker-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    docker = requireEngine('docker');
    await ensureRunnerImage(docker);
    kubeDir = await mkdtemp(join(tmpdir(), 'wharf-kube-'));
    await writeFile(join(kubeDir, 'config'), kubeconfig, { mode: 0o600 });
    server = await startTestServer({
      argv: ['--builder', docker.endpoint, '--runner-image', RUNNER_IMAGE, '--kubeconfig', join(kubeDir, 'config'), '--admin-var', `ADMIN_TOKEN=${adminSecret}`],
    });
    seed = await makeFolder({
      'okteto.yml': [
        'deploy:',
        '  remote: true',
        '  commands:',
        '    - name: digest',
        "      command: 'printf %s \"$MY_SECRET\" | md5sum; printf %s \"$ADMIN_TOKEN\" | md5sum; md5sum < \"$KUBECONFIG\"; echo \"kubeconfig at $KUBECONFIG\"'",
        '    - name: callback',
        // Not in the commands' environment; a command that digs it out of the runner's finds it spent.
        '      command: |',
        '        echo "env=${WHARF_SECRETS_URL:-none} ${WHARF_NONCE:-none}"',
        "        url=$(tr '\\000' '\\n' < /proc/$PPID/environ | sed -n 's/^WHARF_SECRETS_URL=//p')",
        '        echo "url=$url"',
        '        if wget -q -O /dev/null "$url" 2>/dev/null; then echo refetched; else echo refused; fi',
      ].join('\n'),
      // Not secret: proves the search below does see what the build left in the engine.
      'marker.txt': `${marker}\n`,
    });
    await createWorkspace(server, 'secrets', { seed });
  });

  afterAll(async () => {
    await server?.dispose();
    await rm(kubeDir, { recursive: true, force: true });
    await rm(seed, { recursive: true, force: true });
  });

  it('hands variables and the kubeconfig to the commands at run time only', async () => {
    const run = await runToEnd(server, 'secrets', 'deploy', { variables: { MY_SECRET: secret } });
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const out = outputOf(run.events, 1).split('\n');
    expect(out[0]).toMatch(new RegExp(`^${md5(secret)}\\b`));
    expect(out[1]).toMatch(new RegExp(`^${md5(adminSecret)}\\b`));
    expect(out[2]).toMatch(new RegExp(`^${md5(kubeconfig)}\\b`));
    expect(out[3]).toMatch(/^kubeconfig at \/tmp\/.+\/kubeconfig$/);

    // The commands do not get the callback URL or the output nonce; dug out, the URL is spent.
    const callback = outputOf(run.events, 2).split('\n');
    expect(callback[0]).toBe('env=none none');
    expect(callback[1]).toMatch(/^url=http:\/\//);
    expect(callback[2]).toBe('refused');

    const needles = [secret, adminSecret, kubeMarker];
    // Images made since the test started (wharf removes the run's own image after the run; its
    // layers stay in the build cache, searched below on disk).
    const images = JSON.parse((await engineRequest(docker, 'GET', '/images/json?all=1')).body.toString()) as Array<{ Id: string; Created: number }>;
    for (const image of images.filter((i) => i.Created >= startedAt)) {
      const history = (await engineRequest(docker, 'GET', `/images/${image.Id}/history`)).body.toString();
      const config = (await engineRequest(docker, 'GET', `/images/${image.Id}/json`)).body.toString();
      for (const n of needles) {
        expect(history).not.toContain(n);
        expect(config).not.toContain(n);
      }
      // Every layer of the image, as `docker save` exports it.
      expect([...(await scanResponse(docker, `/images/${image.Id}/get`, needles)).found]).toEqual([]);
    }
    // The build cache records, and every file the engine keeps on disk (layers, BuildKit's cache).
    const df = (await engineRequest(docker, 'GET', '/system/df')).body.toString();
    for (const n of needles) expect(df).not.toContain(n);
    const info = JSON.parse((await engineRequest(docker, 'GET', '/info')).body.toString()) as { DockerRootDir: string };
    expect(existsSync(info.DockerRootDir)).toBe(true);
    // One pass over the data root: which of the values (and the marker) occur in any file.
    const matched = await new Promise<Set<string>>((resolve, reject) => {
      execFile('grep', ['-rhoaF', ...[...needles, marker].flatMap((p) => ['-e', p]), info.DockerRootDir], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
        if (err && err.code !== 1) return reject(err);
        resolve(new Set(stdout.split('\n').filter(Boolean)));
      });
    });
    for (const n of needles) expect(matched.has(n)).toBe(false);
    // The same search does find the context the build copied in.
    expect(matched.has(marker)).toBe(true);
  });

  it('gives each runner token exactly one use', async () => {
    const run = await runToEnd(server, 'secrets', 'deploy', { variables: { MY_SECRET: secret } });
    expect(run.done).toMatchObject({ status: 'succeeded' });
    const runnerUrl = /^url=(.*)$/m.exec(outputOf(run.events, 2))?.[1];
    expect(runnerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/deploy-secrets\/[A-Za-z0-9_-]{43}$/);
    const reused = await fetch(runnerUrl as string);
    expect(reused.status).toBe(401);
    expect(await reused.text()).not.toContain(secret);
  });
});
