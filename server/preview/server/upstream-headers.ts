import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one hop, never passed on (RFC 9110 §7.6.1), plus Node's own framing. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Every cookie wharf sets is named `wharf_…`; none of them is the app's business. */
const WHARF_COOKIE = /^wharf_/;

/** How the browser reached the preview: under a path prefix of the IDE's origin, or at the root of its own. */
export type PreviewForm =
  | { kind: 'path'; workspace: string; port: number; /** what the browser's URL starts with */ prefix: string; /** whether the prefix is cut off before the app sees the path */ strip: boolean; origin: string }
  | { kind: 'host'; workspace: string; port: number; origin: string };

export type UpstreamHeaderOptions = {
  form: PreviewForm;
  /** The request came with wharf's bearer token: it must not reach the app. */
  dropAuthorization: boolean;
  /** Keep `Connection: upgrade` / `Upgrade` (a websocket handshake). */
  upgrade: boolean;
};

/** Cookie header without wharf's credentials (session, CSRF, share and preview cookies). */
export function filterCookieHeader(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part && !WHARF_COOKIE.test(part.split('=')[0].trim()));
  return kept.length > 0 ? kept.join('; ') : undefined;
}

/**
 * The request headers the app gets. It is told it is served as `localhost:<port>` (dev servers,
 * Vite's and webpack's among them, refuse a Host or Origin they do not know: DNS-rebinding
 * guards), and learns the real host, scheme and prefix from the usual X-Forwarded-* headers. An
 * Origin is rewritten only when it is the preview's own, which the gateway checked already.
 */
export function buildUpstreamHeaders(incoming: IncomingHttpHeaders, options: UpstreamHeaderOptions): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'host' || name === 'cookie' || name.startsWith('x-forwarded-')) continue;
    if (name === 'authorization' && options.dropAuthorization) continue;
    out[name] = value;
  }
  const { form } = options;
  const local = `localhost:${form.port}`;
  out.host = local;
  const cookie = filterCookieHeader(incoming.cookie);
  if (cookie) out.cookie = cookie;
  if (incoming.origin && incoming.origin.toLowerCase() === form.origin.toLowerCase()) out.origin = `http://${local}`;
  const url = new URL(form.origin);
  out['x-forwarded-host'] = url.host;
  out['x-forwarded-proto'] = url.protocol.replace(':', '');
  if (form.kind === 'path') out['x-forwarded-prefix'] = form.prefix;
  if (options.upgrade) {
    out.connection = 'Upgrade';
    if (incoming.upgrade) out.upgrade = incoming.upgrade;
  }
  return out;
}

/** A Location the app sent for itself (`/x`, `http://localhost:5173/x`), made to point where the browser reaches it. */
export function rewriteLocation(location: string, form: PreviewForm): string {
  let path: string | undefined;
  if (location.startsWith('/') && !location.startsWith('//')) path = location;
  else {
    try {
      const url = new URL(location);
      if (['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) && url.port === String(form.port)) path = `${url.pathname}${url.search}${url.hash}`;
    } catch {
      return location; // relative without a slash: relative to the page, already right
    }
  }
  if (path === undefined) return location;
  if (form.kind === 'host') return path;
  return form.strip ? `${form.prefix}${path}` : path;
}

/**
 * One Set-Cookie of the app's, as the browser may get it, or undefined to drop it. On the path
 * form the app shares the IDE's origin, so it sets no cookie at all (it could overwrite wharf's
 * own or plant one for the IDE). On its own origin it keeps its cookies, but host-only: a
 * `Domain` attribute would reach the other previews and any parent domain the IDE lives under.
 */
export function filterSetCookie(value: string, form: PreviewForm): string | undefined {
  if (form.kind === 'path') return undefined;
  const [pair, ...attributes] = value.split(';');
  if (WHARF_COOKIE.test(pair.split('=')[0].trim())) return undefined;
  return [pair, ...attributes.filter((a) => !/^\s*domain\s*=/i.test(a))].join(';');
}

/** The response headers the browser gets from the app's answer. */
export function buildDownstreamHeaders(incoming: IncomingHttpHeaders, form: PreviewForm): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    if (name === 'set-cookie') {
      const kept = (Array.isArray(value) ? value : [value]).map((v) => filterSetCookie(v, form)).filter((v): v is string => v !== undefined);
      if (kept.length > 0) out[name] = kept;
      continue;
    }
    if (name === 'location' && typeof value === 'string') {
      out[name] = rewriteLocation(value, form);
      continue;
    }
    out[name] = value;
  }
  return out;
}
