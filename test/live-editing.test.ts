import { chmod, mkdir, readFile, readdir, readlink, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DocClient, DocClients, disconnectAll, eventually, expectEverywhere } from './support/doc-client.ts';
import { execOver, filesDirOf, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('live editing', () => {
  let server: TestServer;
  let files: string;
  const ws = 'live';
  const docs = new DocClients(ws);
  const client = (path: string, name?: string) => docs.client(server, path, name);

  beforeAll(async () => {
    server = await startTestServer({ workspaces: [ws] });
    files = filesDirOf(server, ws);
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
    await expectEverywhere('hello, world!\n', [a, b], join(files, 'hello.txt'));
    await eventually(() => expect(a.notice('saved')).toMatchObject({ type: 'saved', at: expect.any(Number) }));

    const users = (c: DocClient) => [...c.awareness.getStates().values()].map((s) => (s.user as { name: string } | undefined)?.name).sort();
    await eventually(() => expect(users(a)).toEqual(['ann', 'bob']));
    await eventually(() => expect(users(b)).toEqual(['ann', 'bob']));
    await b.disconnect();
    await eventually(() => expect(users(a)).toEqual(['ann']));
    await a.disconnect();
  });

  it('keeps the file mode and never takes its own saves for outside changes', async () => {
    const path = join(files, 'script.sh');
    await writeFile(path, '#!/bin/sh\n');
    await chmod(path, 0o751);
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
    await eventually(async () => expect(await readFile(path, 'utf8')).toBe(expected));
    // Give the watcher time to report every one of our own saves.
    await sleep(300);
    expect(a.text.toString()).toBe(expected);
    expect(await readFile(path, 'utf8')).toBe(expected);
    expect((await stat(path)).mode & 0o7777).toBe(0o751);
    // Had the agent mistaken a save for an outside change, it would have edited under its own client id.
    expect([...b.doc.store.clients.keys()].filter((id) => !loadedBy.has(id))).toEqual([a.doc.clientID]);
    expect(a.notices.filter((n) => n.type === 'saved').length).toBeGreaterThan(0);
    await disconnectAll([a, b]);
  });

  it('merges changes made on disk into the document while someone types', async () => {
    const path = join(files, 'notes.md');
    const [a, b] = await docs.openFile(server, 'notes.md', 'alpha\nbeta\ngamma\n');

    // Another program rewrites the file, and a types before the agent has taken that in: the
    // agent merges the disk change (diffed against its last save) with the unsaved typing,
    // whichever of the two it handles first.
    await writeFile(path, 'ALPHA\nbeta\ngamma\n');
    a.text.insert(a.text.length, 'delta\n');
    const first = 'ALPHA\nbeta\ngamma\ndelta\n';
    await expectEverywhere(first, [a, b], path);

    // A terminal in the workspace edits the file while b keeps typing.
    const ssh = await sshThroughServer(server, ws);
    const sed = await execOver(ssh, "sed -i 's/beta/BETA/' notes.md");
    expect(sed.code).toBe(0);
    for (let i = 0; i < 10; i++) {
      b.text.insert(b.text.length, `${i}`);
      await sleep(4);
    }
    const second = 'ALPHA\nBETA\ngamma\ndelta\n0123456789';
    await expectEverywhere(second, [a, b], path);
    ssh.end();
    await disconnectAll([a, b]);
  });

  it('shows a change another program writes just after the agent saved', async () => {
    const path = join(files, 'todo.md');
    const [a, b] = await docs.openFile(server, 'todo.md', 'first\n');
    // The watcher reports a file at most once per 50 ms: a write landing in that window after
    // the report of our own save must still reach the editors.
    for (const [round, delay] of [5, 15, 25, 35, 45].entries()) {
      const saves = a.notices.filter((n) => n.type === 'saved').length;
      a.text.insert(a.text.length, `typed ${round}\n`);
      await eventually(() => expect(a.notices.filter((n) => n.type === 'saved').length).toBeGreaterThan(saves));
      await sleep(delay);
      const outside = `${a.text.toString()}from disk ${round}\n`;
      await writeFile(path, outside);
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
    await expectEverywhere('A:one\nB\n', [a, b], join(files, 'offline.txt'));
    await disconnectAll([a, b]);

    // Alone: when it disconnects the agent saves and closes the document; its copy must still merge.
    await writeFile(join(files, 'solo.txt'), 'solo\n');
    const c = await client('solo.txt').open();
    c.text.insert(4, '!');
    await eventually(async () => expect(await readFile(join(files, 'solo.txt'), 'utf8')).toBe('solo!\n'));
    await c.disconnect();
    c.text.insert(0, '>> ');
    await sleep(100);
    await c.open();
    await eventually(async () => expect(await readFile(join(files, 'solo.txt'), 'utf8')).toBe('>> solo!\n'));
    expect(c.text.toString()).toBe('>> solo!\n');
    await c.disconnect();
  });

  it('opens binary and oversized files read-only and never writes them', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    await writeFile(join(files, 'logo.png'), png);
    const latin1 = Buffer.from('caf\xe9\n', 'latin1');
    await writeFile(join(files, 'latin1.txt'), latin1);
    const big = Buffer.alloc(5 * 1024 * 1024 + 1, 'a');
    await writeFile(join(files, 'big.txt'), big);

    for (const [name, bytes, reason] of [['logo.png', png, 'binary'], ['latin1.txt', latin1, 'binary'], ['big.txt', big, 'too_large']] as const) {
      const c = await client(name).open();
      expect(c.notice('state')).toEqual({ type: 'state', readOnly: true, reason, size: bytes.length });
      const peer = await client(name).open();
      c.text.insert(0, 'overwrite');
      await eventually(() => expect(c.notice('error')).toMatchObject({ type: 'error', message: expect.stringContaining('read-only') }));
      await sleep(100);
      expect(peer.text.toString()).toBe('');
      expect((await readFile(join(files, name))).equals(bytes)).toBe(true);
      await disconnectAll([c, peer]);
    }
  });

  it('closes a deleted file\'s document with a notice', async () => {
    const [a, b] = await docs.openFile(server, 'doomed.txt', 'bye\n');
    await unlink(join(files, 'doomed.txt'));
    for (const c of [a, b]) {
      expect((await c.waitClosed()).code).toBe(1000);
      expect(c.notice('deleted')).toEqual({ type: 'deleted' });
    }
    await sleep(100);
    await expect(stat(join(files, 'doomed.txt'))).rejects.toThrow(/ENOENT/);

    // The whole folder goes, from a terminal.
    await mkdir(join(files, 'tmpdir', 'deep'), { recursive: true });
    await writeFile(join(files, 'tmpdir', 'deep', 'note.txt'), 'note\n');
    const c = await client('tmpdir/deep/note.txt').open();
    const ssh = await sshThroughServer(server, ws);
    expect((await execOver(ssh, 'rm -rf tmpdir')).code).toBe(0);
    ssh.end();
    expect((await c.waitClosed()).code).toBe(1000);
    expect(c.notice('deleted')).toEqual({ type: 'deleted' });
    await sleep(100);
    await expect(stat(join(files, 'tmpdir'))).rejects.toThrow(/ENOENT/);
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
    await eventually(async () => expect(await readFile(join(files, 'shared.txt'), 'utf8')).toBe(expected));
    expect(a.closed).toBeUndefined();
    expect(b.closed).toBeUndefined();
    // A text frame is not part of the protocol either.
    const texting = await client('shared.txt').open();
    texting.ws?.send('hello');
    expect((await texting.waitClosed()).code).toBe(4400);
    await disconnectAll([a, b]);
  });

  it('refuses paths outside the workspace, symlinks included', async () => {
    await symlink('/etc/passwd', join(files, 'passwd-link'));
    await mkdir(join(files, 'real'), { recursive: true });
    await writeFile(join(files, 'real', 'target.txt'), 'target\n');
    await symlink('real/target.txt', join(files, 'inner-link.txt'));
    const passwd = await readFile('/etc/passwd');
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
    expect((await readFile('/etc/passwd')).equals(passwd)).toBe(true);

    // A link that stays inside is edited through: the target changes and the link stays a link.
    const inner = await client('inner-link.txt').open();
    inner.text.insert(0, 'via link: ');
    await eventually(async () => expect(await readFile(join(files, 'real', 'target.txt'), 'utf8')).toBe('via link: target\n'));
    expect(await readlink(join(files, 'inner-link.txt'))).toBe('real/target.txt');
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
    await writeFile(join(files, '.gitignore'), 'node_modules/\n*.log\n');
    await mkdir(join(files, 'node_modules', 'pkg'), { recursive: true });
    await writeFile(join(files, 'node_modules', 'pkg', 'index.js'), 'module.exports = 1;\n');
    await mkdir(join(files, 'src', 'generated'), { recursive: true });
    await writeFile(join(files, 'src', '.gitignore'), 'generated/\n!keep.log\n');
    await writeFile(join(files, 'src', 'app.ts'), 'export const app = 1;\n');
    await writeFile(join(files, 'src', 'debug.log'), 'noise\n');
    await writeFile(join(files, 'src', 'keep.log'), 'kept\n');
    await writeFile(join(files, 'src', 'generated', 'out.ts'), '// generated\n');
    await mkdir(join(files, 'lib'), { recursive: true });

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
    const meta = JSON.parse(await readFile(join(server.dataDir, 'workspaces', ws, 'workspace.json'), 'utf8')) as { agentPid: number };
    const watchedInodes = async () => {
      const inodes = new Set<number>();
      const fdDir = `/proc/${meta.agentPid}/fdinfo`;
      for (const fd of await readdir(fdDir)) {
        const info = await readFile(join(fdDir, fd), 'utf8').catch(() => '');
        for (const m of info.matchAll(/^inotify wd:\S+ ino:([0-9a-f]+)/gm)) inodes.add(parseInt(m[1], 16));
      }
      return inodes;
    };
    const ino = async (rel: string) => (await stat(join(files, rel))).ino;
    await eventually(async () => {
      const watched = await watchedInodes();
      expect(watched.has(await ino('src'))).toBe(true);
      expect(watched.has(await ino('lib'))).toBe(true);
    }, 15_000);
    const watched = await watchedInodes();
    for (const rel of ['node_modules', 'node_modules/pkg', 'src/generated']) expect(watched.has(await ino(rel)), rel).toBe(false);

    // Writing in an ignored directory costs nothing, yet a file opened there is still kept in sync.
    await writeFile(join(files, 'node_modules', 'pkg', 'other.js'), 'x\n');
    const dep = await client('node_modules/pkg/index.js').open();
    await writeFile(join(files, 'node_modules', 'pkg', 'index.js'), 'module.exports = 2;\n');
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
    expect(await readFile(join(files, 'persist.txt'), 'utf8')).toBe('v1+edit\n');
    await a.waitClosed();
    await b.waitClosed();

    // Typed while the workspace was down; the restarted agent must merge it, not duplicate the text.
    a.text.insert(0, 'offline ');
    expect((await server.api(`/api/workspaces/${ws}/start`, { method: 'POST' })).status).toBe(200);
    await a.open();
    await b.open();
    await expectEverywhere('offline v1+edit\n', [a, b], join(files, 'persist.txt'));
    await disconnectAll([a, b]);
  });
});
