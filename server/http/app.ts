import { getConnInfo } from '@hono/node-server/conninfo';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono, type Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Counter, Histogram } from 'prom-client';
import { createCsrfToken, createSession, CSRF_COOKIE, CSRF_HEADER, readCookie, SESSION_COOKIE, tokenMatches, type Authenticator, type Principal } from './auth.ts';
import type { AppDeps, AppEnv, RouteModule } from './app-types.ts';
import { wharfVersion } from '../common/index.ts';
import { readJsonBody } from './body.ts';
import { createLoginLimiter } from './login-limiter.ts';
import { isAllowedOrigin } from './origin.ts';
import type { SessionRevocations } from './session-revocations.ts';
import { errorBody, httpStatusOf } from './error-mapping.ts';
import { registerFileRoutes } from './routes/files.ts';
import { registerDocRoutes } from './routes/docs.ts';
import { registerDeployRoutes } from './routes/deploys.ts';
import { registerTerminalRoutes } from './routes/terminals.ts';
import { registerSshTunnelRoutes } from './routes/ssh-tunnel.ts';
import { registerWorkspaceRoutes } from './routes/workspaces.ts';
import { PUBLIC_DOWNLOAD_PATHS, registerDownloadRoutes } from './routes/downloads.ts';
import { registerHybridEnvRoutes } from './routes/hybrid-env.ts';
import { registerPreviewRoutes } from './routes/previews.ts';
import { createWsRouter } from './ws-router.ts';

/**
 * Paths reachable without credentials: health, login, and the helper's public downloads (the
 * helper is no secret, and `curl … | sh` has no token to send). Exact paths, not prefixes.
 */
export const PUBLIC_PATHS = new Set(['/healthz', '/login', '/api/login', ...PUBLIC_DOWNLOAD_PATHS]);

/** Every answer says which wharf it comes from: the helper compares it with its own and says when to update. */
export const VERSION_HEADER = 'X-Wharf-Version';

/**
 * Every feature's routes, in one list so a test can enumerate them. Files come first: their guard
 * must see a raw `..` in a files URL before URL normalisation lets it reach another route.
 */
const ROUTE_MODULES: RouteModule[] = [registerFileRoutes, registerWorkspaceRoutes, registerSshTunnelRoutes, registerDocRoutes, registerTerminalRoutes, registerDeployRoutes, registerHybridEnvRoutes, registerPreviewRoutes, registerDownloadRoutes];

