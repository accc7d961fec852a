import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../server/common/index.ts';
import { startTestServer, type TestServer } from './support/server.ts';

/**
 * Reachable without credentials: health, login (which checks its own credential, the token), and
 * the helper's public downloads (the helper is no secret; `curl … | sh` sends no token).
 */
const PUBLIC = new Set(['/healthz', '/login', '/api/login', '/downloads/wharf.mjs', '/downloads/wharf-linux-x64', '/downloads/install.sh', '/downloads/SHA256SUMS']);

type RouteIndex = { http: Array<{ method: string; path: string }>; websockets: Array<{ path: string }> };

/** A concrete path for a route pattern: `:id` → `ws-nope` (or what its regex accepts), `*` → `x`. */
function concretePath(pattern: string): string {
  const path = pattern
    .replace(/:[A-Za-z0-9_]+(\{((?:[^{}]|\{[^{}]*\})*)\})?\??/g, (_m, _group, regex: string | undefined) => {
      if (!regex) return 'ws-nope';
      return ['ws-nope', 'x', '0', 'x/y'].find((c) => new RegExp(`^(?:${regex})$`).test(c)) ?? 'ws-nope';
    })
    .replace(/\*/g, 'x');
  return path.startsWith('/') ? path : `/${path}`;
}

/** Every way of asking without valid credentials that the server must refuse. */
function badCredentials(server: TestServer, secret: Buffer): Array<{ name: string; headers: Record<string, string>; query?: string }> {
  const wrongSameLength = randomBytes(server.token.length).toString('base64url').slice(0, server.token.length);
  const valid = signToken(secret, { exp: Date.now() + 60_000, kind: 'session' });
  const tampered = `${valid.slice(0, -2)}${valid.endsWith('AA') ? 'BB' : 'AA'}`;
  return [
    { name: 'no credentials', headers: {} },
    { name: 'wrong bearer token', headers: { authorization: `Bearer ${wrongSameLength}` } },
    { name: 'token without "Bearer"', headers: { authorization: server.token } },
    { name: 'garbage cookie', headers: { cookie: 'wharf_session=garbage' } },
    { name: 'cookie with a broken %-escape', headers: { cookie: 'wharf_session=%E0%A4%A; wharf_share=%' } },
    { name: 'non-ASCII bearer token', headers: { authorization: 'Bearer t\u00f6ken' } },
    { name: 'cookie signed with another secret', headers: { cookie: `wharf_session=${signToken(randomBytes(32), { exp: Date.now() + 60_000, kind: 'session' })}` } },
    { name: 'tampered cookie', headers: { cookie: `wharf_session=${tampered}` } },
    { name: 'expired cookie', headers: { cookie: `wharf_session=${signToken(secret, { exp: Date.now() - 1000, kind: 'session' })}` } },
    { name: 'signed token of another kind as session cookie', headers: { cookie: `wharf_session=${signToken(secret, { exp: Date.now() + 60_000, kind: 'share' })}` } },
    { name: 'forged share link', headers: {}, query: `share=${signToken(randomBytes(32), { exp: Date.now() + 60_000 })}` },
  ];
}

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

