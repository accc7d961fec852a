import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createWorkspace, execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';

describe('workspace agent over the websocket SSH tunnel', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    await createWorkspace(server, 'ssh1');
  });
  afterAll(() => server.dispose());

  it('runs a command in the workspace with its exit status', async () => {
    const client = await sshThroughServer(server, 'ssh1');
    const ok = await execOver(client, 'pwd; echo out; echo err >&2');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\/workspaces\/ssh1\/files\nout\n/);
    expect(ok.stderr).toBe('err\n');
    const failed = await execOver(client, 'exit 7');
    expect(failed.code).toBe(7);
    client.end();
  });

  it('passes env requests and reports a signal death', async () => {
    const client = await sshThroughServer(server, 'ssh1');
    const env = await execOver(client, 'echo "$GREETING"', { env: { GREETING: 'hello there' } });
    expect(env.stdout).toBe('hello there\n');
    const killed = await execOver(client, 'kill -TERM $$');
    expect(killed.signal).toBe('SIGTERM');
    client.end();
  });

  it('gives a pty to a shell', async () => {
    const client = await sshThroughServer(server, 'ssh1');
    const out = await execOver(client, 'tty; stty size', { pty: { rows: 30, cols: 100, term: 'xterm' } as never });
    expect(out.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(out.stdout).toMatch(/30 100/);
    client.end();
  });

  it('refuses an SSH client whose key the server never registered', async () => {
    const { default: ssh2 } = await import('ssh2');
    const { generateKeyPair } = await import('../server/workspace/index.ts');
    const { default: WebSocket, createWebSocketStream } = await import('ws');
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/ssh1/ssh`, { headers: { authorization: `Bearer ${server.token}` } });
    await new Promise((r) => ws.once('open', r));
    const client = new ssh2.Client();
    const error = await new Promise<Error>((resolve) => {
      client.once('error', resolve);
      client.connect({ sock: createWebSocketStream(ws), username: 'wharf', privateKey: generateKeyPair('stranger').privateKey });
    });
    expect(error.message).toMatch(/authentication methods failed/);
  });

  it('closes an oversized tunnel frame with 1009 and keeps serving', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/ssh1/ssh`, { headers: { authorization: `Bearer ${server.token}` } });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(Buffer.alloc(17 * 1024 * 1024));
    expect(await closed).toBe(1009);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const client = await sshThroughServer(server, 'ssh1');
    expect((await execOver(client, 'echo still-here')).stdout).toBe('still-here\n');
    client.end();
  });

  it('delivers every stderr line of a command whose stdout fills the SSH window', async () => {
    const client = await sshThroughServer(server, 'ssh1');
    const out = await execOver(client, "for i in 1 2 3 4 5; do head -c 5000000 /dev/zero | tr '\\0' a; echo err$i >&2; done");
    expect(out.code).toBe(0);
    expect(out.stdout.length).toBe(25_000_000);
    expect(out.stdout.replace(/a/g, '')).toBe('');
    expect(out.stderr).toBe('err1\nerr2\nerr3\nerr4\nerr5\n');
    client.end();
  });
});

describe('SSH connections that never authenticate', () => {
  let server: TestServer;
  beforeAll(async () => {
    // A short login grace and room for only two connections that have not authenticated.
    server = await startTestServer({ argv: ['--ssh-login-grace', '1500ms', '--ssh-max-startups', '2'] });
    await createWorkspace(server, 'grace');
  });
  afterAll(() => server.dispose());

  /** A raw tunnel that sends an SSH version line and then nothing: what a stalled or hostile client does. */
  async function openSilentTunnel(): Promise<{ ws: WebSocket; banner: Promise<string>; closed: Promise<number> }> {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/grace/ssh`, { headers: { authorization: `Bearer ${server.token}` } });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const banner = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('latin1'))));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(Buffer.from('SSH-2.0-silent_client\r\n'), { binary: true });
    return { ws, banner, closed };
  }

  it('closes a connection that has not authenticated within the grace, and keeps an authenticated one', async () => {
    const authenticated = await sshThroughServer(server, 'grace');
    let authenticatedClosed = false;
    authenticated.on('close', () => (authenticatedClosed = true));
    const started = Date.now();
    const silent = await openSilentTunnel();
    expect(await silent.banner).toMatch(/^SSH-2\.0-/);
    // The agent ends it (the tunnel closes normally when the agent's side goes away).
    expect(await silent.closed).toBe(1000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    // The authenticated connection, older than the grace by now, still works.
    expect(authenticatedClosed).toBe(false);
    expect((await execOver(authenticated, 'echo still-here')).stdout).toBe('still-here\n');
    authenticated.end();
  });

  it('keeps at most the configured number of unauthenticated connections', async () => {
    const first = await openSilentTunnel();
    const second = await openSilentTunnel();
    await Promise.all([first.banner, second.banner]);
    const started = Date.now();
    const third = await openSilentTunnel();
    // Closed at once, long before the grace: the agent dropped the connection (unread bytes make
    // that a reset, which the tunnel reports as 4503).
    expect([1000, 4503]).toContain(await third.closed);
    expect(Date.now() - started).toBeLessThan(1400);
    // The server's own connection, and any client that authenticates, still gets through later.
    await Promise.all([first.closed, second.closed]);
    const client = await sshThroughServer(server, 'grace');
    expect((await execOver(client, 'echo ok')).stdout).toBe('ok\n');
    client.end();
  });
});
