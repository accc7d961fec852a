import { CLOSE_CODES } from '../../common/index.ts';
import type { RouteModule } from '../app-types.ts';

/**
 * Raw bytes between a websocket and the workspace agent's SSH server. The server never sees
 * the SSH session's keys: authentication is end-to-end between the client and the agent.
 */
export const registerSshTunnelRoutes: RouteModule = (_app, ws, deps) => {
  ws.add({
    pattern: '/api/workspaces/:id/ssh',
    handle: async (socket, ctx) => {
      // Buffer what the client sends while the agent stream is being opened.
      const early: Buffer[] = [];
      const onEarly = (data: Buffer) => early.push(Buffer.from(data));
      socket.on('message', onEarly);
      const agent = await deps.workspaces.openTunnel(ctx.params.id);
      socket.off('message', onEarly);
      if (socket.readyState !== socket.OPEN) {
        agent.destroy();
        return;
      }
      for (const chunk of early) agent.write(chunk);
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) return socket.close(CLOSE_CODES.badRequest, 'tunnel carries binary frames only');
        if (!agent.write(data)) socket.pause();
      });
      agent.on('drain', () => socket.resume());
      agent.on('data', (chunk: Buffer) => {
        socket.send(chunk, { binary: true });
        // Back-pressure: stop reading the agent while the websocket is congested.
        if (socket.bufferedAmount > 4 * 1024 * 1024) {
          agent.pause();
          const wait = setInterval(() => {
            if (socket.bufferedAmount < 1024 * 1024 || socket.readyState !== socket.OPEN) {
              clearInterval(wait);
              agent.resume();
            }
          }, 5);
        }
      });
      agent.on('close', () => socket.close(CLOSE_CODES.normal, 'agent closed'));
      agent.on('error', () => socket.close(CLOSE_CODES.unavailable, 'agent connection failed'));
      socket.on('close', () => agent.destroy());
    },
  });
};
