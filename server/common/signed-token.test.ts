import { describe, expect, it } from 'vitest';
import { signToken, verifyToken } from './signed-token.ts';

const secret = Buffer.from('0123456789abcdef0123456789abcdef');

describe('signed tokens', () => {
  it('round-trips a payload before expiry', () => {
    const token = signToken(secret, { exp: Date.now() + 1000, role: 'viewer' });
    const result = verifyToken(secret, token);
    expect(result.ok && result.value.role).toBe('viewer');
  });

  it('refuses expired, tampered, foreign and garbled tokens', () => {
    const expired = signToken(secret, { exp: Date.now() - 1 });
    expect(verifyToken(secret, expired)).toMatchObject({ ok: false, error: { code: 'expired' } });
    const token = signToken(secret, { exp: Date.now() + 1000, role: 'viewer' });
    const [body, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ exp: Date.now() + 1000, role: 'editor' })).toString('base64url');
    expect(verifyToken(secret, `${forged}.${mac}`)).toMatchObject({ ok: false, error: { code: 'bad_signature' } });
    expect(verifyToken(Buffer.from('other-secret'), token)).toMatchObject({ ok: false, error: { code: 'bad_signature' } });
    expect(verifyToken(secret, 'garbage')).toMatchObject({ ok: false, error: { code: 'malformed' } });
    expect(verifyToken(secret, `${body}`)).toMatchObject({ ok: false });
  });

  it('refuses a valid token with characters appended or inserted', () => {
    const token = signToken(secret, { exp: Date.now() + 1000, role: 'viewer' });
    expect(verifyToken(secret, token).ok).toBe(true);
    for (const spelling of [`${token}!`, `${token}=`, `${token}==`, `${token} `, `${token}%20`, `${token}A`, `${token}.x`, ` ${token}`, token.replace('.', '.=')]) {
      expect(verifyToken(secret, spelling), spelling).toMatchObject({ ok: false, error: { code: 'malformed' } });
    }
  });
});
