import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page, type WebSocketRoute } from 'playwright-core';
import { startTestServer, type TestServer, type TestServerOptions } from './server.ts';

const repoRoot = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const webRoot = join(repoRoot, 'web');

/** The flags ENGINES.md lists for Debian's Chromium on these machines. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function newestMtime(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, entry)));
  return newest;
}

/** Builds web/dist with `npm run build` when it is missing or older than the UI's sources. */
export async function ensureWebBuilt(): Promise<void> {
  const built = join(webRoot, 'dist', 'index.html');
  if (existsSync(built)) {
    const sources = Math.max(await newestMtime(join(webRoot, 'src')), await newestMtime(join(webRoot, 'index.html')), await newestMtime(join(webRoot, 'vite.config.ts')));
    if ((await stat(built)).mtimeMs >= sources) return;
  }
  await promisify(execFile)('npm', ['run', 'build'], { cwd: repoRoot, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 });
  if (!existsSync(built)) throw new Error(`"npm run build" did not produce ${built}`);
}

/**
 * Starts Debian's Chromium through playwright-core. Playwright gives every launched browser a
 * fresh temporary --user-data-dir of its own (and refuses one passed in `args`).
 */
export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.WHARF_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

/** What a UI test starts with: the web UI built, a real server, and Chromium. */
export async function startWebUi(serverOptions: TestServerOptions = {}, browserArgs: string[] = []): Promise<{ server: TestServer; browser: Browser }> {
  await ensureWebBuilt();
  const server = await startTestServer(serverOptions);
  try {
    return { server, browser: await launchBrowser(browserArgs) };
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

const uncaught = new WeakMap<Page, string[]>();

/** A page whose uncaught errors are collected, so a test can insist there were none. */
export async function openPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  uncaught.set(page, errors);
  return page;
}

/** A page in a browser context of its own (its own cookies), at a desktop window's size. */
export async function openDesktopPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<Page> {
  return openPage(await browser.newContext({ viewport }));
}

export function pageErrors(page: Page): string[] {
  return uncaught.get(page) ?? [];
}

/** Signs in the way a person does: the login page, the token, the button. */
export async function signIn(page: Page, server: TestServer): Promise<void> {
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel('Access token').fill(server.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${server.url}/`);
}

/** A browser context already signed in (the session cookie copied from `from`). */
export async function cloneSession(browser: Browser, from: BrowserContext): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.addCookies(await from.cookies());
  return context;
}

/** The text the Monaco editor of a tab shows (all lines; the files in tests are short). */
export async function readEditorText(page: Page, path: string): Promise<string> {
  return page.locator(`.editor-pane[data-path="${path}"] .view-lines`).evaluate((el) => {
    const lines = [...el.querySelectorAll<HTMLElement>('.view-line')].map((line) => ({ top: parseFloat(line.style.top) || 0, text: (line.textContent ?? '').replace(/\u00a0/g, ' ') }));
    return lines
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text)
      .join('\n');
  });
}

/** Polls until `read` returns what `accept` likes, or fails with the last value seen. */
export async function waitForValue<T>(read: () => Promise<T>, accept: (value: T) => boolean, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (accept(last)) return last;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${options.what ?? 'a value'}; last value: ${JSON.stringify(last)}${lastError ? `; last error: ${(lastError as Error).message}` : ''}`);
}

/** The visible text of an xterm.js terminal (its rows, trailing blanks trimmed). */
export async function readTerminalText(page: Page, scope = 'body'): Promise<string> {
  return page.locator(`${scope} .xterm-rows`).first().evaluate((el) =>
    [...el.children]
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())
      .join('\n')
      .trimEnd(),
  );
}

/**
 * Cuts and restores the network path of a page's websockets whose URL matches `pattern`, the
 * way a dropped Wi-Fi would: live sockets close, and new ones fail until `restore()`.
 */
export async function controlWebSockets(page: Page, pattern: RegExp): Promise<{ drop(): Promise<void>; restore(): void }> {
  let online = true;
  const live = new Set<{ page: WebSocketRoute; server: WebSocketRoute }>();
  await page.routeWebSocket(pattern, (ws) => {
    if (!online) {
      ws.close({ code: 4000, reason: 'network down (test)' });
      return;
    }
    const server = ws.connectToServer();
    const pair = { page: ws, server };
    live.add(pair);
    // With close handlers installed, each side's close must be passed on by hand.
    ws.onClose((code, reason) => {
      live.delete(pair);
      server.close({ code, reason });
    });
    server.onClose((code, reason) => {
      live.delete(pair);
      ws.close({ code, reason });
    });
  });
  return {
    async drop() {
      online = false;
      for (const pair of [...live]) {
        live.delete(pair);
        pair.page.close({ code: 4000, reason: 'network down (test)' });
        pair.server.close({ code: 1001, reason: 'client gone' });
      }
    },
    restore() {
      online = true;
    },
  };
}
