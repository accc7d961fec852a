import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { createFrameDecoder, encodeFrame, parseSshKey, WharfError } from '../common/index.ts';

export type ExecResult = { code: number | null; signal: string | null; stdout: Buffer; stderr: Buffer };

/** The control server's SSH session with one workspace agent. */
export type AgentConnection = {
  /** Run a command and collect its output (for short commands; stream with `execStream`). */
  exec(command: string, options?: { env?: Record<string, string>; stdin?: string | Buffer }): Promise<ExecResult>;
  execStream(command: string, options?: { env?: Record<string, string>; pty?: { cols: number; rows: number; term?: string } }): Promise<ssh2.ClientChannel>;
  sftp(): Promise<ssh2.SFTPWrapper>;
  /** Open one of wharf's own subsystems (`wharf-doc`, `wharf-terminal`, ...). */
  subsystem(name: string): Promise<ssh2.ClientChannel>;
  control(request: Record<string, unknown>): Promise<Record<string, unknown>>;
  /**
   * A `direct-tcpip` channel to `host:port` inside the workspace (what previews proxy over). The
   * agent refuses targets the server's key may not reach: the error then has `reason` set (ssh2's
   * CHANNEL_OPEN_FAILURE code) and `refused: true`.
   */
  forwardOut(host: string, port: number): Promise<ssh2.ClientChannel>;
  readonly closed: boolean;
  onClose(listener: () => void): void;
  close(): void;
};

/**
 * A fast command's exit status can arrive in the same read as the channel's open confirmation:
 * ssh2 then emits 'exit' before a caller awaiting the channel can listen, and the status would
 * be lost. Hold it and emit it again to the first 'exit' listener.
 */
function replayEarlyExit(channel: ssh2.ClientChannel): ssh2.ClientChannel {
  let early: unknown[] | undefined;
  const remember = (...args: unknown[]) => {
    early = args;
  };
  channel.once('exit', remember);
  const onListener = (event: string | symbol) => {
    if (event !== 'exit') return;
    channel.off('newListener', onListener);
    channel.off('exit', remember);
    if (early) {
      const args = early;
      process.nextTick(() => channel.emit('exit', ...args));
    }
  };
  channel.on('newListener', onListener);
  return channel;
}

/** Why a call on an unresponsive or lost agent failed, in the words a user sees (HTTP 503). */
function unavailable(what: string): WharfError {
  return new WharfError('unavailable', `the workspace agent is not responding: ${what}`);
}

/**
 * Bounds a step that waits on the agent (a channel open, a control answer). An agent that cannot
 * answer one of these in time is frozen or pinned: the whole connection is torn down, so every
 * other call waiting on it fails now too and the next call starts a fresh connection.
 */
function withDeadline<T>(work: Promise<T>, timeoutMs: number, what: string, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(unavailable(`no answer to ${what} within ${timeoutMs / 1000} s`));
      onTimeout();
    }, timeoutMs);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** ssh2 reports a lost connection as a plain Error; callers must see a 503, not a 500. */
function asUnavailable(err: Error | undefined, what: string): Error {
  if (err instanceof WharfError) return err;
  return unavailable(`${what}: ${err?.message ?? 'connection closed'}`);
}

/**
 * `timeoutMs` bounds the handshake, each channel open and each control answer; keepalives at a
 * third of it notice an agent that stops answering while nothing is asked of it.
 * `maxControlFrameBytes` bounds a control answer: a feature-store read carries a whole value.
 */
