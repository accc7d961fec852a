import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import WebSocket, { createWebSocketStream } from 'ws';
import { loadServerConfig } from '../../server/config/index.ts';
import { startServer, type RunningServer } from '../../server/main.ts';
import { generateKeyPair } from '../../server/workspace/index.ts';
import { driverArgs } from './driver-matrix.ts';
import { makeFolder, type SeedEntry } from './images.ts';

export type TestServer = RunningServer & {
  dataDir: string;
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  restart(options?: { keepAgents?: boolean }): Promise<TestServer>;
  /** A new empty folder under the system's temp dir (a user's HOME, say), removed by `dispose`. */
  tempDir(prefix: string): Promise<string>;
  dispose(): Promise<void>;
};

export type TestServerOptions = {
  sandbox?: 'none' | 'bwrap' | 'auto';
  argv?: string[];
  /** An existing data dir (a replica, or a restart); it is left in place by `dispose`. */
  dataDir?: string;
  /** Workspaces to create before the server is handed over (not again on `restart`). */
  workspaces?: string[];
};

/**
 * Starts a real control server on 127.0.0.1 with a fresh data dir, on the driver of the run
 * (WHARF_TEST_DRIVER, see driver-matrix.ts; `restart` keeps it). Flags in `options.argv` come last
 * and so win over the driver's.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-test-')));
  return startOn(dataDir, options, { dataDir: options.dataDir === undefined ? dataDir : undefined, tempDirs: [] });
}

/** What `dispose` removes; a restarted server takes it over from the one it replaces. */
type Owned = { dataDir: string | undefined; tempDirs: string[] };

async function startOn(dataDir: string, options: TestServerOptions, owned: Owned): Promise<TestServer> {
  const config = loadServerConfig({
    // Tests seed workspaces from folders they make under the system's temp dir.
    argv: ['--data-dir', dataDir, '--port', '0', '--host', '127.0.0.1', '--sandbox', options.sandbox ?? 'none', '--log-level', 'warn', '--seed-root', tmpdir(), ...driverArgs(), ...(options.argv ?? [])],
    env: {},
  });
  const running = await startServer(config);
  const server: TestServer = {
    ...running,
    dataDir,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${running.token}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${running.url}${path}`, { ...init, headers, body });
    },
    async restart(restartOptions = {}) {
      await running.close({ keepAgents: restartOptions.keepAgents });
      return startOn(dataDir, { ...options, workspaces: [] }, owned);
    },
    async tempDir(prefix) {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      owned.tempDirs.push(dir);
      return dir;
    },
    async dispose() {
      // A container driver's workspaces (container, volume) outlive the server and its data dir:
      // removed through it first, or every run would leave them on the engine (its disk fills).
      const listed = await server.api('/api/workspaces').then((r) => (r.ok ? (r.json() as Promise<{ workspaces: Array<{ id: string; driver: string }> }>) : { workspaces: [] })).catch(() => ({ workspaces: [] }));
      for (const ws of listed.workspaces) if (ws.driver !== 'process') await server.api(`/api/workspaces/${ws.id}`, { method: 'DELETE' }).catch(() => {});
      await running.close();
      for (const dir of [owned.dataDir, ...owned.tempDirs]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const name of options.workspaces ?? []) await createWorkspace(server, name);
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}

/**
 * Where a workspace of the process driver keeps its files on this machine. Only for tests about
 * the process driver (see driver-matrix.ts); the others reach files through the workspace itself
 * (workspace-fs.ts).
 */
export function filesDirOf(server: TestServer, workspace: string): string {
  return join(server.dataDir, 'workspaces', workspace, 'files');
}

export async function createWorkspace(server: TestServer, name: string, extra: Record<string, unknown> = {}) {
  const res = await server.api('/api/workspaces', { method: 'POST', json: { name, ...extra } });
  if (res.status !== 201) throw new Error(`create workspace: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; hostKey: string };
}

/** Workspace `name` on `server`, seeded from a folder of `files` that goes with the server (`dispose`). */
export async function createSeededWorkspace(server: TestServer, name: string, files: Record<string, SeedEntry>): Promise<void> {
  const folder = await makeFolder(files, await server.tempDir('wharf-deploy-seed-'));
  await createWorkspace(server, name, { seed: folder });
}

/** An SSH client to a workspace through the server's websocket tunnel, with a registered session key. */
export async function sshThroughServer(server: TestServer, workspaceId: string): Promise<ssh2.Client> {
  const key = generateKeyPair('test-session');
  const reg = await server.api(`/api/workspaces/${workspaceId}/session-keys`, { method: 'POST', json: { publicKey: key.publicKey, ttlSeconds: 600 } });
  if (reg.status !== 201) throw new Error(`register key: ${reg.status} ${await reg.text()}`);
  return sshOverTunnel(server, workspaceId, key.privateKey);
}

/** An SSH client through the websocket tunnel, authenticating with `privateKey` (registered or not). */
export async function sshOverTunnel(server: TestServer, workspaceId: string, privateKey: string): Promise<ssh2.Client> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/${workspaceId}/ssh`, { headers: { authorization: `Bearer ${server.token}` } });
  // The stream must exist before 'open': bytes that arrive with the 101 answer are emitted on the
  // next tick, before code awaiting 'open' could listen, and would be lost.
  const stream = createWebSocketStream(ws);
  stream.on('error', () => {}); // reported by the 'error' below or by the SSH client
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', (err) => {
      client.on('error', () => {}); // the tunnel's closing may report once more
      ws.terminate();
      reject(err);
    });
    client.connect({ sock: stream, username: 'wharf', privateKey });
  });
  return client;
}

export function execOver(client: ssh2.Client, command: string, options: ssh2.ExecOptions = {}): Promise<{ code: number | null; signal?: string; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, options, (err, channel) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let signal: string | undefined;
      channel.on('data', (d: Buffer) => (stdout += d));
      channel.stderr.on('data', (d: Buffer) => (stderr += d));
      channel.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s;
      });
      channel.on('close', () => resolve({ code, signal, stdout, stderr }));
      channel.end();
    });
  });
}
