import { connect } from 'node:net';
import type { Readable, Writable } from 'node:stream';

/**
 * Joins stdio to the agent's unix socket: the agent program's `bridge` entry (and the helper's
 * `wharf agent bridge` alias). Container drivers exec it inside the workspace and speak SSH over
 * the exec's stdio. Only node:net, so neither program pulls the other's code in for it.
 */
export function runBridge(socketPath: string, input: Readable, output: Writable): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.on('error', (err) => {
      process.stderr.write(`wharf agent bridge: ${socketPath}: ${err.message}\n`);
      resolve(1);
    });
    socket.on('connect', () => {
      input.pipe(socket);
      socket.pipe(output);
    });
    socket.on('close', () => resolve(0));
    input.on('end', () => socket.end());
  });
}
