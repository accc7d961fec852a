import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DocClient, DocClients, disconnectAll, eventually, expectEverywhere } from './support/doc-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import type { WorkspaceFs } from './support/workspace-fs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('live editing', () => {
  let server: TestServer;
  /** The workspace's files as its programs see them, on any driver. */
  let files: WorkspaceFs;
  const ws = 'live';
  const docs = new DocClients(ws);
  const client = (path: string, name?: string) => docs.client(server, path, name);

  beforeAll(async () => {
    server = await startTestServer({ workspaces: [ws] });
    files = docs.files(server);
  });
  afterAll(async () => {
    docs.destroyAll();
    await server.dispose();
  });

  it('lets two clients converge, shows who is here, and saves to disk', async () => {
    const [a, b] = await docs.openFile(server, 'hello.txt', 'hello world\n', ['ann', 'bob']);
    expect(a.notice('state')).toEqual({ type: 'state', readOnly: false, size: 12 });
    expect(a.text.toString()).toBe('hello world\n');
    a.setUser('#f00');
    b.setUser('#00f');

    a.text.insert(5, ',');
    b.text.insert(b.text.length - 1, '!');
    await expectEverywhere('hello, world!\n', [a, b], files.at('hello.txt'));
    await eventually(() => expect(a.notice('saved')).toMatchObject({ type: 'saved', at: expect.any(Number) }));

    const users = (c: DocClient) => [...c.awareness.getStates().values()].map((s) => (s.user as { name: string } | undefined)?.name).sort();
    await eventually(() => expect(users(a)).toEqual(['ann', 'bob']));
    await eventually(() => expect(users(b)).toEqual(['ann', 'bob']));
    await b.disconnect();
    await eventually(() => expect(users(a)).toEqual(['ann']));
    await a.disconnect();
  });

  it('keeps the file mode and never takes its own saves for outside changes', async () => {
    const path = 'script.sh';
    await files.write(path, '#!/bin/sh\n');
    await files.sh(`chmod 751 ${path}`);
    const a = await client('script.sh').open();
    const b = await client('script.sh').open();
    const loadedBy = new Set(b.doc.store.clients.keys());
    let typed = '';
    for (let i = 0; i < 300; i++) {
      const ch = String.fromCharCode(97 + (i % 26));
      a.text.insert(a.text.length, ch);
      typed += ch;
      if (i % 20 === 0) await sleep(7);
    }
    const expected = `#!/bin/sh\n${typed}`;
    await eventually(() => expect(b.text.toString()).toBe(expected));
    await eventually(async () => expect(await files.readText(path)).toBe(expected));
    // Give the watcher time to report every one of our own saves.
    await sleep(300);
    expect(a.text.toString()).toBe(expected);
    expect(await files.readText(path)).toBe(expected);
    expect((await files.stat(path)).mode & 0o7777).toBe(0o751);
    // Had the agent mistaken a save for an outside change, it would have edited under its own client id.
    expect([...b.doc.store.clients.keys()].filter((id) => !loadedBy.has(id))).toEqual([a.doc.clientID]);
    expect(a.notices.filter((n) => n.type === 'saved').length).toBeGreaterThan(0);
    await disconnectAll([a, b]);
  });

  it('merges changes made on disk into the document while someone types', async () => {
    const path = files.at('notes.md');
    const [a, b] = await docs.openFile(server, 'notes.md', 'alpha\nbeta\ngamma\n');

    // Another program rewrites the file, and a types before the agent has taken that in: the
    // agent merges the disk change (diffed against its last save) with the unsaved typing,
    // whichever of the two it handles first.
    await files.write(path.path, 'ALPHA\nbeta\ngamma\n');
    a.text.insert(a.text.length, 'delta\n');
    const first = 'ALPHA\nbeta\ngamma\ndelta\n';
    await expectEverywhere(first, [a, b], path);

    // A terminal in the workspace edits the file while b keeps typing.
    const sed = await files.run("sed -i 's/beta/BETA/' notes.md");
    expect(sed.code).toBe(0);
    for (let i = 0; i < 10; i++) {
      b.text.insert(b.text.length, `${i}`);
      await sleep(4);
    }
    const second = 'ALPHA\nBETA\ngamma\ndelta\n0123456789';
    await expectEverywhere(second, [a, b], path);
    await disconnectAll([a, b]);
  });

  it('shows a change another program writes just after the agent saved', async () => {
    const [a, b] = await docs.openFile(server, 'todo.md', 'first\n');
    // The watcher reports a file at most once per 50 ms: a write landing in that window after
    // the report of our own save must still reach the editors.
    for (const [round, delay] of [5, 15, 25, 35, 45].entries()) {
      // The writing program waits in the workspace beforehand, so the write lands `delay` ms after the report.
      const write = await files.prepareWrite('todo.md');
      const saves = a.notices.filter((n) => n.type === 'saved').length;
      a.text.insert(a.text.length, `typed ${round}\n`);
      await eventually(() => expect(a.notices.filter((n) => n.type === 'saved').length).toBeGreaterThan(saves));
      await sleep(delay);
      const outside = `${a.text.toString()}from disk ${round}\n`;
      await write(outside);
      await eventually(() => {
        expect(a.text.toString()).toBe(outside);
        expect(b.text.toString()).toBe(outside);
      }, 2000);
    }
    await disconnectAll([a, b]);
  });

  it('merges what a client typed while disconnected, also after the document was closed', async () => {
    const [a, b] = await docs.openFile(server, 'offline.txt', 'one\n');
    await a.disconnect();
    a.text.insert(0, 'A:');
    b.text.insert(b.text.length, 'B\n');
    await sleep(50);
    await a.open();
    await expectEverywhere('A:one\nB\n', [a, b], files.at('offline.txt'));
    await disconnectAll([a, b]);

    // Alone: when it disconnects the agent saves and closes the document; its copy must still merge.
    await files.write('solo.txt', 'solo\n');
    const c = await client('solo.txt').open();
    c.text.insert(4, '!');
    await eventually(async () => expect(await files.readText('solo.txt')).toBe('solo!\n'));
    await c.disconnect();
    c.text.insert(0, '>> ');
    await sleep(100);
    await c.open();
    await eventually(async () => expect(await files.readText('solo.txt')).toBe('>> solo!\n'));
    expect(c.text.toString()).toBe('>> solo!\n');
    await c.disconnect();
  });

  it('opens binary and oversized files read-only and never writes them', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    await files.write('logo.png', png);
    const latin1 = Buffer.from('caf\xe9\n', 'latin1');
    await files.write('latin1.txt', latin1);
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 'a');
    await files.write('big.txt', big);

    for (const [name, bytes, reason] of [['logo.png', png, 'binary'], ['latin1.txt', latin1, 'binary'], ['big.txt', big, 'too_large']] as const) {
      const c = await client(name).open();
      expect(c.notice('state')).toEqual({ type: 'state', readOnly: true, reason, size: bytes.length });
      const peer = await client(name).open();
      c.text.insert(0, 'overwrite');
      await eventually(() => expect(c.notice('error')).toMatchObject({ type: 'error', message: expect.stringContaining('read-only') }));
      await sleep(100);
      expect(peer.text.toString()).toBe('');
      expect((await files.read(name)).equals(bytes)).toBe(true);
      await disconnectAll([c, peer]);
    }
  });

  it('closes a deleted file\'s document with a notice', async () => {
    const [a, b] = await docs.openFile(server, 'doomed.txt', 'bye\n');
    await files.sh('rm doomed.txt');
    for (const c of [a, b]) {
      expect((await c.waitClosed()).code).toBe(1000);
      expect(c.notice('deleted')).toEqual({ type: 'deleted' });
    }
    await sleep(100);
    expect(await files.exists('doomed.txt')).toBe(false);
    await expect(files.read('doomed.txt')).rejects.toThrow(/ENOENT/);

    // The whole folder goes, from a terminal.
    await files.write('tmpdir/deep/note.txt', 'note\n');
    const c = await client('tmpdir/deep/note.txt').open();
    expect((await files.run('rm -rf tmpdir')).code).toBe(0);
    expect((await c.waitClosed()).code).toBe(1000);
    expect(c.notice('deleted')).toEqual({ type: 'deleted' });
    await sleep(100);
    expect(await files.exists('tmpdir')).toBe(false);
  });

  it('closes only the connection that sent a garbled or oversized message', async () => {
    const [a, b] = await docs.openFile(server, 'shared.txt', 'shared\n');
    const cases: Array<[string, Buffer, number]> = [
      ['garbage update', Buffer.from([0, 2, 5, 1, 2, 3, 4, 5]), 4400],
      ['unknown message type', Buffer.from([42]), 4400],
      ['truncated', Buffer.from([0, 0, 200]), 4400],
      ['bad awareness JSON', Buffer.from([1, 6, 1, 7, 1, 2, 0x7b, 0x7b]), 4400],
      ['over the agent frame limit', Buffer.alloc(9 * 1024 * 1024), 4413],
      ['over the websocket limit', Buffer.alloc(17 * 1024 * 1024), 1009],
    ];
    let expected = 'shared\n';
    for (const [what, message, code] of cases) {
      const bad = await client('shared.txt').open();
      bad.ws?.send(message);
      await eventually(() => expect(bad.closed, what).toBeDefined(), 10_000);
      expect(bad.closed?.code, what).toBe(code);
      a.text.insert(a.text.length, `${what}\n`);
      expected += `${what}\n`;
      await eventually(() => expect(b.text.toString()).toBe(expected));
    }
    await eventually(async () => expect(await files.readText('shared.txt')).toBe(expected));
    expect(a.closed).toBeUndefined();
    expect(b.closed).toBeUndefined();
    // A text frame is not part of the protocol either.
    const texting = await client('shared.txt').open();
    texting.ws?.send('hello');
    expect((await texting.waitClosed()).code).toBe(4400);
    await disconnectAll([a, b]);
  });

  it('refuses paths outside the workspace, symlinks included', async () => {
    await files.sh('ln -s /etc/passwd passwd-link');
    await files.write('real/target.txt', 'target\n');
    await files.sh('ln -s real/target.txt inner-link.txt');
    // The workspace's own /etc/passwd (this machine's on the process driver).
    const passwd = await files.sh('cat /etc/passwd');
    const refused: Array<[string, number]> = [
      ['../workspace.json', 4403],
      ['real/../../workspace.json', 4403],
      ['passwd-link', 4403],
      ['/etc/passwd', 4400],
      ['real', 4400],
      ['missing.txt', 4404],
      ['', 4400],
    ];
    for (const [path, code] of refused) {
      const c = await client(path).open();
      expect((await c.waitClosed()).code, path).toBe(code);
      expect(c.synced).toBe(false);
    }
    expect(await files.sh('cat /etc/passwd')).toBe(passwd);

    // A link that stays inside is edited through: the target changes and the link stays a link.
    const inner = await client('inner-link.txt').open();
    inner.text.insert(0, 'via link: ');
    await eventually(async () => expect(await files.readText('real/target.txt')).toBe('via link: target\n'));
    expect(await files.readlink('inner-link.txt')).toBe('real/target.txt');
    await inner.disconnect();

    const elsewhere = new DocClient(server, 'no-such-workspace', 'hello.txt');
    try {
      await elsewhere.open();
      expect((await elsewhere.waitClosed()).code).toBe(4404);
    } finally {
      elsewhere.destroy();
    }

    const anonymous = new WebSocket(`${server.url.replace('http', 'ws')}/api/workspaces/${ws}/docs?path=hello.txt`);
    const status = await new Promise<number>((resolve) => anonymous.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
  });

  it('skips what .gitignore ignores: no watch on node_modules, and lists ignored names', async () => {
    await files.write('.gitignore', 'node_modules/\n*.log\n');
    await files.write('node_modules/pkg/index.js', 'module.exports = 1;\n');
    await files.write('src/.gitignore', 'generated/\n!keep.log\n');
    await files.write('src/app.ts', 'export const app = 1;\n');
    await files.write('src/debug.log', 'noise\n');
    await files.write('src/keep.log', 'kept\n');
    await files.write('src/generated/out.ts', '// generated\n');
    await files.sh('mkdir -p lib');

    const ignored = async (dir: string) => {
      const res = await server.api(`/api/workspaces/${ws}/ignored?dir=${encodeURIComponent(dir)}`);
      return { status: res.status, body: (await res.json()) as { ignored?: string[] } };
    };
    const top = await ignored('');
    expect(top.status).toBe(200);
    expect(top.body.ignored).toContain('node_modules');
    expect(top.body.ignored).not.toContain('src');
    expect(top.body.ignored).not.toContain('.gitignore');
    expect((await ignored('src')).body.ignored).toEqual(['debug.log', 'generated']);
    expect((await ignored('node_modules')).body.ignored).toEqual(['pkg']);
    expect((await ignored('../')).status).toBe(403);
    expect((await ignored('nowhere')).status).toBe(404);

    // The agent's inotify watches: the tree it edits in, none of what git ignores.
    const app = await client('src/app.ts').open();
    // Read in the workspace: the agent runs each command's shell itself, so the shell's parent is the agent.
    const watchedInodes = async () => {
      const inodes = new Set<number>();
      const info = await files.sh('for f in /proc/$PPID/fdinfo/*; do cat "$f" 2>/dev/null; done; true');
      for (const m of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+)/gm)) inodes.add(parseInt(m[1], 16));
      return inodes;
    };
    const ino = async (rel: string) => (await files.stat(rel)).ino;
    await eventually(async () => {
      const watched = await watchedInodes();
      expect(watched.has(await ino('src'))).toBe(true);
      expect(watched.has(await ino('lib'))).toBe(true);
    }, 15_000);
    const watched = await watchedInodes();
    for (const rel of ['node_modules', 'node_modules/pkg', 'src/generated']) expect(watched.has(await ino(rel)), rel).toBe(false);

    // Writing in an ignored directory costs nothing, yet a file opened there is still kept in sync.
    await files.write('node_modules/pkg/other.js', 'x\n');
    const dep = await client('node_modules/pkg/index.js').open();
    await files.write('node_modules/pkg/index.js', 'module.exports = 2;\n');
    await eventually(() => expect(dep.text.toString()).toBe('module.exports = 2;\n'));
    expect((await watchedInodes()).has(await ino('node_modules'))).toBe(false);
    await disconnectAll([dep, app]);
  });

  it('saves every open document when the workspace stops, and merges after it starts again', async () => {
    const [a, b] = await docs.openFile(server, 'persist.txt', 'v1\n');
    a.text.insert(2, '+edit');
    await eventually(() => expect(b.text.toString()).toBe('v1+edit\n'));
    const stopped = await server.api(`/api/workspaces/${ws}/stop`, { method: 'POST' });
    expect(stopped.status).toBe(200);
    await a.waitClosed();
    await b.waitClosed();

    // Typed while the workspace was down; the restarted agent must merge it, not duplicate the text.
    a.text.insert(0, 'offline ');
    expect((await server.api(`/api/workspaces/${ws}/start`, { method: 'POST' })).status).toBe(200);
    // What the stop saved (read once the workspace is up again: a stopped one has no agent to ask,
    // and with no document open nothing has written the file since).
    expect(await files.readText('persist.txt')).toBe('v1+edit\n');
    await a.open();
    await b.open();
    await expectEverywhere('offline v1+edit\n', [a, b], files.at('persist.txt'));
    await disconnectAll([a, b]);
  });
});
