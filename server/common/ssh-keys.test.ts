import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { formatPublicKey, generateKeyPair, parseSshKey } from './ssh-keys.ts';

describe('generated SSH keys', () => {
  it('always parse, although ssh2 mangles about one ed25519 key in 256', () => {
    // 1500 draws: without the retry, all would parse with a probability of about 0.3%.
    const bad: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const pair = generateKeyPair('test');
      const pub = ssh2.utils.parseKey(pair.publicKey);
      const priv = ssh2.utils.parseKey(pair.privateKey);
      if (pub instanceof Error || priv instanceof Error) bad.push(pair.publicKey);
      else if (!(Array.isArray(pub) ? pub[0] : pub).equals((Array.isArray(priv) ? priv[0] : priv).getPublicSSH())) bad.push(pair.publicKey);
    }
    expect(bad).toEqual([]);
  });

  it('carry their comment in the public line', () => {
    expect(generateKeyPair('wharf-test').publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+ wharf-test\s*$/);
  });
});

describe('parseSshKey', () => {
  it('reads a public line and a private key to the same public half', () => {
    const pair = generateKeyPair('a');
    const pub = parseSshKey(`  ${pair.publicKey}\n`);
    const priv = parseSshKey(pair.privateKey);
    if (!pub.ok || !priv.ok) throw new Error('expected both to parse');
    expect(pub.value.getPublicSSH().equals(priv.value.getPublicSSH())).toBe(true);
  });

  it('answers why text is not a key, as a value', () => {
    const parsed = parseSshKey('not a key');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toEqual(expect.any(String));
    expect(parseSshKey('').ok).toBe(false);
  });
});

describe('formatPublicKey', () => {
  it('writes the OpenSSH line of a private key, which parses back to the same key', () => {
    const pair = generateKeyPair('original');
    const priv = parseSshKey(pair.privateKey);
    if (!priv.ok) throw new Error('expected the private key to parse');
    const line = formatPublicKey(priv.value, 'wharf-proxy');
    expect(line).toBe(`${pair.publicKey.trim().split(' ').slice(0, 2).join(' ')} wharf-proxy`);
    const back = parseSshKey(line);
    expect(back.ok && back.value.getPublicSSH().equals(priv.value.getPublicSSH())).toBe(true);
  });
});
