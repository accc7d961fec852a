import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { isProcessAlive } from '../server/common/index.ts';
import { startPausableRelay, type PausableRelay } from './support/pausable-relay.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { runWharf, userEnv, WHARF } from './support/wharf-cli.ts';

// `wharf up` over a network that stops: the helper reaches the server through a TCP relay that
// can stop carrying bytes (without closing anything) and start again. The process driver's
// workspaces share the host's network, so the workspace's side of every rule is on 127.0.0.1,
// served from this test process, as is the laptop's side (besides the local command itself).

const WS = 'net';
const MB = 1024 * 1024;
const BULK = 100 * MB;
/** The CLI's hybrid keepalive is 5 s × 2: a dead link is noticed 10-15 s after it stopped. */
const NOTICE_WITHIN_MS = 16_000;
const PAUSE_MS = 20_000;

let server: TestServer;
let relay: PausableRelay;
let home: string;
let project: string;
let helper: { child: ChildProcess; output: () => string; exited: Promise<number | null> } | undefined;
const closers: Array<() => unknown> = [];
const ports = { workspaceApp: 0, laptopApp: 0, command: 0, forward: 0, reverse: 0, reverseCommand: 0 };

async function freePorts(count: number): Promise<number[]> {
  const probes = Array.from({ length: count }, () => createServer());
  const found = await Promise.all(
    probes.map(async (probe) => {
      probe.listen(0, '127.0.0.1');
      await once(probe, 'listening');
      return (probe.address() as AddressInfo).port;
    }),
  );
  await Promise.all(probes.map((probe) => new Promise((r) => probe.close(r))));
  return found;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (text: string, pattern: RegExp) => (text.match(new RegExp(pattern.source, 'g')) ?? []).length;

/**
 * One side's service: GET /hello, POST /upload (answers the SHA-256 of the body), GET
 * /download?bytes=N (random bytes, their SHA-256 in a trailer) and a websocket echo.
 */
async function startApp(name: string, port: number): Promise<void> {
  const http = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/hello') return void res.end(`from-${name}`);
    if (url.pathname === '/upload') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
      return;
    }
    if (url.pathname === '/download') {
      let left = Number(url.searchParams.get('bytes'));
      const hash = createHash('sha256');
      res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: 'x-sha256' });
      const more = () => {
        while (left > 0) {
          const chunk = randomBytes(Math.min(MB, left));
          left -= chunk.length;
          hash.update(chunk);
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.addTrailers({ 'x-sha256': hash.digest('hex') });
        res.end();
      };
      return more();
    }
    res.statusCode = 404;
    res.end();
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  http.listen(port, '127.0.0.1');
  await once(http, 'listening');
  closers.push(() => {
    for (const c of wss.clients) c.terminate();
    http.closeAllConnections();
    http.close();
  });
}

/** A GET on its own connection (no pooled one from before a drop), as text. */
function httpText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
}

