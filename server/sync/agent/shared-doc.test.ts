import { mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import { createFrameDecoder } from '../../common/index.ts';
import { createDocStateStore } from './doc-state-store.ts';
import { ENVELOPE, readEnvelope, type CloseInstruction, type RelayMembership } from '../envelope.ts';
import { openSharedDoc, type DocPeer, type SharedDoc } from './shared-doc.ts';

/** A connection as the subsystem would drive it, with a browser's Y.Doc on the far side. */
class BrowserPeer implements DocPeer {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText('content');
  notices: Array<Record<string, unknown>> = [];
  /** Awareness messages received. */
  awarenessMessages = 0;
  /** The last `audience` byte received: 1 if editors outside this peer's relay group wait for its updates. */
  audience: number | undefined;
  /** When set, this browser's server has already fanned its updates out up to this group version. */
  fannedOutAt: number | undefined;
  closedWith: CloseInstruction | undefined;
  private shared: SharedDoc | undefined;
  private readonly decoder = createFrameDecoder(64 * 1024 * 1024, {
    onError: (e) => {
      throw new Error(e.message);
    },
    onFrame: (frame) => this.onFrame(frame),
  });

  constructor(readonly relay?: RelayMembership) {
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === this || !this.shared) return;
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, 0);
      syncProtocol.writeUpdate(encoder, update);
      expect(this.shared.receive(this, encoding.toUint8Array(encoder), this.fannedOutAt).ok).toBe(true);
    });
  }

  join(shared: SharedDoc): void {
    this.shared = shared;
    shared.attach(this);
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.writeSyncStep1(encoder, this.doc);
    expect(shared.receive(this, encoding.toUint8Array(encoder)).ok).toBe(true);
  }

  leave(): void {
    this.shared?.detach(this);
    this.shared = undefined;
  }

  write(frame: Buffer): void {
    this.decoder.push(frame);
  }

  close(instruction: CloseInstruction): void {
    this.closedWith = instruction;
    this.leave();
  }

  private onFrame(frame: Buffer): void {
    const envelope = readEnvelope(frame);
    if (!envelope) throw new Error('empty frame');
    if (envelope.kind === ENVELOPE.json) {
      this.notices.push(JSON.parse(envelope.payload.toString('utf8')) as Record<string, unknown>);
      return;
    }
    if (envelope.kind === ENVELOPE.audience) {
      this.audience = envelope.payload[0];
      return;
    }
    const decoder = decoding.createDecoder(envelope.payload);
    const type = decoding.readVarUint(decoder);
    if (type === 1) this.awarenessMessages++;
    if (type !== 0) return;
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    syncProtocol.readSyncMessage(decoder, encoder, this.doc, this);
    if (encoding.length(encoder) > 1 && this.shared) expect(this.shared.receive(this, encoding.toUint8Array(encoder)).ok).toBe(true);
  }
}

