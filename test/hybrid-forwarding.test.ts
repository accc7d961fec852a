import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/common/index.ts';
import { execOver, sshOverTunnel, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';
import { shq, WorkspaceFs } from './support/workspace-fs.ts';

// Hybrid mode's tunnels through the agent's SSH server (direct-tcpip for forward rules,
// tcpip-forward for reverse rules), reached as the helper reaches them: a session key with a
// grant, through the server's websocket tunnel. The workspace's side of each tunnel (a listener,
// a caller) is a program in the workspace, on its own 127.0.0.1.

const WS = 'hybrid';
let server: TestServer;
const closers: Array<() => unknown> = [];

/*
 * The workspace's side of each tunnel runs in the workspace (programs over SSH, with the node this
 * machine's tests start there: process.execPath, see docs/testing.md), so the tests are the same
 * on the process driver (the host's loopback) and the docker driver (the container's own).
 */
const NODE = shq(process.execPath);

/** Answers each connection, once its input has ended, with the SHA-256 of everything it sent (a half-close must work); prints its port; ends with its stdin. */
const HASH_SERVER = `const net = require('net'), crypto = require('crypto');
const s = net.createServer({ allowHalfOpen: true }, (c) => {
  const h = crypto.createHash('sha256');
  c.on('error', () => {});
  c.on('data', (d) => h.update(d));
  c.on('end', () => c.end('sha256:' + h.digest('hex')));
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));
process.stdin.on('end', () => process.exit(0)).resume();`;

/** Connects to 127.0.0.1:argv[1], sends its stdin (then half-closes) and prints everything it is sent. */
const CALLER = `const s = require('net').connect({ port: Number(process.argv[1]), host: '127.0.0.1', allowHalfOpen: true });
s.on('error', (e) => { console.error(e.message); process.exit(3); });
process.stdin.pipe(s);
s.pipe(process.stdout);`;

/** Prints a port nobody listens on in the workspace right now. */
const FREE_PORT = `const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });`;

let workspace: WorkspaceFs;

/** The helper's side of a reverse tunnel: answers, once its input has ended, with the SHA-256 of everything it was sent. */
function hashOnEnd(socket: Socket): void {
  const hash = createHash('sha256');
  socket.on('data', (chunk) => hash.update(chunk));
  socket.on('end', () => socket.end(`sha256:${hash.digest('hex')}`));
}

/** A hash server (HASH_SERVER) in the workspace, stopped after the file; resolves with its port. */
async function listenInWorkspace(): Promise<number> {
  const client = await sshThroughServer(server, WS);
  client.on('error', () => {});
  closers.push(() => client.end());
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec(`exec ${NODE} -e ${shq(HASH_SERVER)}`, (err, ch) => (err ? reject(err) : resolve(ch))));
  let out = '';
  let err = '';
  channel.stderr.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve, reject) => {
    channel.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    channel.on('close', () => reject(new Error(`the hash server in the workspace ended: ${err}`)));
  });
}

async function freePort(): Promise<number> {
  return Number((await workspace.sh(`${NODE} -e ${shq(FREE_PORT)}`)).trim());
}

/** Whether a program in the workspace can connect to 127.0.0.1:`port` there. */
async function canConnect(port: number): Promise<boolean> {
  return (await workspace.sh(`if (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null; then echo yes; else echo no; fi`)) === 'yes\n';
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

beforeAll(async () => {
  server = await startTestServer({ workspaces: [WS] });
  workspace = new WorkspaceFs(server, WS);
  closers.push(() => workspace.close());
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await server?.dispose();
});

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

  it('forwards a connection to a granted target inside the workspace, 4 MB intact and half-closed', async () => {
    const target = await listenInWorkspace();
    const client = await connectWith({ forward: [`127.0.0.1:${target}`] });
    const payload = randomBytes(4 * 1024 * 1024);
    expect(await sendAndRead(await forwardOut(client, target), payload)).toBe(digest(payload));
  });

  it('refuses a forward to any target the key was not granted', async () => {
    const granted = await listenInWorkspace();
    const other = await listenInWorkspace();
    const client = await connectWith({ forward: [`127.0.0.1:${granted}`] });
    await expect(forwardOut(client, other)).rejects.toThrow(/channel open failure/i);
    // A key with no grant at all may not forward anywhere.
    const none = await connectWith({});
    await expect(forwardOut(none, granted)).rejects.toThrow(/channel open failure/i);
  });

  it('listens on a granted reverse port in the workspace and brings each connection to the helper', async () => {
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
    // 4 MB from a program in the workspace, half-closed, and the helper's whole answer back.
    const payload = randomBytes(4 * 1024 * 1024);
    const called = await workspace.run(`${NODE} -e ${shq(CALLER)} ${port}`, payload);
    expect(called, called.stderr).toMatchObject({ code: 0 });
    expect(called.stdout.toString()).toBe(`hello\n${digest(payload)}`);
  });

  it('refuses a reverse port the key was not granted', async () => {
    const [granted, other] = [await freePort(), await freePort()];
    const client = await connectWith({ reverse: [granted] });
    await expect(forwardIn(client, other)).rejects.toThrow(/unable to bind|refused|fail/i);
    expect(await canConnect(other)).toBe(false);
  });

  it('closes the reverse ports of a session when it ends, and survives a reset connection', async () => {
    const port = await freePort();
    const client = await connectWith({ reverse: [port] });
    client.on('tcp connection', (_info, accept) => {
      const channel = accept();
      channel.on('error', () => {});
      channel.destroy(); // the helper's side resets at once
    });
    await forwardIn(client, port);
    // A caller in the workspace sees its connection end (the reset reached it).
    await workspace.run(`exec 3<>/dev/tcp/127.0.0.1/${port}; cat <&3`);
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

