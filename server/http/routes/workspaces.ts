import { parseWorkspaceResources, WharfError } from '../../common/index.ts';
import { checkForwardPattern } from '../../hybrid/index.ts';
import type { RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';

export const registerWorkspaceRoutes: RouteModule = (app, _ws, deps) => {
  const { workspaces, sessionKeyTtlMs } = deps;

  app.get('/api/workspaces', async (c) => c.json({ workspaces: await workspaces.list() }));

  /** What a create request may ask for: the drivers this server has, the default first. */
  app.get('/api/drivers', (c) => c.json({ drivers: workspaces.drivers() }));

  app.post('/api/workspaces', async (c) => {
    const body = await readJsonBody(c);
    const name = workspaces.validateName(body.name);
    if (!name.ok) throw new WharfError('bad_request', name.error);
    if (body.seed !== undefined && typeof body.seed !== 'string') throw new WharfError('bad_request', '"seed" must be a server-side folder path');
    if (body.driver !== undefined && typeof body.driver !== 'string') throw new WharfError('bad_request', '"driver" must be the name of one of the server\'s drivers (GET /api/drivers)');
    if (body.image !== undefined && (typeof body.image !== 'string' || !/^[\w][\w.:/@-]{0,254}$/.test(body.image))) throw new WharfError('bad_request', '"image" must be an image reference like debian:bookworm or registry.example.com/team/dev:1');
    const resources = parseWorkspaceResources(body.resources);
    if (!resources.ok) throw new WharfError('bad_request', resources.error);
    const workspace = await workspaces.create({
      name: name.value,
      seedFrom: body.seed as string | undefined,
      ...(body.driver !== undefined ? { driver: body.driver as string } : {}),
      ...(body.image !== undefined ? { image: body.image as string } : {}),
      ...(body.resources !== undefined ? { resources: resources.value } : {}),
    });
    return c.json(workspace, 201);
  });

  app.get('/api/workspaces/:id', async (c) => c.json(await workspaces.get(c.req.param('id'))));

  app.delete('/api/workspaces/:id', async (c) => {
    await workspaces.remove(c.req.param('id'));
    return c.body(null, 204);
  });

  app.post('/api/workspaces/:id/start', async (c) => c.json(await workspaces.start(c.req.param('id'))));
  app.post('/api/workspaces/:id/stop', async (c) => c.json(await workspaces.stop(c.req.param('id'))));

  /** A helper registers its own public key for a limited time; SSH auth stays end-to-end. */
  app.post('/api/workspaces/:id/session-keys', async (c) => {
    const body = await readJsonBody(c);
    if (typeof body.publicKey !== 'string' || !body.publicKey.trim()) throw new WharfError('bad_request', '"publicKey" (OpenSSH format) is required');
    const ttlMs = body.ttlSeconds === undefined ? sessionKeyTtlMs.default : Number(body.ttlSeconds) * 1000;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > sessionKeyTtlMs.max) {
      throw new WharfError('bad_request', `"ttlSeconds" must be between 1 and ${Math.floor(sessionKeyTtlMs.max / 1000)}`);
    }
    const label = typeof body.label === 'string' && body.label ? body.label.slice(0, 64) : 'session';
    const { forward, reverse } = readSessionGrant(body);
    const { keyId } = await workspaces.registerSessionKey(c.req.param('id'), body.publicKey, { ttlMs, label, forward, reverse });
    return c.json({ ok: true, id: keyId, expiresAt: new Date(Date.now() + ttlMs).toISOString(), forward, reverse }, 201);
  });

  /** Live session keys: helpers' SSH sessions and `wharf up` links, with their grants and open connections. */
  app.get('/api/workspaces/:id/session-keys', async (c) => {
    const keys = await workspaces.listSessionKeys(c.req.param('id'));
    return c.json({
      keys: keys.map((k) => ({
        id: k.id,
        label: k.label,
        forward: k.forward,
        reverse: k.reverse,
        addedAt: new Date(k.addedAt).toISOString(),
        ...(k.expiresAt === undefined ? {} : { expiresAt: new Date(k.expiresAt).toISOString() }),
        connections: k.connections,
      })),
    });
  });

  /** Revokes a session key (`id` from the POST, or its `SHA256:` fingerprint) and closes its SSH sessions. */
  app.delete('/api/workspaces/:id/session-keys/:keyId', async (c) => {
    await workspaces.revokeSessionKey(c.req.param('id'), c.req.param('keyId'));
    return c.body(null, 204);
  });
};

/**
 * The tunnels a session key may open (hybrid mode): `forward`, "host:port" targets its
 * direct-tcpip channels may dial inside the workspace, and `reverse`, workspace ports it may
 * listen on. Absent means none: a key gets exactly what its request names, never `*`.
 */
function readSessionGrant(body: Record<string, unknown>): { forward: string[]; reverse: number[] } {
  const forward = body.forward ?? [];
  const reverse = body.reverse ?? [];
  if (!Array.isArray(forward)) throw new WharfError('bad_request', '"forward" must be a list of "host:port" targets');
  if (!Array.isArray(reverse)) throw new WharfError('bad_request', '"reverse" must be a list of workspace ports');
  for (const target of forward) {
    const problem = checkForwardPattern(target);
    if (problem) throw new WharfError('bad_request', `"forward": ${problem}`);
  }
  for (const port of reverse) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new WharfError('bad_request', `"reverse": ${JSON.stringify(port)} is not a port number (1-65535)`);
  }
  return { forward: [...new Set(forward as string[])], reverse: [...new Set(reverse as number[])] };
}
