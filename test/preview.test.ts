import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type ssh2 from 'ssh2';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPage, pageErrors, signIn, startWebUi, waitForValue } from './support/browser.ts';
import { BIG_BYTES, checksumBytes, expectedBigChecksum, PREVIEW_APP_SOURCE } from './support/preview-app.ts';
import { filesDirOf, sshThroughServer, type TestServer } from './support/server.ts';

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
        const match = /listening (\d+)/.exec(out);
        if (match) {
          resolve({
            port: Number(match[1]),
            stop: () =>
              new Promise<void>((done) => {
                channel.once('close', () => done());
                channel.signal('TERM');
                channel.close();
              }),
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
});
