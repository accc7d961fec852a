import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Histogram } from 'prom-client';
import { tokenMatches, createSessionCookieValue, SESSION_COOKIE, type Authenticator, type Principal } from './auth.ts';
import type { AppDeps, AppEnv, RouteModule } from './app-types.ts';
import { errorBody, httpStatusOf } from './error-mapping.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerDocRoutes } from './routes/docs.ts';
import { registerDeployRoutes } from './routes/deploys.ts';
import { registerTerminalRoutes } from './routes/terminals.ts';
import { registerSshTunnelRoutes } from './routes/ssh-tunnel.ts';
import { registerWorkspaceRoutes } from './routes/workspaces.ts';
import { registerDownloadRoutes } from './routes/downloads.ts';
import { createWsRouter } from './ws-router.ts';

/** Paths reachable without credentials: health and login only. */
export const PUBLIC_PATHS = new Set(['/healthz', '/login', '/api/login']);

/**
 * Every feature's routes, in one list so a test can enumerate them. Files come first: their guard
 * must see a raw `..` in a files URL before URL normalisation lets it reach another route.
 */
const ROUTE_MODULES: RouteModule[] = [registerFileRoutes, registerWorkspaceRoutes, registerSshTunnelRoutes, registerDocRoutes, registerTerminalRoutes, registerDeployRoutes, registerDownloadRoutes];

export type SharePathRule = (method: string, path: string, principal: Extract<Principal, { kind: 'share' }>) => boolean;

const LOGIN_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>wharf — sign in</title>
<style>body{font:15px system-ui;background:#1e1e1e;color:#ddd;display:grid;place-items:center;height:100vh;margin:0}
form{background:#252526;padding:2em;border-radius:8px;display:grid;gap:.8em;min-width:320px}
input,button{font:inherit;padding:.5em;border-radius:4px;border:1px solid #444;background:#333;color:#eee}
button{background:#0e639c;border:0;cursor:pointer}#err{color:#f88;min-height:1.2em}</style></head>
<body><form id="f"><h2>wharf</h2><label>Access token <input id="t" name="token" type="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button><div id="err"></div></form>
<script>document.getElementById('f').onsubmit=async(e)=>{e.preventDefault();
const r=await fetch('/api/login',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({token:document.getElementById('t').value})});
if(r.ok){location.href='/'}else{document.getElementById('err').textContent='That token is not valid.'}}</script></body></html>`;

export function createApp(deps: AppDeps & { authenticator: Authenticator; sharePathRules?: SharePathRule[]; extraRouteModules?: RouteModule[] }) {
  const app = new Hono<AppEnv>();
  const ws = createWsRouter({
    authenticator: deps.authenticator,
    maxPayload: deps.maxWebSocketMessageBytes,
    log: (event, fields) => deps.logger.warn({ event, ...fields }),
  });
  const requests = new Counter({ name: 'wharf_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'status'], registers: [deps.metrics] });
  const duration = new Histogram({ name: 'wharf_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method'], registers: [deps.metrics] });

  const cookieAttributes = (maxAgeSeconds: number) =>
    `Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${deps.publicUrl?.startsWith('https:') ? '; Secure' : ''}`;

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const ms = performance.now() - started;
    requests.inc({ method: c.req.method, status: String(c.res.status) });
    duration.observe({ method: c.req.method }, ms / 1000);
    deps.logger.info({ event: 'http', method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(ms * 10) / 10 });
  });

  app.use('*', async (c, next) => {
    // `/s/<token>` is a share link: like /login, it checks its own credential (the token).
    if (PUBLIC_PATHS.has(c.req.path) || c.req.path.startsWith('/s/')) return next();
    const principal = await deps.authenticator.authenticate(
      { authorization: c.req.header('authorization'), cookie: c.req.header('cookie') },
      new URL(c.req.url),
    );
    if (!principal) {
      const wantsHtml = c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html');
      if (wantsHtml) return c.html('<!doctype html><meta http-equiv="refresh" content="0;url=/login"><a href="/login">Sign in</a>', 401);
      return c.json({ error: { code: 'unauthorized', message: 'sign in first: send "Authorization: Bearer <token>" or open the login URL' } }, 401);
    }
    if (principal.kind === 'share' && !(deps.sharePathRules ?? []).some((rule) => rule(c.req.method, c.req.path, principal))) {
      return c.json({ error: { code: 'forbidden', message: 'a share link only opens its own terminal' } }, 403);
    }
    c.set('principal', principal);
    return next();
  });

  app.onError((err, c) => {
    const status = httpStatusOf(err);
    if (status >= 500) deps.logger.error({ event: 'http.error', path: c.req.path, error: err.message, stack: err.stack });
    return c.json(errorBody(err), status as 400);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/metrics', async (c) => c.text(await deps.metrics.metrics(), 200, { 'content-type': deps.metrics.contentType }));
  /** Every HTTP route and websocket this server serves, read at request time so none is missed. */
  app.get('/api/routes', (c) => {
    const seen = new Set<string>();
    const http = app.routes
      .map((r) => ({ method: r.method, path: r.path }))
      .filter((r) => !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`));
    return c.json({ http, websockets: ws.routes.map((r) => ({ path: r.pattern })) });
  });

  /** `GET /login?token=...` is the printed login URL: it sets the session cookie and goes home. */
  app.get('/login', (c) => {
    const token = c.req.query('token');
    if (token === undefined) return c.html(LOGIN_PAGE);
    if (!tokenMatches(deps.secrets.token, token)) return c.html(LOGIN_PAGE.replace('<div id="err"></div>', '<div id="err">That token is not valid.</div>'), 401);
    c.header('Set-Cookie', `${SESSION_COOKIE}=${createSessionCookieValue(deps.secrets.secret, deps.sessionTtlMs)}; ${cookieAttributes(Math.floor(deps.sessionTtlMs / 1000))}`);
    c.header('Referrer-Policy', 'no-referrer');
    return c.redirect('/', 303);
  });
  app.post('/api/login', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { token?: unknown };
    if (typeof body.token !== 'string' || !tokenMatches(deps.secrets.token, body.token)) {
      return c.json({ error: { code: 'unauthorized', message: 'invalid token' } }, 401);
    }
    c.header('Set-Cookie', `${SESSION_COOKIE}=${createSessionCookieValue(deps.secrets.secret, deps.sessionTtlMs)}; ${cookieAttributes(Math.floor(deps.sessionTtlMs / 1000))}`);
    return c.json({ ok: true });
  });
  app.post('/api/logout', (c) => {
    c.header('Set-Cookie', `${SESSION_COOKIE}=; ${cookieAttributes(0)}`);
    return c.json({ ok: true });
  });

  for (const register of [...ROUTE_MODULES, ...(deps.extraRouteModules ?? [])]) register(app, ws, deps);

  if (deps.webDir && existsSync(deps.webDir)) {
    const webDir = deps.webDir;
    app.use('/assets/*', serveStatic({ root: webDir }));
    // Client-side routes all get the single-page app; an unknown API path stays a JSON 404.
    app.get('*', (c, next) => (c.req.path.startsWith('/api/') ? c.notFound() : next()), serveStatic({ root: webDir, rewriteRequestPath: () => '/index.html' }));
  } else {
    app.get('/', (c) => c.text(`wharf is running. The web UI is not built; run "npm run build" (looked in ${deps.webDir ? join(deps.webDir) : '(none)'}).\n`));
  }

  return { app, ws };
}
