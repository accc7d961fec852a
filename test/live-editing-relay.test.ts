import * as decoding from 'lib0/decoding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { DocClients, disconnectAll, eventually, expectEverywhere, type DocClient } from './support/doc-client.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import type { WorkspaceFs } from './support/workspace-fs.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sync updates (type 0, sync type 2) among the binary messages a client received. */
function updatesIn(messages: Buffer[]): number {
  return messages.filter((m) => {
    const decoder = decoding.createDecoder(new Uint8Array(m));
    return decoding.readVarUint(decoder) === 0 && decoding.readVarUint(decoder) === 2;
  }).length;
}

function names(c: DocClient): string[] {
  return [...c.awareness.getStates().values()].map((s) => (s.user as { name: string } | undefined)?.name ?? '?').sort();
}

/**
 * A server hands a browser's update straight to its own other sockets of the document, and the
 * agent relays it to everyone else. These tests check that nobody misses anything because of
 * that shortcut, nobody gets it twice, and nothing bad is passed on.
 */
describe('live editing: updates fanned out by the server', () => {
  let server: TestServer;
  let replica: TestServer;
  /** The workspace's files as its programs see them, on any driver. */
  let files: WorkspaceFs;
  const ws = 'relay';
  const docs = new DocClients(ws);
  const client = (on: TestServer, path: string, name?: string) => docs.client(on, path, name);

  beforeAll(async () => {
    server = await startTestServer({ workspaces: [ws] });
    // A second control server on the same data dir: it reaches the same agent.
    replica = await startTestServer({ dataDir: server.dataDir });
    files = docs.files(server);
  });
  afterAll(async () => {
    docs.destroyAll();
    await replica.close({ keepAgents: true });
    await server.dispose();
  });

  it('gives each keystroke to every other editor exactly once, on this server, under another spelling and on a replica', async () => {
    const [a, b] = await docs.openFile(server, 'once.txt', 'start\n', ['ann', 'bob']);
    const c = await client(server, './once.txt', 'cy').open();
    const d = await client(replica, 'once.txt', 'dee').open();
    const others = [b, c, d];
    for (const o of others) o.received = [];

    a.text.insert(0, '>');
    await expectEverywhere('>start\n', others, files.at('once.txt'));
    await sleep(200);
    for (const o of others) expect(updatesIn(o.received), o.name).toBe(1);

    // Cursors and names: everyone sees everyone, wherever they are connected.
    a.setUser('#f00');
    b.setUser('#0f0');
    c.setUser('#00f');
    d.setUser('#ff0');
    for (const x of [a, ...others]) await eventually(() => expect(names(x), x.name).toEqual(['ann', 'bob', 'cy', 'dee']));
    await b.disconnect();
    for (const x of [a, c, d]) await eventually(() => expect(names(x), x.name).toEqual(['ann', 'cy', 'dee']));
    await disconnectAll([a, c, d]);
  });

  it('converges: ten editors on two servers under two spellings, some joining while the others type', async () => {
    const initial = 'converge\n';
    await files.write('conv.txt', initial);
    const placements: Array<[TestServer, string]> = [
      [server, 'conv.txt'],
      [server, 'conv.txt'],
      [server, 'conv.txt'],
      [server, 'conv.txt'],
      [server, './conv.txt'],
      [server, './conv.txt'],
      [replica, 'conv.txt'],
      [replica, 'conv.txt'],
      [replica, './conv.txt'],
      [server, 'conv.txt'],
    ];
    const editors = placements.map(([on, path], i) => client(on, path, `e${i}`));
    // Seven start typing at once; the last three connect while they are at it.
    await Promise.all(editors.slice(0, 7).map((e) => e.open()));
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const type = async (e: DocClient) => {
      for (let i = 0; i < 120; i++) {
        const at = Math.floor(random() * (e.text.length + 1));
        if (random() < 0.3 && e.text.length > 0) e.text.delete(Math.min(at, e.text.length - 1), 1);
        else e.text.insert(at, String.fromCharCode(97 + Math.floor(random() * 26)));
        await sleep(random() * 3);
      }
    };
    const late = async (e: DocClient, after: number) => {
      await sleep(after);
      await e.open();
      await type(e);
    };
    await Promise.all([...editors.slice(0, 7).map(type), late(editors[7], 40), late(editors[8], 90), late(editors[9], 150)]);
    await eventually(async () => {
      const texts = editors.map((e) => e.text.toString());
      for (const t of texts) expect(t).toBe(texts[0]);
      expect(await files.readText('conv.txt')).toBe(texts[0]);
    }, 20_000);
    expect(editors[0].text.length).toBeGreaterThan(initial.length);
    await disconnectAll(editors);
  });

  it('brings a reconnecting editor\'s offline typing to everyone, here and on a replica', async () => {
    const [a, b] = await docs.openFile(server, 'offline.txt', 'one\n');
    const c = await client(replica, 'offline.txt').open();
    await a.disconnect();
    a.text.insert(0, 'A:');
    b.text.insert(b.text.length, 'B\n');
    await eventually(() => expect(c.text.toString()).toBe('one\nB\n'));
    c.text.insert(c.text.length, 'C\n');
    await eventually(() => expect(b.text.toString()).toBe('one\nB\nC\n'));
    await a.open();
    const expected = 'A:one\nB\nC\n';
    await expectEverywhere(expected, [a, b, c], files.at('offline.txt'));
    await disconnectAll([a, b, c]);
  });

  it('never passes a garbled or oversized message to the other editors, and closes only its sender', async () => {
    const [a, b] = await docs.openFile(server, 'guarded.txt', 'guarded\n');
    const cases: Array<[string, Buffer, number]> = [
      ['garbage update', Buffer.from([0, 2, 5, 1, 2, 3, 4, 5]), 4400],
      ['garbage step 2', Buffer.from([0, 1, 3, 9, 9, 9]), 4400],
      ['unknown sync type', Buffer.from([0, 7, 0]), 4400],
      ['update with trailing bytes', Buffer.from([0, 2, 2, 0, 0, 99]), 4400],
      ['unknown message type', Buffer.from([42]), 4400],
      ['bad awareness JSON', Buffer.from([1, 6, 1, 7, 1, 2, 0x7b, 0x7b]), 4400],
      ['awareness with trailing bytes', Buffer.from([1, 7, 1, 7, 1, 2, 0x7b, 0x7d, 0]), 4400],
      // Past what the server fans out: the agent judges it.
      ['2 MiB of garbage', Buffer.concat([Buffer.from([0, 2, 0x80, 0x80, 0x80, 0x01]), Buffer.alloc(2 * 1024 * 1024 - 6, 1)]), 4400],
      ['over the agent frame limit', Buffer.concat([Buffer.from([0, 2]), Buffer.alloc(9 * 1024 * 1024, 1)]), 4413],
    ];
    let expected = 'guarded\n';
    for (const [what, message, code] of cases) {
      const bad = await client(server, 'guarded.txt').open();
      a.received = [];
      b.received = [];
      bad.ws?.send(message);
      expect((await bad.waitClosed()).code, what).toBe(code);
      a.text.insert(a.text.length, `${what}\n`);
      expected += `${what}\n`;
      await eventually(() => expect(b.text.toString()).toBe(expected));
      for (const x of [a, b]) expect(x.received.some((m) => m.equals(message)), what).toBe(false);
    }
    await eventually(async () => expect(await files.readText('guarded.txt')).toBe(expected));
    expect(a.closed).toBeUndefined();
    expect(b.closed).toBeUndefined();
    await disconnectAll([a, b]);
  });

  it('saves what an editor typed just before it left or sent something garbled', async () => {
    // With every editor on this server, the server sends the agent their keystrokes in batches.
    const [b] = await docs.openFile(server, 'last.txt', '', ['bob']);
    let expected = '';
    for (const how of ['leaves', 'is cut off', 'misbehaves']) {
      const a = await client(server, 'last.txt').open();
      const line = `${how}\n`;
      for (const ch of line) a.text.insert(a.text.length, ch);
      expected += line;
      if (how === 'leaves') a.ws?.close();
      else if (how === 'is cut off') a.ws?.terminate();
      else a.ws?.send(Buffer.from([42]));
      await eventually(() => expect(b.text.toString()).toBe(expected));
      if (how === 'misbehaves') expect((await a.waitClosed()).code).toBe(4400);
      await eventually(async () => expect(await files.readText('last.txt')).toBe(expected));
    }
    // Alone again: the agent's copy is complete, so a newcomer gets everything from it.
    await b.disconnect();
    const c = await client(server, 'last.txt').open();
    expect(c.text.toString()).toBe(expected);
    await c.disconnect();
  });

  it('stops fanning out the moment the document turns read-only on disk', async () => {
    const [a, b] = await docs.openFile(server, 'turns.txt', 'text for now\n');
    await files.write('turns.txt', Buffer.from([1, 2, 0, 3]));
    for (const x of [a, b]) await eventually(() => expect(x.notices.at(-1)).toMatchObject({ type: 'state', readOnly: true, reason: 'binary' }));
    b.received = [];
    a.text.insert(0, 'overwrite ');
    await eventually(() => expect(a.notices.at(-1)).toMatchObject({ type: 'error', message: expect.stringContaining('read-only') }));
    await sleep(100);
    expect(b.text.toString()).toBe('text for now\n');
    expect(updatesIn(b.received)).toBe(0);
    expect((await files.read('turns.txt')).equals(Buffer.from([1, 2, 0, 3]))).toBe(true);
    await disconnectAll([a, b]);
  });

  it('closes an editor that stops reading (4503) instead of queueing for it without bound', async () => {
    const [a, b, stalled] = await docs.openFile(server, 'slow.txt', 'slow\n', ['ann', 'bob', 'stalled']);
    const tcp = (stalled.ws as WebSocket & { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    // 40 MB of cursor state, in messages small enough to be fanned out by the server.
    for (let i = 0; i < 64; i++) {
      a.awareness.setLocalStateField('note', `${i}:${'x'.repeat(640 * 1024)}`);
      if (i % 8 === 7) await sleep(20);
    }
    await eventually(() => expect((b.awareness.getStates().get(a.doc.clientID)?.note as string | undefined)?.startsWith('63:')).toBe(true), 20_000);
    tcp.resume();
    expect((await stalled.waitClosed()).code).toBe(4503);
    // The others carry on.
    a.text.insert(0, '!');
    await eventually(() => expect(b.text.toString()).toBe('!slow\n'));
    expect(a.closed).toBeUndefined();
    expect(b.closed).toBeUndefined();
    await disconnectAll([a, b]);
  });
});
