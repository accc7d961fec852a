import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { readOrCreateFile, signToken, verifyToken } from '../common/index.ts';
import type { SessionRevocations } from './session-revocations.ts';

export const SESSION_COOKIE = 'wharf_session';
/** Readable by the page's script (not HttpOnly): the web UI echoes it in `CSRF_HEADER`. */
export const CSRF_COOKIE = 'wharf_csrf';
export const CSRF_HEADER = 'x-wharf-csrf';

/** Who is making a request. Share principals come from signed share links (terminals). */
export type Principal =
  /** `session` is set when the credential was a session cookie (not a bearer token). */
  | { kind: 'admin'; session?: { id: string; exp: number } }
  | { kind: 'share'; workspace: string; resource: string; role: 'editor' | 'viewer'; shareId: string; exp: number };

export type AuthSecrets = { token: string; secret: Buffer; generated: boolean };

async function readOrCreate(file: string, make: () => string): Promise<{ value: string; created: boolean }> {
  // Atomic, so replicas starting together on one data dir share one secret (readOrCreateFile).
  const read = await readOrCreateFile(file, () => `${make()}\n`, 0o600);
  return { value: read.value.trim(), created: read.created };
}

/** The admin token (given, or generated once and kept 0600 in the data dir) and the signing secret. */
export async function loadAuthSecrets(dataDir: string, givenToken: string | undefined): Promise<AuthSecrets> {
  const secret = await readOrCreate(join(dataDir, 'signing.key'), () => randomBytes(32).toString('hex'));
  if (givenToken) return { token: givenToken, secret: Buffer.from(secret.value, 'hex'), generated: false };
  // Hex, not base64url: a token starting with '-' is read as an option by `wharf login --token`.
  const token = await readOrCreate(join(dataDir, 'token'), () => randomBytes(24).toString('hex'));
  return { token: token.value, secret: Buffer.from(secret.value, 'hex'), generated: token.created };
}

export function tokenMatches(expected: string, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Ties a session to the admin token it was opened with: a changed token ends old sessions. */
function fingerprintToken(secret: Buffer, token: string): string {
  return createHmac('sha256', secret).update(`wharf-session-token:${token}`).digest('base64url').slice(0, 22);
}

/** A new session: its cookie value, id and expiry. */
export function createSession(secrets: Pick<AuthSecrets, 'secret' | 'token'>, ttlMs: number): { cookie: string; id: string; exp: number } {
  const id = randomBytes(16).toString('base64url');
  const exp = Date.now() + ttlMs;
  return { cookie: signToken(secrets.secret, { exp, kind: 'session', sid: id, tk: fingerprintToken(secrets.secret, secrets.token) }), id, exp };
}

/**
 * The CSRF token of a session: derived from its id with the server's secret, so it needs no
 * storage, and a page on another port of the same host (which can write cookies for this host,
 * as cookies ignore ports) cannot make up a matching pair.
 */
export function createCsrfToken(secret: Buffer, sessionId: string): string {
  return createHmac('sha256', secret).update(`wharf-csrf:${sessionId}`).digest('base64url');
}

/** Every cookie of a Cookie header, in order; values are URI-decoded where they decode. */
export function listCookies(header: string | undefined): Array<{ name: string; value: string }> {
  if (!header) return [];
  const cookies: Array<{ name: string; value: string }> = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const raw = part.slice(eq + 1).trim();
    let value = raw;
    // A garbled escape is just a bad credential (401), not a server error.
    try {
      value = decodeURIComponent(raw);
    } catch {
      // keep it as it came
    }
    cookies.push({ name: part.slice(0, eq).trim(), value });
  }
  return cookies;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  return listCookies(header).find((cookie) => cookie.name === name)?.value;
}

export type Authenticator = {
  /** Resolve credentials from request headers; `undefined` means unauthenticated. */
  authenticate(headers: { authorization?: string; cookie?: string }, url: URL): Promise<Principal | undefined>;
};

/** Extra credential kinds (share links) are plugged in by their owners. */
export type PrincipalResolver = (input: { headers: { authorization?: string; cookie?: string }; url: URL }) => Promise<Principal | undefined>;

export function createAuthenticator(secrets: AuthSecrets, resolvers: PrincipalResolver[] = [], revocations?: SessionRevocations): Authenticator {
  const tokenFingerprint = fingerprintToken(secrets.secret, secrets.token);
  return {
    async authenticate(headers, url) {
      const auth = headers.authorization;
      if (auth?.startsWith('Bearer ') && tokenMatches(secrets.token, auth.slice(7).trim())) return { kind: 'admin' };
      const cookie = readCookie(headers.cookie, SESSION_COOKIE);
      if (cookie) {
        const verified = verifyToken<{ exp: number; kind?: unknown; sid?: unknown; tk?: unknown }>(secrets.secret, cookie);
        const session = verified.ok ? verified.value : undefined;
        if (session?.kind === 'session' && typeof session.sid === 'string' && session.tk === tokenFingerprint && !(await revocations?.isRevoked(session.sid))) {
          return { kind: 'admin', session: { id: session.sid, exp: session.exp } };
        }
      }
      for (const resolve of resolvers) {
        const principal = await resolve({ headers, url });
        if (principal) return principal;
      }
      return undefined;
    },
  };
}
