import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type ssh2 from 'ssh2';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPage, pageErrors, signIn, startWebUi } from './support/browser.ts';
import { BIG_BYTES, expectedBigChecksum, PREVIEW_APP_SOURCE } from './support/preview-app.ts';
import { filesDirOf, sshThroughServer, type TestServer } from './support/server.ts';

/** A plain HTTP request to the server naming `host` (fetch() does not let a caller set Host). */
function requestAs(server: TestServer, host: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(new URL(server.url).port), path, headers: { ...headers, host } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Previews of a workspace port, from a real Chromium against a real server and agent: a small
 * dev server runs inside the workspace and is reached by path and by host (`*.preview.test` is
 * resolved to 127.0.0.1 by Chromium itself, so nothing leaves the machine).
 */
const DOMAIN = 'preview.test';
const POLL = { timeout: 20_000, interval: 100 };

type RunningApp = { port: number; stop(): Promise<void> };

/** Starts the preview app in the workspace over SSH; closing the channel ends it (SIGHUP). */
async function startApp(client: ssh2.Client): Promise<RunningApp> {
  return new Promise((resolve, reject) => {
    client.exec(`exec ${JSON.stringify(process.execPath)} preview-app.cjs`, (err, channel) => {
      if (err) return reject(err);
      let out = '';
      channel.stderr.on('data', (d: Buffer) => (out += d));
      channel.on('data', (d: Buffer) => {
        out += d;
        const match = /listening (\d+) (\d+)/.exec(out);
        if (match) {
          const closed = new Promise<void>((done) => channel.once('close', () => done()));
          resolve({
            port: Number(match[1]),
            // The process driver without a sandbox runs workspace processes as ours, on this machine.
            stop: async () => {
              try {
                process.kill(Number(match[2]), 'SIGTERM');
              } catch {
                return; // gone already
              }
              void closed; // the port going away is what the tests wait for
            },
          });
        }
      });
      channel.on('close', () => reject(new Error(`the preview app ended: ${out}`)));
    });
  });
}

describe('previews of workspace ports', { shuffle: false }, () => {
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ssh: ssh2.Client;
  let app: RunningApp;
  let pathUrl: string;
  let hostUrl: string;
  const expectedChecksum = expectedBigChecksum();

  beforeAll(async () => {
    ({ server, browser } = await startWebUi({ workspaces: ['prev'], argv: ['--preview-domain', DOMAIN] }, [`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`]));
    await writeFile(join(filesDirOf(server, 'prev'), 'preview-app.cjs'), PREVIEW_APP_SOURCE);
    ssh = await sshThroughServer(server, 'prev');
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await openPage(context);
    await signIn(page, server);
  });

  afterAll(async () => {
    await app?.stop().catch(() => {});
    ssh?.end();
    await browser?.close();
    await server?.dispose();
  });

  it('shows a new port in the Ports panel with its process, and offers to open it', async () => {
    await page.goto(`${server.url}/workspaces/prev`);
    await page.getByRole('tab', { name: 'Ports' }).click();
    // Ports already listening when the panel's first list arrives are not news: the app must
    // start after that list, or a slow machine would list it there and never announce it.
    await expect.poll(() => page.locator('.ports-status').textContent(), POLL).toContain('Nothing in the workspace listens');
    app = await startApp(ssh);
    const row = page.locator(`.ports-list [data-port="${app.port}"]`);
    await row.waitFor({ timeout: POLL.timeout });
    expect(await row.textContent()).toContain('node');
    await expect.poll(() => page.locator('.toast').allTextContents(), POLL).toContainEqual(expect.stringContaining(`port ${app.port} is now listening`));
    pathUrl = `${server.url}/api/workspaces/prev/ports/${app.port}/`;
    hostUrl = `${server.url.replace('127.0.0.1', `${app.port}--prev.${DOMAIN}`)}/`;
    expect(await row.getByRole('link', { name: 'Open' }).getAttribute('href')).toBe(hostUrl);
  });

  async function checkPreviewPage(preview: Page, url: string): Promise<void> {
    await preview.goto(url);
    await preview.locator('#title').waitFor();
    expect(await preview.locator('#title').textContent()).toBe('hello from the workspace');
    await expect.poll(() => preview.locator('#ws').textContent(), POLL).toBe('echo: ping');
    const sum = await preview.evaluate(async () => {
      const res = await fetch('big');
      const reader = res.body!.getReader();
      let h = 0;
      let length = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let i = 0; i < value.length; i++) h = (Math.imul(h, 31) + value[i]) >>> 0;
        length += value.length;
      }
      return { h, length, status: res.status };
    });
    expect(sum).toEqual({ h: expectedChecksum, length: BIG_BYTES, status: 200 });
    expect(pageErrors(preview)).toEqual([]);
  }

  it('serves the app by path: page, websocket echo, a 50 MB download intact', async () => {
    const preview = await openPage(context);
    await checkPreviewPage(preview, pathUrl);
    // The path form shares the IDE's origin: the app sets no cookie there at all.
    const cookies = await context.cookies(server.url);
    expect(cookies.map((c) => c.name)).not.toContain('app');
    expect(cookies.find((c) => c.name === 'wharf_session')?.value).not.toBe('stolen');
    await preview.close();
  });

  it('passes a streaming response and a 32 MB upload through without holding them back', async () => {
    const preview = await openPage(context);
    await preview.goto(pathUrl);
    await preview.locator('#title').waitFor();
    const result = await preview.evaluate(async () => {
      const res = await fetch('stream');
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      // The app sends its last line only after /release: the first must arrive before that.
      const first = await Promise.race([reader.read().then((r) => decoder.decode(r.value)), new Promise<string>((done) => setTimeout(() => done('held back'), 30_000))]);
      await fetch('release');
      let rest = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += decoder.decode(value);
      }
      // 32 MB: Chromium itself uploads at about 25 MB/s on these machines, even straight to the app.
      const upload = await fetch('upload', { method: 'POST', body: new Uint8Array(32 * 1024 * 1024) });
      return { first, rest, uploaded: ((await upload.json()) as { bytes: number }).bytes };
    });
    expect(result).toEqual({ first: 'first\n', rest: 'last\n', uploaded: 32 * 1024 * 1024 });
    await preview.close();
  });

  it('serves the app at the root of its own origin, signed in through the redirect', async () => {
    const preview = await openPage(context);
    await checkPreviewPage(preview, hostUrl);
    expect(new URL(preview.url()).pathname).toBe('/');
    // The preview origin got its own cookie and the app's host-only ones; never the IDE's session.
    const cookies = await context.cookies(hostUrl);
    const names = cookies.map((c) => c.name);
    expect(names).toContain('wharf_preview');
    expect(names).toContain('app');
    expect(names).not.toContain('wharf_session');
    expect(cookies.find((c) => c.name === 'wide')?.domain).toBe(new URL(hostUrl).hostname);
    // And the app never sees wharf's cookies.
    const seen = await preview.evaluate(async () => (await fetch('/headers')).json());
    expect(String(seen.cookie ?? '')).not.toContain('wharf_');
    expect(seen.host).toBe(`localhost:${app.port}`);
    await preview.close();
  });

  it('refuses an unauthenticated request, a port nobody listens on, a garbled port, a foreign Origin and a forged link', async () => {
    // No credentials: by path, and at the preview origin (which sends a browser to sign in).
    expect((await fetch(pathUrl)).status).toBe(401);
    const previewHost = new URL(hostUrl).host;
    const bare = await requestAs(server, previewHost, '/');
    expect(bare.status).toBe(401);
    const html = await requestAs(server, previewHost, '/x', { accept: 'text/html' });
    expect(html.status).toBe(302);
    expect(html.location).toBe(`${server.url}/api/preview-auth?to=${encodeURIComponent(`${hostUrl}x`)}`);
    // A preview host's IDE-looking path is the app's, never the IDE's API.
    const notIde = await requestAs(server, previewHost, '/api/workspaces', { authorization: `Bearer ${server.token}` });
    expect(notIde.body).toContain('no such page in the app');
    // A host under the preview domain that names no port.
    expect((await requestAs(server, `nope.${DOMAIN}`, '/')).status).toBe(400);
    // A port nobody listens on (the agent refuses the server's channel to it).
    const closed = await server.api('/api/workspaces/prev/ports/1/');
    expect(closed.status).toBe(404);
    expect(await closed.text()).toContain('nothing in workspace "prev" listens on port 1');
    const garbled = await server.api('/api/workspaces/prev/ports/80x/');
    expect(garbled.status).toBe(400);
    expect(await garbled.text()).toContain('is not a port');
    // A bearer token works for programs, and never reaches the app.
    const headers = (await (await server.api(`/api/workspaces/prev/ports/${app.port}/headers`)).json()) as Record<string, string>;
    expect(headers.authorization).toBeUndefined();
    expect(headers['x-forwarded-prefix']).toBe(`/api/workspaces/prev/ports/${app.port}`);
    // A redirect of the app's own points under the prefix.
    const go = await server.api(`/api/workspaces/prev/ports/${app.port}/go`, { redirect: 'manual' });
    expect(go.headers.get('location')).toBe(`/api/workspaces/prev/ports/${app.port}/headers`);
    // Another site's page cannot open the app's websocket with our cookies.
    const cookie = (await context.cookies(server.url)).map((c) => `${c.name}=${c.value}`).join('; ');
    const foreign = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${pathUrl.replace('http', 'ws')}ws`, { headers: { origin: 'http://evil.example', cookie } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    expect(foreign).toBe(403);
    // Nor may a preview origin use the IDE's own websockets.
    const crossed = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/prev/port-events`, { headers: { origin: hostUrl.replace(/\/$/, ''), cookie } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => {});
    });
    expect(crossed).toBe(403);
    // A made-up or altered share link.
    expect((await fetch(`${server.url}/p/not-a-token`)).status).toBe(401);
    const created = (await (await server.api('/api/workspaces/prev/port-shares', { method: 'POST', json: { port: app.port, public: true, expiresInSeconds: 600 } })).json()) as { token: string; id: string };
    const [body] = created.token.split('.');
    const forged = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), port: 1 })).toString('base64url')}.${created.token.split('.')[1]}`;
    expect((await fetch(`${server.url}/p/${forged}`)).status).toBe(401);
    expect((await fetch(pathUrl, { headers: { cookie: `wharf_pshare_${created.id}=${forged}` } })).status).toBe(401);
    await server.api(`/api/workspaces/prev/port-shares/${created.id}`, { method: 'DELETE' });
    // Share links last at most 7 days.
    const tooLong = await server.api('/api/workspaces/prev/port-shares', { method: 'POST', json: { port: app.port, public: true, expiresInSeconds: 8 * 24 * 3600 } });
    expect(tooLong.status).toBe(400);
  });

  it('makes a public share link that opens in a fresh browser without signing in, and stops after revoke', async () => {
    await page.bringToFront();
    await page.locator(`.ports-list [data-port="${app.port}"]`).getByRole('button', { name: 'Share' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Who can open it').selectOption('public');
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const url = await dialog.getByLabel('Share link').inputValue();
    expect(url).toMatch(/\/p\//);
    await expect.poll(() => dialog.locator('.share-list li[data-share]:not([data-revoked])').count(), POLL).toBe(1);

    const guest = await browser.newContext();
    try {
      const visitor = await openPage(guest);
      await visitor.goto(url);
      // With a preview domain the link lands at the port's own origin.
      expect(new URL(visitor.url()).host).toBe(new URL(hostUrl).host);
      await visitor.locator('#title').waitFor();
      await expect.poll(() => visitor.locator('#ws').textContent(), POLL).toBe('echo: ping');
      expect((await guest.cookies(server.url)).map((c) => c.name)).not.toContain('wharf_session');

      // This link's row (the list also holds the one the refusal test made and revoked).
      const shareId = await dialog.locator('.share-list li[data-share]:not([data-revoked])').getAttribute('data-share');
      await dialog.getByRole('button', { name: 'Revoke' }).click();
      await expect.poll(() => dialog.locator(`.share-list li[data-share="${shareId}"][data-revoked]`).count(), POLL).toBe(1);
      // Its open websocket is cut, and its next request is refused.
      await expect.poll(() => visitor.locator('#ws').getAttribute('data-closed'), POLL).not.toBeNull();
      const status = await visitor.evaluate(async () => (await fetch('/headers')).status);
      expect(status).toBe(401);
      expect((await guest.request.get(url, { maxRedirects: 0 })).status()).toBe(403);
    } finally {
      await guest.close();
    }
    await page.keyboard.press('Escape');
  });

  it('takes the port off the Ports panel when its server stops', async () => {
    await app.stop();
    await expect.poll(() => page.locator(`.ports-list [data-port="${app.port}"]`).count(), POLL).toBe(0);
    const gone = await server.api(`/api/workspaces/prev/ports/${app.port}/`);
    expect(gone.status).toBe(404);
    expect(pageErrors(page)).toEqual([]);
  });
});
