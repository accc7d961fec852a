import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { createTerminal, TerminalClient } from './support/terminal-client.ts';

function agentPid(server: TestServer, workspace: string): number {
  return (JSON.parse(readFileSync(join(server.dataDir, 'workspaces', workspace, 'workspace.json'), 'utf8')) as { agentPid: number }).agentPid;
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * Waits until `done()`, for as long as `progress()` keeps growing: it fails only when nothing
 * moved for `stallMs` (or after `maxMs` in all), so a loaded machine is slow, not failing.
 */
async function waitWhileMoving(progress: () => number, done: () => boolean, what: string, stallMs = 30_000, maxMs = 540_000): Promise<void> {
  const started = Date.now();
  let last = progress();
  let lastMove = Date.now();
  while (!done()) {
    await new Promise((r) => setTimeout(r, 100));
    const now = progress();
    if (now !== last) {
      last = now;
      lastMove = Date.now();
    }
    if (Date.now() - lastMove > stallMs) throw new Error(`${what}: nothing arrived for ${stallMs / 1000} s (at ${last} bytes)`);
    if (Date.now() - started > maxMs) throw new Error(`${what}: still not done after ${maxMs / 1000} s (at ${last} bytes)`);
  }
}

describe('shared terminals under load and across restarts', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The default grace (terminals nobody attaches to live on for a while): a short one would kill
    // a terminal that a loaded machine attaches to a little late. The grace has its own test below.
    server = await startTestServer();
    await createWorkspace(server, 'flow');
  });
  afterAll(() => server?.dispose());

  it('lets 100 MB through to a reading client while another has stopped reading, with bounded agent memory', { timeout: 600_000 }, async () => {
    const { id } = await createTerminal(server, 'flow', { command: 'sh', args: ['-c', 'read go; head -c 75000000 /dev/zero | base64; echo; echo ALL-DONE; read x'] });
    // What the pty must deliver: the echoed go-ahead, then 75 000 000 zero bytes in base64
    // (100 000 000 characters in lines of 76), the empty echo and the last line.
    const line = Buffer.from(`${'A'.repeat(76)}\r\n`);
    const fullLines = Math.floor(100_000_000 / 76);
    const ending = Buffer.from(`${'A'.repeat(100_000_000 - fullLines * 76)}\r\n\r\nALL-DONE\r\n`);
    const expected = Buffer.alloc(2 + fullLines * line.length + ending.length);
    expected.write('\r\n', 0, 'latin1');
    expected.fill(line, 2, 2 + fullLines * line.length);
    ending.copy(expected, 2 + fullLines * line.length);

    const fast = await TerminalClient.open(server, 'flow', id);
    const stalled = await TerminalClient.open(server, 'flow', id);
    // The stalled client stops reading its socket altogether.
    stalled.ws.pause();
    fast.render = false;
    let offset = 0;
    let mismatches = 0;
    fast.onOutput = (data) => {
      if (!data.equals(expected.subarray(offset, offset + data.length))) mismatches++;
      offset += data.length;
    };

    // The stalled client's share would pile up in the agent or in the control server (which runs
    // in this process) if either buffered for it: watch both.
    const pid = agentPid(server, 'flow');
    const baseline = rssBytes(pid);
    const serverBaseline = process.memoryUsage().rss;
    let peak = baseline;
    let serverPeak = serverBaseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(pid));
      serverPeak = Math.max(serverPeak, process.memoryUsage().rss);
    }, 100);
    fast.type('\r');
    // A busy machine may take minutes for 100 MB: what fails is a stream that stops moving.
    await waitWhileMoving(() => offset, () => offset >= expected.length, 'the whole stream');
    clearInterval(sampler);

    // Every byte arrived, in order, exactly once.
    expect(mismatches).toBe(0);
    expect(offset).toBe(expected.length);
    // 100 MB went through; neither process grew by anything like it (what growth there is,
    // is the garbage collector's slack, and it does not grow with the stream).
    expect(peak - baseline).toBeLessThan(80 * 1024 * 1024);
    expect(serverPeak - serverBaseline).toBeLessThan(80 * 1024 * 1024);

    // The stalled client, once it reads again, is resynced to the current screen.
    stalled.ws.resume();
    await stalled.waitFor(() => stalled.lastMessage('resync') !== undefined, 20_000, 'a resync');
    await stalled.waitForText('ALL-DONE', 20_000);
    fast.render = true;
    fast.term.reset();
    fast.close();
    stalled.close();
  });

  it('cuts off a view that stops acknowledging what it rendered, and resyncs it once it catches up', async () => {
    const { id } = await createTerminal(server, 'flow', { command: 'sh', args: ['-c', 'read go; head -c 6000000 /dev/zero | base64; echo ACKED-DONE; read x'] });
    const fast = await TerminalClient.open(server, 'flow', id);
    // A browser-like view: its socket keeps reading, but it acknowledges nothing (a slow machine).
    const slow = await TerminalClient.open(server, 'flow', id, { query: 'flow=ack' });
    fast.render = false;
    slow.render = false;
    let tail = '';
    fast.onOutput = (data) => (tail = (tail + data.toString('latin1')).slice(-64));
    fast.type('\r');
    await fast.waitFor(() => tail.includes('ACKED-DONE'), 30_000, 'the whole stream');
    // The others got 8 MB at full speed; the view that acknowledged nothing got its 1 MiB queue and no more.
    expect(fast.bytes).toBeGreaterThan(8_000_000);
    expect(slow.bytes).toBeGreaterThan(0);
    expect(slow.bytes).toBeLessThan(1.5 * 1024 * 1024);

    // A wrong acknowledgement is refused with a reason and changes nothing.
    slow.sendJson({ type: 'ack', bytes: slow.bytes + 1 });
    await slow.waitFor(() => slow.lastMessage('error') !== undefined, 5000, 'the refusal');
    expect(String(slow.lastMessage('error')?.message)).toMatch(/^ack: "bytes" is more than was sent/);
    // Once it has rendered and acknowledged what it got, it is given the current screen.
    slow.render = true;
    slow.sendJson({ type: 'ack', bytes: slow.bytes });
    await slow.waitFor(() => slow.lastMessage('resync') !== undefined, 10_000, 'a resync');
    await slow.waitForText('ACKED-DONE');
    fast.close();
    slow.close();
  });

  it('pauses the program while its only client is not reading, and resumes it after', async () => {
    const { id } = await createTerminal(server, 'flow', {
      command: 'sh',
      args: ['-c', 'read go; head -c 60000000 /dev/zero | base64; echo finished > done.txt; echo FINISHED; read x'],
    });
    const only = await TerminalClient.open(server, 'flow', id);
    only.render = false;
    only.type('\r');
    await only.waitFor(() => only.bytes > 1_000_000, 20_000, 'output to flow');
    only.ws.pause();
    const pid = agentPid(server, 'flow');
    const baseline = rssBytes(pid);
    await new Promise((r) => setTimeout(r, 2500));
    // 80 MB would take about a second at full speed: the program must be held up by now.
    const shell = await createTerminal(server, 'flow', { command: 'sh', args: ['-c', 'test -e done.txt && echo EXISTS || echo MISSING; read x'] });
    const probe = await TerminalClient.open(server, 'flow', shell.id);
    await probe.waitForText(/EXISTS|MISSING/);
    expect(probe.screenText()).toContain('MISSING');
    expect(rssBytes(pid) - baseline).toBeLessThan(64 * 1024 * 1024);
    probe.close();
    only.render = true;
    only.ws.resume();
    await only.waitForText('FINISHED', 30_000);
    only.close();
  });

  it('keeps a terminal, and its screen, across a control-server restart', async () => {
    const { id } = await createTerminal(server, 'flow', { cols: 80, rows: 24 });
    const before = await TerminalClient.open(server, 'flow', id, { query: 'cols=80&rows=24' });
    before.type('export KEPT=yes; printf "\\033[33mbefore the restart\\033[0m\\n"\r');
    await before.waitForText('before the restart');
    const screenBefore = await before.serialize();

    server = await server.restart({ keepAgents: true });
    expect((await before.waitForClose()).code).not.toBe(1000);

    const listed = (await (await server.api('/api/workspaces/flow/terminals')).json()) as { terminals: Array<{ id: string }> };
    expect(listed.terminals.map((t) => t.id)).toContain(id);
    const after = await TerminalClient.open(server, 'flow', id, { query: 'cols=80&rows=24' });
    await after.waitForText('before the restart');
    expect(await after.serialize()).toBe(screenBefore);
    after.type('echo "still $KEPT"\r');
    await after.waitForText('still yes');
    after.close();
  });

  it('kills a terminal nobody is attached to after the grace time, never one in use', async () => {
    const graceful = await startTestServer({ argv: ['--terminal-grace', '5s'] });
    try {
      await createWorkspace(graceful, 'grace');
      const ids = async () => ((await (await graceful.api('/api/workspaces/grace/terminals')).json()) as { terminals: Array<{ id: string }> }).terminals.map((t) => t.id);
      const until = async (what: string, check: (list: string[]) => boolean) => {
        const deadline = Date.now() + 120_000;
        for (let list = await ids(); !check(list); list = await ids()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      // The one in use is attached first, so it is in use well before the idle one's grace ends.
      const used = await createTerminal(graceful, 'grace');
      const client = await TerminalClient.open(graceful, 'grace', used.id);
      const idle = await createTerminal(graceful, 'grace');
      await until('the idle terminal to be killed', (list) => !list.includes(idle.id));
      expect(await ids()).toContain(used.id);
      client.type('echo ALIVE\r');
      await client.waitForText('ALIVE', 60_000);
      client.close();
      await client.waitForClose();
      // Once nobody is attached, its grace starts too.
      await until('the terminal to be killed once nobody is attached', (list) => !list.includes(used.id));
    } finally {
      await graceful.dispose();
    }
  }, 300_000);
});
