import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/workspace/index.ts';
import { sshOverTunnel, startTestServer, type TestServer } from './support/server.ts';
import { createTerminal } from './support/terminal-client.ts';

const EXTRA_ORIGIN = 'https://ide.example.com';

function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.on('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.on('error', (err) => reject(err));
  });
}

/** Signs in like the login page does; returns the Cookie header and the CSRF token. */
async function signIn(server: TestServer): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: server.token }) });
  expect(res.status).toBe(200);
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]);
  const csrf = cookies.find((c) => c.startsWith('wharf_csrf='))?.slice('wharf_csrf='.length) ?? '';
  return { cookie: cookies.join('; '), csrf };
}

type Streamed = { status: number; written: number; ms: number; rssGrowth: number };

/**
 * Posts a body of `total` bytes to `path` in 64 KiB chunks, honouring backpressure, and stops
 * writing once the answer is in. `declareLength`: with Content-Length, else chunked.
 */
function streamBody(server: TestServer, path: string, total: number, declareLength: boolean): Promise<Streamed> {
  const started = performance.now();
  const rss = process.memoryUsage().rss;
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${server.token}` };
    if (declareLength) headers['content-length'] = String(total);
    const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, written, ms: performance.now() - started, rssGrowth: process.memoryUsage().rss - rss });
      });
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!answered && written < total) {
        written += chunk.length;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

describe('the HTTP layer: origins, JSON bodies, CSRF, sessions and headers', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ workspaces: ['hh'], argv: ['--allowed-origin', EXTRA_ORIGIN] });
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('takes the public origin from the port --port 0 picked, and refuses foreign origins on upgrades and unsafe methods', async () => {
    const ssh = `${server.url.replace('http', 'ws')}/api/workspaces/hh/ssh`;
    const bearer = { authorization: `Bearer ${server.token}` };
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:0$/);
    expect(await upgradeStatus(ssh, { ...bearer, origin: server.url })).toBe(101);
    expect(await upgradeStatus(ssh, { ...bearer, origin: EXTRA_ORIGIN })).toBe(101);
    expect(await upgradeStatus(ssh, bearer)).toBe(101); // no Origin: a program, not a page
    for (const origin of ['http://127.0.0.1:1', 'null', 'http://evil.example']) {
      expect(await upgradeStatus(ssh, { ...bearer, origin }), origin).toBe(403);
    }

    const post = (origin?: string) => server.api('/api/workspaces/hh/start', { method: 'POST', headers: origin ? { origin } : {} });
    expect((await post()).status).toBe(200);
    expect((await post(server.url)).status).toBe(200);
    const refused = await post('http://127.0.0.1:1');
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/requests from pages of http:\/\/127\.0\.0\.1:1 are refused/);
    // The login itself: another site's page must not sign the browser in either.
    const login = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { origin: 'http://127.0.0.1:1', 'content-type': 'application/json' }, body: JSON.stringify({ token: server.token }) });
    expect(login.status).toBe(403);
    expect(login.headers.get('set-cookie')).toBeNull();
  });

  it('reads JSON only when it says application/json, while raw file bodies keep working', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
      const res = await server.api('/api/workspaces', { method: 'POST', headers: type ? { 'content-type': type } : {}, body: JSON.stringify({ name: 'plain' }) });
      expect(res.status, type).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Content-Type: application\/json/);
    }
    expect((await server.api('/api/workspaces/plain')).status).toBe(404);
    // A deploy with no body needs no content type; one with a body does.
    expect((await server.api('/api/workspaces/hh/deploys', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"remote":false}' })).status).toBe(400);
    // A file write is a raw body of any type.
    const put = await server.api('/api/workspaces/hh/files/notes.txt', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(put.status).toBeLessThan(300);
    expect(await (await server.api('/api/workspaces/hh/files/notes.txt')).text()).toBe('hello');
  });

  it('answers 413 to a JSON body over 64 KiB at once, without reading it all', async () => {
    const small = await server.api('/api/workspaces', { method: 'POST', json: { name: 'x'.repeat(70 * 1024) } });
    expect(small.status).toBe(413);
    expect(((await small.json()) as { error: { message: string } }).error.message).toMatch(/at most 65536 bytes/);
    for (const declareLength of [true, false]) {
      for (const path of ['/api/login', '/api/workspaces']) {
        const total = 48 * 1024 * 1024;
        const result = await streamBody(server, path, total, declareLength);
        expect(result.status, `${path} ${declareLength ? 'with Content-Length' : 'chunked'}`).toBe(413);
        // The answer came while the client was still sending: the server did not wait for the body.
        expect(result.written).toBeLessThan(total);
        expect(result.rssGrowth).toBeLessThan(32 * 1024 * 1024);
      }
    }
    expect((await server.api('/healthz')).status).toBe(200);
  });

  it('wants the CSRF token on unsafe requests of a cookie session, never from bearer clients', async () => {
    const { cookie, csrf } = await signIn(server);
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const post = (headers: Record<string, string>) => fetch(`${server.url}/api/workspaces/hh/start`, { method: 'POST', headers });
    expect((await fetch(`${server.url}/api/workspaces`, { headers: { cookie } })).status).toBe(200);
    const missing = await post({ cookie });
    expect(missing.status).toBe(403);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(/x-wharf-csrf/);
    expect((await post({ cookie, 'x-wharf-csrf': 'A'.repeat(43) })).status).toBe(403);
    // Another session's token does not fit this one.
    expect((await post({ cookie, 'x-wharf-csrf': (await signIn(server)).csrf })).status).toBe(403);
    expect((await post({ cookie, 'x-wharf-csrf': csrf })).status).toBe(200);
    expect((await post({ authorization: `Bearer ${server.token}` })).status).toBe(200);
  });

  it('ends a session on logout, on every replica sharing the data dir', async () => {
    const replica = await startTestServer({ dataDir: server.dataDir, argv: ['--token', server.token] });
    try {
      const { cookie, csrf } = await signIn(server);
      expect((await fetch(`${replica.url}/api/workspaces`, { headers: { cookie } })).status).toBe(200);
      const other = await signIn(server);
      const out = await fetch(`${server.url}/api/logout`, { method: 'POST', headers: { cookie, 'x-wharf-csrf': csrf } });
      expect(out.status).toBe(200);
      for (const base of [server.url, replica.url]) {
        expect((await fetch(`${base}/api/workspaces`, { headers: { cookie } })).status, base).toBe(401);
        expect(await upgradeStatus(`${base.replace('http', 'ws')}/api/workspaces/hh/ssh`, { cookie })).toBe(401);
      }
      // Only that session: another browser stays signed in.
      expect((await fetch(`${replica.url}/api/workspaces`, { headers: { cookie: other.cookie } })).status).toBe(200);
    } finally {
      await replica.close();
    }
  });

  it('sends the anti-framing and nosniff headers on every answer', async () => {
    const answers = [await fetch(`${server.url}/healthz`), await fetch(`${server.url}/api/workspaces`), await fetch(`${server.url}/login`), await server.api('/api/nope'), await server.api('/api/workspaces', { method: 'POST', json: {} })];
    expect(answers.map((r) => r.status)).toEqual([200, 401, 200, 404, 400]);
    for (const res of answers) {
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('builds share URLs from the public URL whatever the Host header says, and refuses a share token with characters appended', async () => {
    const terminal = await createTerminal(server, 'hh');
    const shared = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/api/workspaces/hh/terminals/${terminal.id}/shares`,
        { method: 'POST', headers: { host: 'evil.example:666', authorization: `Bearer ${server.token}`, 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text) as { url: string; token: string }) : reject(new Error(`${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ role: 'viewer', expiresInSeconds: 600 }));
    });
    expect(shared.url).toBe(`${server.url}/s/${shared.token}`);
    expect((await fetch(`${server.url}/s/${shared.token}`, { redirect: 'manual' })).status).toBe(303);
    for (const suffix of ['!', '=', '%20', 'A']) {
      expect((await fetch(`${server.url}/s/${shared.token}${suffix}`, { redirect: 'manual' })).status, suffix).toBe(401);
      expect((await fetch(`${server.url}/api/workspaces/hh/terminals/${terminal.id}?share=${shared.token}${suffix}`)).status, suffix).toBe(401);
    }
  });
});

describe('admin token changes and failed logins', () => {
  it('ends sessions opened with an earlier admin token', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-token-change-'));
    try {
      const first = await startTestServer({ dataDir, argv: ['--token', 'first-token-0123456789'] });
      const { cookie } = await signIn(first);
      expect((await fetch(`${first.url}/api/workspaces`, { headers: { cookie } })).status).toBe(200);
      await first.close();
      const second = await startTestServer({ dataDir, argv: ['--token', 'second-token-0123456789'] });
      try {
        expect((await fetch(`${second.url}/api/workspaces`, { headers: { cookie } })).status).toBe(401);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('answers 429 with Retry-After after 10 failed logins from one address, even to the right token', async () => {
    const server = await startTestServer();
    try {
      const login = (token: string) => fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      for (let i = 0; i < 10; i++) expect((await login(`wrong-${i}`)).status).toBe(401);
      const throttled = await login(server.token);
      expect(throttled.status).toBe(429);
      expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(throttled.headers.get('set-cookie')).toBeNull();
      expect((await fetch(`${server.url}/login?token=${server.token}`, { redirect: 'manual' })).status).toBe(429);
      // Bearer clients are not affected by the login throttle.
      expect((await server.api('/api/workspaces')).status).toBe(200);
    } finally {
      await server.dispose();
    }
  });
});

describe('session keys can be revoked before they expire', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ workspaces: ['keys'] });
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('refuses new SSH logins with a revoked key and closes the sessions it opened', async () => {
    const key = generateKeyPair('revoke-me');
    const reg = await server.api('/api/workspaces/keys/session-keys', { method: 'POST', json: { publicKey: key.publicKey, ttlSeconds: 3600 } });
    expect(reg.status).toBe(201);
    const { id } = (await reg.json()) as { id: string };
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const client = await sshOverTunnel(server, 'keys', key.privateKey);
    client.on('error', () => {}); // the agent ending the connection may surface as a socket error
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));

    expect((await server.api(`/api/workspaces/keys/session-keys/${id}`, { method: 'DELETE' })).status).toBe(204);
    await closed;
    await expect(sshOverTunnel(server, 'keys', key.privateKey)).rejects.toThrow(/authentication/i);
    const again = await server.api(`/api/workspaces/keys/session-keys/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
  });

  it('takes the OpenSSH SHA256 fingerprint as the key id too', async () => {
    const key = generateKeyPair('by-fingerprint');
    const reg = await server.api('/api/workspaces/keys/session-keys', { method: 'POST', json: { publicKey: key.publicKey } });
    const { id } = (await reg.json()) as { id: string };
    const fingerprint = `SHA256:${Buffer.from(id, 'base64url').toString('base64').replace(/=+$/, '')}`;
    expect((await server.api(`/api/workspaces/keys/session-keys/${encodeURIComponent(fingerprint)}`, { method: 'DELETE' })).status).toBe(204);
    await expect(sshOverTunnel(server, 'keys', key.privateKey)).rejects.toThrow(/authentication/i);
  });
});
