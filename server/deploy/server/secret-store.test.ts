import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSecretStore, renderSecretScript } from './secret-store.ts';

describe('runner secrets', () => {
  it('gives a token exactly one use, and none after it expires', () => {
    let now = 1000;
    const store = createSecretStore({ ttlMs: 500, now: () => now });
    const payload = { variables: { A: '1' }, kubeconfig: undefined };
    const first = store.issue(payload, 'run1');
    expect(store.peek(first.token)).toEqual({ runId: 'run1', expiresAt: 1500 });
    expect(store.consume(first.token)).toEqual(payload);
    expect(store.consume(first.token)).toBeUndefined();
    expect(store.peek(first.token)).toBeUndefined();
    const second = store.issue(payload, 'run2');
    now = 1600;
    expect(store.peek(second.token)).toBeUndefined();
    expect(store.consume(second.token)).toBeUndefined();
    expect(store.consume('not a token')).toBeUndefined();
    expect(store.consume('')).toBeUndefined();
  });

  it('writes a script a POSIX shell reads back to the exact values, whatever they contain', () => {
    const hostile = {
      QUOTES: `it's "quoted" and 'single'`,
      DOLLARS: '$HOME ${PATH} $(touch /tmp/wharf-pwned) `touch /tmp/wharf-pwned`',
      LINES: 'line one\nline two\n\ttabbed\n',
      UNICODE: 'héllo ✓ 日本',
      EMPTY: '',
      BACKSLASH: 'a\\b\\\\c\\',
    };
    const dir = mkdtempSync(join(tmpdir(), 'wharf-secret-'));
    try {
      const script = join(dir, 'secrets.sh');
      writeFileSync(script, renderSecretScript({ variables: hostile, kubeconfig: "apiVersion: v1\nname: 'x'\n" }));
      for (const [name, value] of Object.entries(hostile)) {
        const out = execFileSync('sh', ['-c', `WHARF_SECRETS_DIR='${dir}'; . '${script}'; printf '%s' "$${name}"`]);
        expect(out.toString()).toBe(value);
      }
      execFileSync('sh', ['-c', `WHARF_SECRETS_DIR='${dir}'; . '${script}'; test "$KUBECONFIG" = '${dir}/kubeconfig'`]);
      expect(readFileSync(join(dir, 'kubeconfig'), 'utf8')).toBe("apiVersion: v1\nname: 'x'\n");
      expect(() => readFileSync('/tmp/wharf-pwned')).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves KUBECONFIG alone when the caller set it', () => {
    const script = renderSecretScript({ variables: { KUBECONFIG: '/mine' }, kubeconfig: 'x' });
    expect(script).not.toContain('export KUBECONFIG="$WHARF_SECRETS_DIR');
    expect(script).toContain("export KUBECONFIG='/mine'");
  });
});
