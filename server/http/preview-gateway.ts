import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { formatPreviewHost, parsePortNumber, parsePreviewHost } from '../preview/index.ts';
import type { PreviewForm, PreviewService, VerifiedPortShare } from '../preview/server/index.ts';
import { listCookies, readCookie, type Authenticator } from './auth.ts';
import type { Logger } from './app-types.ts';
import { isAllowedOrigin, type SiteOrigins } from './origin.ts';
import { PORT_SHARE_COOKIE_PREFIX, PREVIEW_COOKIE, PREVIEW_RESERVED_PREFIX, issuePreviewSession, verifyHandoff, verifyPreviewSession } from './preview-tokens.ts';
import type { SessionRevocations } from './session-revocations.ts';

export type PreviewGatewayOptions = {
  previews: PreviewService;
  authenticator: Authenticator;
  site: SiteOrigins;
  secret: Buffer;
  sessionRevocations?: SessionRevocations;
  /** `--preview-domain`: host-based previews are served under it; unset: by path only. */
  previewDomain: string | undefined;
  logger: Logger;
};

/** `/api/workspaces/<id>/ports/<port>[/rest]`: `ports` strips the prefix (code-server's /proxy/), `absports` keeps it (its /absproxy/). */
const PATH_FORM = /^\/api\/workspaces\/([^/?]+)\/(ports|absports)\/([^/?]+)(\/[^?]*)?(\?.*)?$/;
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** A browser holding more port share cookies than this has only its first ones looked at. */
const MAX_SHARE_COOKIES = 16;

type Access = { ok: true; dropAuthorization: boolean; share?: VerifiedPortShare } | { ok: false; status: number; message: string; redirect?: string };

type Resolved = { form: PreviewForm; path: string } | { error: { status: number; message: string; location?: string } };

