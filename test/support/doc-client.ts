import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { expect } from 'vitest';
import WebSocket from 'ws';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import type { TestServer } from './server.ts';
import { WorkspaceFs, type WorkspaceFile } from './workspace-fs.ts';

export type Json = Record<string, unknown>;

/**
 * A browser-equivalent client: a Y.Doc kept across connections, y-websocket's wire format, and
 * the JSON notices wharf sends as text frames. The document survives `disconnect()`, as a
 * browser tab's does, so offline edits merge on `connect()`.
 */
export class DocClient {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText('content');
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  notices: Json[] = [];
  /** Every binary message received, as it came. */
  received: Buffer[] = [];
  closed: { code: number; reason: string } | undefined;
  synced = false;
  ws: WebSocket | undefined;

  constructor(
    private readonly server: TestServer,
    private readonly workspace: string,
    readonly path: string,
    readonly name = 'someone',
  ) {
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === this) return;
      const encoder = encoding.createEncoder();
      encoding.writeVarUint(encoder, 0);
      syncProtocol.writeUpdate(encoder, update);
      this.send(encoding.toUint8Array(encoder));
    });
    this.awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
      if (origin === this) return;
      this.send(this.awarenessMessage(added.concat(updated, removed)));
    });
  }

  private awarenessMessage(clients: number[]): Uint8Array {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients));
    return encoding.toUint8Array(encoder);
  }

  get url(): string {
    return `${this.server.url.replace('http', 'ws')}/api/workspaces/${this.workspace}/docs?path=${encodeURIComponent(this.path)}`;
  }

  send(message: Uint8Array): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(message);
  }

  async connect(): Promise<this> {
    this.closed = undefined;
    this.synced = false;
    this.notices = [];
    const ws = new WebSocket(this.url, { headers: { authorization: `Bearer ${this.server.token}` } });
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.notices.push(JSON.parse(data.toString('utf8')) as Json);
        return;
      }
      this.received.push(data);
      const decoder = decoding.createDecoder(new Uint8Array(data));
      const type = decoding.readVarUint(decoder);
      if (type === 0) {
        const encoder = encoding.createEncoder();
        encoding.writeVarUint(encoder, 0);
        const syncType = syncProtocol.readSyncMessage(decoder, encoder, this.doc, this);
        if (syncType === syncProtocol.messageYjsSyncStep2) this.synced = true;
        if (encoding.length(encoder) > 1) ws.send(encoding.toUint8Array(encoder));
      } else if (type === 1) {
        awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(decoder), this);
      }
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    ws.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
    const step1 = encoding.createEncoder();
    encoding.writeVarUint(step1, 0);
    syncProtocol.writeSyncStep1(step1, this.doc);
    ws.send(encoding.toUint8Array(step1));
    if (this.awareness.getLocalState() !== null) ws.send(this.awarenessMessage([this.doc.clientID]));
    return this;
  }

  /** Connects and waits for the first exchange to finish (or for the server to close on us). */
  async open(): Promise<this> {
    await this.connect();
    await eventually(() => expect(this.synced || this.closed !== undefined).toBe(true));
    return this;
  }

  setUser(color: string): void {
    this.awareness.setLocalStateField('user', { name: this.name, color });
  }

  notice(type: string): Json | undefined {
    return this.notices.find((n) => n.type === type);
  }

  async disconnect(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  async waitClosed(): Promise<{ code: number; reason: string }> {
    await eventually(() => expect(this.closed).toBeDefined(), 10_000);
    return this.closed as { code: number; reason: string };
  }

  destroy(): void {
    this.ws?.terminate();
    this.awareness.destroy();
    this.doc.destroy();
  }
}

/**
 * The clients a test file makes on one workspace: `destroyAll()` (after all its tests) ends every
 * one of them, whatever state a failed test left it in.
 */
export class DocClients {
  private readonly made: DocClient[] = [];
  private readonly filesOn = new Map<TestServer, WorkspaceFs>();

  constructor(readonly workspace: string) {}

  /** The workspace's files on `server`, as its programs see them (one SSH connection per server, ended by `destroyAll`). */
  files(server: TestServer): WorkspaceFs {
    let fs = this.filesOn.get(server);
    if (!fs) this.filesOn.set(server, (fs = new WorkspaceFs(server, this.workspace)));
    return fs;
  }

  /** A client of `path` through `server`, not connected yet. */
  client(server: TestServer, path: string, name?: string): DocClient {
    const c = new DocClient(server, this.workspace, path, name);
    this.made.push(c);
    return c;
  }

  /** Writes `content` to the file, then opens one client of it per name, one after the other. */
  async openFile(server: TestServer, path: string, content: string | Buffer, names: Array<string | undefined> = [undefined, undefined]): Promise<DocClient[]> {
    await this.files(server).write(path, content);
    const opened: DocClient[] = [];
    for (const name of names) opened.push(await this.client(server, path, name).open());
    return opened;
  }

  destroyAll(): void {
    for (const c of this.made) c.destroy();
    for (const fs of this.filesOn.values()) fs.close();
    this.filesOn.clear();
  }
}

/** Waits until every client shows `text`, then (given a file) until the file in the workspace holds it too. */
export async function expectEverywhere(text: string, clients: Iterable<DocClient>, file?: WorkspaceFile): Promise<void> {
  await eventually(() => {
    for (const c of clients) expect(c.text.toString(), c.name).toBe(text);
  });
  if (file !== undefined) await eventually(async () => expect(await file.fs.readText(file.path)).toBe(text));
}

/** Disconnects the clients one after the other, each after its close handshake. */
export async function disconnectAll(clients: Iterable<DocClient>): Promise<void> {
  for (const c of clients) await c.disconnect();
}

export async function eventually(check: () => void | Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
