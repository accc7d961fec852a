import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesktopPage, readTerminalText, signIn, startWebUi, waitForValue } from './support/browser.ts';
import type { TestServer } from './support/server.ts';

/**
 * A page served from another port of 127.0.0.1 is "same site" for the browser: it gets the
 * admin's SameSite=Strict cookie sent along. Here such a page, in the admin's own signed-in
 * Chromium, tries what a hostile dev server inside a workspace would.
 */
describe('cross-site requests from another port of the same host', { shuffle: false }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let attacker: Server;
  let attackerUrl: string;

  beforeAll(async () => {
    ({ server, browser } = await startWebUi({ workspaces: ['xs'] }));
    // The hostile page: a form that posts a JSON-looking text/plain body to create a workspace.
    attacker = createServer((req, res) => {
      const target = new URL('/api/workspaces', server.url).href;
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><title>dev server</title>
<form id="f" method="POST" action="${target}" enctype="text/plain"><input name='{"name":"evil-form","x":"' value='"}'></form>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    page = await openDesktopPage(browser);
    await signIn(page, server);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await server?.dispose();
  });

  const workspaceIds = async () => ((await (await server.api('/api/workspaces')).json()) as { workspaces: Array<{ id: string }> }).workspaces.map((w) => w.id);
  const terminalCount = async () => ((await (await server.api('/api/workspaces/xs/terminals')).json()) as { terminals: unknown[] }).terminals.length;

  /** Opens the SSH tunnel websocket from the page and reports what came back first. */
  const openTunnel = (url: string) =>
    page.evaluate(
      (wsUrl) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(wsUrl);
          ws.binaryType = 'arraybuffer';
          ws.onmessage = (e) => {
            resolve(`message:${new TextDecoder().decode(e.data as ArrayBuffer).slice(0, 7)}`);
            ws.close();
          };
          ws.onerror = () => resolve('error');
          ws.onclose = (e) => resolve(`close:${e.code}`);
        }),
      url,
    );

  it('refuses the SSH tunnel websocket, text/plain and form posts from a page on another port', async () => {
    await page.goto(attackerUrl);
    const before = await terminalCount();
    // The session cookie is there for this page to use: the browser sends it to 127.0.0.1.
    expect((await page.context().cookies(server.url)).map((c) => c.name)).toContain('wharf_session');

    // (a) the SSH tunnel: before the fix the page read the agent's "SSH-2.0" banner.
    expect(await openTunnel(`${server.url.replace('http', 'ws')}/api/workspaces/xs/ssh`)).toBe('error');

    // (b) "simple" fetches, which the browser sends without asking the server first (the page
    // cannot read the answer either way; what counts is what the server did).
    await page.evaluate(async (base) => {
      const send = (path: string, body: string, type: string) =>
        fetch(`${base}${path}`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': type }, body }).catch(() => undefined);
      await send('/api/workspaces/xs/terminals', JSON.stringify({ command: 'sh', args: ['-c', 'echo pwned'] }), 'text/plain');
      await send('/api/workspaces', JSON.stringify({ name: 'evil-fetch' }), 'text/plain');
      await send('/api/workspaces', 'name=evil-urlencoded', 'application/x-www-form-urlencoded');
    }, server.url);

    // (c) a plain form post, which navigates the page to the server's answer.
    const [answer] = await Promise.all([page.waitForNavigation(), page.evaluate(() => (document.getElementById('f') as HTMLFormElement).submit())]);
    expect(answer?.status()).toBe(403);
    expect(await answer?.text()).toMatch(/refused/);

    expect(await terminalCount()).toBe(before);
    expect(await workspaceIds()).toEqual(['xs']);
  });

  it('still lets the real UI open the tunnel, create terminals and post JSON', async () => {
    await page.goto(`${server.url}/`);
    expect(await openTunnel(`${server.url.replace('http', 'ws')}/api/workspaces/xs/ssh`)).toBe('message:SSH-2.0');

    // The UI's own terminal panel creates a terminal through the API (with its CSRF header).
    const before = await terminalCount();
    await page.goto(`${server.url}/workspaces/xs`);
    const pane = '.terminal-pane:not([hidden])';
    await page.locator(`${pane} .xterm`).waitFor();
    await waitForValue(() => readTerminalText(page, pane), (text) => /[$#]\s*$/m.test(text), { what: 'a shell prompt' });
    expect(await terminalCount()).toBe(before + 1);

    // The same origin without the CSRF token is refused: the cookie alone is not enough.
    const statuses = await page.evaluate(async () => {
      const csrf = /(?:^|; )wharf_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const create = (name: string, headers: Record<string, string>) =>
        fetch('/api/workspaces', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name }) }).then((r) => r.status);
      return { withoutToken: await create('no-token', {}), withToken: await create('with-token', { 'x-wharf-csrf': decodeURIComponent(csrf) }) };
    });
    expect(statuses).toEqual({ withoutToken: 403, withToken: 201 });
    expect(await workspaceIds()).toEqual(expect.arrayContaining(['xs', 'with-token']));
    expect(await workspaceIds()).not.toContain('no-token');
  });
});
