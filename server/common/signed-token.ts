import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Compact signed tokens (`<base64url payload>.<base64url hmac>`) for session cookies and share
 * links. The payload must carry `exp` (ms since epoch); an expired or tampered token verifies as
 * a failure value, never as an exception.
 */
export type TokenPayload = { exp: number; [key: string]: unknown };

export type VerifyFailure = { code: 'malformed' | 'bad_signature' | 'expired'; message: string };

export function signToken(secret: Buffer, payload: TokenPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const mac = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${mac}`;
}

/**
 * Exactly what `signToken` produces: unpadded base64url payload, a dot, and the 43 characters of
 * an HMAC-SHA256. Node's base64 decoder skips characters it does not know, so without this check
 * a token with anything appended (`<token>!!`, `<token>==`, `<token>%20`) would still verify and
 * one credential would have many spellings.
 */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

export function verifyToken<P extends TokenPayload>(
  secret: Buffer,
  token: string,
  now: number = Date.now(),
): { ok: true; value: P } | { ok: false; error: VerifyFailure } {
  if (!TOKEN_SHAPE.test(token)) {
    return { ok: false, error: { code: 'malformed', message: 'token is malformed' } };
  }
  const dot = token.indexOf('.');
  const body = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = createHmac('sha256', secret).update(body).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, error: { code: 'bad_signature', message: 'token signature is invalid' } };
  }
  let payload: P;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as P;
  } catch {
    return { ok: false, error: { code: 'malformed', message: 'token payload is not JSON' } };
  }
  if (typeof payload.exp !== 'number' || payload.exp <= now) {
    return { ok: false, error: { code: 'expired', message: 'token has expired' } };
  }
  return { ok: true, value: payload };
}