export function connectAgent(stream: Duplex, privateKey: string, hostPublicKey: string, timeoutMs: number, maxControlFrameBytes = 1024 * 1024): Promise<AgentConnection> {
  const expectedHostKey = (() => {
    const parsed = parseSshKey(hostPublicKey);
    if (!parsed.ok) throw new WharfError('internal', `bad host key: ${parsed.error}`);
    return parsed.value.getPublicSSH();
  })();
  const client = new ssh2.Client();
  let closed = false;
  let lastError: Error | undefined;
  const closeListeners: Array<() => void> = [];
  let sftpPromise: Promise<ssh2.SFTPWrapper> | undefined;
  let controlChannel: Promise<{ send: (req: Record<string, unknown>) => Promise<Record<string, unknown>> }> | undefined;

  /**
   * The client and its stream emit 'error' at any point of their life (a lost connection before
   * or after the handshake, a keepalive timeout, a peer gone mid-write). An EventEmitter with no
   * 'error' listener throws, and that would take the whole control server down with one
   * workspace; so both keep a listener until the end, and the error is remembered for callers.
   */
  client.on('error', (err: Error) => {
    lastError = err;
  });
  stream.on('error', (err: Error) => {
    lastError ??= err;
  });
  client.on('close', () => {
    closed = true;
    stream.destroy();
    for (const l of closeListeners.splice(0)) l();
  });

  /** Ends the connection at once: `end()` would wait for a frozen peer to read the goodbye. */
  function destroy(): void {
    closed = true;
    client.destroy();
    stream.destroy();
  }

  function openChannel<T>(what: string, open: (callback: (err: Error | undefined, channel: T) => void) => void): Promise<T> {
    if (closed) return Promise.reject(asUnavailable(lastError, what));
    const opened = new Promise<T>((resolve, reject) => {
      try {
        open((err, channel) => (err ? reject(closed ? asUnavailable(lastError ?? err, what) : err) : resolve(channel)));
      } catch (err) {
        // ssh2 throws synchronously when the connection is already gone.
        reject(asUnavailable(err as Error, what));
      }
    });
    return withDeadline(opened, timeoutMs, what, destroy);
  }

  function openControl() {
    return openChannel<ssh2.ClientChannel>('the control channel', (cb) => client.subsys('wharf-control', cb)).then((channel) => {
      let nextId = 1;
      const waiting = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (err: Error) => void }>();
      const decoder = createFrameDecoder(maxControlFrameBytes, {
        onError: () => channel.destroy(),
        onFrame: (frame) => {
          const response = JSON.parse(frame.toString('utf8')) as { id: number };
          waiting.get(response.id)?.resolve(response);
          waiting.delete(response.id);
        },
      });
      channel.on('data', (c: Buffer) => decoder.push(c));
      channel.on('error', () => channel.destroy());
      channel.on('close', () => {
        controlChannel = undefined;
        for (const w of waiting.values()) w.reject(asUnavailable(lastError, 'the control channel closed'));
        waiting.clear();
      });
      return {
        send: (req: Record<string, unknown>) => {
          const id = nextId++;
          const answered = new Promise<Record<string, unknown>>((resolve, reject) => {
            waiting.set(id, { resolve, reject });
            channel.write(encodeFrame(Buffer.from(JSON.stringify({ ...req, id }))));
          });
          return withDeadline(answered, timeoutMs, `the "${String(req.op)}" request`, () => {
            waiting.delete(id);
            destroy();
          });
        },
      };
    });
  }

  const connection: AgentConnection = {
    get closed() {
      return closed;
    },
    onClose(listener) {
      if (closed) listener();
      else closeListeners.push(listener);
    },
    close() {
      client.end();
    },
    execStream(command, options = {}) {
      const opts: ssh2.ExecOptions = { env: options.env };
      if (options.pty) opts.pty = { cols: options.pty.cols, rows: options.pty.rows, term: options.pty.term ?? 'xterm-256color' };
      return openChannel<ssh2.ClientChannel>('a command', (cb) => client.exec(command, opts, cb)).then(replayEarlyExit);
    },
    async exec(command, options = {}) {
      const channel = await connection.execStream(command, { env: options.env });
      return new Promise((resolve) => {
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | null = null;
        let signal: string | null = null;
        channel.on('data', (d: Buffer) => out.push(d));
        channel.stderr.on('data', (d: Buffer) => errOut.push(d));
        channel.on('error', () => channel.destroy());
        channel.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? null;
        });
        channel.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(errOut) }));
        channel.end(options.stdin);
      });
    },
    sftp() {
      sftpPromise ??= openChannel<ssh2.SFTPWrapper>('file access (sftp)', (cb) => client.sftp(cb)).then(
        (sftp) => {
          sftp.on('error', () => sftp.end());
          sftp.on('close', () => (sftpPromise = undefined));
          return sftp;
        },
        (err: unknown) => {
          sftpPromise = undefined;
          throw err;
        },
      );
      return sftpPromise;
    },
    subsystem(name) {
      return openChannel<ssh2.ClientChannel>(`the ${name} subsystem`, (cb) => client.subsys(name, cb));
    },
    forwardOut(host, port) {
      return openChannel<ssh2.ClientChannel>(`a connection to port ${port}`, (cb) =>
        client.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
          if (err && !closed) Object.assign(err, { refused: true });
          cb(err, channel);
        }),
      );
    },
    async control(request) {
      controlChannel ??= openControl().catch((err: unknown) => {
        controlChannel = undefined;
        throw err;
      });
      return (await controlChannel).send(request);
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(unavailable(`no SSH handshake within ${timeoutMs / 1000} s`));
      destroy();
    }, timeoutMs);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve(connection);
    });
    client.once('close', () => {
      clearTimeout(timer);
      reject(asUnavailable(lastError, 'the connection closed during the handshake'));
    });
    client.connect({
      sock: stream,
      username: 'wharf',
      privateKey,
      hostVerifier: (key: Buffer) => key.equals(expectedHostKey),
      // Our own timer above bounds the handshake; ssh2's would fire a second time later.
      readyTimeout: 0,
      keepaliveInterval: Math.max(1000, Math.round(timeoutMs / 3)),
      keepaliveCountMax: 3,
    });
  });
}
