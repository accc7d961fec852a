import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';
import { fail, ok, type Result } from './result.ts';

/** An SSH key pair in OpenSSH format: the private key PEM-like block and the `authorized_keys` line. */
export type KeyPair = { privateKey: string; publicKey: string };

/**
 * A fresh ed25519 key pair. The server (workspace host keys, its own client key) and the helper
 * (`wharf ssh`'s throw-away session key) both draw keys here, so ssh2's flaw is worked around once.
 */
export function generateKeyPair(comment: string): KeyPair {
  // ssh2 1.17 drops a leading zero byte of the public key (about 1 key in 256), producing a
  // key that neither it nor OpenSSH can parse (mscdex/ssh2#1513): draw again until it parses.
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(pair.public) instanceof Error) && !(ssh2.utils.parseKey(pair.private) instanceof Error)) {
      return { privateKey: pair.private, publicKey: pair.public };
    }
  }
}

/**
 * The first key of an OpenSSH public key line or an unencrypted private key, or why it is not
 * one. ssh2 answers an Error, one key or a list of keys; callers only ever want the first.
 */
export function parseSshKey(text: string): Result<ParsedKey, string> {
  const parsed = ssh2.utils.parseKey(text.trim());
  if (parsed instanceof Error) return fail(parsed.message);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key ? ok(key) : fail('no key found');
}

/** The public half of a parsed key as an OpenSSH `authorized_keys` line (`<type> <base64> <comment>`). */
export function formatPublicKey(key: ParsedKey, comment: string): string {
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${comment}`;
}
