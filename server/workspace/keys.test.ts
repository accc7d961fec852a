import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from './keys.ts';

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
});
