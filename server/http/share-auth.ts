import type { ShareService } from '../terminal/index.ts';
import type { SharePathRule } from './app.ts';
import { readCookie, type PrincipalResolver } from './auth.ts';

/** Cookie set by `GET /s/<token>` so the shared-terminal page and its websocket carry the link. */
export const SHARE_COOKIE = 'wharf_share';

/**
 * Resolves a share-link principal from `?share=<token>` or the `wharf_share` cookie. The token's
 * signature, expiry and revocation (stored with the workspace) are checked on every request, so
 * any replica refuses a revoked link.
 */
export function createShareResolver(shares: ShareService): PrincipalResolver {
  return async ({ headers, url }) => {
    const token = url.searchParams.get('share') ?? readCookie(headers.cookie, SHARE_COOKIE);
    if (!token) return undefined;
    const verified = await shares.verify(token);
    if (!verified.ok) return undefined;
    const share = verified.value;
    return { kind: 'share', workspace: share.workspace, resource: share.terminal, role: share.role, shareId: share.shareId, exp: share.exp };
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
