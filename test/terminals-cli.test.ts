import pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from './support/server.ts';
import { createTerminal, ONE_ANSWER, QUERYING_PROGRAM, TerminalClient } from './support/terminal-client.ts';
import { startServerAndHome, WHARF } from './support/wharf-cli.ts';

/** The real helper in a real pty, as someone would run it in their own terminal. */
function runInPty(server: TestServer, home: string, args: string[]) {
  const child = pty.spawn(process.execPath, [WHARF, ...args], {
    cols: 100,
    rows: 30,
    cwd: home,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TERM: 'xterm-256color', WHARF_URL: server.url, WHARF_TOKEN: server.token },
  });
  let output = '';
  const exited = new Promise<number>((r) => child.onExit(({ exitCode }) => r(exitCode)));
  child.onData((d) => (output += d));
  return {
    child,
    exited,
    output: () => output,
    async waitFor(text: string | RegExp, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(typeof text === 'string' ? output.includes(text) : text.test(output))) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)} in:\n${output}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    },
  };
}

async function terminalIds(server: TestServer, workspace: string): Promise<string[]> {
  const listed = (await (await server.api(`/api/workspaces/${workspace}/terminals`)).json()) as { terminals: Array<{ id: string }> };
  return listed.terminals.map((t) => t.id);
}

describe('wharf terminal attach', () => {
  let server: TestServer;
  let home: string;
  beforeAll(async () => {
    ({ server, home } = await startServerAndHome('cli', 'wharf-term-cli-'));
  });
  afterAll(() => server?.dispose());

  it('creates a terminal, types into it, detaches with Ctrl-] and leaves it running', async () => {
    const before = await terminalIds(server, 'cli');
    const run = runInPty(server, home, ['terminal', 'attach', 'cli']);
    await run.waitFor(/attached to terminal [0-9a-f]+ of cli; Ctrl-\] detaches/);
    const id = /attached to terminal ([0-9a-f]+)/.exec(run.output())?.[1] as string;
    expect(before).not.toContain(id);
    run.child.write('echo "from the cli $((6*7))"\r');
    await run.waitFor('from the cli 42');
    // The pty took the helper's terminal size.
    run.child.write('stty size\r');
    await run.waitFor('30 100');
    // A browser attached at the same time sees what the helper typed.
    const browser = await TerminalClient.open(server, 'cli', id);
    await browser.waitForText('from the cli 42');
    browser.close();
    run.child.write('\x1d');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain(`detached; terminal ${id} keeps running`);
    expect(await terminalIds(server, 'cli')).toContain(id);

    // Coming back shows the screen as it was, and the program's exit status ends the helper.
    const again = runInPty(server, home, ['terminal', 'attach', 'cli', id]);
    await again.waitFor('from the cli 42');
    again.child.write('exit 3\r');
    expect(await again.exited).toBe(3);
  });

  it("keeps a program's terminal queries from the local terminal, which would answer them again", async () => {
    const { id } = await createTerminal(server, 'cli', { command: process.execPath, args: ['-e', QUERYING_PROGRAM], cols: 100, rows: 30 });
    const run = runInPty(server, home, ['terminal', 'attach', 'cli', id]);
    // This test plays the local terminal: it answers every query that reaches it.
    run.child.onData((d) => {
      if (d.includes('\x1b[c')) run.child.write('\x1b[?62;22c');
      if (d.includes('\x1b[6n')) run.child.write('\x1b[9;9R');
    });
    await run.waitFor(/attached to terminal/);
    run.child.write('g');
    await run.waitFor('REPLIES=');
    expect(run.output()).toContain(ONE_ANSWER);
    // The rest of the program's output, the cursor move included, does reach the local terminal.
    expect(run.output()).toContain('\x1b[3;7H');
    expect(run.output()).not.toContain('\x1b[6n');
    expect(await run.exited).toBe(0);
  });

  it('lists terminals and explains a wrong id or workspace', async () => {
    const { id } = await createTerminal(server, 'cli', { command: 'sleep', args: ['300'] });
    const list = runInPty(server, home, ['terminal', 'list', 'cli']);
    expect(await list.exited).toBe(0);
    expect(list.output()).toMatch(new RegExp(`${id}\\s+running\\s+0\\s+80x24\\s+\\.\\s+\\S*sleep 300`));
    const wrong = runInPty(server, home, ['terminal', 'attach', 'cli', 'nope']);
    expect(await wrong.exited).toBe(1);
    expect(wrong.output()).toContain('wharf: no terminal "nope" in this workspace');
    const noWorkspace = runInPty(server, home, ['terminal', 'attach', 'missing']);
    expect(await noWorkspace.exited).toBe(1);
    expect(noWorkspace.output()).toContain('no workspace "missing"');
  });
});
