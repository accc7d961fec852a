import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuilt, launchBrowser, openDesktopPage, pageErrors, signIn } from './support/browser.ts';
import { ensureRunnerImage, requireEngine, RUNNER_IMAGE } from './support/images.ts';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { WorkspaceFs } from './support/workspace-fs.ts';

// Generous: a busy machine (other suites, two cores) may be slow; a passing run ends far sooner.
const POLL = { timeout: 60_000, interval: 100 };

const LOCAL_OK = `deploy:
  remote: false
  commands:
    - name: greet
      command: echo hello from the deploy
    - name: count
      command: for i in 1 2 3; do echo "line $i"; done; echo "to stderr" >&2
`;

const LOCAL_FAILING = `deploy:
  remote: false
  commands:
    - name: first
      command: echo one
    - name: breaks
      command: echo about to fail; exit 3
    - name: never
      command: echo must not run
`;

// The first command's marker would appear 6 s after "started", the second command's at once.
const LOCAL_SLOW = `deploy:
  remote: false
  commands:
    - name: wait
      command: echo started; sleep 6; touch after-sleep
    - name: never
      command: touch second-command
`;

const REMOTE_OK = `deploy:
  image: ${RUNNER_IMAGE}
  commands:
    - name: inside-runner
      command: echo "remote says hi from $(uname -s)"
`;

