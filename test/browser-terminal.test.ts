import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesktopPage, openPage, pageErrors, readTerminalText, signIn, startWebUi, waitForValue } from './support/browser.ts';
import type { TestServer } from './support/server.ts';
import { WorkspaceFs } from './support/workspace-fs.ts';
import { createTerminal, ONE_ANSWER, QUERYING_PROGRAM, TerminalClient } from './support/terminal-client.ts';

/** The terminal panel in a real Chromium against a real server and real ptys. */
const POLL = { timeout: 10_000, interval: 50 };

// A story in order (one page carried from step to step: its terminal tabs and what was typed into
// them). `shuffle: false` keeps the steps in order under --sequence.shuffle; every other suite
// passes in any order.
describe('web UI: terminals', { shuffle: false }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ({ server, browser } = await startWebUi({ workspaces: ['term'] }));
    page = await openDesktopPage(browser);
    await signIn(page, server);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  const panelTerminal = () => page.locator('.terminal-pane:not([hidden])');

  it('opens a terminal under the editor and runs what is typed', async () => {
    await page.goto(`${server.url}/workspaces/term`);
    await panelTerminal().locator('.xterm').waitFor();
    await waitForValue(() => readTerminalText(page, '.terminal-pane:not([hidden])'), (text) => /[$#]\s*$/m.test(text), { what: 'a shell prompt' });
    await panelTerminal().locator('.xterm').click();
    await page.keyboard.type('echo hi\n');
    const screen = await waitForValue(() => readTerminalText(page, '.terminal-pane:not([hidden])'), (text) => /^hi$/m.test(text), { what: '"hi" on its own line' });
    expect(screen).toContain('echo hi');
    expect(pageErrors(page)).toEqual([]);
  });

  it('keeps several terminal tabs, each its own shell', async () => {
    await page.getByRole('button', { name: 'New terminal' }).click();
    await expect.poll(() => page.locator('.terminal-tabs .tab').count(), POLL).toBe(2);
    await waitForValue(() => readTerminalText(page, '.terminal-pane:not([hidden])'), (text) => /[$#]\s*$/m.test(text), { what: 'a prompt in the second terminal' });
    await panelTerminal().locator('.xterm').click();
    await page.keyboard.type('echo second-$((40+2))\n');
    await waitForValue(() => readTerminalText(page, '.terminal-pane:not([hidden])'), (text) => /^second-42$/m.test(text), { what: 'output in the second terminal' });
    // The first tab still shows its own history, not the second one's.
    await page.locator('.terminal-tabs .tab').first().click();
    const first = await readTerminalText(page, '.terminal-pane:not([hidden])');
    expect(first).toMatch(/^hi$/m);
    expect(first).not.toContain('second-42');
  });

  it('makes a viewer link whose page shows the terminal but cannot type into it', async () => {
    await page.getByRole('button', { name: 'Share' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Role').selectOption('viewer');
    await dialog.getByRole('button', { name: 'Create link' }).click();
    const url = await dialog.getByLabel('Share link').inputValue();
    expect(url).toMatch(/\/s\//);
    await expect.poll(() => dialog.locator('.share-list li[data-share]:not([data-revoked])').count(), POLL).toBe(1);
    await page.keyboard.press('Escape');

    // Someone else, without the admin session, opens the link.
    const guest = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    try {
      const viewer = await openPage(guest);
      await viewer.goto(url);
      await viewer.waitForURL(/\/share\/term\//);
      await expect.poll(() => viewer.locator('.share-role').getAttribute('data-role'), POLL).toBe('viewer');
      expect(await viewer.locator('.share-role').textContent()).toContain('Read-only');
      // The viewer sees what is on the shared screen...
      await waitForValue(() => readTerminalText(viewer), (text) => /^hi$/m.test(text), { what: 'the shared screen in the viewer page' });
      // ...and nothing it types reaches the pty.
      await viewer.locator('.xterm').click();
      await viewer.keyboard.type('echo from-viewer\n');
      await panelTerminal().locator('.xterm').click();
      await page.keyboard.type('echo from-owner\n');
      await waitForValue(() => readTerminalText(viewer), (text) => /^from-owner$/m.test(text), { what: 'the owner\'s later output in the viewer page' });
      expect(await readTerminalText(viewer)).not.toContain('from-viewer');
      expect(await readTerminalText(page, '.terminal-pane:not([hidden])')).not.toContain('from-viewer');
      expect(pageErrors(viewer)).toEqual([]);

      // The viewer cannot reach anything else of the workspace.
      const other = await viewer.evaluate(async () => (await fetch('/api/workspaces/term/terminals')).status);
      expect(other).toBe(403);

      // Revoking the link in the Share dialog disconnects the viewer at once, and says why.
      await page.getByRole('button', { name: 'Share' }).click();
      await dialog.locator('.share-list li[data-share]').getByRole('button', { name: 'Revoke' }).click();
      await expect.poll(() => dialog.locator('.share-list li[data-revoked]').textContent(), POLL).toContain('revoked');
      expect(await dialog.getByRole('button', { name: 'Revoke' }).count()).toBe(0);
      await page.keyboard.press('Escape');
      await expect.poll(() => viewer.locator('.share-state').textContent(), POLL).toContain('revoked');
    } finally {
      await guest.close();
    }
  });

  it("leaves a program's terminal queries to the server: two browser editors, one answer", async () => {
    const { id } = await createTerminal(server, 'term', { command: process.execPath, args: ['-e', QUERYING_PROGRAM], cols: 80, rows: 24 });
    const res = await server.api(`/api/workspaces/term/terminals/${id}/shares`, { method: 'POST', json: { role: 'editor', expiresInSeconds: 600 } });
    const { url } = (await res.json()) as { url: string };
    const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    try {
      // Two xterm.js views, each of which would answer the queries itself.
      const pages = [await openPage(context), await openPage(context)];
      for (const p of pages) {
        await p.goto(url);
        await expect.poll(() => p.locator('.share-role').getAttribute('data-role'), POLL).toBe('editor');
      }
      await pages[0].locator('.xterm').click();
      await pages[0].keyboard.type('g');
      for (const p of pages) {
        const text = await waitForValue(() => readTerminalText(p), (t) => t.includes('REPLIES='), { what: 'the replies the program got' });
        expect(text).toContain(ONE_ANSWER);
        expect(pageErrors(p)).toEqual([]);
      }
    } finally {
      await context.close();
    }
  });

  it('names a tab after the title its program sets, also in a page opened later', async () => {
    await page.goto(`${server.url}/workspaces/term`);
    await panelTerminal().locator('.xterm').waitFor();
    await panelTerminal().locator('.xterm').click();
    await page.keyboard.type("printf '\\033]0;%s\\007' build-logs\n");
    const active = page.locator('.terminal-tabs .tab.active');
    await expect.poll(() => active.locator('.tab-name').textContent(), POLL).toBe('build-logs');
    const id = await active.getAttribute('data-terminal');
    // A page that attaches later gets the title with the screen.
    await page.reload();
    await expect.poll(() => page.locator(`.terminal-tabs .tab[data-terminal="${id}"] .tab-name`).textContent(), POLL).toBe('build-logs');
    expect(pageErrors(page)).toEqual([]);
  });

  it('keeps a slow browser close behind a flood: Ctrl-C and the next command show up at once', async () => {
    const slow = await openDesktopPage(browser);
    try {
      await signIn(slow, server);
      // A machine six times slower than this one.
      const cdp = await slow.context().newCDPSession(slow);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 6 });
      await slow.goto(`${server.url}/workspaces/term`);
      await slow.getByRole('button', { name: 'New terminal' }).click();
      const pane = '.terminal-pane:not([hidden])';
      await waitForValue(() => readTerminalText(slow, pane), (text) => /[$#]\s*$/m.test(text), { what: 'a prompt' });
      // Focus rather than click: a click waits for the element to be stable, which a page on a
      // throttled CPU may take long to be.
      await slow.locator(`${pane} .xterm textarea`).focus();
      await slow.keyboard.type('base64 /dev/urandom\n');
      await new Promise((r) => setTimeout(r, 3000));
      await slow.keyboard.press('Control+C');
      await slow.keyboard.type('echo AFTER-$((2+3))\n');
      // Without flow control the page would first have to render everything the flood produced.
      await waitForValue(() => readTerminalText(slow, pane), (text) => /^AFTER-5$/m.test(text), { what: 'the command after the flood', timeoutMs: 30_000 });
      expect(pageErrors(slow)).toEqual([]);
    } finally {
      await slow.context().close();
    }
  });

  /** Seconds the flood below takes in a terminal read by a client that keeps up (not rendering). */
  async function measureFlood(): Promise<number> {
    const { id } = await createTerminal(server, 'term', { command: 'sh', args: ['-c', 'time -p sh -c "head -c 45000000 /dev/urandom | base64"; echo BASELINE-DONE; read x'] });
    const client = await TerminalClient.open(server, 'term', id);
    client.render = false;
    let tail = '';
    client.onOutput = (data) => (tail = (tail + data.toString('latin1')).slice(-4096));
    try {
      await client.waitFor(() => /BASELINE-DONE/.test(tail), 300_000, 'the baseline flood');
      return Number(/real (\d+(?:\.\d+)?)/.exec(tail)?.[1]);
    } finally {
      client.close();
    }
  }

  it('lets a hidden tab fall behind a flood without holding the program, and shows the current screen when it comes back', { timeout: 900_000 }, async () => {
    const tab = await openDesktopPage(browser);
    try {
      await signIn(tab, server);
      await tab.goto(`${server.url}/workspaces/term`);
      await tab.getByRole('button', { name: 'New terminal' }).click();
      const pane = '.terminal-pane:not([hidden])';
      await waitForValue(() => readTerminalText(tab, pane), (text) => /[$#]\s*$/m.test(text), { what: 'a prompt' });
      await tab.locator(`${pane} .xterm textarea`).focus();
      // The user switches to another tab: the page is told so, and its timers are throttled to
      // one per second, as browsers do (xterm.js parses output in timer-driven slices).
      const setHidden = (hidden: boolean) =>
        tab.evaluate((h) => {
          const w = window as unknown as { realSetTimeout?: typeof setTimeout };
          w.realSetTimeout ??= window.setTimeout.bind(window);
          const real = w.realSetTimeout;
          window.setTimeout = (h ? (fn: () => void, ms?: number) => real(fn, Math.max(ms ?? 0, 1000)) : real) as typeof setTimeout;
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
          document.dispatchEvent(new Event('visibilitychange'));
        }, hidden);
      // How long the same output takes right now with a reader that keeps up (the machine may be
      // busy: the hidden tab is judged against this, not against a fixed number).
      const baseline = await measureFlood();
      await setHidden(true);
      // 60 MB of output: more than xterm.js buffers before it throws output away (50 MB). The
      // program leaves a file when it is done, so the test knows without reading the hidden tab.
      const files = new WorkspaceFs(server, 'term');
      const markerThere = () => files.read('.hidden-done').then(() => true, () => false);
      await tab.keyboard.type('time -p sh -c "head -c 45000000 /dev/urandom | base64"; echo HIDDEN-DONE-$((3+4)); touch .hidden-done\n');
      await waitForValue(markerThere, (done) => done, { what: 'the program to finish while the tab is hidden', timeoutMs: 300_000 });
      await setHidden(false);
      const text = await waitForValue(() => readTerminalText(tab, pane), (t) => /^HIDDEN-DONE-7$/m.test(t), { what: 'the current screen after coming back', timeoutMs: 60_000 });
      // The program was not held back by the tab: it ran about as fast as with a reader that
      // keeps up (2.5 s on a quiet 2-core VM), while a tab parsing one timer slice a second
      // would hold it for minutes.
      expect(Number(/^real (\d+(?:\.\d+)?)/m.exec(text)?.[1])).toBeLessThan(Math.max(15, 3 * baseline));
      expect(pageErrors(tab)).toEqual([]);
    } finally {
      await tab.context().close();
    }
  });
});