function answer(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  const text = `${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
}

function refuseSocket(socket: Duplex, status: number, message: string): void {
  const text = `${message}\n`;
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
}

function wantsHtml(req: IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

/**
 * The preview's front door, in front of the Hono app (it works on raw Node requests, so bodies
 * and websockets stream without an adapter between): it recognises preview URLs of both forms,
 * authenticates them like the IDE, checks Origin, and hands them to the preview proxy. Anything
 * else goes on to the IDE's routes, and a preview host never reaches those.
 */
export function createPreviewGateway(options: PreviewGatewayOptions) {
  const { previews, site, secret } = options;
  const usedHandoffs = new Map<string, number>();

  function publicUrl(): URL {
    return new URL(site.publicUrl());
  }

  /** A preview host's origin: the public URL's scheme and port. */
  function previewOrigin(host: string): string {
    const pub = publicUrl();
    return `${pub.protocol}//${host}${pub.port ? `:${pub.port}` : ''}`;
  }

  function resolvePath(req: IncomingMessage): Resolved | undefined {
    const match = PATH_FORM.exec(req.url ?? '');
    if (!match) return undefined;
    const [, rawId, kind, rawPort, rest, query = ''] = match;
    let workspace: string;
    try {
      workspace = decodeURIComponent(rawId);
    } catch {
      return { error: { status: 400, message: 'the workspace id in this preview URL is garbled' } };
    }
    const port = parsePortNumber(rawPort);
    if (port === undefined) return { error: { status: 400, message: `"${rawPort.slice(0, 40)}" is not a port: preview URLs are /api/workspaces/<id>/ports/<1-65535>/` } };
    const prefix = `/api/workspaces/${encodeURIComponent(workspace)}/${kind}/${port}`;
    // Relative links of the app resolve against the directory: without the slash they would miss the prefix.
    if (rest === undefined) return { error: { status: 308, message: `moved to ${prefix}/`, location: `${prefix}/${query}` } };
    const strip = kind === 'ports';
    return { form: { kind: 'path', workspace, port, prefix, strip, origin: publicUrl().origin }, path: `${strip ? rest : prefix + rest}${query}` };
  }

  function resolveHost(req: IncomingMessage): Resolved | undefined {
    if (!options.previewDomain) return undefined;
    const hostHeader = req.headers.host;
    const host = (hostHeader ?? '').toLowerCase().replace(/:\d+$/, '');
    if (!host.endsWith(`.${options.previewDomain}`)) return undefined;
    const parsed = parsePreviewHost(hostHeader, options.previewDomain);
    if (!parsed) return { error: { status: 400, message: `${host} is not a preview host: they are <port>--<workspace>.${options.previewDomain}` } };
    const origin = previewOrigin(formatPreviewHost(parsed.port, parsed.workspace, options.previewDomain));
    return { form: { kind: 'host', workspace: parsed.workspace, port: parsed.port, origin }, path: req.url ?? '/' };
  }

  /** The port share links the browser presents that are for this workspace port and still valid. */
  async function findShare(cookieHeader: string | undefined, form: PreviewForm): Promise<VerifiedPortShare | undefined> {
    const tokens = listCookies(cookieHeader)
      .filter((c) => c.name.startsWith(PORT_SHARE_COOKIE_PREFIX))
      .slice(0, MAX_SHARE_COOKIES);
    for (const { value } of tokens) {
      const verified = await previews.shares.verify(value);
      if (verified.ok && verified.value.workspace === form.workspace && verified.value.port === form.port) return verified.value;
    }
    return undefined;
  }

  /**
   * Who may see the preview. Path form: the IDE's own credentials (session cookie or bearer
   * token), as for any IDE route. Host form: the bearer token or the preview cookie of that very
   * host (set through the hand-off); the IDE's cookie is never there. Either form: a valid share
   * link of that port, public, or login-required with one of the above.
   */
  async function authorize(req: IncomingMessage, form: PreviewForm, url: URL): Promise<Access> {
    const authorization = req.headers.authorization;
    let signedIn = false;
    if (form.kind === 'path') {
      const principal = await options.authenticator.authenticate({ authorization, cookie: req.headers.cookie }, url);
      signedIn = principal?.kind === 'admin';
    } else {
      const principal = authorization ? await options.authenticator.authenticate({ authorization }, url) : undefined;
      signedIn = principal?.kind === 'admin';
      const cookie = readCookie(req.headers.cookie, PREVIEW_COOKIE);
      const session = cookie ? verifyPreviewSession(secret, cookie, new URL(form.origin).hostname) : undefined;
      if (session && !(await options.sessionRevocations?.isRevoked(session.sid))) signedIn = true;
    }
    const dropAuthorization = authorization !== undefined && signedIn;
    if (signedIn) return { ok: true, dropAuthorization };
    const share = await findShare(req.headers.cookie, form);
    if (share?.public) return { ok: true, dropAuthorization: false, share };
    if (share) return { ok: false, status: 401, message: 'this share link is for signed-in people: sign in to wharf first' };
    if (form.kind === 'host') {
      const to = `${form.origin}${req.url ?? '/'}`;
      return { ok: false, status: 401, message: 'sign in first: open this preview from the workspace\'s Ports panel', redirect: `${site.publicUrl()}/api/preview-auth?to=${encodeURIComponent(to)}` };
    }
    return { ok: false, status: 401, message: 'sign in first: send "Authorization: Bearer <token>" or open the login URL', redirect: '/login' };
  }

  /** Pages of other origins must not use the preview's credentials: only its own origin (or none, a program) may. */
  function originAllowed(req: IncomingMessage, form: PreviewForm): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    return form.kind === 'path' ? isAllowedOrigin(site, origin) : origin.toLowerCase() === form.origin.toLowerCase();
  }

  const secureSuffix = () => (publicUrl().protocol === 'https:' ? '; Secure' : '');

  /** `/__wharf/auth` and `/__wharf/share` of a preview host: the two hand-offs that set its cookies. */
  async function serveReserved(req: IncomingMessage, res: ServerResponse, form: Extract<PreviewForm, { kind: 'host' }>): Promise<void> {
    const url = new URL(req.url ?? '/', form.origin);
    const host = url.hostname;
    const to = url.searchParams.get('to') ?? '/';
    const target = to.startsWith('/') && !to.startsWith('//') && !to.startsWith('/\\') ? to : '/';
    const headers = { 'referrer-policy': 'no-referrer' };
    if (url.pathname === `${PREVIEW_RESERVED_PREFIX}auth`) {
      const handoff = verifyHandoff(secret, url.searchParams.get('token') ?? '', host);
      const t = Date.now();
      for (const [nonce, exp] of usedHandoffs) if (exp <= t) usedHandoffs.delete(nonce);
      if (!handoff || usedHandoffs.has(handoff.nonce) || (await options.sessionRevocations?.isRevoked(handoff.sid))) {
        return answer(res, 401, 'this sign-in link is not valid or was used already: open the preview again from the workspace', headers);
      }
      usedHandoffs.set(handoff.nonce, t + 120_000);
      const maxAge = Math.max(1, Math.floor((handoff.sexp - t) / 1000));
      res.writeHead(303, { ...headers, location: target, 'set-cookie': `${PREVIEW_COOKIE}=${issuePreviewSession(secret, host, handoff.sid, handoff.sexp)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secureSuffix()}`, 'content-length': '0' });
      return void res.end();
    }
    if (url.pathname === `${PREVIEW_RESERVED_PREFIX}share`) {
      const token = url.searchParams.get('token') ?? '';
      const verified = await previews.shares.verify(token);
      if (!verified.ok || verified.value.workspace !== form.workspace || verified.value.port !== form.port) {
        return answer(res, verified.ok ? 403 : verified.error.code === 'revoked' ? 403 : 401, verified.ok ? 'this share link is for another port' : `${verified.error.message}: ask for a new link`, headers);
      }
      const maxAge = Math.max(1, Math.floor((verified.value.exp - Date.now()) / 1000));
      res.writeHead(303, { ...headers, location: target, 'set-cookie': `${PORT_SHARE_COOKIE_PREFIX}${verified.value.shareId}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secureSuffix()}`, 'content-length': '0' });
      return void res.end();
    }
    return answer(res, 404, `${url.pathname} is reserved by wharf on preview origins`);
  }

  async function serveRequest(req: IncomingMessage, res: ServerResponse, resolved: Resolved): Promise<void> {
    res.on('error', () => {});
    if ('error' in resolved) {
      return answer(res, resolved.error.status, resolved.error.message, resolved.error.location ? { location: resolved.error.location } : {});
    }
    const { form } = resolved;
    if (form.kind === 'host' && resolved.path.startsWith(PREVIEW_RESERVED_PREFIX)) return serveReserved(req, res, form);
    if (UNSAFE_METHODS.has(req.method ?? '') && !originAllowed(req, form)) {
      return answer(res, 403, `requests from pages of ${req.headers.origin} are refused: only ${form.origin} may use this preview`);
    }
    const access = await authorize(req, form, new URL(req.url ?? '/', form.origin));
    if (!access.ok) {
      if (access.redirect && wantsHtml(req)) {
        res.writeHead(302, { location: access.redirect, 'cache-control': 'no-store', 'content-length': '0' });
        return void res.end();
      }
      return answer(res, access.status, access.message);
    }
    await previews.proxy.serveHttp(req, res, { form, path: resolved.path, dropAuthorization: access.dropAuthorization });
  }

  async function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, resolved: Resolved): Promise<void> {
    if ('error' in resolved) return refuseSocket(socket, resolved.error.status === 308 ? 404 : resolved.error.status, resolved.error.message);
    const { form } = resolved;
    // Websockets are not bound by the same-origin policy: without this, any page could open the
    // app's socket with the visitor's cookies.
    if (!originAllowed(req, form)) {
      options.logger.warn({ event: 'preview.foreign_origin', origin: req.headers.origin, workspace: form.workspace, port: form.port });
      return refuseSocket(socket, 403, `websockets from pages of ${req.headers.origin} are refused: only ${form.origin} may open this preview's`);
    }
    const access = await authorize(req, form, new URL(req.url ?? '/', form.origin));
    if (!access.ok) return refuseSocket(socket, access.status, access.message);
    if (access.share) previews.trackShareSocket(access.share, socket);
    await previews.proxy.serveUpgrade(req, socket, head, { form, path: resolved.path, dropAuthorization: access.dropAuthorization });
  }

  return {
    /** Serves `req` when it is a preview request (true), else leaves it to the IDE's app (false). */
    handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
      const resolved = resolveHost(req) ?? resolvePath(req);
      if (!resolved) return false;
      const started = performance.now();
      serveRequest(req, res, resolved).catch((err: Error) => {
        options.logger.error({ event: 'preview.error', error: err.message });
        if (!res.headersSent) answer(res, 500, 'the preview failed on the server');
        else res.destroy();
      });
      res.once('finish', () => {
        const where = 'error' in resolved ? 'invalid' : `${resolved.form.workspace}:${resolved.form.port}`;
        options.logger.info({ event: 'preview.http', method: req.method, preview: where, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 });
      });
      return true;
    },

    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
      const resolved = resolveHost(req) ?? resolvePath(req);
      if (!resolved) return false;
      socket.on('error', () => {});
      serveUpgrade(req, socket, head, resolved).catch((err: Error) => {
        options.logger.error({ event: 'preview.ws_error', error: err.message });
        socket.destroy();
      });
      return true;
    },
  };
}

export type PreviewGateway = ReturnType<typeof createPreviewGateway>;
