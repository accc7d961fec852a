import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import tar from 'tar-stream';
import type { DeployEvent } from '../../server/common/index.ts';

/**
 * Test images without a registry: a root filesystem made from Debian's busybox-static, imported
 * into the engine (`POST /images/create?fromSrc=-`, what `docker import` does).
 */
export const RUNNER_IMAGE = 'wharf-test/runner';

export type Engine = { name: 'docker' | 'podman'; endpoint: string; socketPath: string };

/** The engines the test set-up started; a missing variable fails the test run loudly. */
export function requireEngine(name: 'docker' | 'podman'): Engine {
  const variable = name === 'docker' ? 'WHARF_TEST_DOCKER_HOST' : 'WHARF_TEST_PODMAN_HOST';
  const endpoint = process.env[variable];
  if (!endpoint) throw new Error(`${variable} is not set: run the tests through scripts/test.sh (it starts ${name})`);
  if (!endpoint.startsWith('unix://')) throw new Error(`${variable} must be a unix:// socket, got ${endpoint}`);
  return { name, endpoint, socketPath: endpoint.slice('unix://'.length) };
}

export type EngineResponse = { status: number; body: Buffer; headers: Record<string, string | string[] | undefined> };

export function engineRequest(engine: Engine, method: string, path: string, body?: Buffer | NodeJS.ReadableStream, headers: Record<string, string> = {}): Promise<EngineResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: engine.socketPath, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

async function busyboxRootfs(): Promise<Buffer> {
  const busybox = await readFile('/bin/busybox').catch(() => {
    throw new Error('/bin/busybox is missing: install the busybox-static package (apt-get install busybox-static)');
  });
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const mtime = new Date(0);
  for (const dir of ['bin', 'etc', 'tmp', 'root', 'usr', 'usr/bin']) pack.entry({ name: dir, type: 'directory', mode: dir === 'tmp' ? 0o1777 : 0o755, mtime });
  pack.entry({ name: 'bin/busybox', mode: 0o755, mtime }, busybox);
  for (const applet of applets) pack.entry({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime });
  pack.entry({ name: 'usr/bin/env', type: 'symlink', linkname: '../../bin/busybox', mode: 0o777, mtime });
  pack.entry({ name: 'etc/passwd', mode: 0o644, mtime }, 'root:x:0:0:root:/root:/bin/sh\n');
  pack.entry({ name: 'etc/group', mode: 0o644, mtime }, 'root:x:0:\n');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function imageExists(engine: Engine, name: string): Promise<boolean> {
  const res = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`);
  return res.status === 200;
}

/** Imports the busybox runner image into the engine once (idempotent). */
export async function ensureRunnerImage(engine: Engine, name = RUNNER_IMAGE): Promise<string> {
  if (await imageExists(engine, name)) return name;
  const [repo, tag = 'latest'] = name.split(':');
  const res = await engineRequest(
    engine,
    'POST',
    `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`,
    await busyboxRootfs(),
    { 'content-type': 'application/x-tar' },
  );
  if (res.status !== 200) throw new Error(`${engine.name}: image import failed: ${res.status} ${res.body.toString()}`);
  if (!(await imageExists(engine, name))) throw new Error(`${engine.name}: imported image ${name} not found: ${res.body.toString()}`);
  return name;
}

/* Deploy test helpers: folders to seed workspaces from, and following a run's events. */

export type SeedEntry = string | { content: string; mode?: number } | { symlink: string } | { dir: true };

/** A folder with these files (parents made as needed): `root`, or a new temporary one the caller removes. */
export async function makeFolder(files: Record<string, SeedEntry>, root?: string): Promise<string> {
  const { mkdtemp, mkdir, writeFile, symlink, chmod } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { dirname, join } = await import('node:path');
  root ??= await mkdtemp(join(tmpdir(), 'wharf-deploy-seed-'));
  for (const [path, entry] of Object.entries(files)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof entry === 'string') await writeFile(full, entry);
    else if ('dir' in entry) await mkdir(full, { recursive: true });
    else if ('symlink' in entry) await symlink(entry.symlink, full);
    else {
      await writeFile(full, entry.content);
      if (entry.mode !== undefined) await chmod(full, entry.mode);
    }
  }
  return root;
}

/** About 4 MiB of text that does not repeat (far larger than an SSH channel's window), the same for the same `seed`. */
export function largeText(seed: string): string {
  let out = '';
  let state = createHash('sha256').update(seed).digest('hex');
  while (out.length < 4 * 1024 * 1024) {
    state = createHash('sha256').update(state).digest('hex');
    out += state;
  }
  return out;
}

export type ReceivedEvent = DeployEvent & { receivedAt: number };

/** Follows a run's events websocket until the server closes it. */
export async function followRun(server: { url: string; token: string }, workspace: string, id: string): Promise<{ events: ReceivedEvent[]; closeCode: number }> {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/workspaces/${workspace}/deploys/${id}/events`, { headers: { authorization: `Bearer ${server.token}` } });
  const events: ReceivedEvent[] = [];
  socket.on('message', (data) => events.push({ ...(JSON.parse(String(data)) as DeployEvent), receivedAt: Date.now() }));
  const closeCode = await new Promise<number>((resolve, reject) => {
    socket.on('close', (code) => resolve(code));
    socket.on('error', reject);
  });
  return { events, closeCode };
}

export type FinishedRun = { id: string; events: ReceivedEvent[]; done: Extract<DeployEvent, { type: 'done' }>; requestedAt: number };

/** Starts a deploy (or destroy) of a workspace and waits for its `done` event. */
export async function runToEnd(
  server: { url: string; token: string; api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response> },
  workspace: string,
  kind: 'deploy' | 'destroy',
  body: Record<string, unknown> = {},
): Promise<FinishedRun> {
  const requestedAt = Date.now();
  const res = await server.api(`/api/workspaces/${workspace}/${kind === 'deploy' ? 'deploys' : 'destroys'}`, { method: 'POST', json: body });
  if (res.status !== 202) throw new Error(`start ${kind}: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const { events } = await followRun(server, workspace, id);
  const done = events.find((e) => e.type === 'done');
  if (!done || done.type !== 'done') throw new Error(`run ${id} ended without a done event: ${JSON.stringify(events)}`);
  return { id, events, done, requestedAt };
}

/** Everything one command printed on one stream. */
export function outputOf(events: DeployEvent[], index: number, stream: 'stdout' | 'stderr' = 'stdout'): string {
  return events.map((e) => (e.type === 'output' && e.index === index && e.stream === stream ? e.text : '')).join('');
}