async function eventually(check: () => void | Promise<void>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

describe('shared document', () => {
  let dir: string;
  let file: string;
  const logged: string[] = [];
  const open = (flushDelayMs: number, flushMaxWaitMs = flushDelayMs) =>
    openSharedDoc({
      real: file,
      rel: 'doc.txt',
      flushDelayMs,
      flushMaxWaitMs,
      settleMs: 5,
      maxDocBytes: 1024 * 1024,
      store: createDocStateStore(join(dir, 'state')),
      log: (event) => logged.push(event),
      onGone: () => logged.push('gone'),
    });

  /** Writes `content` to the file, opens its document, and has one browser join it. */
  const openWithBrowser = async (content: string | Buffer, flushDelayMs: number, flushMaxWaitMs?: number) => {
    await writeFile(file, content);
    const shared = await open(flushDelayMs, flushMaxWaitMs);
    const browser = new BrowserPeer();
    browser.join(shared);
    return { shared, browser };
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-doc-'));
    file = join(dir, 'doc.txt');
    logged.length = 0;
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('saves edits on close even before the save delay has passed', async () => {
    const { shared, browser } = await openWithBrowser('draft\n', 60_000);
    expect(browser.text.toString()).toBe('draft\n');
    browser.text.insert(5, ' two');
    expect(await readFile(file, 'utf8')).toBe('draft\n');
    await shared.close({ code: 'unavailable', message: 'stopping' });
    expect(await readFile(file, 'utf8')).toBe('draft two\n');
    expect(browser.closedWith).toEqual({ code: 'unavailable', message: 'stopping' });
  });

  it('saves during continuous typing, not only once it stops', async () => {
    const { shared, browser } = await openWithBrowser('', 40, 80);
    const seenOnDisk = new Set<string>();
    for (let i = 0; i < 40; i++) {
      browser.text.insert(browser.text.length, 'k');
      seenOnDisk.add(await readFile(file, 'utf8'));
      await new Promise((r) => setTimeout(r, 10));
    }
    // A pure 40 ms debounce would not have saved at all while keys came every 10 ms.
    expect(seenOnDisk.size).toBeGreaterThan(3);
    await eventually(async () => expect(await readFile(file, 'utf8')).toBe('k'.repeat(40)));
    await shared.close();
  });

  it('merges a change on disk with edits that were not saved yet', async () => {
    const { shared, browser } = await openWithBrowser('first line\nsecond line\n', 60_000);
    browser.text.insert(browser.text.length, 'typed\n');
    // Someone else rewrites the file from what was on disk: they have never seen "typed".
    await writeFile(file, 'FIRST line\nsecond line\n');
    shared.noteDiskEvent();
    const merged = 'FIRST line\nsecond line\ntyped\n';
    await eventually(() => expect(shared.text()).toBe(merged));
    expect(browser.text.toString()).toBe(merged);
    expect(logged).toContain('doc.outside_change');
    await shared.close();
    expect(await readFile(file, 'utf8')).toBe(merged);
  });

  it('merges a change on disk the watcher has not reported before saving over it', async () => {
    const { shared, browser } = await openWithBrowser('one\ntwo\n', 60_000);
    browser.text.insert(0, '> ');
    await writeFile(file, 'one\nTWO\n');
    // No watcher event: the save at close must still notice the file changed under it.
    await shared.close();
    expect(await readFile(file, 'utf8')).toBe('> one\nTWO\n');
  });

  it('ignores its own saves when the watcher reports them late', async () => {
    const { shared, browser } = await openWithBrowser('x', 40);
    browser.text.insert(1, 'y');
    await eventually(async () => expect(await readFile(file, 'utf8')).toBe('xy'));
    // The watcher's report of that save arrives while newer typing is not saved yet: taking the
    // file ("xy") for someone else's change would delete the "z".
    browser.text.insert(2, 'z');
    await shared.checkDisk();
    expect(shared.text()).toBe('xyz');
    expect(logged).not.toContain('doc.outside_change');
    expect(browser.notices.some((n) => n.type === 'saved')).toBe(true);
    await shared.close();
    expect(await readFile(file, 'utf8')).toBe('xyz');
  });

  it('merges a copy held across close and reopen without duplicating the text', async () => {
    await writeFile(file, 'hello\n');
    const first = await open(5);
    const browser = new BrowserPeer();
    browser.join(first);
    browser.leave();
    await first.close();
    browser.text.insert(0, 'offline: ');
    const second = await open(5);
    browser.join(second);
    expect(second.text()).toBe('offline: hello\n');
    expect(browser.text.toString()).toBe('offline: hello\n');
    await second.close();
    expect(await readFile(file, 'utf8')).toBe('offline: hello\n');
  });

  it('relays a fanned-out message to everyone its server did not already give it to', async () => {
    await writeFile(file, 'x\n');
    const shared = await open(5);
    const origin = new BrowserPeer({ group: 'g', member: 1 });
    const before = new BrowserPeer({ group: 'g', member: 2 });
    const after = new BrowserPeer({ group: 'g', member: 4 });
    const elsewhere = new BrowserPeer({ group: 'h', member: 1 });
    const plain = new BrowserPeer();
    const all = [origin, before, after, elsewhere, plain];
    for (const p of all) p.join(shared);
    // Group g was at version 3 when its server fanned this out: members 1 to 3 have it.
    origin.fannedOutAt = 3;
    origin.text.insert(0, '>');
    expect(shared.text()).toBe('>x\n');
    expect(before.text.toString()).toBe('x\n');
    for (const p of [after, elsewhere, plain]) expect(p.text.toString()).toBe('>x\n');
    // What the server did for member 2.
    Y.applyUpdate(before.doc, Y.encodeStateAsUpdate(origin.doc), before);

    // Sent as it came (not fanned out): everyone gets it.
    origin.fannedOutAt = undefined;
    origin.text.insert(0, '>');
    for (const p of [before, after, elsewhere, plain]) expect(p.text.toString()).toBe('>>x\n');

    // Awareness: the origin still hears its own (y-websocket's sign of life), member 2 is skipped.
    const cursor = new awarenessProtocol.Awareness(origin.doc);
    cursor.setLocalStateField('user', { name: 'ann' });
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(cursor, [origin.doc.clientID]));
    for (const p of all) p.awarenessMessages = 0;
    expect(shared.receive(origin, encoding.toUint8Array(encoder), 3).ok).toBe(true);
    expect(all.map((p) => p.awarenessMessages)).toEqual([1, 0, 1, 1, 1]);
    cursor.destroy();
    await shared.close();
  });

  it('tells each server whether editors elsewhere wait for what it sends', async () => {
    await writeFile(file, 'x\n');
    const shared = await open(5);
    const a = new BrowserPeer({ group: 'g', member: 1 });
    const b = new BrowserPeer({ group: 'g', member: 2 });
    a.join(shared);
    b.join(shared);
    expect([a.audience, b.audience]).toEqual([0, 0]);
    const replica = new BrowserPeer({ group: 'h', member: 1 });
    replica.join(shared);
    expect([a.audience, b.audience, replica.audience]).toEqual([1, 1, 1]);
    replica.leave();
    expect([a.audience, b.audience]).toEqual([0, 0]);
    // A connection from a server that does not fan out counts as elsewhere.
    const old = new BrowserPeer();
    old.join(shared);
    expect([a.audience, b.audience, old.audience]).toEqual([1, 1, undefined]);
    await shared.close();
  });

  it('refuses garbled messages and leaves the document as it was', async () => {
    const { shared, browser } = await openWithBrowser('keep\n', 5);
    for (const bad of [[], [9], [0, 7, 0], [0, 2, 3, 1, 2, 3], [0, 0, 1, 255], [1, 1, 5], [0, 2, 2, 0, 0, 99]]) {
      expect(shared.receive(browser, new Uint8Array(bad)), JSON.stringify(bad)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    }
    expect(shared.text()).toBe('keep\n');
    await shared.close();
    expect(await readFile(file, 'utf8')).toBe('keep\n');
  });

  it('keeps a binary file read-only', async () => {
    const bytes = Buffer.from([1, 2, 0, 3]);
    const { shared, browser } = await openWithBrowser(bytes, 5);
    expect(shared.readOnly).toBe('binary');
    expect(browser.notices[0]).toEqual({ type: 'state', readOnly: true, reason: 'binary', size: 4 });
    browser.text.insert(0, 'text');
    expect(browser.notices.at(-1)).toMatchObject({ type: 'error' });
    expect(shared.text()).toBe('');
    await shared.close();
    expect((await readFile(file)).equals(bytes)).toBe(true);
  });

  it('closes instead of following a symlink put where its file was', async () => {
    const outside = join(dir, 'outside-secret');
    await writeFile(outside, 'secret\n');
    const { shared, browser } = await openWithBrowser('inside\n', 5);
    await symlink(outside, `${file}.link`);
    await rename(`${file}.link`, file);
    shared.noteDiskEvent();
    await eventually(() => expect(browser.notices.at(-1)).toEqual({ type: 'deleted' }));
    expect(browser.closedWith).toMatchObject({ code: 'normal' });
    expect(browser.text.toString()).toBe('inside\n');
    expect(await readFile(outside, 'utf8')).toBe('secret\n');
    expect(shared.closed).toBe(true);
  });
});
