import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/server.ts';
import { createTerminal, TerminalClient } from './support/terminal-client.ts';

const WS = 'shared';

type Share = { id: string; url: string; token: string; role: string; expiresAt: string };

async function share(server: TestServer, terminal: string, body: Record<string, unknown>): Promise<Share> {
  const res = await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares`, { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`share: ${res.status} ${await res.text()}`);
  return (await res.json()) as Share;
}

/** Follows a share link the way a browser does, without following the redirect. */
async function openLink(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { redirect: 'manual', headers });
  return { status: res.status, location: res.headers.get('location'), cookie: res.headers.get('set-cookie'), text: await res.text() };
}

function cookieOf(setCookie: string | null): string {
  return (setCookie ?? '').split(';')[0];
}

describe('terminal share links', () => {
  let server: TestServer;
  let terminal: string;
  let other: string;
  beforeAll(async () => {
    server = await startTestServer({ workspaces: [WS] });
    terminal = (await createTerminal(server, WS)).id;
    other = (await createTerminal(server, WS)).id;
  });
  afterAll(() => server?.dispose());

  it('signs in an editor link through a cookie, and that editor can type', async () => {
    const link = await share(server, terminal, { role: 'editor', expiresInSeconds: 600 });
    expect(link.url).toBe(`${server.url}/s/${link.token}`);
    expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(590_000);
    const opened = await openLink(link.url);
    expect(opened.status).toBe(303);
    expect(opened.location).toBe(`/share/${WS}/${terminal}`);
    expect(opened.cookie).toMatch(new RegExp(`^wharf_share_${link.id}=[^;]+; Path=/; HttpOnly; SameSite=Strict; Max-Age=(59\\d|600)$`));
    const cookie = cookieOf(opened.cookie);

    const editor = await TerminalClient.open(server, WS, terminal, { headers: { cookie } });
    expect(editor.messages[0]).toMatchObject({ type: 'snapshot', role: 'editor' });
    editor.type('echo SHARED-$((40+2))\r');
    await editor.waitForText('SHARED-42');
    // Its own terminal's metadata is readable, with what the link allows.
    const meta = await fetch(`${server.url}/api/workspaces/${WS}/terminals/${terminal}`, { headers: { cookie } });
    expect(meta.status).toBe(200);
    expect(await meta.json()).toMatchObject({ id: terminal, share: { role: 'editor' } });
    editor.close();
  });

  it('lets a viewer link watch but not type', async () => {
    const link = await share(server, terminal, { role: 'viewer', expiresInSeconds: 600 });
    const admin = await TerminalClient.open(server, WS, terminal);
    const viewer = await TerminalClient.open(server, WS, terminal, { query: `share=${link.token}`, headers: {} });
    expect(viewer.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });
    viewer.type('echo FROM-THE-VIEWER\r');
    await viewer.waitFor(() => viewer.lastMessage('error') !== undefined, 5000, 'the refusal');
    admin.type('echo FROM-THE-ADMIN\r');
    await viewer.waitForText('FROM-THE-ADMIN');
    expect(viewer.screenText()).not.toContain('FROM-THE-VIEWER');
    expect(admin.screenText()).not.toContain('FROM-THE-VIEWER');
    admin.close();
    viewer.close();
  });

  it('opens nothing but its own terminal', async () => {
    const link = await share(server, terminal, { role: 'editor', expiresInSeconds: 600 });
    const cookie = cookieOf((await openLink(link.url)).cookie);
    expect(await TerminalClient.refusal(server, WS, other, { headers: { cookie } })).toBe(403);
    expect(await TerminalClient.refusal(server, WS, terminal, { headers: { cookie } })).toBe(101);
    const get = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, { ...init, headers: { cookie, ...(init.headers ?? {}) } }).then((r) => r.status);
    expect(await get('/api/workspaces')).toBe(403);
    expect(await get(`/api/workspaces/${WS}`)).toBe(403);
    expect(await get(`/api/workspaces/${WS}/terminals`)).toBe(403);
    expect(await get(`/api/workspaces/${WS}/terminals/${other}`)).toBe(403);
    expect(await get(`/api/workspaces/${WS}/terminals/${terminal}/shares`)).toBe(403);
    expect(await get(`/api/workspaces/${WS}/terminals/${terminal}`, { method: 'DELETE' })).toBe(403);
    expect(await get(`/api/workspaces/${WS}/terminals`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).toBe(403);
    expect(await get(`/api/workspaces/${WS}/files/`)).toBe(403);
    // The same token given as ?share= is held to the same rules.
    expect(await fetch(`${server.url}/api/workspaces?share=${link.token}`).then((r) => r.status)).toBe(403);
    // Nor any other websocket, such as the SSH tunnel or a live-editing document.
    for (const path of [`/api/workspaces/${WS}/ssh`, `/api/workspaces/${WS}/docs?path=README.md`]) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${server.url.replace('http', 'ws')}${path}`, { headers: { cookie } });
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
      });
      expect(status, path).toBe(403);
    }
  });

  it('refuses forged, garbled and expired links', async () => {
    const link = await share(server, terminal, { role: 'viewer', expiresInSeconds: 600 });
    const [body, mac] = link.token.split('.');
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${Buffer.from(JSON.stringify({ ...claims, role: 'editor' })).toString('base64url')}.${mac}`;
    const otherTerminal = `${Buffer.from(JSON.stringify({ ...claims, tid: other })).toString('base64url')}.${mac}`;
    for (const token of [forged, otherTerminal, 'garbage', `${body}.`, `${body}.${'A'.repeat(43)}`]) {
      expect((await openLink(`${server.url}/s/${token}`)).status).toBe(401);
      expect(await TerminalClient.refusal(server, WS, terminal, { query: `share=${encodeURIComponent(token)}` })).toBe(401);
      expect(await TerminalClient.refusal(server, WS, terminal, { headers: { cookie: `wharf_share=${token}` } })).toBe(401);
    }
    const page = await openLink(`${server.url}/s/garbage`, { accept: 'text/html' });
    expect(page.text).toContain('this share link is not valid');

    const short = await share(server, terminal, { role: 'editor', expiresInSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    const expired = await openLink(short.url, { accept: 'application/json' });
    expect(expired.status).toBe(401);
    expect(JSON.parse(expired.text)).toEqual({ error: { code: 'unauthorized', message: 'this share link has expired' } });
    expect(await TerminalClient.refusal(server, WS, terminal, { query: `share=${short.token}` })).toBe(401);
  });

  it('disconnects a live client when its link expires', async () => {
    const link = await share(server, terminal, { role: 'viewer', expiresInSeconds: 2 });
    const viewer = await TerminalClient.open(server, WS, terminal, { query: `share=${link.token}`, headers: {} });
    expect(await viewer.waitForClose(5000)).toEqual({ code: 4401, reason: 'this share link has expired' });
  });

  it('disconnects the clients of a revoked link at once, and refuses it after a restart', async () => {
    const link = await share(server, terminal, { role: 'editor', expiresInSeconds: 3600 });
    const keep = await share(server, terminal, { role: 'viewer', expiresInSeconds: 3600 });
    const revokedClient = await TerminalClient.open(server, WS, terminal, { query: `share=${link.token}`, headers: {} });
    const keptClient = await TerminalClient.open(server, WS, terminal, { query: `share=${keep.token}`, headers: {} });
    const started = Date.now();
    expect((await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares/${link.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await revokedClient.waitForClose(2000)).toEqual({ code: 4403, reason: 'this share link was revoked' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(keptClient.closed).toBeUndefined();

    const listed = (await (await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares`)).json()) as { shares: Array<Share & { revokedAt?: string }> };
    expect(listed.shares.find((s) => s.id === link.id)?.revokedAt).toBeDefined();
    expect(listed.shares.find((s) => s.id === keep.id)).toMatchObject({ role: 'viewer', url: keep.url, token: keep.token });
    expect((await openLink(link.url)).status).toBe(403);
    expect(await TerminalClient.refusal(server, WS, terminal, { query: `share=${link.token}` })).toBe(401);
    expect((await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares/${link.id}x`, { method: 'DELETE' })).status).toBe(404);
    keptClient.close();

    server = await server.restart({ keepAgents: true });
    expect((await openLink(`${server.url}/s/${link.token}`)).status).toBe(403);
    expect((await openLink(`${server.url}/s/${keep.token}`)).status).toBe(303);
  });

  it('is refused by another replica once revoked on this one', async () => {
    const replica = await startTestServer({ dataDir: server.dataDir });
    try {
      const link = await share(server, terminal, { role: 'viewer', expiresInSeconds: 3600 });
      const onReplica = await TerminalClient.open(replica, WS, terminal, { query: `share=${link.token}`, headers: {} });
      expect(onReplica.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });
      expect((await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares/${link.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await onReplica.waitForClose(8000)).toEqual({ code: 4403, reason: 'this share link was revoked' });
      expect(await TerminalClient.refusal(replica, WS, terminal, { query: `share=${link.token}` })).toBe(401);
    } finally {
      await replica.close({ keepAgents: true });
    }
  });

  it('requires a role and an expiry of at most 7 days', async () => {
    const post = (body: unknown) => server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares`, { method: 'POST', json: body }).then(async (r) => ({ status: r.status, body: await r.json() }));
    expect(await post({ role: 'viewer' })).toEqual({
      status: 400,
      body: { error: { code: 'bad_request', message: '"expiresInSeconds" is required: a whole number from 1 to 604800 (7 days)' } },
    });
    expect((await post({ role: 'viewer', expiresInSeconds: 604801 })).status).toBe(400);
    expect((await post({ role: 'viewer', expiresInSeconds: 1.5 })).status).toBe(400);
    expect((await post({ role: 'owner', expiresInSeconds: 60 })).status).toBe(400);
    expect((await post({ role: 'viewer', expiresInSeconds: 604800 })).status).toBe(201);
    const missing = await server.api(`/api/workspaces/${WS}/terminals/nope/shares`, { method: 'POST', json: { role: 'viewer', expiresInSeconds: 60 } });
    expect(missing.status).toBe(404);
  });

  it('keeps links to two terminals opened in one browser both working', async () => {
    const first = await share(server, terminal, { role: 'editor', expiresInSeconds: 600 });
    const second = await share(server, other, { role: 'viewer', expiresInSeconds: 600 });
    // One cookie jar, as a browser has: the second link adds its cookie beside the first.
    const jar = [cookieOf((await openLink(first.url)).cookie), cookieOf((await openLink(second.url)).cookie)];
    expect(new Set(jar.map((c) => c.split('=')[0])).size).toBe(2);
    for (const cookie of [jar.join('; '), [...jar].reverse().join('; ')]) {
      const a = await TerminalClient.open(server, WS, terminal, { headers: { cookie } });
      expect(a.messages[0]).toMatchObject({ type: 'snapshot', role: 'editor' });
      const b = await TerminalClient.open(server, WS, other, { headers: { cookie } });
      expect(b.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });
      for (const [tid, role] of [[terminal, 'editor'], [other, 'viewer']]) {
        const meta = await fetch(`${server.url}/api/workspaces/${WS}/terminals/${tid}`, { headers: { cookie } });
        expect(await meta.json()).toMatchObject({ id: tid, share: { role } });
      }
      a.close();
      b.close();
    }
    // Neither link reaches beyond its own terminal, together or not.
    expect((await fetch(`${server.url}/api/workspaces/${WS}/terminals`, { headers: { cookie: jar.join('; ') } })).status).toBe(403);
    // Revoking the first leaves the second working in the same browser.
    await server.api(`/api/workspaces/${WS}/terminals/${terminal}/shares/${first.id}`, { method: 'DELETE' });
    expect(await TerminalClient.refusal(server, WS, terminal, { headers: { cookie: jar.join('; ') } })).toBe(403);
    const still = await TerminalClient.open(server, WS, other, { headers: { cookie: jar.join('; ') } });
    expect(still.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });
    still.close();
  });

  it('bounces a cross-site arrival through a page, so the strict cookie is sent', async () => {
    const link = await share(server, terminal, { role: 'viewer', expiresInSeconds: 600 });
    const opened = await openLink(link.url, { 'sec-fetch-site': 'cross-site' });
    expect(opened.status).toBe(200);
    expect(opened.cookie).toMatch(/^wharf_share_[\w-]+=/);
    expect(opened.text).toContain(`<meta http-equiv="refresh" content="0;url=/share/${WS}/${terminal}">`);
  });
});
