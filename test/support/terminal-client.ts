import serializeModule from '@xterm/addon-serialize';
import headlessModule from '@xterm/headless';
import WebSocket from 'ws';
import type { TestServer } from './server.ts';

const { Terminal } = headlessModule;
const { SerializeAddon } = serializeModule;

export type Closed = { code: number; reason: string };

/**
 * A websocket client of a shared terminal that renders what it receives into its own headless
 * terminal, the way the browser's xterm.js does: snapshot, then output bytes, resyncs, resizes.
 */
export class TerminalClient {
  readonly ws: WebSocket;
  readonly term = new Terminal({ cols: 80, rows: 24, scrollback: 1000, allowProposedApi: true });
  readonly messages: Array<Record<string, unknown>> = [];
  readonly serializer = new SerializeAddon();
  bytes = 0;
  closed: Closed | undefined;
  /** Called with each binary message before it is rendered (for streaming checks). */
  onOutput: ((data: Buffer) => void) | undefined;
  /** Skip rendering output (for very large streams that are checked by `onOutput`). */
  render = true;
  private waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.term.loadAddon(this.serializer as never);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.bytes += data.length;
        this.onOutput?.(data);
        if (this.render) this.term.write(data);
      } else {
        const message = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
        this.messages.push(message);
        if (message.type === 'snapshot' || message.type === 'resync') {
          if (message.type === 'resync') this.term.reset();
          this.term.resize(message.cols as number, message.rows as number);
          this.term.write(message.data as string);
        } else if (message.type === 'resize') {
          this.term.resize(message.cols as number, message.rows as number);
        }
      }
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Opens the attach websocket; resolves once the server has sent its first message. */
  static async open(
    server: TestServer,
    workspace: string,
    terminal: string,
    options: { query?: string; headers?: Record<string, string>; firstMessage?: boolean } = {},
  ): Promise<TerminalClient> {
    const url = `${server.url.replace('http', 'ws')}/api/workspaces/${workspace}/terminals/${terminal}/attach${options.query ? `?${options.query}` : ''}`;
    const ws = new WebSocket(url, { headers: options.headers ?? { authorization: `Bearer ${server.token}` }, perMessageDeflate: false });
    const client = new TerminalClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
    });
    if (options.firstMessage !== false) await client.waitFor(() => client.messages.length > 0 || client.closed !== undefined);
    return client;
  }

  /** The HTTP status with which an attach attempt is refused (or 101 if it was accepted). */
  static refusal(server: TestServer, workspace: string, terminal: string, options: { query?: string; headers?: Record<string, string> } = {}): Promise<number> {
    const url = `${server.url.replace('http', 'ws')}/api/workspaces/${workspace}/terminals/${terminal}/attach${options.query ? `?${options.query}` : ''}`;
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { headers: options.headers ?? {} });
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('error', () => resolve(0));
    });
  }

  async waitFor(predicate: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${this.screenText()}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Waits until everything received has been parsed, then until the screen shows `text`. */
  async waitForText(text: string | RegExp, timeoutMs = 15_000): Promise<void> {
    const matches = () => (typeof text === 'string' ? this.screenText().includes(text) : text.test(this.screenText()));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (matches()) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(text)}; screen:\n${this.screenText()}`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  flush(): Promise<void> {
    return new Promise((resolve) => this.term.write('', resolve));
  }

  /** The visible screen as text lines (trailing spaces trimmed). */
  screenText(): string {
    const buffer = this.term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < this.term.rows; y++) lines.push(buffer.getLine(buffer.viewportY + y)?.translateToString(true) ?? '');
    return lines.join('\n');
  }

  async serialize(): Promise<string> {
    await this.flush();
    return this.serializer.serialize({ scrollback: 0 });
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  sendJson(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  lastMessage(type: string): Record<string, unknown> | undefined {
    return [...this.messages].reverse().find((m) => m.type === type);
  }

  async waitForClose(timeoutMs = 15_000): Promise<Closed> {
    await this.waitFor(() => this.closed !== undefined, timeoutMs, 'the websocket to close');
    return this.closed as Closed;
  }

  close(): void {
    this.ws.close();
  }
}

export async function createTerminal(server: TestServer, workspace: string, body: Record<string, unknown> = {}): Promise<{ id: string; cols: number; rows: number }> {
  const res = await server.api(`/api/workspaces/${workspace}/terminals`, { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create terminal: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; cols: number; rows: number };
}

/**
 * A program (for `node -e`) that waits for the key `g`, asks its terminal for the device
 * attributes, the cursor position (after moving it to row 3, column 7), the background colour and
 * palette colour 1, and prints `REPLIES=`, whatever came back within 800 ms (ESC shown as `^`,
 * the string terminator `ESC \` as `~`, so it fits one line) and a full stop.
 */
export const QUERYING_PROGRAM = [
  'process.stdin.setRawMode(true);',
  'let got = "";',
  'const show = (s) => s.replace(/\\x1b\\\\/g, "~").replace(/\\x1b/g, "^").replace(/[\\x00-\\x1f]/g, "?");',
  'process.stdin.on("data", (d) => {',
  '  if (!got && d[0] === 0x67) { got = " "; process.stdout.write("\\x1b[3;7H\\x1b[c\\x1b[6n\\x1b]11;?\\x07\\x1b]4;1;?\\x07"); setTimeout(() => { process.stdout.write("\\r\\nREPLIES=" + show(got.slice(1)) + ".\\r\\n"); process.exit(0); }, 800); return; }',
  '  got += d.toString("latin1");',
  '});',
].join('\n');

/** What QUERYING_PROGRAM prints when exactly one terminal answered. */
export const ONE_ANSWER = 'REPLIES=^[?1;2c^[3;7R^]11;rgb:1e1e/1e1e/1e1e~^]4;1;rgb:cccc/0000/0000~.';
