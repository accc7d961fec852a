import { describe, expect, it } from 'vitest';
import { parseWorkspacePath } from './paths.ts';

const encoded = (raw: string) => parseWorkspacePath(raw, { encoded: true });
const plain = (raw: string) => parseWorkspacePath(raw, { encoded: false });

describe('workspace paths', () => {
  it('canonicalises good paths', () => {
    expect(encoded('')).toEqual({ ok: true, value: '' });
    expect(encoded('src/app.js')).toEqual({ ok: true, value: 'src/app.js' });
    expect(encoded('src/')).toEqual({ ok: true, value: 'src' });
    expect(encoded('my%20file%E2%9C%93.txt')).toEqual({ ok: true, value: 'my file✓.txt' });
    expect(encoded('..hidden/a..b/...')).toEqual({ ok: true, value: '..hidden/a..b/...' });
    expect(plain('a%2e%2e/b')).toEqual({ ok: true, value: 'a%2e%2e/b' });
  });

  it.each([
    ['..', /"\.\." segments/],
    ['a/../b', /"\.\." segments/],
    ['%2e%2e/x', /"\.\." segments/],
    ['%2E.', /"\.\." segments/],
    ['./a', /"\." segments/],
    ['/etc/passwd', /absolute/],
    ['%2Fetc%2Fpasswd', /absolute/],
    ['a%2Fb', /encoded "\/"/],
    ['a%00b', /NUL/],
    ['a%5Cb', /backslash/],
    ['a\\b', /backslash/],
    ['a//b', /empty segments/],
    ['a//', /empty segments/],
    ['%E2%9C', /percent-encoding/],
  ])('refuses the URL path %s', (raw, message) => {
    const result = encoded(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(message) });
  });

  it('refuses the same things in plain (JSON) paths, without decoding them', () => {
    for (const raw of ['../x', '/abs', 'a\0b', 'a\\b', 'a//b', '.']) expect(plain(raw).ok, raw).toBe(false);
  });
});
