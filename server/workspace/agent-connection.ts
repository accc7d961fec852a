import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { createFrameDecoder, encodeFrame, WharfError } from '../common/index.ts';

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

export function connectAgent(stream: Duplex, privateKey: string, hostPublicKey: string, timeoutMs: number): Promise<AgentConnection> {
  const expectedHostKey = (() => {
    const parsed = ssh2.utils.parseKey(hostPublicKey);
    if (parsed instanceof Error) throw new WharfError('internal', `bad host key: ${parsed.message}`);
    return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
  })();
  const client = new ssh2.Client();
  let closed = false;
  const closeListeners: Array<() => void> = [];
  let sftpPromise: Promise<ssh2.SFTPWrapper> | undefined;
  let controlChannel: Promise<{ send: (req: Record<string, unknown>) => Promise<Record<string, unknown>> }> | undefined;

  client.on('close', () => {
    closed = true;
    for (const l of closeListeners.splice(0)) l();
  });

  function openControl() {
    return new Promise<{ send: (req: Record<string, unknown>) => Promise<Record<string, unknown>> }>((resolve, reject) => {
      client.subsys('wharf-control', (err, channel) => {
        if (err) return reject(err);
        let nextId = 1;
        const waiting = new Map<number, (r: Record<string, unknown>) => void>();
        const decoder = createFrameDecoder(1024 * 1024, {
          onError: () => channel.destroy(),
          onFrame: (frame) => {
            const response = JSON.parse(frame.toString('utf8')) as { id: number };
            waiting.get(response.id)?.(response);
            waiting.delete(response.id);
          },
        });
        channel.on('data', (c: Buffer) => decoder.push(c));
        channel.on('close', () => {
          controlChannel = undefined;
          for (const w of waiting.values()) w({ ok: false, error: 'agent connection closed' });
          waiting.clear();
        });
        resolve({
          send: (req) =>
            new Promise((res) => {
              const id = nextId++;
              waiting.set(id, res);
              channel.write(encodeFrame(Buffer.from(JSON.stringify({ ...req, id }))));
            }),
        });
      });
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
      return new Promise((resolve, reject) => {
        const opts: ssh2.ExecOptions = { env: options.env };
        if (options.pty) opts.pty = { cols: options.pty.cols, rows: options.pty.rows, term: options.pty.term ?? 'xterm-256color' };
        client.exec(command, opts, (err, channel) => (err ? reject(err) : resolve(replayEarlyExit(channel))));
      });
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
        channel.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? null;
        });
        channel.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(errOut) }));
        channel.end(options.stdin);
      });
    },
    sftp() {
      sftpPromise ??= new Promise((resolve, reject) => {
        client.sftp((err, sftp) => {
          if (err) {
            sftpPromise = undefined;
            return reject(err);
          }
          sftp.on('close', () => (sftpPromise = undefined));
          resolve(sftp);
        });
      });
      return sftpPromise;
    },
    subsystem(name) {
      return new Promise((resolve, reject) => client.subsys(name, (err, channel) => (err ? reject(err) : resolve(channel))));
    },
    async control(request) {
      controlChannel ??= openControl().catch((err) => {
        controlChannel = undefined;
        throw err;
      });
      return (await controlChannel).send(request);
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end();
      reject(new WharfError('unavailable', 'timed out connecting to the workspace agent'));
    }, timeoutMs);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve(connection);
    });
    client.once('error', (err) => {
      clearTimeout(timer);
      reject(new WharfError('unavailable', `cannot reach the workspace agent: ${err.message}`));
    });
    client.connect({
      sock: stream,
      username: 'wharf',
      privateKey,
      hostVerifier: (key: Buffer) => key.equals(expectedHostKey),
      keepaliveInterval: 15_000,
    });
  });
}
