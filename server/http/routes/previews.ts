import { formatPreviewHost, parsePortNumber, parsePreviewHost, type ListeningPort } from '../../preview/index.ts';
import { WharfError } from '../../common/index.ts';
import type { Context } from 'hono';
import type { AppDeps, AppEnv, RouteModule } from '../app-types.ts';
import { readJsonBody } from '../body.ts';
import { PORT_SHARE_COOKIE_PREFIX, PREVIEW_RESERVED_PREFIX, issueHandoff } from '../preview-tokens.ts';

const BASE = '/api/workspaces/:id';

function requireAdmin(c: Context<AppEnv>): void {
  if (c.get('principal')?.kind !== 'admin') throw new WharfError('forbidden', 'a share link only opens its own terminal');
}

/** Where a port of a workspace is previewed: by path always, by host when a preview domain is set. */
function previewUrls(deps: AppDeps, workspace: string, port: number): { path: string; host?: string } {
  const pub = new URL(deps.site.publicUrl());
  const path = `/api/workspaces/${encodeURIComponent(workspace)}/ports/${port}/`;
  if (!deps.previewDomain) return { path };
  return { path, host: `${pub.protocol}//${formatPreviewHost(port, workspace, deps.previewDomain)}${pub.port ? `:${pub.port}` : ''}/` };
}

function describePorts(deps: AppDeps, workspace: string, ports: ListeningPort[]) {
  return ports.map((p) => ({ ...p, urls: previewUrls(deps, workspace, p.port) }));
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export const registerPreviewRoutes: RouteModule = (app, ws, deps) => {
  const { previews } = deps;

  /** The workspace's listening ports now; the Ports panel follows them over `port-events`. */
  app.get(`${BASE}/ports`, async (c) => {
    requireAdmin(c);
    const id = c.req.param('id');
    await deps.workspaces.get(id);
    return c.json({ ports: describePorts(deps, id, await previews.ports.current(id)), previewDomain: deps.previewDomain ?? null });
  });

  /** Pushes the port list on every change: one agent subscription per workspace feeds every browser. */
  ws.add({
    pattern: `${BASE}/port-events`,
    handle: async (socket, ctx) => {
      const id = ctx.params.id;
      await deps.workspaces.get(id);
      const stop = previews.ports.watch(id, (ports) => socket.send(JSON.stringify({ type: 'ports', ports: describePorts(deps, id, ports) })));
      socket.on('close', stop);
      socket.on('message', () => {});
    },
  });

  app.get(`${BASE}/port-shares`, async (c) => {
    requireAdmin(c);
    const portText = c.req.query('port');
    const port = portText === undefined ? undefined : parsePortNumber(portText);
    if (portText !== undefined && port === undefined) throw new WharfError('bad_request', `"port" must be a number from 1 to 65535 (got "${portText}")`);
    const origin = deps.site.publicUrl();
    const list = await previews.shares.list(c.req.param('id'), port);
    return c.json({ shares: list.map((s) => ({ ...s, url: `${origin}/p/${s.token}` })) });
  });

  app.post(`${BASE}/port-shares`, async (c) => {
    requireAdmin(c);
    const body = await readJsonBody(c);
    const port = typeof body.port === 'number' ? parsePortNumber(String(body.port)) : undefined;
    if (port === undefined) throw new WharfError('bad_request', '"port" is required: a number from 1 to 65535');
    const workspace = c.req.param('id');
    await deps.workspaces.get(workspace);
    const created = await previews.shares.create(workspace, port, { public: body.public, expiresInSeconds: body.expiresInSeconds });
    if (!created.ok) throw new WharfError(created.error.code, created.error.message);
    const { record, token } = created.value;
    return c.json({ ...record, token, url: `${deps.site.publicUrl()}/p/${token}` }, 201);
  });

  app.delete(`${BASE}/port-shares/:shareId`, async (c) => {
    requireAdmin(c);
    const shareId = c.req.param('shareId');
    if (!(await previews.revokeShare(c.req.param('id'), shareId))) throw new WharfError('not_found', `no live port share link "${shareId}" in this workspace`);
    return c.body(null, 204);
  });

  /**
   * A port share link: checks it, leaves it in a cookie where the preview reads it, and sends the
   * browser to the preview: its own origin when a preview domain is set (via that origin's
   * `/__wharf/share`, which sets the cookie there), else the path form.
   */
  app.get('/p/:token', async (c) => {
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-store');
    const token = c.req.param('token');
    const verified = await previews.shares.verify(token);
    if (!verified.ok) {
      const status = verified.error.code === 'revoked' ? 403 : 401;
      const message = `${verified.error.message}. Ask for a new link.`;
      if ((c.req.header('accept') ?? '').includes('text/html')) return c.html(`<!doctype html><meta charset="utf-8"><title>wharf — share link</title><p>${escapeHtml(message)}</p>`, status);
      return c.json({ error: { code: status === 403 ? 'forbidden' : 'unauthorized', message } }, status);
    }
    const share = verified.value;
    const urls = previewUrls(deps, share.workspace, share.port);
    if (urls.host) return c.redirect(`${urls.host.replace(/\/$/, '')}${PREVIEW_RESERVED_PREFIX}share?token=${encodeURIComponent(token)}`, 303);
    const maxAge = Math.max(1, Math.floor((share.exp - Date.now()) / 1000));
    const secure = deps.site.publicUrl().startsWith('https:') ? '; Secure' : '';
    // Lax, not Strict: a link opened from a chat or a mail (another site) must work at once.
    c.header('Set-Cookie', `${PORT_SHARE_COOKIE_PREFIX}${share.shareId}=${token}; Path=/api/workspaces/${encodeURIComponent(share.workspace)}/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure}`);
    return c.redirect(urls.path, 303);
  });

  /**
   * The IDE's half of the hand-off to a preview origin: a signed-in browser is sent on to that
   * origin's `/__wharf/auth` with a one-minute token bound to the host and its session.
   */
  app.get('/api/preview-auth', (c) => {
    const principal = c.get('principal');
    if (principal.kind !== 'admin' || !principal.session) throw new WharfError('forbidden', 'previews are opened from a signed-in browser');
    if (!deps.previewDomain) throw new WharfError('not_found', 'host-based previews are off: start the server with --preview-domain');
    const to = c.req.query('to') ?? '';
    let target: URL;
    try {
      target = new URL(to);
    } catch {
      throw new WharfError('bad_request', '"to" must be the preview URL to open');
    }
    const pub = new URL(deps.site.publicUrl());
    const preview = parsePreviewHost(target.host, deps.previewDomain);
    if (!preview || target.protocol !== pub.protocol || target.port !== pub.port) {
      throw new WharfError('bad_request', `"to" is not a preview URL of this server (<port>--<workspace>.${deps.previewDomain})`);
    }
    const token = issueHandoff(deps.secrets.secret, target.hostname, principal.session);
    const path = `${target.pathname}${target.search}`;
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cache-Control', 'no-store');
    return c.redirect(`${target.origin}${PREVIEW_RESERVED_PREFIX}auth?token=${encodeURIComponent(token)}&to=${encodeURIComponent(path)}`, 303);
  });
};