async function upload(port: number): Promise<void> {
  const sent = createHash('sha256');
  const answer = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    let left = BULK;
    const more = () => {
      while (left > 0) {
        const chunk = randomBytes(Math.min(MB, left));
        left -= chunk.length;
        sent.update(chunk);
        if (!req.write(chunk)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
  expect(JSON.parse(answer)).toEqual({ bytes: BULK, sha256: sent.digest('hex') });
}

async function download(port: number): Promise<void> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/download?bytes=${BULK}`, agent: false }, resolve);
    req.on('error', reject);
    req.end();
  });
  const got = createHash('sha256');
  let bytes = 0;
  res.on('data', (chunk: Buffer) => {
    got.update(chunk);
    bytes += chunk.length;
  });
  await once(res, 'end');
  expect(bytes).toBe(BULK);
  expect(got.digest('hex')).toBe(res.trailers['x-sha256']);
}

async function echoOverWebSocket(port: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await once(ws, 'open');
  const replies: Array<{ data: Buffer; isBinary: boolean }> = [];
  ws.on('message', (data: Buffer, isBinary) => replies.push({ data, isBinary }));
  const big = randomBytes(MB);
  ws.send('hello through the tunnel');
  ws.send(big);
  await waitFor('the websocket echoes', () => replies.length >= 2 || undefined, 30_000);
  expect(replies[0]).toMatchObject({ isBinary: false });
  expect(replies[0].data.toString()).toBe('hello through the tunnel');
  expect(replies[1].isBinary).toBe(true);
  expect(replies[1].data.equals(big)).toBe(true);
  ws.close();
}

function localPid(): number | undefined {
  const file = join(project, 'svc', 'pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined;
}

beforeAll(async () => {
  const picked = await freePorts(Object.keys(ports).length);
  (Object.keys(ports) as Array<keyof typeof ports>).forEach((name, i) => (ports[name] = picked[i]));
  server = await startTestServer({ workspaces: [WS] });
  const { port: serverPort } = new URL(server.url);
  relay = await startPausableRelay({ host: '127.0.0.1', port: Number(serverPort) });
  home = await server.tempDir('wharf-net-home-');
  project = await server.tempDir('wharf-net-project-');
  // The helper knows the server only by the relay's address.
  const login = await runWharf(home, ['login', relay.url, '--token', server.token]);
  if (login.code !== 0) throw new Error(`wharf login: ${login.stderr}`);
  await startApp('workspace', ports.workspaceApp);
  await startApp('laptop', ports.laptopApp);
  await mkdir(join(project, 'svc'));
  await writeFile(
    join(project, 'svc', 'service.mjs'),
    `import http from 'node:http';
import { writeFileSync } from 'node:fs';
http.createServer((q, s) => s.end('from-laptop pid=' + process.pid)).listen(${ports.command}, '127.0.0.1', () => writeFileSync('pid', String(process.pid)));
`,
  );
  await writeFile(
    join(project, 'okteto.yml'),
    `name: ${WS}
dev:
  svc:
    mode: hybrid
    command: [${JSON.stringify(process.execPath)}, service.mjs]
    workdir: svc
    forward:
      - ${ports.forward}:127.0.0.1:${ports.workspaceApp}
    reverse:
      - ${ports.reverse}:${ports.laptopApp}
      - ${ports.reverseCommand}:${ports.command}
`,
  );
  const child = spawn(process.execPath, [WHARF, 'up', 'svc'], { cwd: project, env: userEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d));
  child.stderr?.on('data', (d: Buffer) => (output += d));
  helper = { child, output: () => output, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  await waitFor('wharf up to connect', () => /connected to workspace/.test(output) || (helper?.child.exitCode !== null ? Promise.reject(new Error(output)) : undefined));
  await waitFor('the local command', () => localPid());
});

afterAll(async () => {
  if (helper && helper.child.exitCode === null) {
    helper.child.kill('SIGINT');
    await helper.exited;
  }
  for (const close of closers) await close();
  await relay?.close();
  await server?.dispose();
});

describe('wharf up over a network', () => {
  it('carries a websocket and 100 MB each way through a forward and a reverse rule, intact', async () => {
    try {
      await echoOverWebSocket(ports.forward);
      await echoOverWebSocket(ports.reverse);
      await upload(ports.forward);
      await download(ports.forward);
      await upload(ports.reverse);
      await download(ports.reverse);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- wharf up said:\n${helper?.output()}`);
    }
  }, 180_000);

  it('notices a network that stops answering, says so, and reconnects when it flows again, with the same local process', async () => {
    const output = () => helper!.output();
    try {
      const pid = localPid()!;
      expect(await httpText(ports.forward, '/hello')).toBe('from-workspace');
      expect(await httpText(ports.reverseCommand, '/')).toBe(`from-laptop pid=${pid}`);
      const lostBefore = count(output(), /connection lost/);
      const backBefore = count(output(), /connected again; every rule is back/);

      relay.pause();
      const pausedAt = Date.now();
      await waitFor('the helper to notice', () => count(output(), /connection lost/) > lostBefore || undefined, PAUSE_MS);
      const noticedAfter = Date.now() - pausedAt;
      expect(noticedAfter).toBeLessThan(NOTICE_WITHIN_MS);
      expect(output()).toMatch(/svc: connection lost \(Keepalive timeout\b.*\); reconnecting/);
      // The network stays down for the rest of the pause: no reconnect gets through meanwhile.
      await new Promise((r) => setTimeout(r, PAUSE_MS - (Date.now() - pausedAt)));
      expect(count(output(), /connected again/)).toBe(backBefore);
      relay.resume();

      await waitFor('the helper to reconnect', () => count(output(), /connected again; every rule is back/) > backBefore || undefined, 60_000);
      expect(await httpText(ports.forward, '/hello')).toBe('from-workspace');
      expect(await httpText(ports.reverseCommand, '/')).toBe(`from-laptop pid=${pid}`);
      await echoOverWebSocket(ports.forward);
      await echoOverWebSocket(ports.reverse);
      expect(localPid()).toBe(pid);
      expect(isProcessAlive(pid)).toBe(true);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- wharf up said:\n${output()}`);
    }
  }, 180_000);

  it('after a network it never hears from again, frees what the old connection held and reconnects', async () => {
    // The old connection is neither answered nor closed, so the server and the agent keep it
    // (and its reverse ports) until the helper revokes its key from the new network.
    const output = () => helper!.output();
    try {
      const pid = localPid()!;
      const lostBefore = count(output(), /connection lost/);
      const failedBefore = count(output(), /could not connect/);
      const backBefore = count(output(), /connected again; every rule is back/);
      relay.cut();
      await waitFor('the helper to notice', () => count(output(), /connection lost/) > lostBefore || undefined, PAUSE_MS);
      await waitFor('a reconnect to fail while there is no network', () => count(output(), /could not connect/) > failedBefore || undefined, 30_000);
      await relay.restore();
      await waitFor('the helper to reconnect', () => count(output(), /connected again; every rule is back/) > backBefore || undefined, 60_000);
      expect(await httpText(ports.reverseCommand, '/')).toBe(`from-laptop pid=${pid}`);
      expect(await httpText(ports.forward, '/hello')).toBe('from-workspace');
      expect(localPid()).toBe(pid);

      helper!.child.kill('SIGINT');
      expect(await helper!.exited).toBe(130);
      await waitFor('the local command to be gone', () => !isProcessAlive(pid) || undefined);
      expect(output()).toMatch(/svc: stopped after \d+s; reconnected 2 times/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- wharf up said:\n${output()}`);
    }
  }, 180_000);
});
