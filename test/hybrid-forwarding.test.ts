import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/common/index.ts';
import { itProcessOnly } from './support/driver-matrix.ts';
import { execOver, sshOverTunnel, startTestServer, type TestServer } from './support/server.ts';

// Hybrid mode's tunnels through the agent's SSH server (direct-tcpip for forward rules,
// tcpip-forward for reverse rules), reached as the helper reaches them: a session key with a
// grant, through the server's websocket tunnel. The process driver's workspaces share the host's
// network, so the workspace's side of each tunnel is on 127.0.0.1 here.

const WS = 'hybrid';
let server: TestServer;
const closers: Array<() => unknown> = [];

/** A TCP server on 127.0.0.1 (an ephemeral port), closed after the file. */
async function listenLocal(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const tcp = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    onSocket(socket);
  });
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  closers.push(() => tcp.close());
  return { server: tcp, port: (tcp.address() as AddressInfo).port };
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const { server: tcp, port } = await listenLocal(() => {});
  await new Promise((r) => tcp.close(r));
  return port;
}

/** Answers each connection, once its input has ended, with the SHA-256 of everything it sent: a half-close must work. */
function hashOnEnd(socket: Socket): void {
  const hash = createHash('sha256');
  socket.on('data', (chunk) => hash.update(chunk));
  socket.on('end', () => socket.end(`sha256:${hash.digest('hex')}`));
}

async function registerKey(grant: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown>; privateKey: string }> {
  const key = generateKeyPair('hybrid-test');
  const res = await server.api(`/api/workspaces/${WS}/session-keys`, { method: 'POST', json: { publicKey: key.publicKey, ttlSeconds: 600, ...grant } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, privateKey: key.privateKey };
}

async function connectWith(grant: Record<string, unknown>): Promise<ssh2.Client> {
  const reg = await registerKey(grant);
  expect(reg.status, JSON.stringify(reg.body)).toBe(201);
  const client = await sshOverTunnel(server, WS, reg.privateKey);
  client.on('error', () => {});
  closers.push(() => client.end());
  return client;
}

function forwardOut(client: ssh2.Client, port: number): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, channel) => (err ? reject(err) : resolve(channel))));
}

function forwardIn(client: ssh2.Client, port: number): Promise<number> {
  return new Promise((resolve, reject) => client.forwardIn('127.0.0.1', port, (err, bound) => (err ? reject(err) : resolve(bound || port))));
}

/** Sends `payload`, half-closes, and reads the whole answer. */
async function sendAndRead(stream: NodeJS.ReadWriteStream & { on(event: 'error', cb: (err: Error) => void): unknown }, payload: Buffer): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  stream.end(payload);
  await ended;
  return Buffer.concat(chunks).toString();
}

const digest = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

beforeAll(async () => {
  server = await startTestServer({ workspaces: [WS] });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await server?.dispose();
});

