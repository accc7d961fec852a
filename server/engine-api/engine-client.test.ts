import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseEngineEndpoint } from './endpoint.ts';
import { createEngineClient, engineMessage } from './engine-client.ts';

type Seen = { method: string; url: string; contentType: string | undefined; body: string };

/** A stand-in engine on a unix socket: answers by path, and writes down what it was sent. */
let dir: string;
let socketPath: string;
let server: Server;
const seen: Seen[] = [];
let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-engine-'));
  socketPath = join(dir, 'engine.sock');
  server = createServer((req, res) => {
    if (req.url?.startsWith('/slow')) return; // never answers
    if (req.url?.startsWith('/upload-stall')) {
      req.on('data', () => {});
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"stream":"started\\n"}\n');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterEach(() => {
  seen.length = 0;
  vi.unstubAllEnvs();
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('engine endpoint', () => {
  it('reads unix sockets and TCP addresses in the words of the setting', () => {
    expect(parseEngineEndpoint('unix:///run/docker.sock', 'docker engine')).toEqual({ ok: true, value: { display: 'unix:///run/docker.sock', socketPath: '/run/docker.sock' } });
    expect(parseEngineEndpoint('http://[::1]:2375/', 'x')).toMatchObject({ ok: true, value: { host: '::1', port: 2375 } });
    expect(parseEngineEndpoint('docker.sock', 'docker engine')).toEqual({ ok: false, error: 'docker engine "docker.sock" is not understood: use unix:///path/to/docker.sock or tcp://host:port' });
  });
});

describe('engine client', () => {
  it('sends method, path and query, and gives the answer of any status with its text', async () => {
    handler = (req, res) => {
      res.writeHead(req.method === 'DELETE' ? 404 : 200, { 'content-type': 'application/json' });
      res.end(req.method === 'DELETE' ? '{"message":"No such image: sha256:ab"}' : '{"Version":"27.0.1"}');
    };
    const client = createEngineClient({ display: `unix://${socketPath}`, socketPath });
    expect(await client.fetchText({ method: 'GET', path: '/version' })).toEqual({ ok: true, value: { status: 200, text: '{"Version":"27.0.1"}' } });
    const removed = await client.fetchText({ method: 'DELETE', path: '/images/sha256%3Aab', query: { noprune: 'false' } });
    expect(removed).toEqual({ ok: true, value: { status: 404, text: '{"message":"No such image: sha256:ab"}' } });
    expect(engineMessage(removed.ok ? removed.value.text : '')).toBe('No such image: sha256:ab');
    expect(seen.map((s) => `${s.method} ${s.url} ${s.body}`)).toEqual(['GET /version ', 'DELETE /images/sha256%3Aab?noprune=false ']);
  });

  it('sends a JSON body, and no body for a POST without one (not its query)', async () => {
    handler = (_req, res) => res.end('{}');
    const client = createEngineClient({ display: 'test', socketPath });
    await client.fetchText({ method: 'POST', path: '/containers/create', query: { name: 'ws-1' }, json: { Image: 'alpine' } });
    await client.fetchText({ method: 'POST', path: '/containers/ws-1/start', query: { detachKeys: 'ctrl-p' } });
    expect(seen).toEqual([
      { method: 'POST', url: '/containers/create?name=ws-1', contentType: 'application/json', body: '{"Image":"alpine"}' },
      { method: 'POST', url: '/containers/ws-1/start?detachKeys=ctrl-p', contentType: undefined, body: '' },
    ]);
  });

  it('streams an upload with its content type', async () => {
    handler = (_req, res) => res.end('{"stream":"done"}');
    const client = createEngineClient({ display: 'test', socketPath });
    const upload = new PassThrough();
    const answer = client.send({ method: 'POST', path: '/build', query: { dockerfile: 'Dockerfile' }, upload: { stream: upload, contentType: 'application/x-tar' } });
    upload.write('part one, ');
    setTimeout(() => upload.end('part two'), 20);
    const sent = await answer;
    expect(sent.ok && sent.value.status).toBe(200);
    expect(seen).toEqual([{ method: 'POST', url: '/build?dockerfile=Dockerfile', contentType: 'application/x-tar', body: 'part one, part two' }]);
  });

  it('takes the endpoint only from its caller, never from DOCKER_HOST', async () => {
    vi.stubEnv('DOCKER_HOST', 'tcp://127.0.0.1:9');
    vi.stubEnv('DOCKER_TLS_VERIFY', '1');
    handler = (_req, res) => res.end('{"Version":"1"}');
    const answer = await createEngineClient({ display: 'test', socketPath }).fetchText({ method: 'GET', path: '/version' });
    expect(answer).toEqual({ ok: true, value: { status: 200, text: '{"Version":"1"}' } });
  });

  it('says why an engine cannot be reached', async () => {
    const missing = await createEngineClient({ display: 'x', socketPath: join(dir, 'none.sock') }).fetchText({ method: 'GET', path: '/version' });
    expect(missing).toEqual({ ok: false, error: { kind: 'unreachable', message: 'the socket does not exist' } });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await createEngineClient({ display: 'x', host: '127.0.0.1', port }).fetchText({ method: 'GET', path: '/version' });
    expect(refused).toEqual({ ok: false, error: { kind: 'unreachable', message: 'nothing is listening there' } });
  });

  it('gives up after the request time, and when the caller cancels', async () => {
    const client = createEngineClient({ display: 'x', socketPath });
    expect(await client.fetchText({ method: 'GET', path: '/slow', timeoutMs: 200 })).toEqual({ ok: false, error: { kind: 'timeout', message: 'no answer within 0.2 s' } });
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(), 50);
    expect(await client.fetchText({ method: 'GET', path: '/slow', signal: cancel.signal, timeoutMs: 5000 })).toEqual({ ok: false, error: { kind: 'aborted', message: 'the request was cancelled' } });
  });

  it('stops reading a streamed answer on cancel, and leaves the upload to its owner', async () => {
    const client = createEngineClient({ display: 'x', socketPath });
    const upload = new PassThrough();
    upload.write('some context');
    const cancel = new AbortController();
    const answer = await client.send({ method: 'POST', path: '/upload-stall', upload: { stream: upload, contentType: 'application/x-tar' }, signal: cancel.signal });
    expect(answer.ok).toBe(true);
    if (!answer.ok) return;
    const body = answer.value.body;
    const closed = new Promise((resolve) => body.on('close', resolve));
    body.on('error', () => {});
    body.resume();
    cancel.abort();
    await closed;
    expect(body.destroyed).toBe(true);
    expect(upload.destroyed).toBe(false);
    upload.destroy();
  });
});