describe('every route refuses requests without valid credentials', () => {
  let server: TestServer;
  let routes: RouteIndex;
  let secret: Buffer;

  beforeAll(async () => {
    server = await startTestServer({ workspaces: ['ws1'] });
    secret = Buffer.from((await readFile(join(server.dataDir, 'signing.key'), 'utf8')).trim(), 'hex');
    const res = await server.api('/api/routes');
    expect(res.status).toBe(200);
    routes = (await res.json()) as RouteIndex;
  });
  afterAll(() => server.dispose());

  it('enumerates the registered routes', () => {
    const http = routes.http.map((r) => `${r.method} ${r.path}`);
    // A few routes that must exist, so an empty or broken index cannot pass the checks below.
    for (const known of ['GET /healthz', 'GET /metrics', 'GET /api/workspaces', 'POST /api/workspaces', 'POST /api/workspaces/:id/session-keys', 'GET /api/routes']) {
      expect(http).toContain(known);
    }
    expect(routes.websockets.map((w) => w.path)).toContain('/api/workspaces/:id/ssh');
    expect(concretePath('/api/workspaces/:id/files/:path{.+}')).toBe('/api/workspaces/ws-nope/files/ws-nope');
    expect(concretePath('/assets/*')).toBe('/assets/x');
    expect(concretePath('*')).toBe('/x');
  });

  it('answers 401 on every HTTP route, whatever the bad credential', async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const route of routes.http) {
      const path = concretePath(route.path);
      if (PUBLIC.has(path)) continue;
      const methods = route.method === 'ALL' ? ['GET', 'POST', 'PUT', 'DELETE'] : [route.method];
      for (const method of methods) {
        for (const cred of badCredentials(server, secret)) {
          const res = await fetch(`${server.url}${path}${cred.query ? `?${cred.query}` : ''}`, {
            method,
            headers: { ...cred.headers, ...(method === 'GET' || method === 'HEAD' ? {} : { 'content-type': 'application/json' }) },
            body: method === 'GET' || method === 'HEAD' ? undefined : '{}',
            redirect: 'manual',
          });
          await res.arrayBuffer();
          checked++;
          if (res.status !== 401) failures.push(`${method} ${path} with ${cred.name}: ${res.status}`);
          if (res.headers.get('set-cookie')) failures.push(`${method} ${path} with ${cred.name}: sets a cookie`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(20);
  });

  it('refuses every websocket upgrade with 401, whatever the bad credential', async () => {
    const failures: string[] = [];
    for (const route of routes.websockets) {
      for (const id of ['ws-nope', 'ws1']) {
        const path = concretePath(route.path.replace(':id', id));
        for (const cred of badCredentials(server, secret)) {
          const status = await upgradeStatus(`${server.url.replace('http', 'ws')}${path}${cred.query ? `?${cred.query}` : ''}`, cred.headers);
          if (status !== 401) failures.push(`websocket ${path} with ${cred.name}: ${status}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('serves /healthz without credentials and /metrics as Prometheus text with the token', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    // A refused request of its own, so the counter below does not depend on the tests before it.
    const refused = await fetch(`${server.url}/api/workspaces`);
    expect(refused.status).toBe(401);
    await refused.arrayBuffer();

    const metrics = await server.api('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.text();
    expect(text).toMatch(/^# HELP wharf_http_requests_total /m);
    expect(text).toMatch(/^# TYPE wharf_http_requests_total counter$/m);
    expect(text).toMatch(/^wharf_http_requests_total\{method="GET",status="401"\} \d+$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('signs a browser in through the login URL with an HttpOnly, SameSite=Strict cookie', async () => {
    const wrong = await fetch(`${server.url}/login?token=nope`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const res = await fetch(server.loginUrl, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^wharf_session=[^;]+;/);
    const attributes = setCookie.split(';').map((a) => a.trim().toLowerCase());
    expect(attributes).toContain('httponly');
    expect(attributes).toContain('samesite=strict');
    expect(attributes).toContain('path=/');
    const cookie = setCookie.split(';')[0];

    const listed = await fetch(`${server.url}/api/workspaces`, { headers: { cookie } });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { workspaces: Array<{ id: string }> }).workspaces.map((w) => w.id)).toContain('ws1');
    expect(await upgradeStatus(`${server.url.replace('http', 'ws')}/api/workspaces/ws1/ssh`, { cookie })).toBe(101);
  });

  it('signs in through POST /api/login only with the right token', async () => {
    const wrong = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'nope' }) });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const garbled = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":' });
    expect(garbled.status).toBe(400);
    expect(((await garbled.json()) as { error: { message: string } }).error.message).toMatch(/JSON object/);

    const res = await fetch(`${server.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: server.token }) });
    expect(res.status).toBe(200);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0];
    expect((await fetch(`${server.url}/api/workspaces`, { headers: { cookie } })).status).toBe(200);
  });
});
