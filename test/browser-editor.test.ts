import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlWebSockets, openDesktopPage, pageErrors, readEditorText, signIn, startWebUi, waitForValue } from './support/browser.ts';
import type { TestServer } from './support/server.ts';
import { WorkspaceFs } from './support/workspace-fs.ts';

/** Live editing in two real Chromium contexts against a real server, agent and disk. */
const POLL = { timeout: 10_000, interval: 50 };

// A story in order (one person's session: signed in once, the same page and files carried from step
// to step). `shuffle: false` keeps the steps in order under --sequence.shuffle; every other suite
// passes in any order.
describe('web UI: live editing', { shuffle: false }, () => {
  let server: TestServer;
  let browser: Browser;
  let a: Page;
  let b: Page;
  let network: Awaited<ReturnType<typeof controlWebSockets>>;
  /** The workspace's files as its programs see them (the files API, and programs over SSH), on any driver. */
  let files: WorkspaceFs;
  const readDisk = (path: string) => files.readText(path);

  beforeAll(async () => {
    ({ server, browser } = await startWebUi());
    files = new WorkspaceFs(server, 'notes');
    a = await openDesktopPage(browser);
    b = await openDesktopPage(browser);
    network = await controlWebSockets(a, /\/docs\?/);
  });

  afterAll(async () => {
    files?.close();
    await browser?.close();
    await server?.dispose();
  });

  const editorOf = (page: Page, path: string) => page.locator(`.editor-pane[data-path="${path}"] .monaco-editor`);
  const statusOf = (page: Page, item: string) => page.locator(`.statusbar [data-item="${item}"]`).textContent();

  async function typeAtEnd(page: Page, path: string, text: string): Promise<void> {
    await editorOf(page, path).click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type(text);
    // Word suggestions may be open; Escape keeps a later Enter from accepting one.
    await page.keyboard.press('Escape');
  }

  it('signs in, creates a workspace, creates a file and writes what is typed to disk', async () => {
    await signIn(a, server);
    await a.getByLabel('Workspace name').fill('notes');
    await a.getByRole('button', { name: 'Create workspace' }).click();
    await a.locator('a.workspace-link', { hasText: 'notes' }).click();
    await a.waitForURL(/\/workspaces\/notes$/);

    await a.getByRole('button', { name: 'New file', exact: true }).click();
    await a.getByRole('dialog').getByLabel('Name').fill('todo.md');
    await a.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => a.locator('.tab[data-path="todo.md"]').getAttribute('data-sync'), POLL).toBe('synced');
    expect(await statusOf(a, 'language')).toBe('markdown');

    await typeAtEnd(a, 'todo.md', 'first line from A');
    await waitForValue(() => readDisk('todo.md'), (text) => text === 'first line from A', { what: 'the typed text on disk' });
    await expect.poll(() => statusOf(a, 'sync'), POLL).toBe('Synced');
    expect(await statusOf(a, 'connection')).toBe('Connected');
  });

  it('converges with a second person editing the same file, who sees the first one\'s cursor', async () => {
    await b.context().addCookies(await a.context().cookies());
    await b.goto(`${server.url}/workspaces/notes`);
    await b.locator('.tree-row[data-path="todo.md"]').click();
    await waitForValue(() => readEditorText(b, 'todo.md'), (text) => text === 'first line from A', { what: 'the file in B' });

    await typeAtEnd(b, 'todo.md', '');
    await b.keyboard.press('Enter');
    await b.keyboard.type('second line from B');
    await b.keyboard.press('Escape');
    await editorOf(a, 'todo.md').click();
    await a.keyboard.press('Control+Home');
    await a.keyboard.type('> ');

    const expected = '> first line from A\nsecond line from B';
    await waitForValue(() => readEditorText(a, 'todo.md'), (text) => text === expected, { what: 'both edits in A' });
    await waitForValue(() => readEditorText(b, 'todo.md'), (text) => text === expected, { what: 'both edits in B' });
    await waitForValue(() => readDisk('todo.md'), (text) => text === expected, { what: 'both edits on disk' });

    // Each sees the other in the status bar, and the other's cursor flag by name.
    const nameA = (await a.locator('.statusbar .status-button').textContent())!.replace('You: ', '');
    const nameB = (await b.locator('.statusbar .status-button').textContent())!.replace('You: ', '');
    expect(nameA).not.toBe(nameB);
    await expect.poll(() => statusOf(a, 'peers'), POLL).toContain(nameB);
    await expect.poll(() => statusOf(b, 'peers'), POLL).toContain(nameA);
    await expect.poll(() => b.locator('.yRemoteSelectionHead').count(), POLL).toBeGreaterThan(0);
    const flag = await b.locator('.yRemoteSelectionHead').first().evaluate((el) => getComputedStyle(el, '::after').content);
    expect(flag).toBe(JSON.stringify(nameA));
  });

  it('shows a change written to disk by someone else in both editors', async () => {
    await files.write('todo.md', '> first line from A\nsecond line from B\nthird line from disk\n');
    const expected = '> first line from A\nsecond line from B\nthird line from disk\n';
    await waitForValue(() => readEditorText(a, 'todo.md'), (text) => text === expected, { what: 'the disk change in A' });
    await waitForValue(() => readEditorText(b, 'todo.md'), (text) => text === expected, { what: 'the disk change in B' });
  });

  it('keeps typing done while disconnected and merges it when the connection returns', async () => {
    await network.drop();
    await expect.poll(() => statusOf(a, 'connection'), POLL).toContain('Offline');
    await typeAtEnd(a, 'todo.md', 'typed offline by A');
    await expect.poll(() => statusOf(a, 'sync'), POLL).toBe('Edits kept locally');
    // Meanwhile B, still connected, edits the first line.
    await editorOf(b, 'todo.md').click();
    await b.keyboard.press('Control+Home');
    await b.keyboard.type('B was here ');
    await b.keyboard.press('Escape');
    await waitForValue(() => readDisk('todo.md'), (text) => text.startsWith('B was here'), { what: 'B\'s edit on disk' });
    expect(await readDisk('todo.md')).not.toContain('typed offline');

    network.restore();
    const expected = 'B was here > first line from A\nsecond line from B\nthird line from disk\ntyped offline by A';
    await waitForValue(() => readDisk('todo.md'), (text) => text === expected, { what: 'the merged text on disk', timeoutMs: 15_000 });
    await waitForValue(() => readEditorText(a, 'todo.md'), (text) => text === expected, { what: 'the merged text in A' });
    await waitForValue(() => readEditorText(b, 'todo.md'), (text) => text === expected, { what: 'the merged text in B' });
    await expect.poll(() => statusOf(a, 'connection'), POLL).toBe('Connected');
    await expect.poll(() => statusOf(a, 'sync'), POLL).toBe('Synced');
  });

  it('uploads a file dropped from the desktop onto the tree', async () => {
    await a.locator('.file-tree').evaluate((tree) => {
      const data = new DataTransfer();
      data.items.add(new File(['dropped content\n'], 'dropped.txt', { type: 'text/plain' }));
      for (const type of ['dragenter', 'dragover', 'drop']) tree.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await waitForValue(() => readDisk('dropped.txt'), (text) => text === 'dropped content\n', { what: 'the dropped file on disk' });
    await a.locator('.tree-row[data-path="dropped.txt"]').waitFor();
  });

  it('opens a binary file read-only with a notice', async () => {
    await files.write('logo.bin', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x00, 0x01, 0xff, 0x00]));
    await a.getByRole('button', { name: 'Refresh files' }).click();
    await a.locator('.tree-row[data-path="logo.bin"]').click();
    const notice = a.locator('.editor-pane[data-path="logo.bin"] .editor-notice');
    await expect.poll(() => notice.textContent(), POLL).toContain('binary file');
    await expect.poll(() => statusOf(a, 'sync'), POLL).toBe('Read-only');
  });

  it('renames a file through the tree and keeps its tab open under the new name', async () => {
    await a.locator('.tree-row[data-path="todo.md"]').hover();
    await a.getByRole('button', { name: 'Rename todo.md' }).click();
    await a.getByRole('dialog').getByRole('textbox').fill('done.md');
    await a.getByRole('dialog').getByRole('button', { name: 'Rename' }).click();
    await a.locator('.tab[data-path="done.md"]').click();
    expect(await a.locator('.tab[data-path="todo.md"]').count()).toBe(0);
    await waitForValue(() => readEditorText(a, 'done.md'), (text) => text.includes('typed offline by A'), { what: 'the renamed file in its tab' });
  });

  it('closes the tab with a notice when the open file is deleted', async () => {
    await b.locator('.tree-row[data-path="done.md"]').click();
    await b.locator('.tab[data-path="done.md"]').waitFor();
    await files.sh('rm done.md');
    await b.locator('.tab[data-path="done.md"]').waitFor({ state: 'detached' });
    await expect.poll(() => b.locator('.toast').allTextContents(), POLL).toContainEqual(expect.stringContaining('"done.md" was deleted'));
    expect(pageErrors(a)).toEqual([]);
    expect(pageErrors(b)).toEqual([]);
  });
});
