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
    });
  });
}
