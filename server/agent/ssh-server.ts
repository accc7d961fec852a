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
};

export type AgentServer = {
  server: ssh2.Server;
  /** Serve one already-connected byte stream (unix socket connection, stdio bridge). */
  injectSocket(socket: Socket): void;
  close(): Promise<void>;
};

export function createAgentServer(options: AgentServerOptions): AgentServer {
  const subsystems = new Map(Object.entries(options.subsystems));
  const clients = new Set<ssh2.Connection>();
  const log = options.log ?? (() => {});

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
    injectSocket: (socket) => server.injectSocket(socket),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.end();
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}
