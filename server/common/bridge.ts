import { connect, type Socket } from 'node:net';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { pipeDuplex } from './pipe-duplex.ts';

export type BridgeOptions = {
  /**
   * How long to keep trying while the agent does not listen yet (its socket missing or refusing),
   * e.g. just after the workspace started. A driver execs one bridge that connects the moment
   * the agent listens, instead of execs that fail and are tried again later. 0: one try.
   */
  waitMs?: number;
};

/**
 * Between tries while the agent starts: a refused or missing unix socket answers in microseconds,
 * so trying often costs nothing, and the wait past the moment the agent listens (half this, on
 * average) is part of every container create.
 */
const RETRY_MS = 2;

/**
 * Joins stdio to the agent's unix socket: the agent program's `bridge` entry (and the helper's
 * `wharf agent bridge` alias). Container drivers exec it inside the workspace and speak SSH over
 * the exec's stdio. Only node:net, so neither program pulls the other's code in for it, and the
 * runtime's own `bridge.mjs` (scripts/build-agent.mjs) starts as fast as node does.
 */
export async function runBridge(socketPath: string, input: Readable, output: Writable, options: BridgeOptions = {}): Promise<number> {
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    const attempt = await connectOnce(socketPath);
    if (attempt.socket) return relay(attempt.socket, input, output);
    const notYet = attempt.code === 'ENOENT' || attempt.code === 'ECONNREFUSED';
    if (!notYet || Date.now() + RETRY_MS > deadline) {
      process.stderr.write(`wharf agent bridge: ${socketPath}: ${attempt.message}\n`);
      return 1;
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

function connectOnce(socketPath: string): Promise<{ socket: Socket; code?: undefined; message?: undefined } | { socket?: undefined; code: string | undefined; message: string }> {
  return new Promise((resolve) => {
    // allowHalfOpen: the SSH client's end of input ends only our writing to the agent; its answer
    // still comes back (pipeDuplex carries the half-close through).
    const socket = connect({ path: socketPath, allowHalfOpen: true });
    const onError = (err: NodeJS.ErrnoException) => resolve({ code: err.code, message: err.message });
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve({ socket });
    });
  });
}

function relay(socket: Socket, input: Readable, output: Writable): Promise<number> {
  return new Promise((resolve) => {
    const stdio = Duplex.from({ readable: input, writable: output });
    void pipeDuplex(stdio, socket).then(() => resolve(0));
    // The agent stopped sending (it closed the connection, or died): an SSH server that sends
    // nothing more has nothing more to say, so the bridge ends once that is flushed, without
    // waiting for our input to end as well. Otherwise a crashed agent's bridges (exec'd in a
    // container) would linger as long as their SSH clients do.
    const finish = () => {
      if (output.writableFinished || output.destroyed) return resolve(0);
      output.once('finish', () => resolve(0));
      output.once('close', () => resolve(0));
      output.end();
    };
    socket.once('end', finish);
    socket.once('close', finish);
  });
}
