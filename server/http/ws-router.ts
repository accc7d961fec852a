import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Authenticator, Principal } from './auth.ts';
import { closeCodeOf, closeReasonOf } from './error-mapping.ts';
import { isAllowedOrigin, type SiteOrigins } from './origin.ts';

export type WsContext = { params: Record<string, string>; principal: Principal; url: URL; request: IncomingMessage };

export type WsRoute = {
  pattern: string;
  /** Admin principals always pass; a share principal passes only where this says so. */
  allowShare?: (principal: Extract<Principal, { kind: 'share' }>, params: Record<string, string>) => boolean;
  handle: (ws: WebSocket, ctx: WsContext) => void | Promise<void>;
};

export function matchPattern(pattern: string, pathname: string): Record<string, string> | undefined {
  const p = pattern.split('/');
  const s = pathname.split('/');
  if (p.length !== s.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) {
      if (!s[i]) return undefined;
      try {
        params[p[i].slice(1)] = decodeURIComponent(s[i]);
      } catch {
        return undefined;
      }
    } else if (p[i] !== s[i]) return undefined;
  }
  return params;
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}

/** Routes websocket upgrades; every socket is authenticated before the upgrade completes. */
export function createWsRouter(options: { authenticator: Authenticator; site: SiteOrigins; maxPayload: number; log: (event: string, fields?: Record<string, unknown>) => void }) {
  const routes: WsRoute[] = [];
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false });

  async function handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    const url = new URL(request.url ?? '/', 'http://localhost');
    // Websockets are not bound by the same-origin policy: any page may open one to us, and the
    // browser attaches our cookies (session or share link) when the page is on the same host,
    // whatever its port. So an upgrade that names a foreign Origin is refused before anything else.
    // A missing Origin stays allowed: every browser sends one on a websocket handshake (scripts
    // cannot remove it), so a request without one comes from a program (the CLI, node `ws`), and
    // a program that presents our cookie already holds the credential: nothing is forged there.
    const origin = request.headers.origin;
    if (origin !== undefined && !isAllowedOrigin(options.site, origin)) {
      options.log('ws.foreign_origin', { path: url.pathname, origin });
      return refuse(socket, 403, 'Forbidden');
    }
    let route: WsRoute | undefined;
    let params: Record<string, string> | undefined;
    for (const r of routes) {
      params = matchPattern(r.pattern, url.pathname);
      if (params) {
        route = r;
        break;
      }
    }
    const principal = await options.authenticator.authenticate(
      { authorization: request.headers.authorization, cookie: request.headers.cookie },
      url,
    );
    if (!principal) return refuse(socket, 401, 'Unauthorized');
    if (!route || !params) return refuse(socket, 404, 'Not Found');
    if (principal.kind === 'share' && !route.allowShare?.(principal, params)) return refuse(socket, 403, 'Forbidden');
    const matched = route;
    const matchedParams = params;
    wss.handleUpgrade(request, socket, head, (ws) => {
      // `ws` reports an oversized or malformed frame as an 'error' and then closes the socket
      // (1009 / 1002); without a listener that error would crash the whole control server.
      ws.on('error', (err) => options.log('ws.protocol_error', { path: url.pathname, error: err.message }));
      const failed = (err: unknown) => {
        options.log('ws.error', { path: url.pathname, error: (err as Error).message });
        ws.close(closeCodeOf(err), closeReasonOf(err));
      };
      // Called synchronously: frames that came with the upgrade are emitted on the next tick,
      // so a handler must get the chance to listen before then.
      try {
        Promise.resolve(matched.handle(ws, { params: matchedParams, principal, url, request })).catch(failed);
      } catch (err) {
        failed(err);
      }
    });
  }

  return {
    routes: routes as readonly WsRoute[],
    add(route: WsRoute): void {
      routes.push(route);
    },
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
      handleUpgrade(request, socket, head).catch(() => socket.destroy());
    },
    close(): void {
      for (const client of wss.clients) client.terminate();
      wss.close();
    },
  };
}

export type WsRouter = ReturnType<typeof createWsRouter>;
