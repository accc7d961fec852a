import type { Context } from 'hono';
import { WharfError } from '../../common/index.ts';
import { validateVariableMap } from '../../hybrid/index.ts';
import type { SetKind } from '../../hybrid/server/index.ts';
import type { AppEnv, RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';

/** `{"variables": {...}}` of a request; with `patch`, a null value removes a name. */
async function readVariables(c: Context<AppEnv>, patch: boolean): Promise<Record<string, string | null>> {
  const body = await readJsonBody(c);
  const variables = validateVariableMap(body.variables, { allowNull: patch });
  if (!variables.ok) throw new WharfError('bad_request', variables.error);
  return variables.value;
}

/**
 * Hybrid mode's environment (docs/hybrid.md): the workspace's variables, its config sets and
 * secret sets (secret values are never answered, only their names), and the environment
 * resolved for one dev service, for the helper that runs it.
 */
export const registerHybridEnvRoutes: RouteModule = (app, _ws, deps) => {
  const { hybridEnv } = deps;

  app.get('/api/workspaces/:id/env', async (c) => c.json({ variables: await hybridEnv.getEnv(c.req.param('id')) }));
  app.put('/api/workspaces/:id/env', async (c) => {
    const variables = (await readVariables(c, false)) as Record<string, string>;
    return c.json({ variables: await hybridEnv.putEnv(c.req.param('id'), variables) });
  });
  app.patch('/api/workspaces/:id/env', async (c) => c.json({ variables: await hybridEnv.patchEnv(c.req.param('id'), await readVariables(c, true)) }));

  for (const [kind, path] of [['config', 'config-sets'], ['secret', 'secret-sets']] as Array<[SetKind, string]>) {
    app.get(`/api/workspaces/:id/${path}`, async (c) => c.json({ sets: await hybridEnv.listSets(c.req.param('id'), kind) }));
    app.put(`/api/workspaces/:id/${path}/:name`, async (c) => {
      const variables = (await readVariables(c, false)) as Record<string, string>;
      return c.json(await hybridEnv.putSet(c.req.param('id'), kind, c.req.param('name'), variables));
    });
    app.patch(`/api/workspaces/:id/${path}/:name`, async (c) => c.json(await hybridEnv.patchSet(c.req.param('id'), kind, c.req.param('name'), await readVariables(c, true))));
    app.delete(`/api/workspaces/:id/${path}/:name`, async (c) => {
      await hybridEnv.deleteSet(c.req.param('id'), kind, c.req.param('name'));
      return c.body(null, 204);
    });
  }

  /**
   * The workspace's layers resolved for `service`. Secret values come only with
   * `secrets=include` (wharf up, which must start the service with them); otherwise a secret's
   * `value` is null. Never cached: it holds secrets.
   */
  app.get('/api/workspaces/:id/hybrid/env', async (c) => {
    const service = c.req.query('service');
    if (!service || service.length > 100) throw new WharfError('bad_request', 'say which dev service: ?service=<name> (dev.<name> of the manifest, at most 100 characters)');
    const secrets = c.req.query('secrets');
    if (secrets !== undefined && secrets !== 'include' && secrets !== 'mask') throw new WharfError('bad_request', '"secrets" must be "include" or "mask"');
    // `selector=app=api,tier=web`: the manifest's dev.<name>.selector, matching the original workload by labels.
    const selectorText = c.req.query('selector');
    let selector: Record<string, string> | undefined;
    if (selectorText !== undefined) {
      selector = {};
      for (const pair of selectorText.split(',').filter(Boolean)) {
        const [key, value, more] = pair.split('=');
        if (!key || value === undefined || more !== undefined || key.length > 253 || value.length > 63) throw new WharfError('bad_request', '"selector" must be labels like app=api,tier=web');
        selector[key] = value;
      }
    }
    const resolved = await hybridEnv.resolve(c.req.param('id'), service, { includeSecrets: secrets === 'include', selector });
    c.header('Cache-Control', 'no-store');
    return c.json(resolved);
  });
};
