import type { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { KeyGrant, KeyStore } from './key-store.ts';
import { serveSession, type ProcessEnvironment, type SubsystemHandler } from './session.ts';

export type AgentServerOptions = {
  hostKey: string;
  keys: KeyStore;
  process: ProcessEnvironment;
  subsystems: Record<string, SubsystemHandler>;
  /** Called for an authenticated client's `direct-tcpip` / `tcpip-forward`, when provided. */
  onConnection?: (client: ssh2.Connection, grant: KeyGrant) => void;
  log?: (event: string, fields?: Record<string, unknown>) => void;
  /**
   * A connection that has not authenticated this long after it arrived is closed (OpenSSH's
   * LoginGraceTime), and at most `maxStartups` such connections are kept at once: newer ones are
   * closed at once (OpenSSH's MaxStartups, without its random early drop).
   */
  loginGraceMs: number;
  maxStartups: number;
};

export type AgentServer = {
  server: ssh2.Server;
  /** Serve one already-connected byte stream (unix socket connection, stdio bridge). */
  injectSocket(socket: Socket): void;
  close(): Promise<void>;
};

/**
 * The socket under an ssh2 connection. ssh2 has no login grace option and hands its
 * 'connection' event only the client object (and only once the peer's version line arrived),
 * so the socket it was given is read from the client; a test proves the link holds (an
 * authenticated connection outlives the grace).
 */
function readSocketOf(client: ssh2.Connection): Socket | undefined {
  return (client as unknown as { _sock?: Socket })._sock;
}

export function createAgentServer(options: AgentServerOptions): AgentServer {
  const subsystems = new Map(Object.entries(options.subsystems));
  const clients = new Set<ssh2.Connection>();
  const log = options.log ?? (() => {});
  /** Connections that have not authenticated yet, with the timer that will close them. */
  const unauthenticated = new Map<Socket, NodeJS.Timeout>();

  /** Stops the grace timer: the connection authenticated, or it is gone. */
  function forgetPending(socket: Socket | undefined): void {
    if (!socket) return;
    clearTimeout(unauthenticated.get(socket));
    unauthenticated.delete(socket);
  }

  function injectSocket(socket: Socket): void {
    socket.on('error', () => {});
    if (unauthenticated.size >= options.maxStartups) {
      log('ssh.startups_full', { max: options.maxStartups });
      socket.destroy();
      return;
    }
    // The timer runs from the first byte of the connection, not from the peer's version line:
    // a peer that sends nothing at all is closed too.
    const timer = setTimeout(() => {
      unauthenticated.delete(socket);
      log('ssh.login_grace_expired', { graceMs: options.loginGraceMs });
      socket.destroy();
    }, options.loginGraceMs);
    unauthenticated.set(socket, timer);
    socket.once('close', () => forgetPending(socket));
    server.injectSocket(socket);
  }

  const server = new ssh2.Server({ hostKeys: [options.hostKey] }, (client) => {
    clients.add(client);
    let grant: KeyGrant | undefined;
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const entry = options.keys.find(ctx.key.algo, ctx.key.data);
      if (!entry) return ctx.reject(['publickey']);
      // Without a signature the client is only asking whether this key would do.
      if (ctx.signature && entry.key.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) !== true) {
        return ctx.reject(['publickey']);
      }
      grant = entry.grant;
      ctx.accept();
    });
    client.on('ready', () => {
      forgetPending(readSocketOf(client));
      const g = grant as KeyGrant;
      log('ssh.ready', { key: g.label, role: g.role });
      client.on('session', (accept) => serveSession(accept(), g, options.process, subsystems));
      options.onConnection?.(client, g);
    });
    client.on('error', (err) => log('ssh.client_error', { error: err.message }));
    client.on('close', () => clients.delete(client));
  });

  return {
    server,
    injectSocket,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of unauthenticated.values()) clearTimeout(timer);
        for (const c of clients) c.end();
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}
