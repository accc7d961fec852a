import type { ShareService } from '../terminal/index.ts';
import type { SharePathRule } from './app.ts';
import { listCookies, type PrincipalResolver } from './auth.ts';
import type { Principal } from './auth.ts';

/**
 * Cookies set by `GET /s/<token>` so the shared-terminal page and its websocket carry the link:
 * one per link, `wharf_share_<share id>`, so links to several terminals opened in one browser
 * each keep working (`wharf_share` alone, as earlier versions set it, is still read).
 */
export const SHARE_COOKIE = 'wharf_share';

/** The cookie that carries the link `shareId`. */
export function nameShareCookie(shareId: string): string {
  return `${SHARE_COOKIE}_${shareId}`;
}

/** A browser holding more share cookies than this has only its first ones looked at. */
const MAX_SHARE_COOKIES = 16;

type SharePrincipal = Extract<Principal, { kind: 'share' }>;

/** Whether the request is about the link's own terminal (its page, metadata or websocket). */
function isAboutTerminal(principal: SharePrincipal, path: string): boolean {
  const ws = encodeURIComponent(principal.workspace);
  const tid = encodeURIComponent(principal.resource);
  return [`/share/${ws}/${tid}`, `/api/workspaces/${ws}/terminals/${tid}`].some((base) => path === base || path.startsWith(`${base}/`));
}

/**
 * Resolves a share-link principal from `?share=<token>` or the share cookies. Of several links,
 * the one for the terminal the request is about wins; for anything else (the page's assets)
 * any valid one does. The token's signature, expiry and revocation (stored with the workspace)
 * are checked on every request, so any replica refuses a revoked link.
 */
export function createShareResolver(shares: ShareService): PrincipalResolver {
  const resolve = async (token: string): Promise<SharePrincipal | undefined> => {
    const verified = await shares.verify(token);
    if (!verified.ok) return undefined;
    const share = verified.value;
    return { kind: 'share', workspace: share.workspace, resource: share.terminal, role: share.role, shareId: share.shareId, exp: share.exp };
  };
  return async ({ headers, url }) => {
    const query = url.searchParams.get('share');
    if (query) return resolve(query);
    const tokens = listCookies(headers.cookie)
      .filter((c) => c.name === SHARE_COOKIE || c.name.startsWith(`${SHARE_COOKIE}_`))
      .slice(0, MAX_SHARE_COOKIES)
      .map((c) => c.value);
    let fallback: SharePrincipal | undefined;
    for (const token of tokens) {
      const principal = await resolve(token);
      if (!principal) continue;
      if (isAboutTerminal(principal, url.pathname)) return principal;
      fallback ??= principal;
    }
    return fallback;
  };
}

/**
 * What a share principal may do over HTTP: load the web UI's assets, the page of its own
 * terminal and that terminal's metadata. The attach websocket is allowed by its route's
 * `allowShare`; everything else answers 403.
 */
export const SHARE_PATH_RULES: SharePathRule[] = [
  (method, path) => method === 'GET' && (path.startsWith('/assets/') || path === '/favicon.ico' || path === '/favicon.svg'),
  (method, path, principal) => {
    if (method !== 'GET') return false;
    const ws = encodeURIComponent(principal.workspace);
    const tid = encodeURIComponent(principal.resource);
    return path === `/share/${ws}/${tid}` || path === `/share/${ws}/${tid}/` || path === `/api/workspaces/${ws}/terminals/${tid}`;
  },
];