/** The Deploy button and panel in a real Chromium against a real server (and a real BuildKit). */
// A story in order (one page and one project carried from step to step: each step rewrites the
// manifest and reads the history the ones before left). `shuffle: false` keeps the steps in order
// under --sequence.shuffle; every other suite passes in any order.
describe('web UI: deploy', { shuffle: false }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  // Manifests written and files listed in the workspace, as its programs see it (any driver).
  const fsOf = new Map<string, WorkspaceFs>();
  const workspaceFs = (workspace: string) => fsOf.get(workspace) ?? fsOf.set(workspace, new WorkspaceFs(server, workspace)).get(workspace)!;
  const writeManifest = (workspace: string, manifest: string) => workspaceFs(workspace).write('okteto.yml', manifest);

  beforeAll(async () => {
    const docker = requireEngine('docker');
    await Promise.all([ensureWebBuilt(), ensureRunnerImage(docker)]);
    server = await startTestServer({ argv: ['--builder', docker.endpoint] });
    for (const name of ['shop', 'remote', 'slow']) {
      await createWorkspace(server, name);
    }
    browser = await launchBrowser();
    page = await openDesktopPage(browser, { width: 1280, height: 900 });
    await signIn(page, server);
  });

  afterAll(async () => {
    for (const fs of fsOf.values()) fs.close();
    await browser?.close();
    await server?.dispose();
  });

  /** The whole log as shown, every command unfolded: the message when a run ends the wrong way. */
  async function runLogText(): Promise<string> {
    await page.locator('.run-log .command').evaluateAll((els) => els.forEach((el) => ((el as HTMLDetailsElement).open = true)));
    return page.locator('.deploy-log').innerText();
  }

  const command = (index: number) => page.locator(`.run-log .command[data-index="${index}"]`);

  it('runs the local commands from the Deploy button with a log per command and the final status', async () => {
    await writeManifest('shop', LOCAL_OK);
    await page.goto(`${server.url}/workspaces/shop`);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();

    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), POLL).not.toBe('running');
    expect(await page.locator('.run-log').getAttribute('data-status'), await runLogText()).toBe('succeeded');
    expect(await page.locator('.run-summary').textContent()).toMatch(/^Deploy succeeded in [\d.]+ m?s/);
    expect(await command(1).locator('.command-name').textContent()).toBe('greet');
    expect(await command(1).locator('.command-state').textContent()).toBe('succeeded');
    expect(await command(2).locator('.command-state').textContent()).toBe('succeeded');
    expect(await command(2).locator('.command-duration').textContent()).toMatch(/\d/);
    // The log of each command is its own: open both to read them.
    await command(1).evaluate((el) => ((el as HTMLDetailsElement).open = true));
    await command(2).evaluate((el) => ((el as HTMLDetailsElement).open = true));
    expect(await command(1).locator('.command-output').textContent()).toContain('hello from the deploy');
    expect(await command(1).locator('.command-output').textContent()).not.toContain('line 1');
    expect(await command(2).locator('.command-output').textContent()).toContain('line 1\nline 2\nline 3\n');
    expect(await command(2).locator('.command-output .stderr').textContent()).toContain('to stderr');
    // Local execution is deprecated, and the panel says so.
    expect(await page.locator('.run-note.warning').allTextContents()).toContainEqual(expect.stringMatching(/deprecat/i));
    // Logs fold: a click on a command's header closes it.
    await command(2).locator('summary').click();
    expect(await command(2).evaluate((el) => (el as HTMLDetailsElement).open)).toBe(false);
  });

  it('names the failing command and its exit code, does not run the rest, and keeps the history', async () => {
    await writeManifest('shop', LOCAL_FAILING);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();

    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), POLL).toBe('failed');
    expect(await page.locator('.run-summary').textContent()).toMatch(/command 2 \(breaks\) exited with code 3$/);
    expect(await command(1).locator('.command-state').textContent()).toBe('succeeded');
    expect(await command(2).locator('.command-state').textContent()).toBe('failed (exit 3)');
    expect(await command(2).evaluate((el) => (el as HTMLDetailsElement).open)).toBe(true);
    expect(await command(2).locator('.command-output').textContent()).toContain('about to fail');
    expect(await command(3).locator('.command-state').textContent()).toBe('not run');
    expect(await command(3).locator('.command-output').textContent()).toBe('');

    // Both runs are in the history, newest first; the older one's stored log opens on click.
    await expect.poll(() => page.locator('.deploy-history .history-item').count(), POLL).toBe(2);
    expect(await page.locator('.deploy-history .history-item').evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.status))).toEqual(['failed', 'succeeded']);
    await page.locator('.deploy-history .history-item').nth(1).click();
    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), POLL).toBe('succeeded');
    await command(1).evaluate((el) => ((el as HTMLDetailsElement).open = true));
    expect(await command(1).locator('.command-output').textContent()).toContain('hello from the deploy');
  });

  it('cancels a running deploy after a confirmation: "Cancelling…" while it stops, then Cancelled in the log and the history', async () => {
    await writeManifest('slow', LOCAL_SLOW);
    await page.goto(`${server.url}/workspaces/slow`);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();
    await expect.poll(() => command(1).locator('.command-output').textContent(), POLL).toContain('started');
    const startedAt = Date.now();
    const cancel = page.locator('.run-log').getByRole('button', { name: 'Cancel', exact: true });
    // The same button, whatever it says.
    const cancelButton = page.locator('.run-log .run-cancel');

    // Answering "Keep running" leaves the run alone.
    await cancel.click();
    await page.getByRole('dialog', { name: 'Cancel deploy' }).getByRole('button', { name: 'Keep running' }).click();
    expect(await page.getByRole('dialog').count()).toBe(0);
    expect(await page.locator('.run-log').getAttribute('data-status')).toBe('running');

    // The request is held in the browser for a moment, so the button's in-between state can be seen.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route('**/api/workspaces/slow/deploys/*', async (route) => {
      if (route.request().method() === 'DELETE') await held;
      await route.continue();
    });
    await cancel.click();
    await page.getByRole('dialog', { name: 'Cancel deploy' }).getByRole('button', { name: 'Cancel deploy' }).click();
    await expect.poll(() => cancelButton.textContent(), POLL).toBe('Cancelling…');
    expect(await cancelButton.isDisabled()).toBe(true);
    release();

    // Well before the sleep would have ended on its own.
    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), { timeout: 4000, interval: 100 }).not.toBe('running');
    await page.unroute('**/api/workspaces/slow/deploys/*');
    expect(await page.locator('.run-log').getAttribute('data-status'), await runLogText()).toBe('cancelled');
    expect(await page.locator('.run-log .run-status').textContent()).toBe('cancelled');
    expect(await page.locator('.run-summary').textContent()).toMatch(/^Deploy cancelled after [\d.]+ m?s$/);
    expect(await cancelButton.isHidden()).toBe(true);
    expect(await command(1).locator('.command-state').textContent()).toBe('cancelled');
    expect(await command(2).locator('.command-state').textContent()).toBe('not run');
    expect(await page.locator('[data-cancel-problem]').count()).toBe(0);
    await expect.poll(() => page.getByRole('button', { name: 'Deploy', exact: true }).isEnabled(), POLL).toBe(true);

    // The history lists it as cancelled with its duration, and its stored log says so too.
    const item = page.locator('.deploy-history .history-item').first();
    await expect.poll(() => item.getAttribute('data-status'), POLL).toBe('cancelled');
    expect(await item.locator('.badge').textContent()).toBe('cancelled');
    expect(await item.locator('.muted').textContent()).toMatch(/\d/);
    await page.reload();
    await page.getByRole('tab', { name: 'Deploy' }).click();
    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), POLL).toBe('cancelled');
    expect(await page.locator('.run-summary').textContent()).toMatch(/^Deploy cancelled after/);

    // Past the moment the sleeping command would have finished: it never went on, nor did the next one.
    await new Promise((r) => setTimeout(r, Math.max(0, startedAt + 8000 - Date.now())));
    const files = (await workspaceFs('slow').sh('ls -A')).split('\n').filter(Boolean);
    expect(files).toContain('okteto.yml');
    expect(files.filter((name) => name === 'after-sleep' || name === 'second-command')).toEqual([]);
    expect(pageErrors(page)).toEqual([]);
  });

  it('runs a remote deploy in a BuildKit runner and streams its output', async () => {
    await writeManifest('remote', REMOTE_OK);
    await page.goto(`${server.url}/workspaces/remote`);
    await page.getByRole('button', { name: 'Deploy', exact: true }).click();

    await expect.poll(() => page.locator('.run-log').getAttribute('data-status'), { ...POLL, timeout: 45_000 }).not.toBe('running');
    expect(await page.locator('.run-log').getAttribute('data-status'), await runLogText()).toBe('succeeded');
    expect(await page.locator('.run-note').allTextContents()).toContainEqual(expect.stringContaining(`remotely in ${RUNNER_IMAGE}`));
    await command(1).evaluate((el) => ((el as HTMLDetailsElement).open = true));
    expect(await command(1).locator('.command-output').textContent()).toContain('remote says hi from Linux');
    expect(pageErrors(page)).toEqual([]);
  });
});
