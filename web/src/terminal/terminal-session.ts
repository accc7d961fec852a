import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { CLOSE_CODES, TERMINAL_COLORS, type TerminalClientMessage, type TerminalRole, type TerminalServerMessage } from '../../../server/common/protocol.ts';

export type TerminalSessionState = {
  connection: 'connecting' | 'connected' | 'disconnected' | 'closed';
  role?: TerminalRole;
  exitCode?: number;
  error?: string;
  /** The window title the program set (shells show the directory, vim the file), if any. */
  title?: string;
};

/**
 * Rendered output is acknowledged to the server in steps of this size. The server stops sending
 * to a view that falls 1 MiB behind and resyncs it from the screen once it has caught up, so a
 * slow machine (or a flood like `cat` of a huge file) never leaves the view minutes behind the
 * program, nor xterm.js's write buffer growing until it throws output away.
 */
const ACK_EVERY_BYTES = 64 * 1024;
/** Once the view has caught up, the rest is acknowledged after this long (not on every keystroke's echo). */
const ACK_IDLE_MS = 50;
/**
 * A hidden tab that has this much output waiting to be parsed lets go of the terminal and
 * attaches again, for the current screen, when it is shown: it would otherwise hold a program
 * back (or, without flow control, make xterm.js throw output away past 50 MB).
 */
const MAX_HIDDEN_BACKLOG_BYTES = 2 * 1024 * 1024;

/**
 * Closes after which re-attaching cannot help: bad request, unauthorised, forbidden, gone, and
 * over a limit on attached clients (4429: retrying would only be refused again; the reason says
 * which limit, and a reload tries again).
 */
const FINAL_CLOSE_CODES = new Set<number>([CLOSE_CODES.badRequest, CLOSE_CODES.unauthorized, CLOSE_CODES.forbidden, CLOSE_CODES.notFound, CLOSE_CODES.tooMany]);

/** The colours programs that ask are told by the agent's screen (TERMINAL_COLORS), and the selection's. */
const THEME = { ...TERMINAL_COLORS, selectionBackground: '#264f78' };

/**
 * One xterm.js view attached to a shared pty. The pty's size is the server's decision (the
 * smallest attached editor), so this view sends the size it *would like* and displays the size
 * it is told; it never echoes the server's size back as a wish.
 */
export class TerminalSession {
  readonly terminal: Terminal;
  readonly state: TerminalSessionState = { connection: 'connecting' };
  private readonly fit = new FitAddon();
  private ws: WebSocket | undefined;
  private destroyed = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private wanted: { cols: number; rows: number } | undefined;
  private readonly resizeObserver: ResizeObserver;
  private readonly encoder = new TextEncoder();
  /** Binary output bytes of the current connection rendered so far, and how many of them were acknowledged. */
  private received = 0;
  private rendered = 0;
  private acknowledged = 0;
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes handed to xterm.js and not parsed yet. */
  private parsing = 0;
  /** A hidden tab fell too far behind and let go of the terminal until it is shown again. */
  private awayWhileHidden = false;
  private readonly onVisibilityChange = () => {
    if (document.hidden || !this.awayWhileHidden || this.destroyed) return;
    this.awayWhileHidden = false;
    this.connect();
  };

