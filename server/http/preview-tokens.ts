import { randomBytes } from 'node:crypto';
import { signToken, verifyToken } from '../common/index.ts';

/** The cookie that signs a browser in on one preview origin (`<port>--<workspace>.<domain>`). */
export const PREVIEW_COOKIE = 'wharf_preview';
/** Cookies that carry a port share link: one per link, like the terminals' `wharf_share_<id>`. */
export const PORT_SHARE_COOKIE_PREFIX = 'wharf_pshare_';
/** Paths of a preview origin that wharf answers itself, never the app. */
export const PREVIEW_RESERVED_PREFIX = '/__wharf/';

/** How long the hand-off from the IDE's origin to a preview origin may take. */
const HANDOFF_TTL_MS = 60_000;

type HandoffPayload = { exp: number; kind: 'preview-handoff'; host: string; sid: string; sexp: number; n: string };
type PreviewSessionPayload = { exp: number; kind: 'preview'; host: string; sid: string };

/**
 * The one-minute token the IDE's origin gives a signed-in browser for one preview host: the
 * preview origin cannot read the IDE's session cookie (another origin), so the session is
 * passed across in a redirect, bound to that host and to the session it came from.
 */
export function issueHandoff(secret: Buffer, host: string, session: { id: string; exp: number }, now = Date.now()): string {
  const payload: HandoffPayload = { exp: Math.min(now + HANDOFF_TTL_MS, session.exp), kind: 'preview-handoff', host, sid: session.id, sexp: session.exp, n: randomBytes(9).toString('base64url') };
  return signToken(secret, payload);
}

export function verifyHandoff(secret: Buffer, token: string, host: string): { sid: string; sexp: number; nonce: string } | undefined {
  const verified = verifyToken<HandoffPayload>(secret, token);
  if (!verified.ok) return undefined;
  const p = verified.value;
  if (p.kind !== 'preview-handoff' || p.host !== host || typeof p.sid !== 'string' || typeof p.sexp !== 'number' || typeof p.n !== 'string') return undefined;
  return { sid: p.sid, sexp: p.sexp, nonce: p.n };
}

/** The preview cookie's value: the session's id and expiry, for this host only. */
export function issuePreviewSession(secret: Buffer, host: string, sid: string, exp: number): string {
  return signToken(secret, { exp, kind: 'preview', host, sid } satisfies PreviewSessionPayload);
}

export function verifyPreviewSession(secret: Buffer, token: string, host: string): { sid: string; exp: number } | undefined {
  const verified = verifyToken<PreviewSessionPayload>(secret, token);
  if (!verified.ok) return undefined;
  const p = verified.value;
  return p.kind === 'preview' && p.host === host && typeof p.sid === 'string' ? { sid: p.sid, exp: p.exp } : undefined;
}