/** Methods a browser page of another origin must not use with our cookies. */
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Credentials that travel in a URL path (share links, a deploy runner's one-time token) must not
 * reach the access log, which is read by more people than the admin.
 */
const SECRET_PATHS = [/^(\/s\/)[^/]+/, /^(\/p\/)[^/]+/, /^(\/api\/deploy-secrets\/)[^/]+/];

export function redactPath(path: string): string {
  return SECRET_PATHS.reduce((p, pattern) => p.replace(pattern, '$1<redacted>'), path);
}

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

export function createApp(
  deps: AppDeps & { authenticator: Authenticator; sessionRevocations?: SessionRevocations; sharePathRules?: SharePathRule[]; extraRouteModules?: RouteModule[] },
) {
  const app = new Hono<AppEnv>();
  const ws = createWsRouter({
    authenticator: deps.authenticator,
    site: deps.site,
    maxPayload: deps.maxWebSocketMessageBytes,
    log: (event, fields) => deps.logger.warn({ event, ...fields }),
  });
  const requests = new Counter({ name: 'wharf_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'status'], registers: [deps.metrics] });
  const duration = new Histogram({ name: 'wharf_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method'], registers: [deps.metrics] });

  const secure = () => (deps.site.publicUrl().startsWith('https:') ? '; Secure' : '');
  const cookieAttributes = (maxAgeSeconds: number) => `Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure()}`;
  /** The CSRF cookie is the one the page's script must read, so it is not HttpOnly. */
  const setCsrfCookie = (c: Context<AppEnv>, sessionId: string, maxAgeSeconds: number) =>
    c.header('Set-Cookie', `${CSRF_COOKIE}=${createCsrfToken(deps.secrets.secret, sessionId)}; Path=/; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure()}`, { append: true });
  const startSession = (c: Context<AppEnv>) => {
    const session = createSession(deps.secrets, deps.sessionTtlMs);
    const maxAge = Math.floor(deps.sessionTtlMs / 1000);
    c.header('Set-Cookie', `${SESSION_COOKIE}=${session.cookie}; ${cookieAttributes(maxAge)}`, { append: true });
    setCsrfCookie(c, session.id, maxAge);
  };
  const logins = createLoginLimiter({ limit: deps.loginFailureLimit, windowMs: deps.loginFailureWindowMs });
  const clientAddress = (c: Context<AppEnv>) => {
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown';
    }
  };
  /** A login attempt from an address that failed too often gets 429 without its token being looked at. */
  const refuseThrottled = (c: Context<AppEnv>) => {
    const retryAfter = logins.retryAfterSeconds(clientAddress(c));
    if (retryAfter === undefined) return undefined;
    c.header('Retry-After', String(retryAfter));
    return c.json({ error: { code: 'too_many', message: `too many failed sign-ins from this address: try again in ${retryAfter} s` } }, 429);
  };

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const ms = performance.now() - started;
    requests.inc({ method: c.req.method, status: String(c.res.status) });
    duration.observe({ method: c.req.method }, ms / 1000);
    deps.logger.info({ event: 'http', method: c.req.method, path: redactPath(c.req.path), status: c.res.status, ms: Math.round(ms * 10) / 10 });
  });

  const version = wharfVersion();
  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set(VERSION_HEADER, version);
  });

  // On every answer, errors included. Framing is refused outright (nothing of wharf is meant to be
  // embedded, and a framed UI could be clickjacked); HSTS is left to whoever terminates TLS.
  app.use(
    '*',
    secureHeaders({
      xFrameOptions: 'DENY',
      contentSecurityPolicy: { frameAncestors: ["'none'"] },
      xContentTypeOptions: 'nosniff',
      strictTransportSecurity: false,
      overwrite: false,
    }),
  );

  // Before authentication, so that a login from another site's page is refused as well.
  app.use('*', async (c, next) => {
    c.set('maxJsonBodyBytes', deps.maxJsonBodyBytes);
    const origin = c.req.header('origin');
    if (UNSAFE_METHODS.has(c.req.method) && origin !== undefined && !isAllowedOrigin(deps.site, origin)) {
      return c.json({ error: { code: 'forbidden', message: `requests from pages of ${origin} are refused: only ${deps.site.allowedOrigins().join(', ')} may use this server (see --allowed-origin)` } }, 403);
    }
    return next();
  });

  app.use('*', async (c, next) => {
    // `/s/<token>` and `/p/<token>` are share links (a terminal's, a port's): like /login, they check their own credential.
    if (PUBLIC_PATHS.has(c.req.path) || c.req.path.startsWith('/s/') || c.req.path.startsWith('/p/')) return next();
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
    // Double-submit check for cookie sessions: a bearer token is never sent by a browser on its
    // own, and share links may only GET (their websocket is checked by Origin), so only a session
    // cookie needs it. The token is a function of the session id (createCsrfToken).
    if (principal.kind === 'admin' && principal.session) {
      const expected = createCsrfToken(deps.secrets.secret, principal.session.id);
      if (UNSAFE_METHODS.has(c.req.method) && !tokenMatches(expected, c.req.header(CSRF_HEADER))) {
        return c.json({ error: { code: 'forbidden', message: `missing or wrong ${CSRF_HEADER} header: a signed-in page sends the value of its "${CSRF_COOKIE}" cookie (reload the page)` } }, 403);
      }
      // A browser that lost the CSRF cookie (or signed in before it existed) gets it back.
      if (readCookie(c.req.header('cookie'), CSRF_COOKIE) !== expected) setCsrfCookie(c, principal.session.id, Math.max(1, Math.floor((principal.session.exp - Date.now()) / 1000)));
    }
    c.set('principal', principal);
    return next();
  });

  app.onError((err, c) => {
    const status = httpStatusOf(err);
    if (status >= 500) deps.logger.error({ event: 'http.error', path: redactPath(c.req.path), error: err.message, stack: err.stack });
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
    const throttled = refuseThrottled(c);
    if (throttled) return throttled;
    if (!tokenMatches(deps.secrets.token, token)) {
      logins.recordFailure(clientAddress(c));
      return c.html(LOGIN_PAGE.replace('<div id="err"></div>', '<div id="err">That token is not valid.</div>'), 401);
    }
    startSession(c);
    c.header('Referrer-Policy', 'no-referrer');
    return c.redirect('/', 303);
  });
  app.post('/api/login', async (c) => {
    const throttled = refuseThrottled(c);
    if (throttled) return throttled;
    const body = await readJsonBody(c);
    if (typeof body.token !== 'string' || !tokenMatches(deps.secrets.token, body.token)) {
      logins.recordFailure(clientAddress(c));
      return c.json({ error: { code: 'unauthorized', message: 'invalid token' } }, 401);
    }
    startSession(c);
    return c.json({ ok: true });
  });
  /** Ends this browser's session on every replica that shares the data dir (session-revocations.ts). */
  app.post('/api/logout', async (c) => {
    const principal = c.get('principal');
    if (principal.kind === 'admin' && principal.session) await deps.sessionRevocations?.revoke(principal.session.id, principal.session.exp);
    c.header('Set-Cookie', `${SESSION_COOKIE}=; ${cookieAttributes(0)}`, { append: true });
    c.header('Set-Cookie', `${CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0${secure()}`, { append: true });
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
