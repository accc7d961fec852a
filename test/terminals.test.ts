import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';
import { createTerminal, ONE_ANSWER, QUERYING_PROGRAM, TerminalClient } from './support/terminal-client.ts';
import { workspaceRoot } from './support/workspace-fs.ts';

const WS = 'term1';

describe('shared terminals', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    await createWorkspace(server, WS);
  });
  afterAll(() => server?.dispose());

  it('shows two clients of one pty identical screens, and a third joining late the same', async () => {
    const { id } = await createTerminal(server, WS, { cols: 90, rows: 20 });
    const a = await TerminalClient.open(server, WS, id, { query: 'cols=90&rows=20' });
    const b = await TerminalClient.open(server, WS, id, { query: 'cols=90&rows=20' });
    expect(a.messages[0]).toMatchObject({ type: 'snapshot', cols: 90, rows: 20, role: 'editor' });
    a.type("printf '\\033[1;31mred\\033[0m \\033[42mgreen-bg\\033[0m\\n'; seq 1 8; printf 'cursor here:'; printf '\\033[5;30Hplaced'; echo; echo DONE-$((6*7))\r");
    await a.waitForText('DONE-42');
    await b.waitForText('DONE-42');
    expect(await b.serialize()).toBe(await a.serialize());
    expect(await a.serialize()).toMatch(/\x1b\[[0-9;]*31[0-9;]*mred/);
    expect(a.screenText()).toContain('placed');
    const c = await TerminalClient.open(server, WS, id);
    await c.waitForText('DONE-42');
    expect(c.screenText()).toBe(a.screenText());
    expect(await c.serialize()).toBe(await a.serialize());
    // The cursor is where the others have it.
    expect(c.term.buffer.active.cursorY).toBe(a.term.buffer.active.cursorY);
    expect(c.term.buffer.active.cursorX).toBe(a.term.buffer.active.cursorX);
    for (const client of [a, b, c]) client.close();
  });

  it("gives a late joiner vim's full screen, not a replay", async () => {
    const { id } = await createTerminal(server, WS, { cols: 80, rows: 24 });
    const a = await TerminalClient.open(server, WS, id, { query: 'cols=80&rows=24' });
    a.type("printf 'first line of the file\\nsecond line\\n' > notes.txt; vim -u NONE -N -i NONE notes.txt\r");
    await a.waitForText('second line');
    await a.waitForText(/"notes.txt" 2L/);
    expect(a.term.buffer.active.type).toBe('alternate');
    const late = await TerminalClient.open(server, WS, id);
    await late.waitForText('second line');
    expect(late.term.buffer.active.type).toBe('alternate');
    expect(late.screenText()).toBe(a.screenText());
    expect(late.screenText()).toMatch(/^~\s*$/m);
    // Not a replay: the shell command that started vim is not on the late joiner's screen.
    expect(late.screenText()).not.toContain('printf');
    a.type('ifrom vim\x1b');
    await late.waitForText('from vimfirst line');
    a.type(':q!\r');
    await late.waitFor(() => late.term.buffer.active.type === 'normal', 10_000, 'vim to exit');
    // The shell's screen is back. (The command line may wrap where the prompt's length puts it: it differs between drivers.)
    await late.waitFor(() => late.screenText().replace(/\s+/g, '').includes('vim-uNONE-N-iNONEnotes.txt'), 15_000, 'the command line that started vim');
    a.close();
    late.close();
  });

  it("never lets a viewer's keystrokes or size reach the pty", async () => {
    const { id } = await createTerminal(server, WS, { cols: 80, rows: 24 });
    const editor = await TerminalClient.open(server, WS, id, { query: 'cols=80&rows=24' });
    const viewer = await TerminalClient.open(server, WS, id, { query: 'role=viewer&cols=20&rows=5' });
    expect(viewer.messages[0]).toMatchObject({ type: 'snapshot', role: 'viewer' });
    viewer.type('echo VIEWER-TYPED\r');
    await viewer.waitFor(() => viewer.lastMessage('error') !== undefined, 5000, 'the refusal');
    expect(viewer.lastMessage('error')).toEqual({ type: 'error', message: 'viewers cannot type' });
    viewer.sendJson({ type: 'resize', cols: 30, rows: 8 });
    editor.type('stty size; echo EDITOR-$((1+1))\r');
    await editor.waitForText('EDITOR-2');
    await viewer.waitForText('EDITOR-2');
    expect(editor.screenText()).toContain('24 80');
    expect(editor.screenText()).not.toContain('VIEWER-TYPED');
    expect(viewer.screenText()).not.toContain('VIEWER-TYPED');
    // The editor's resize does apply, and every client hears of it.
    editor.sendJson({ type: 'resize', cols: 100, rows: 30 });
    await viewer.waitFor(() => viewer.lastMessage('resize')?.cols === 100, 5000, 'the resize');
    editor.type('stty size\r');
    await editor.waitForText('30 100');
    const info = await (await server.api(`/api/workspaces/${WS}/terminals/${id}`)).json();
    expect(info).toMatchObject({ id, cols: 100, rows: 30, clients: 2 });
    editor.close();
    viewer.close();
  });

  it('sizes the pty to the smallest editor', async () => {
    const { id } = await createTerminal(server, WS, { cols: 120, rows: 40 });
    const big = await TerminalClient.open(server, WS, id, { query: 'cols=120&rows=40' });
    const small = await TerminalClient.open(server, WS, id, { query: 'cols=70&rows=20' });
    await big.waitFor(() => big.lastMessage('resize')?.cols === 70, 5000, 'the shrink');
    small.close();
    await big.waitFor(() => big.lastMessage('resize')?.cols === 120, 5000, 'the growth back');
    big.type('stty size\r');
    await big.waitForText('40 120');
    big.close();
  });

  it('reports the exit code to every client and closes normally', async () => {
    const { id } = await createTerminal(server, WS, { command: 'sh', args: ['-c', 'read line; echo "got $line"; exit 7'] });
    const a = await TerminalClient.open(server, WS, id);
    const viewer = await TerminalClient.open(server, WS, id, { query: 'role=viewer' });
    a.type('hello\r');
    const closed = await viewer.waitForClose();
    expect(closed).toEqual({ code: 1000, reason: 'the terminal exited' });
    expect(viewer.lastMessage('exit')).toEqual({ type: 'exit', code: 7, signal: null });
    expect(a.lastMessage('exit')).toEqual({ type: 'exit', code: 7, signal: null });
    await viewer.waitForText('got hello');
    // Someone arriving afterwards sees the last screen and the exit status at once.
    const after = await TerminalClient.open(server, WS, id);
    await after.waitForClose();
    expect(after.lastMessage('exit')).toEqual({ type: 'exit', code: 7, signal: null });
    await after.waitForText('got hello');
    const listed = (await (await server.api(`/api/workspaces/${WS}/terminals`)).json()) as { terminals: Array<{ id: string; exited?: unknown }> };
    expect(listed.terminals.find((t) => t.id === id)?.exited).toEqual({ code: 7, signal: null });
  });

  it('reports a signal death, and DELETE kills a terminal and removes it', async () => {
    const { id } = await createTerminal(server, WS, { command: 'sh', args: ['-c', 'read x; kill -TERM $$'] });
    const a = await TerminalClient.open(server, WS, id);
    a.type('\r');
    await a.waitForClose();
    expect(a.lastMessage('exit')).toEqual({ type: 'exit', code: null, signal: 'SIGTERM' });
    const other = await createTerminal(server, WS, { command: 'sleep', args: ['600'] });
    const b = await TerminalClient.open(server, WS, other.id);
    expect((await server.api(`/api/workspaces/${WS}/terminals/${other.id}`, { method: 'DELETE' })).status).toBe(204);
    await b.waitForClose();
    expect(b.lastMessage('exit')).toEqual({ type: 'exit', code: null, signal: 'SIGHUP' });
    const listed = (await (await server.api(`/api/workspaces/${WS}/terminals`)).json()) as { terminals: Array<{ id: string }> };
    expect(listed.terminals.map((t) => t.id)).not.toContain(other.id);
    expect((await server.api(`/api/workspaces/${WS}/terminals/${other.id}`)).status).toBe(404);
  });

  it('starts terminals with a command, cwd and env, and refuses bad requests clearly', async () => {
    const shell = await createTerminal(server, WS);
    const a = await TerminalClient.open(server, WS, shell.id);
    a.type('mkdir -p sub/dir && echo MADE\r');
    await a.waitForText('MADE');
    a.close();
    const t = await createTerminal(server, WS, { command: 'sh', args: ['-c', 'pwd; echo "$GREETING"; read x'], cwd: 'sub/dir', env: { GREETING: 'hi there' } });
    expect(t).toMatchObject({ cwd: 'sub/dir', command: expect.stringMatching(/sh -c/) });
    const b = await TerminalClient.open(server, WS, t.id);
    await b.waitForText('hi there');
    expect(b.screenText()).toContain(`${await workspaceRoot(server, WS)}/sub/dir\n`);
    b.close();

    const refused = async (body: unknown) => {
      const res = await server.api(`/api/workspaces/${WS}/terminals`, { method: 'POST', json: body });
      return { status: res.status, message: ((await res.json()) as { error: { message: string } }).error.message };
    };
    expect(await refused({ cwd: '../..' })).toEqual({ status: 400, message: '"cwd" must be inside the workspace' });
    expect(await refused({ cwd: '/etc' })).toEqual({ status: 400, message: '"cwd" must be inside the workspace' });
    expect(await refused({ command: 'no-such-program-xyz' })).toEqual({ status: 400, message: 'command not found: no-such-program-xyz' });
    expect((await refused({ cols: 0 })).status).toBe(400);
    expect((await refused({ args: 'ls' })).status).toBe(400);
    expect((await refused({ env: { 'BAD NAME': 'x' } })).status).toBe(400);
    const garbage = await server.api(`/api/workspaces/${WS}/terminals`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(garbage.status).toBe(400);
    expect((await server.api('/api/workspaces/nope/terminals')).status).toBe(404);
  });

  it('keeps keystrokes typed before the first snapshot arrives', async () => {
    const { id } = await createTerminal(server, WS);
    // A fresh control server has no SSH connection to the agent yet: the first attach waits for
    // the handshake, and what is typed meanwhile must not be lost.
    server = await server.restart({ keepAgents: true });
    const quick = await TerminalClient.open(server, WS, id, { firstMessage: false });
    quick.type('echo EARLY-$((3*3))\r');
    await quick.waitForText('EARLY-9');
    quick.close();
  });

  it('passes a large paste through whole and in order while the program is not reading yet', async () => {
    // 300 KB is far more than the pty takes while `sleep` holds the reader back: the rest waits
    // in the agent and goes in as the program reads.
    const paste = Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(97 + ((i * 7 + (i >> 10)) % 26))).join('');
    const expected = execFileSync('cksum', { input: paste }).toString().trim();
    const { id } = await createTerminal(server, WS, { command: 'sh', args: ['-c', `stty raw -echo; echo READY; sleep 1; head -c ${paste.length} | cksum; sleep 30`] });
    const a = await TerminalClient.open(server, WS, id);
    await a.waitForText('READY');
    a.type(paste);
    await a.waitForText(expected);
    a.close();
  });

  it("answers a program's terminal queries once, from the screen beside the pty", async () => {
    const { id } = await createTerminal(server, WS, { command: process.execPath, args: ['-e', QUERYING_PROGRAM], cols: 80, rows: 24 });
    const a = await TerminalClient.open(server, WS, id, { query: 'cols=80&rows=24' });
    const b = await TerminalClient.open(server, WS, id, { query: 'cols=80&rows=24' });
    a.type('g');
    await a.waitForText('REPLIES=');
    // One answer each, though two editors are attached: the CPR reports where the output put the cursor.
    expect(a.screenText()).toContain(ONE_ANSWER);
    await b.waitForText('REPLIES=');
    a.close();
    b.close();
  });

  it('stops answering a program that floods queries and reads none of the answers', async () => {
    // 100,000 cursor position queries (600 KB of answers), unread for 2 s, then whatever came.
    const program = [
      'process.stdin.setRawMode(true);',
      'process.stdout.write("\\x1b[6n".repeat(100000), () => setTimeout(() => {',
      '  let got = 0;',
      '  process.stdin.on("data", (d) => (got += d.length));',
      '  setTimeout(() => { process.stdout.write("\\r\\nGOT=" + got + "=\\r\\n"); process.exit(0); }, 1000);',
      '}, 2000));',
    ].join('\n');
    const { id } = await createTerminal(server, WS, { command: process.execPath, args: ['-e', program], cols: 80, rows: 24 });
    const a = await TerminalClient.open(server, WS, id, { query: 'cols=80&rows=24' });
    await a.waitForText(/GOT=\d+=/, 20_000);
    const got = Number(/GOT=(\d+)=/.exec(a.screenText())?.[1]);
    // Answers were given until 64 KB waited for the program (plus what the kernel holds), then dropped.
    expect(got).toBeGreaterThan(60_000);
    expect(got).toBeLessThan(100_000);
    await a.waitFor(() => a.lastMessage('exit') !== undefined, 5000, 'the exit');
    expect(a.lastMessage('exit')).toMatchObject({ code: 0 });
    a.close();
  });

  it('answers garbled client messages with an error and keeps the session', async () => {
    const { id } = await createTerminal(server, WS);
    const a = await TerminalClient.open(server, WS, id);
    a.ws.send('{"type": "resize", "cols": "wide"}');
    a.ws.send('this is not json');
    a.ws.send(JSON.stringify({ type: 'dance' }));
    a.ws.send(`{"pad":"${'x'.repeat(10_000)}"}`);
    await a.waitFor(() => a.messages.filter((m) => m.type === 'error').length === 4, 5000, 'four errors');
    expect(a.messages.filter((m) => m.type === 'error').map((m) => m.message)).toEqual([
      'resize needs integer "cols" and "rows" from 1 to 1000',
      'text messages must be JSON, e.g. {"type":"resize","cols":80,"rows":24}; send input as binary frames',
      'unknown message type "dance"',
      'control messages are limited to 4096 bytes; send input as binary frames',
    ]);
    a.type('echo STILL-$((2+3))\r');
    await a.waitForText('STILL-5');
    // An acknowledgement from a client that did not ask for flow control is refused, not obeyed.
    a.sendJson({ type: 'ack', bytes: 10 });
    await a.waitFor(() => a.lastMessage('error')?.message === 'acknowledgements need "flow=ack" on the attach URL', 5000, 'the refusal');
    a.close();
    const unknown = await TerminalClient.open(server, WS, 'does-not-exist');
    expect(await unknown.waitForClose()).toEqual({ code: 4404, reason: 'no terminal "does-not-exist" in this workspace' });
    const badSize = await TerminalClient.open(server, WS, id, { query: 'cols=abc&rows=10' });
    expect((await badSize.waitForClose()).code).toBe(4400);
    const badFlow = await TerminalClient.open(server, WS, id, { query: 'flow=fast' });
    expect(await badFlow.waitForClose()).toEqual({ code: 4400, reason: '"flow" can only be "ack" (acknowledge rendered output) or left out' });
  });
});
