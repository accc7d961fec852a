import { connect } from 'node:net';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { pipeDuplex } from './pipe-duplex.ts';

/**
 * Joins stdio to the agent's unix socket: the agent program's `bridge` entry (and the helper's
 * `wharf agent bridge` alias). Container drivers exec it inside the workspace and speak SSH over
 * the exec's stdio. Only node:net, so neither program pulls the other's code in for it.
 */
export function runBridge(socketPath: string, input: Readable, output: Writable): Promise<number> {
  return new Promise((resolve) => {
    // allowHalfOpen: the SSH client's end of input ends only our writing to the agent; its answer
    // still comes back (pipeDuplex carries the half-close through).
    const socket = connect({ path: socketPath, allowHalfOpen: true });
    let connected = false;
    socket.once('error', (err) => {
      if (connected) return; // pipeDuplex has it from here
      process.stderr.write(`wharf agent bridge: ${socketPath}: ${err.message}\n`);
      resolve(1);
    });
    socket.once('connect', () => {
      connected = true;
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
  });
}
