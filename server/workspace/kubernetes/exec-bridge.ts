import type * as k8s from '@kubernetes/client-node';
// Not re-exported by the package's index; the package has no exports map, so its file is reachable.
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import { Duplex, PassThrough } from 'node:stream';
import type WebSocket from 'ws';

/** Channel numbers of the exec subprotocols (k8s.io/apimachinery remotecommand). */
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
/** v5's signal that a stream is closed: [255, channel]. */
const CLOSE = 255;

/**
 * v5 can half-close stdin (the CLOSE frame); v4 cannot, but speaks the same channels and reports
 * the exit as a Status object. Older ones (v1-v3) report the exit differently and are refused, so
 * the reason a bridge ended is always readable.
 */
export const ACCEPTED_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

type ExecStatus = { status?: string; message?: string; reason?: string };

/**
 * The stdio of an exec'd `agent.mjs bridge` as one duplex, over the exec API's websocket: what
 * is written goes out as stdin frames (each send awaited, so back-pressure reaches the socket),
 * stdout frames come out as bytes (the websocket is paused while our reader is full), stderr is
 * kept for a log line. Ending our writing half-closes stdin on v5; on v4 stdin stays open until
 * the stream is destroyed (v4 has no way to close one stream alone).
 */
export class ExecBridge extends Duplex {
  /** What the bridge printed on stderr (its reason when it could not reach the agent), bounded. */
  stderr = '';
  /** The exec's end as the API server reported it (channel 3), when it did. */
  status: ExecStatus | undefined;
  /** Resolves true with the first byte from the agent (its SSH banner), false if the bridge ended first. */
  readonly answered: Promise<boolean>;
  readonly protocol: string;
  private readonly ws: WebSocket;
  private closedBelow = false;

  private constructor(ws: WebSocket, answered: Promise<boolean>, protocol: string) {
    super({ allowHalfOpen: true });
    this.ws = ws;
    this.answered = answered;
    this.protocol = protocol;
  }

  /**
   * Opens the exec (`stdin`, `stdout`, `stderr`, no tty) through client-node's websocket handler,
   * which applies the kubeconfig's credentials and offers v5 first, then v4 and older.
   */
  static async open(config: k8s.KubeConfig, target: { namespace: string; pod: string; container: string; command: string[] }): Promise<ExecBridge> {
    const query = new URLSearchParams({ stdin: 'true', stdout: 'true', stderr: 'true', tty: 'false', container: target.container });
    for (const word of target.command) query.append('command', word);
    const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec?${query}`;
    let answer: (value: boolean) => void = () => {};
    const answered = new Promise<boolean>((resolve) => (answer = resolve));
    const holder: { bridge?: ExecBridge } = {};
    const early: Array<[number, Buffer]> = [];
    // Streams of the handler's own: a CLOSE frame from the server ends one of these, never the
    // server's process.stdout (client-node's default).
    const sink = new PassThrough();
    sink.resume();
    const handler = new WebSocketHandler(config, undefined, { stdin: new PassThrough(), stdout: sink, stderr: sink });
    const ws = (await handler.connect(path, null, (channel: number, data: Buffer) => {
      if (holder.bridge) holder.bridge.frame(channel, data);
      else early.push([channel, Buffer.from(data)]);
      return true;
    })) as unknown as WebSocket;
    if (!(ACCEPTED_PROTOCOLS as readonly string[]).includes(ws.protocol)) {
      ws.close();
      throw new Error(`the API server chose the exec subprotocol "${ws.protocol || 'none'}"; wharf needs ${ACCEPTED_PROTOCOLS.join(' or ')}`);
    }
    const self = new ExecBridge(ws, answered, ws.protocol);
    holder.bridge = self;
    self.onFirstByte = () => answer(true);
    ws.on('error', (err: Error) => {
      answer(false);
      self.destroy(err);
    });
    ws.on('close', () => {
      answer(false);
      self.closedBelow = true;
      self.push(null);
      // As a TCP socket does when its peer is gone: closed once what came is read.
      if (self.readableEnded || self.readableLength === 0) self.destroy();
      else self.once('end', () => self.destroy());
    });
    for (const [channel, data] of early) self.frame(channel, data);
    return self;
  }

  private onFirstByte: () => void = () => {};

  private frame(channel: number, data: Buffer): void {
    if (channel === STDOUT) {
      if (data.length === 0) return;
      this.onFirstByte();
      if (!this.push(data)) this.ws.pause();
    } else if (channel === STDERR) {
      if (this.stderr.length < 4096) this.stderr += data.toString('utf8');
    } else if (channel === STATUS) {
      try {
        this.status = JSON.parse(data.toString('utf8')) as ExecStatus;
      } catch {
        this.status = { status: 'Failure', message: data.toString('utf8').slice(0, 300) };
      }
    } else if (channel === CLOSE && data[0] === STDOUT) {
      this.push(null);
    }
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.closedBelow) return callback(new Error('the workspace bridge is closed'));
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = STDIN;
    chunk.copy(frame, 1);
    this.ws.send(frame, (err) => callback(err ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.closedBelow && this.protocol === 'v5.channel.k8s.io') this.ws.send(Buffer.from([CLOSE, STDIN]), () => callback());
    else callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    try {
      this.ws.close();
    } catch {
      this.ws.terminate();
    }
    callback(error);
  }
}
