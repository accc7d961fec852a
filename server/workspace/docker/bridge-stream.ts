import { Duplex, Writable } from 'node:stream';
import type { HijackedStream } from '../../engine-api/index.ts';

/**
 * The raw bytes of an exec'd `agent.mjs bridge` as one duplex: what is written goes to the
 * exec's stdin as is; its stdout comes out demultiplexed (no tty: docker-modem's demuxer strips
 * the 8-byte frame headers), its stderr is kept for a log line. Back-pressure reaches the engine
 * connection (paused while our reader is full), the end of our writing half-closes the exec's
 * stdin, and the connection keeps an error listener for its whole life.
 */
export class BridgeStream extends Duplex {
  /** What the bridge printed on stderr (its reason when it could not reach the agent), bounded. */
  stderr = '';
  /** Resolves true with the first byte from the agent (its SSH banner), false if the bridge ended first. */
  readonly answered: Promise<boolean>;
  private readonly socket: Duplex;
  private closedBelow = false;

  constructor(hijacked: HijackedStream) {
    super({ allowHalfOpen: true });
    const socket = hijacked.socket;
    this.socket = socket;
    let answer: (value: boolean) => void = () => {};
    this.answered = new Promise((resolve) => (answer = resolve));
    const stdout = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        answer(true);
        if (!this.push(chunk)) socket.pause();
        callback();
      },
    });
    const stderr = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        if (this.stderr.length < 4096) this.stderr += chunk.toString('utf8');
        callback();
      },
    });
    for (const sink of [stdout, stderr]) sink.on('error', () => {});
    // `on`, for the socket's whole life: an error after the first one must find a listener too.
    socket.on('error', (err: Error) => {
      answer(false);
      this.destroy(err);
    });
    socket.on('end', () => {
      answer(false);
      this.push(null);
    });
    socket.on('close', () => {
      answer(false);
      this.closedBelow = true;
      this.push(null);
      // As a TCP socket does when its peer is gone: closed once what came is read (SSH clients
      // wait for 'close', and nothing can be written any more).
      if (this.readableEnded || this.readableLength === 0) this.destroy();
      else this.once('end', () => this.destroy());
    });
    hijacked.demux(stdout, stderr);
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.closedBelow) return callback(new Error('the workspace bridge is closed'));
    this.socket.write(chunk, (err) => callback(err ?? null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Half-close: the exec's stdin ends, the agent's answer still comes back.
    if (!this.closedBelow) this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