// TODO(driver matrix): the tunnel tests below reach the workspace's side from this machine's
// 127.0.0.1, which only the process driver's workspaces share; on docker their listeners and
// callers must run in the workspace (over SSH) instead. Until then they are process-only.
describe('hybrid tunnels through the agent', () => {
  it('refuses a session key grant that is not host:port targets and port numbers', async () => {
    for (const [grant, message] of [
      [{ forward: ['*'] }, /"forward": .*must be "host:port"/],
      [{ forward: ['Not_A_Service:80'] }, /not a valid DNS label/],
      [{ forward: ['db:70000'] }, /out of range/],
      [{ forward: 'db:5432' }, /"forward" must be a list/],
      [{ reverse: [0] }, /"reverse": 0 is not a port number/],
      [{ reverse: ['8080'] }, /"reverse": "8080" is not a port number/],
    ] as const) {
      const reg = await registerKey(grant);
      expect(reg.status, JSON.stringify(grant)).toBe(400);
      expect(String((reg.body.error as { message?: string })?.message ?? JSON.stringify(reg.body))).toMatch(message);
    }
    const good = await registerKey({ forward: ['db:5432', 'localhost:3000'], reverse: [8080] });
    expect(good.status).toBe(201);
    expect(good.body).toMatchObject({ forward: ['db:5432', 'localhost:3000'], reverse: [8080] });
  });

  itProcessOnly('forwards a connection to a granted target inside the workspace, 4 MB intact and half-closed', async () => {
    const target = await listenLocal(hashOnEnd);
    const client = await connectWith({ forward: [`127.0.0.1:${target.port}`] });
    const payload = randomBytes(4 * 1024 * 1024);
    expect(await sendAndRead(await forwardOut(client, target.port), payload)).toBe(digest(payload));
  });

  itProcessOnly('refuses a forward to any target the key was not granted', async () => {
    const granted = await listenLocal(hashOnEnd);
    const other = await listenLocal(hashOnEnd);
    const client = await connectWith({ forward: [`127.0.0.1:${granted.port}`] });
    await expect(forwardOut(client, other.port)).rejects.toThrow(/channel open failure/i);
    // A key with no grant at all may not forward anywhere.
    const none = await connectWith({});
    await expect(forwardOut(none, granted.port)).rejects.toThrow(/channel open failure/i);
  });

  itProcessOnly('listens on a granted reverse port in the workspace and brings each connection to the helper', async () => {
    const port = await freePort();
    const client = await connectWith({ reverse: [port] });
    client.on('tcp connection', (_info, accept) => {
      const channel = accept();
      channel.write('hello\n'); // greets at once, then answers once the caller's input ends
      hashOnEnd(channel as unknown as Socket);
    });
    expect(await forwardIn(client, port)).toBe(port);
    // A process in the workspace calls the port, as it would call the service itself.
    const fromWorkspace = await execOver(client, `exec 3<>/dev/tcp/127.0.0.1/${port}; head -n 1 <&3`);
    expect(fromWorkspace).toMatchObject({ code: 0, stdout: 'hello\n' });
    const payload = randomBytes(4 * 1024 * 1024);
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    await once(socket, 'connect');
    expect(await sendAndRead(socket, payload)).toBe(`hello\n${digest(payload)}`);
  });

  itProcessOnly('refuses a reverse port the key was not granted', async () => {
    const [granted, other] = [await freePort(), await freePort()];
    const client = await connectWith({ reverse: [granted] });
    await expect(forwardIn(client, other)).rejects.toThrow(/unable to bind|refused|fail/i);
    expect(await canConnect(other)).toBe(false);
  });

  itProcessOnly('closes the reverse ports of a session when it ends, and survives a reset connection', async () => {
    const port = await freePort();
    const client = await connectWith({ reverse: [port] });
    client.on('tcp connection', (_info, accept) => {
      const channel = accept();
      channel.on('error', () => {});
      channel.destroy(); // the helper's side resets at once
    });
    await forwardIn(client, port);
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    await once(socket, 'close');
    client.end();
    await waitUntil(`port ${port} to close with its session`, async () => !(await canConnect(port)));
    // The agent is still there for the next session.
    const next = await connectWith({});
    expect((await execOver(next, 'echo alive')).stdout).toBe('alive\n');
  });

  it('lists live sessions with their grants and open connections, and ends one on request', async () => {
    const reg = await registerKey({ label: 'wharf up api', forward: ['db:5432'], reverse: [9000] });
    expect(reg.status).toBe(201);
    const client = await sshOverTunnel(server, WS, reg.privateKey);
    client.on('error', () => {});
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const listed = await (await server.api(`/api/workspaces/${WS}/session-keys`)).json() as { keys: Array<Record<string, unknown>> };
    expect(listed.keys.find((k) => k.id === reg.body.id)).toMatchObject({ label: 'wharf up api', forward: ['db:5432'], reverse: [9000], connections: 1, addedAt: expect.stringMatching(/^\d{4}-/) });
    expect((await server.api(`/api/workspaces/${WS}/session-keys/${String(reg.body.id)}`, { method: 'DELETE' })).status).toBe(204);
    await closed;
    const after = await (await server.api(`/api/workspaces/${WS}/session-keys`)).json() as { keys: Array<Record<string, unknown>> };
    expect(after.keys.some((k) => k.id === reg.body.id)).toBe(false);
  });
});

