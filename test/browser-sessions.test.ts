import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/common/index.ts';
import { openDesktopPage, pageErrors, signIn, startWebUi } from './support/browser.ts';
import { sshOverTunnel, type TestServer } from './support/server.ts';

/** The helper sessions dialog in a real Chromium: what `wharf up` links look like, and ending one. */
describe('web UI: helper sessions', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ({ server, browser } = await startWebUi({ workspaces: ['bridge'] }));
    page = await openDesktopPage(browser);
    await signIn(page, server);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('lists a connected helper with its rules, and ends it: its SSH connection closes', async () => {
    const key = generateKeyPair('laptop');
    const reg = await server.api('/api/workspaces/bridge/session-keys', { method: 'POST', json: { publicKey: key.publicKey, label: 'wharf up api (dev@laptop)', forward: ['db:5432'], reverse: [9000] } });
    expect(reg.status).toBe(201);
    const client = await sshOverTunnel(server, 'bridge', key.privateKey);
    client.on('error', () => {});
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));

    await page.goto(`${server.url}/workspaces/bridge`);
    await page.getByRole('button', { name: 'Sessions' }).click();
    const dialog = page.getByRole('dialog', { name: 'Helper sessions' });
    const row = dialog.locator('.session-row', { hasText: 'wharf up api (dev@laptop)' });
    await row.waitFor({ timeout: 30_000 });
    await expect.poll(() => row.innerText(), { timeout: 30_000 }).toMatch(/forward → db:5432, reverse workspace:9000[\s\S]*1 connection\b/);

    await row.getByRole('button', { name: 'End' }).click();
    await page.getByRole('dialog', { name: 'End session' }).getByRole('button', { name: 'End session' }).click();
    await closed;
    await expect.poll(() => dialog.locator('.session-row').count(), { timeout: 30_000 }).toBe(0);
    await expect.poll(() => dialog.innerText(), { timeout: 30_000 }).toMatch(/No helper is connected/);
    expect(pageErrors(page)).toEqual([]);
  });
});
