import type { ShareService } from '../terminal/server/index.ts';
import type { SharePathRule } from './app.ts';
import { listCookies, type Principal, type PrincipalResolver } from './auth.ts';

/**
 * Cookies set by `GET /s/<token>` so the shared-terminal page and its websocket carry the link:
 * one per link, `wharf_share_<share id>`, so links to several terminals opened in one browser
 * each keep working (`wharf_share` alone, as earlier versions set it, is still read).
 */
const SHARE_COOKIE = 'wharf_share';

/** The cookie that carries the link `shareId`. */
export function nameShareCookie(shareId: string): string {
  return `${SHARE_COOKIE}_${shareId}`;
}

/** A browser holding more share cookies than this has only its first ones looked at. */
const MAX_SHARE_COOKIES = 16;

type SharePrincipal = Extract<Principal, { kind: 'share' }>;

/** Where the link's own terminal lives: its page and its API resource. */
function locateTerminal(principal: Pick<SharePrincipal, 'workspace' | 'resource'>): { page: string; api: string } {
  const ws = encodeURIComponent(principal.workspace);
  const tid = encodeURIComponent(principal.resource);
  return { page: `/share/${ws}/${tid}`, api: `/api/workspaces/${ws}/terminals/${tid}` };
}

/** Whether the request is about the link's own terminal (its page, metadata or websocket). */
function isAboutTerminal(principal: SharePrincipal, path: string): boolean {
  return Object.values(locateTerminal(principal)).some((base) => path === base || path.startsWith(`${base}/`));
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
    // Only a terminal's own page and API tell the links apart; for assets any valid one will do.
    const choosy = url.pathname.startsWith('/share/') || url.pathname.startsWith('/api/');
    let fallback: SharePrincipal | undefined;
    for (const token of tokens) {
      const principal = await resolve(token);
      if (!principal) continue;
      if (!choosy || isAboutTerminal(principal, url.pathname)) return principal;
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
    const { page, api } = locateTerminal(principal);
    return path === page || path === `${page}/` || path === api;
  },
];
