import { createWebSocketStream } from 'ws';
import { CLOSE_CODES, pipeDuplex } from '../../common/index.ts';
import type { RouteModule } from '../app-types.ts';

/**
 * Raw bytes between a websocket and the workspace agent's SSH server. The server never sees
 * the SSH session's keys: authentication is end-to-end between the client and the agent.
 *
 * The copy is the same `pipeDuplex` as a forwarded connection's: back-pressure both ways (the
 * websocket is paused while the agent's stream is full, and the agent is read only as fast as the
 * websocket drains), an error listener on both for their whole life, and either side's end ends
 * the other.
 */
export const registerSshTunnelRoutes: RouteModule = (_app, ws, deps) => {
  ws.add({
    pattern: '/api/workspaces/:id/ssh',
    handle: async (socket, ctx) => {
      // Made before the agent stream is open: it buffers what the client sends meanwhile (and
      // pauses the socket once that buffer is full).
      const client = createWebSocketStream(socket, { allowHalfOpen: false });
      client.on('error', () => {});
      socket.on('message', (_data: Buffer, isBinary: boolean) => {
        if (!isBinary) socket.close(CLOSE_CODES.badRequest, 'tunnel carries binary frames only');
      });
      const agent = await deps.workspaces.openTunnel(ctx.params.id);
      if (socket.readyState !== socket.OPEN) {
        agent.destroy();
        return;
      }
      // Before pipeDuplex's own listener, which destroys (terminates) the websocket: the client
      // is told why in a close frame rather than seeing the connection drop.
      agent.once('error', () => socket.close(CLOSE_CODES.unavailable, 'agent connection failed'));
      // And a clean end with a normal close frame (the stream's own end would send one without a code).
      agent.once('end', () => socket.close(CLOSE_CODES.normal, 'agent closed'));
      await pipeDuplex(client, agent);
    },
  });
};