  constructor(
    private readonly host: HTMLElement,
    private readonly attachUrl: (size: { cols: number; rows: number }) => string,
    private readonly onState: (state: TerminalSessionState) => void = () => {},
    /** Called after a few reconnects in a row failed: a chance to check the session is still valid. */
    private readonly onRepeatedFailure: () => void = () => {},
  ) {
    this.terminal = new Terminal({ cursorBlink: true, fontSize: 13, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace', theme: THEME, scrollback: 5000, allowProposedApi: false });
    this.silenceQueries();
    this.terminal.loadAddon(this.fit);
    this.terminal.loadAddon(new WebLinksAddon());
    this.terminal.open(host);
    this.terminal.onData((data) => this.sendInput(this.encoder.encode(data)));
    this.terminal.onTitleChange((title) => this.setState({ title }));
    this.terminal.onBinary((data) => this.sendInput(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
    document.addEventListener('visibilitychange', this.onVisibilityChange);
    this.resizeObserver = new ResizeObserver(() => this.reportWantedSize());
    this.resizeObserver.observe(host);
    this.connect();
  }

  /**
   * The screen kept beside the pty answers the program's terminal queries, once for everyone:
   * this view answering too would type a second answer into the pty (one per attached editor),
   * which a program such as vim would then read as keystrokes.
   */
  private silenceQueries(): void {
    const { parser } = this.terminal;
    const queries = [
      { final: 'c' }, // device attributes
      { prefix: '>', final: 'c' },
      { prefix: '=', final: 'c' },
      { final: 'n' }, // status and cursor position reports
      { prefix: '?', final: 'n' },
      { intermediates: '$', final: 'p' }, // mode reports
      { prefix: '?', intermediates: '$', final: 'p' },
    ];
    for (const id of queries) parser.registerCsiHandler(id, () => true);
    parser.registerDcsHandler({ intermediates: '$', final: 'q' }, () => true);
    for (const ident of [10, 11, 12]) parser.registerOscHandler(ident, (data) => data.split(';').includes('?'));
    // OSC 4 comes as index;colour pairs.
    parser.registerOscHandler(4, (data) => data.split(';').some((part, i) => i % 2 === 1 && part === '?'));
  }

  focus(): void {
    this.terminal.focus();
  }

  /** Call when the host became visible: hidden hosts have no size to fit to. */
  refit(): void {
    this.reportWantedSize();
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    document.removeEventListener('visibilitychange', this.onVisibilityChange);
    this.resizeObserver.disconnect();
    this.ws?.close(1000);
    this.ws = undefined;
    this.terminal.dispose();
  }

  private setState(patch: Partial<TerminalSessionState>): void {
    Object.assign(this.state, patch);
    this.onState({ ...this.state });
  }

  private proposeSize(): { cols: number; rows: number } | undefined {
    if (!this.host.isConnected || this.host.clientWidth === 0 || this.host.clientHeight === 0) return undefined;
    const size = this.fit.proposeDimensions();
    if (!size || !Number.isFinite(size.cols) || !Number.isFinite(size.rows) || size.cols < 2 || size.rows < 1) return undefined;
    return { cols: Math.floor(size.cols), rows: Math.floor(size.rows) };
  }

  private reportWantedSize(): void {
    const size = this.proposeSize();
    if (!size || (this.wanted && size.cols === this.wanted.cols && size.rows === this.wanted.rows)) return;
    this.wanted = size;
    if (this.state.role === 'viewer') return;
    this.sendJson({ type: 'resize', cols: size.cols, rows: size.rows });
  }

  private connect(): void {
    if (this.destroyed) return;
    this.setState({ connection: 'connecting' });
    const size = this.proposeSize() ?? this.wanted ?? { cols: this.terminal.cols, rows: this.terminal.rows };
    this.wanted = size;
    const ws = new WebSocket(this.attachUrl(size));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.received = 0;
    this.rendered = 0;
    this.acknowledged = 0;
    this.parsing = 0;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === 'string') return this.handleMessage(event.data);
      const chunk = new Uint8Array(event.data as ArrayBuffer);
      const bytes = chunk.length;
      this.received += bytes;
      // A hidden tab renders rarely (browsers throttle its timers): it acknowledges on receipt,
      // as if it had no flow control, so it never holds the program back.
      const hidden = document.hidden;
      if (hidden && this.parsing > MAX_HIDDEN_BACKLOG_BYTES) {
        // Let go first, so this close does not count as a dropped connection to retry.
        this.ws = undefined;
        this.awayWhileHidden = true;
        ws.close(1000, 'hidden and behind; attaches again when shown');
        this.setState({ connection: 'disconnected' });
        return;
      }
      this.parsing += bytes;
      if (hidden) this.countRendered(ws, bytes);
      this.terminal.write(chunk, () => {
        if (ws !== this.ws) return;
        this.parsing -= bytes;
        if (!hidden) this.countRendered(ws, bytes);
      });
    };
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempt = 0;
    };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      this.ws = undefined;
      if (this.destroyed) return;
      if (this.state.exitCode !== undefined || FINAL_CLOSE_CODES.has(event.code)) {
        this.setState({ connection: 'closed', error: this.state.exitCode === undefined ? this.state.error ?? (event.reason || `connection closed (${event.code})`) : undefined });
        return;
      }
      this.setState({ connection: 'disconnected' });
      const delay = Math.min(5000, 250 * 2 ** this.attempt++);
      if (this.attempt === 3) this.onRepeatedFailure();
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  private applyServerSize(cols: number | undefined, rows: number | undefined): void {
    if (!cols || !rows || (cols === this.terminal.cols && rows === this.terminal.rows)) return;
    this.terminal.resize(cols, rows);
  }

  private handleMessage(raw: string): void {
    let message: TerminalServerMessage;
    try {
      message = JSON.parse(raw) as TerminalServerMessage;
    } catch {
      return;
    }
    switch (message.type) {
      case 'snapshot':
        this.drawScreen(message);
        this.terminal.options.disableStdin = message.role === 'viewer';
        this.setState({ connection: 'connected', role: message.role, error: undefined });
        // The size we asked for may have changed while connecting.
        this.wanted = undefined;
        this.reportWantedSize();
        break;
      case 'resize':
        this.applyServerSize(message.cols, message.rows);
        break;
      case 'resync':
        this.drawScreen(message);
        break;
      case 'exit':
        this.terminal.write(`\r\n\x1b[2m[process exited${message.code === null ? (message.signal ? ` on ${message.signal}` : '') : ` with code ${message.code}`}]\x1b[0m\r\n`);
        this.setState({ exitCode: message.code ?? -1 });
        break;
      case 'error':
        this.terminal.write(`\r\n\x1b[31m${message.message.replace(/[\x00-\x1f\x7f]/g, ' ')}\x1b[0m\r\n`);
        this.setState({ error: message.message });
        break;
    }
  }

  /**
   * Replaces the view with the server's screen. Output of an earlier socket may still wait in
   * xterm.js's write buffer, which `Terminal.reset()` would leave alone: the reset (RIS) goes into
   * the stream instead, so the screen is drawn after whatever that was.
   */
  private drawScreen(screen: { data: string; cols?: number; rows?: number }): void {
    this.applyServerSize(screen.cols, screen.rows);
    this.terminal.write(`\x1bc${screen.data}`);
  }

  private countRendered(ws: WebSocket, bytes: number): void {
    if (ws !== this.ws) return;
    this.rendered += bytes;
    if (this.rendered - this.acknowledged >= ACK_EVERY_BYTES) return this.acknowledge();
    // Caught up: the server must hear of the rest too, or a view it cut off would wait forever.
    if (this.rendered === this.received && this.rendered > this.acknowledged) {
      this.ackTimer ??= setTimeout(() => {
        this.ackTimer = undefined;
        if (ws === this.ws) this.acknowledge();
      }, ACK_IDLE_MS);
    }
  }

  private acknowledge(): void {
    if (this.rendered === this.acknowledged) return;
    this.acknowledged = this.rendered;
    this.sendJson({ type: 'ack', bytes: this.rendered });
  }

  private sendInput(bytes: Uint8Array): void {
    if (this.state.role !== 'editor' || this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(bytes);
  }

  private sendJson(message: TerminalClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }
}
