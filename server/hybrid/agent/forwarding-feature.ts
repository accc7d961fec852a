import { connect, createServer, type Server, type Socket } from 'node:net';
import type ssh2 from 'ssh2';
import type { AgentFeature, KeyGrant } from '../../agent/index.ts';
import { pipeDuplex } from '../../common/index.ts';
import { matchForwardPattern } from '../index.ts';
import { allowHalfClose } from './half-close.ts';

export type ForwardingOptions = {
  /**
   * Where reverse ports listen inside the workspace. The process driver's workspaces share the
   * host's network, so loopback only: a reverse port is for the workspace's processes, not for
   * the network. A container driver may pass its pod address.
   */
  reverseHost: string;
  /** How long dialling a forward target may take before the channel is refused. */
  dialTimeoutMs: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
  /**
   * For the control server's own key (role `admin`, forward `*`): why a target may not be
   * dialled, or undefined when it may. Previews use it so the server reaches only the ports the
   * workspace listens on, never the network around it.
   */
  refuseServerTarget?: (host: string, port: number) => Promise<string | undefined>;
};

type Forwarded = { listener: Server; sockets: Set<Socket> };

/**
 * Hybrid mode's tunnels on the agent's side (OpenSSH's direct-tcpip and tcpip-forward), limited
 * to what the connection's key was granted: a `direct-tcpip` channel only to a `forward`
 * pattern, a `tcpip-forward` only on a `reverse` port. Everything else is refused and logged.
 * Each forwarded connection is one `pipeDuplex`: back-pressure, half-close and an error
 * listener on both ends, so one reset connection never takes the agent down.
 */
export function createForwardingFeature(options: ForwardingOptions): AgentFeature {
  const { log } = options;

  function serveDirect(client: ssh2.Connection, grant: KeyGrant): void {
    client.on('tcpip', (accept, reject, info) => {
      const target = { host: info.destIP, port: info.destPort };
      if (!grant.forward.some((pattern) => matchForwardPattern(pattern, target.host, target.port))) {
        log('forward.refused', { key: grant.label, host: target.host, port: target.port });
        reject();
        return;
      }
      if (grant.role === 'admin' && options.refuseServerTarget) {
        options.refuseServerTarget(target.host, target.port).then(
          (refusal) => {
            if (refusal === undefined) return dial(accept, reject, target, grant);
            log('forward.refused', { key: grant.label, host: target.host, port: target.port, reason: refusal });
            reject();
          },
          () => reject(),
        );
        return;
      }
      dial(accept, reject, target, grant);
    });
  }

  function dial(accept: () => ssh2.ServerChannel, reject: () => void, target: { host: string; port: number }, grant: KeyGrant): void {
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${options.dialTimeoutMs} ms`)), options.dialTimeoutMs);
    let connected = false;
    socket.once('error', (err) => {
      clearTimeout(timer);
      if (connected) return; // pipeDuplex has it from here
      log('forward.dial_failed', { key: grant.label, host: target.host, port: target.port, error: err.message });
      reject();
    });
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      const channel = accept();
      allowHalfClose(channel);
      void pipeDuplex(channel, socket);
    });
  }

  function serveReverse(client: ssh2.Connection, grant: KeyGrant): () => void {
    const bound = new Map<number, Forwarded>();
    client.on('request', (accept, reject, name, info) => {
      if (name === 'tcpip-forward') {
        const { bindAddr, bindPort } = info as ssh2.TcpipBindInfo;
        if (!grant.reverse.includes(bindPort)) {
          log('reverse.refused', { key: grant.label, port: bindPort });
          reject?.();
          return;
        }
        if (bound.has(bindPort)) {
          accept?.();
          return;
        }
        const sockets = new Set<Socket>();
        const listener = createServer({ allowHalfOpen: true }, (socket) => {
          socket.setNoDelay(true);
          socket.on('error', () => {});
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
          client.forwardOut(bindAddr, bindPort, socket.remoteAddress ?? '127.0.0.1', socket.remotePort ?? 0, (err, channel) => {
            if (err) {
              log('reverse.open_failed', { key: grant.label, port: bindPort, error: err.message });
              socket.destroy();
              return;
            }
            allowHalfClose(channel);
            void pipeDuplex(channel, socket);
          });
        });
        listener.once('error', (err: NodeJS.ErrnoException) => {
          log('reverse.listen_failed', { key: grant.label, port: bindPort, error: err.message });
          bound.delete(bindPort);
          reject?.();
        });
        listener.listen(bindPort, options.reverseHost, () => {
          bound.set(bindPort, { listener, sockets });
          log('reverse.listening', { key: grant.label, port: bindPort });
          accept?.(bindPort);
        });
      } else if (name === 'cancel-tcpip-forward') {
        const { bindPort } = info as ssh2.TcpipBindInfo;
        const entry = bound.get(bindPort);
        if (!entry) {
          reject?.();
          return;
        }
        closeForwarded(entry);
        bound.delete(bindPort);
        accept?.();
      } else reject?.();
    });
    return () => {
      for (const entry of bound.values()) closeForwarded(entry);
      bound.clear();
    };
  }

  function closeForwarded(entry: Forwarded): void {
    entry.listener.close();
    for (const socket of entry.sockets) socket.destroy();
  }

  return {
    onConnection(client, grant) {
      serveDirect(client, grant);
      const closeAll = serveReverse(client, grant);
      // The session is over (closed, lost, or its key revoked): its ports go with it.
      client.once('close', closeAll);
    },
  };
}
