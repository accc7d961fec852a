import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDesktopPage, pageErrors, signIn, startWebUi } from './support/browser.ts';
import { createWorkspace, type TestServer } from './support/server.ts';

// Generous: a busy machine (other suites, two cores) may be slow; a passing run ends far sooner.
const POLL = { timeout: 60_000, interval: 100 };
const SECRET = 'tok-s3cret-from-the-browser';

/** The Environment panel (hybrid mode's workspace variables, config and secret sets) in a real Chromium. */
describe('web UI: environment', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ({ server, browser } = await startWebUi());
    await createWorkspace(server, 'envui');
    page = await openDesktopPage(browser, { width: 1280, height: 900 });
    await signIn(page, server);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  async function openEnvironment(): Promise<void> {
    await page.goto(`${server.url}/workspaces/envui`);
    await page.getByRole('tab', { name: 'Environment' }).click();
    await page.locator('.env-panel').waitFor({ state: 'visible', timeout: POLL.timeout });
  }

  /** Everything the page holds as text or in an input, where a secret value must never be. */
  const pageText = () => page.evaluate(() => document.body.innerHTML + [...document.querySelectorAll('input')].map((i) => i.value).join('\n'));

  it('saves a secret set, then shows its value only as •••• — after a reload too — and a workspace variable in full', async () => {
    await openEnvironment();
    await expect.poll(() => page.locator('.env-panel').textContent(), POLL).toContain('No secret sets.');

    await page.getByRole('button', { name: 'New secret set' }).click();
    await page.getByRole('dialog').getByLabel('Name').fill('creds');
    await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    const set = page.locator('.env-set[data-set="creds"]');
    await set.getByLabel('Variable name').fill('API_TOKEN');
    await set.getByLabel('Value').fill(SECRET);
    await set.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => set.locator('.env-row[data-key="API_TOKEN"] .env-masked').textContent(), POLL).toBe('••••');
    expect(await pageText()).not.toContain(SECRET);

    // The workspace's own variables are not secret: shown as they are.
    const spec = page.locator('.env-section').first();
    await spec.getByRole('button', { name: 'Add variable' }).click();
    await spec.getByLabel('Variable name').last().fill('LOG_LEVEL');
    await spec.getByLabel('Value').last().fill('debug');
    await spec.getByRole('button', { name: 'Save' }).click();
    await expect.poll(async () => (await server.api('/api/workspaces/envui/env')).json(), POLL).toEqual({ variables: { LOG_LEVEL: 'debug' } });

    await page.reload();
    await page.getByRole('tab', { name: 'Environment' }).click();
    const reloaded = page.locator('.env-set[data-set="creds"] .env-row[data-key="API_TOKEN"]');
    await expect.poll(() => reloaded.locator('.env-masked').textContent(), POLL).toBe('••••');
    await expect.poll(() => page.locator('.env-section').first().getByLabel('Value').first().inputValue(), POLL).toBe('debug');
    expect(await pageText()).not.toContain(SECRET);

    // Replacing the value keeps it write-only; the API lists the name, never the value.
    await reloaded.getByRole('button', { name: 'Replace' }).click();
    await reloaded.getByLabel('New value of API_TOKEN').fill(`${SECRET}-2`);
    await page.locator('.env-set[data-set="creds"]').getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('.env-set[data-set="creds"] .env-row[data-key="API_TOKEN"] .env-masked').count(), POLL).toBe(1);
    const listed = await (await server.api('/api/workspaces/envui/secret-sets')).text();
    expect(JSON.parse(listed)).toEqual({ sets: [{ name: 'creds', keys: ['API_TOKEN'] }] });
    expect(listed).not.toContain(SECRET);
    expect(pageErrors(page)).toEqual([]);
  }, 180_000);
});
