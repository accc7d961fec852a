import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP relay to `target` that can stop carrying bytes, as a network does when it stops:
 *
 * - `pause()` stops reading and writing every connection and holds new ones unconnected, without
 *   closing anything; `resume()` lets it all flow again. A close from either side is passed on
 *   only while the relay flows, so nothing learns early that the other end went.
 * - `cut()` is a network left behind (a laptop that moved to another one): the connections open
 *   now never carry another byte and are never closed, and new ones are refused until
 *   `restore()`; connections made after that flow.
 */
export type PausableRelay = {
  /** `http://127.0.0.1:<port>`: what a client uses instead of the target's own address. */
  url: string;
  pause(): void;
  resume(): void;
  cut(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
};

export async function startPausableRelay(target: { host: string; port: number }): Promise<PausableRelay> {
  let paused = false;
  const sockets = new Set<Socket>();
  /** Connections a cut left behind: never read, written or closed again (until `close`). */
  const abandoned = new Set<Socket>();
  /** What waits for the relay to flow again: held connections, held closes. */
  let onResume: Array<() => void> = [];
  const whenFlowing = (action: () => void) => (paused ? onResume.push(action) : action());
  const track = (socket: Socket) => {
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  function carry(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!paused && !abandoned.has(from)) from.resume();
    });
    const passOn = (action: () => void) => whenFlowing(() => !abandoned.has(from) && !abandoned.has(to) && action());
    from.on('end', () => passOn(() => to.end()));
    from.on('close', () => passOn(() => to.destroy()));
  }

  const onConnection = (client: Socket) => {
    track(client);
    whenFlowing(() => {
      if (client.destroyed || abandoned.has(client)) return;
      const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
      track(upstream);
      carry(client, upstream);
      carry(upstream, client);
      client.resume();
    });
  };
  const listen = async (at: number) => {
    const listener = createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
    listener.listen(at, '127.0.0.1');
    await once(listener, 'listening');
    return listener;
  };
  let server = await listen(0);
  const { port } = server.address() as AddressInfo;

  const pause = () => {
    paused = true;
    for (const socket of sockets) socket.pause();
  };
  const resume = () => {
    paused = false;
    for (const socket of sockets) if (!abandoned.has(socket)) socket.resume();
    const actions = onResume;
    onResume = [];
    for (const action of actions) action();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    pause,
    resume,
    cut() {
      pause();
      for (const socket of sockets) abandoned.add(socket);
      // Stops listening at once; the connections it accepted stay (abandoned) as they are.
      server.close();
      resume();
    },
    async restore() {
      server = await listen(port);
    },
    async close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
