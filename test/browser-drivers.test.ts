import { createHash } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt, launchBrowser, openDesktopPage, pageErrors, signIn } from './support/browser.ts';
import { engineRequest, requireEngine, type Engine } from './support/images.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { ensureBusyboxWorkspaceImage, ensureDebianWorkspaceImage } from './support/workspace-images.ts';

// Generous: a busy machine (other suites, two cores) may be slow; a passing run ends far sooner.
const POLL = { timeout: 60_000, interval: 100 };

/**
 * The create form of a server with two drivers (`--driver process,docker`, issue 16): the driver
 * is a choice, the docker driver's image and limits are fields, and the list shows each
 * workspace's driver, image and resources. The limits are checked where they matter too: in the
 * container's HostConfig on the engine.
 */
describe('web UI: creating workspaces on a server with the process and docker drivers', () => {
  let engine: Engine;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let defaultImage: string;
  let busybox: string;

  beforeAll(async () => {
    engine = requireEngine('docker');
    [defaultImage, busybox] = await Promise.all([ensureDebianWorkspaceImage(engine), ensureBusyboxWorkspaceImage(engine), ensureWebBuilt()]);
    // The flags come after the run's driver flags (driver-matrix.ts), so they win on either leg.
    server = await startTestServer({ argv: ['--driver', 'process,docker', '--docker-host', engine.endpoint, '--workspace-image', defaultImage] });
    browser = await launchBrowser();
    page = await openDesktopPage(browser, { width: 1400, height: 900 });
    await signIn(page, server);
  });

  afterAll(async () => {
    await browser?.close();
    // Containers and volumes go with their workspaces.
    for (const name of ['boxed', 'plain', 'by-api']) await server?.api(`/api/workspaces/${name}`, { method: 'DELETE' }).catch(() => {});
    await server?.dispose();
  });

  const row = (name: string) => page.locator(`tr[data-workspace="${name}"]`);
  const cells = async (name: string) => (await row(name).locator('td').allInnerTexts()).map((t) => t.trim());

  it('offers both drivers; docker with an image and limits creates a container with them, and the list shows them', async () => {
    const driver = page.getByLabel('Driver');
    await expect.poll(() => driver.isVisible(), POLL).toBe(true);
    expect(await driver.locator('option').allInnerTexts()).toEqual(['process', 'docker']);
    // The process driver takes no image nor limits: the fields appear with docker.
    await driver.selectOption('process');
    expect(await page.getByLabel('Image').isVisible()).toBe(false);
    await driver.selectOption('docker');
    await expect.poll(() => page.getByLabel('Image').isVisible(), POLL).toBe(true);
    expect(await page.getByLabel('Image').getAttribute('placeholder')).toBe(defaultImage);

    await page.getByLabel('Workspace name').fill('boxed');
    await page.getByLabel('Image').fill(busybox);
    await page.getByLabel('CPUs').fill('0.5');
    await page.getByLabel('Memory').fill('256m');
    await page.getByLabel('Processes').fill('128');
    await page.getByRole('button', { name: 'Create workspace' }).click();

    await expect.poll(() => row('boxed').count(), POLL).toBe(1);
    await expect.poll(async () => (await cells('boxed'))[1], POLL).toBe('running');
    const [name, , driverCell, image, resources] = await cells('boxed');
    expect({ name, driverCell, image, resources }).toEqual({ name: 'boxed', driverCell: 'docker', image: busybox, resources: '0.5 CPUs · 256 MiB memory · 128 processes' });

    // The API and the engine agree with the list.
    const ws = (await (await server.api('/api/workspaces/boxed')).json()) as Record<string, unknown>;
    expect(ws).toMatchObject({ driver: 'docker', status: 'running', image: busybox, resources: { cpus: 0.5, memory: 256 * 1024 ** 2, pids: 128 } });
    const instance = createHash('sha256').update(server.dataDir).digest('hex').slice(0, 12);
    const inspect = await engineRequest(engine, 'GET', `/containers/${encodeURIComponent(`wharf-${instance}-boxed`)}/json`);
    expect(inspect.status).toBe(200);
    const container = JSON.parse(inspect.body.toString()) as { Config: { Image: string }; HostConfig: { NanoCpus: number; Memory: number; PidsLimit: number } };
    expect(container.Config.Image).toBe(busybox);
    expect(container.HostConfig).toMatchObject({ NanoCpus: 500_000_000, Memory: 256 * 1024 ** 2, PidsLimit: 128 });
    expect(pageErrors(page)).toEqual([]);
  });

  it('creates on the process driver when it is chosen: no image, no limits in the list', async () => {
    await page.getByLabel('Driver').selectOption('process');
    await page.getByLabel('Workspace name').fill('plain');
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await expect.poll(() => row('plain').count(), POLL).toBe(1);
    await expect.poll(async () => (await cells('plain'))[1], POLL).toBe('running');
    const [, , driverCell, image, resources] = await cells('plain');
    expect({ driverCell, image, resources }).toEqual({ driverCell: 'process', image: '—', resources: '—' });
    // The docker workspace is still listed as it was.
    expect((await cells('boxed')).slice(2, 5)).toEqual(['docker', busybox, '0.5 CPUs · 256 MiB memory · 128 processes']);
    expect(pageErrors(page)).toEqual([]);
  });

  it('says what is wrong with a limit before anything is created', async () => {
    await page.getByLabel('Driver').selectOption('docker');
    await page.getByLabel('Workspace name').fill('bad-limits');
    await page.getByLabel('Image').fill('');
    await page.getByLabel('CPUs').fill('lots');
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await expect.poll(() => page.getByRole('alert').innerText(), POLL).toContain('CPUs must be a number above 0');
    expect(await row('bad-limits').count()).toBe(0);
    expect((await server.api('/api/workspaces/bad-limits')).status).toBe(404);
  });

  it('takes the same choice through the API: "driver" of the create request, one the server has', async () => {
    const made = await server.api('/api/workspaces', { method: 'POST', json: { name: 'by-api', driver: 'docker', image: busybox } });
    expect(made.status).toBe(201);
    expect(await made.json()).toMatchObject({ id: 'by-api', driver: 'docker', image: busybox });
    const refused = await server.api('/api/workspaces', { method: 'POST', json: { name: 'nowhere', driver: 'kubernetes' } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('driver "kubernetes" is not offered by this server (it has process, docker)');
  });
});
