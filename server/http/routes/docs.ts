import { CLOSE_CODES, WharfError } from '../../common/index.ts';
import type { RouteModule } from '../app-types.ts';
import { closeCodeOf, closeReasonOf } from '../error-mapping.ts';

function requirePath(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new WharfError('bad_request', `query parameter "${name}" is required`);
  return value;
}

/**
 * Live editing: the websocket of one open document, handed to the server half of server/sync
 * (relay groups, the pump to the agent's `wharf-doc` channel), whose errors become close codes here.
 */
export const registerDocRoutes: RouteModule = (app, ws, deps) => {
  ws.add({
    pattern: '/api/workspaces/:id/docs',
    handle: async (socket, ctx) => {
      // ws reports an oversized or malformed frame as an error and then closes (1009/1002) on its own.
      socket.on('error', () => {});
      const path = requirePath(ctx.url.searchParams.get('path') ?? undefined, 'path');
      await deps.docs.connect(ctx.params.id, path, socket, (error, reason) => {
        if (error) socket.close(closeCodeOf(error), closeReasonOf(error));
        else socket.close(CLOSE_CODES.normal, reason);
      });
    },
  });

  /** Names in one directory that .gitignore (or .git) hides, for dimming them in the file tree. */
  app.get('/api/workspaces/:id/ignored', async (c) => {
    const dir = c.req.query('dir') ?? '';
    return c.json({ dir, ignored: await deps.docs.ignored(c.req.param('id'), dir) });
  });
};
