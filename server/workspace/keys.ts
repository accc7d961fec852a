import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPublicKey, generateKeyPair, parseSshKey, readOrCreateFile, WharfError, type KeyPair } from '../common/index.ts';

/**
 * The control server's SSH client key; shared by replicas through the data dir. The private key
 * is made once, atomically (replicas starting together get the same one); the public half is
 * derived from it, so a replica that lost the race never pairs the winner's private key with
 * its own public one (which agents it created would then refuse).
 */
export async function loadOrCreateServerKey(dataDir: string): Promise<KeyPair> {
  const file = join(dataDir, 'server_ed25519');
  const { value: privateKey, created } = await readOrCreateFile(file, () => generateKeyPair('wharf-server').privateKey, 0o600);
  const parsed = parseSshKey(privateKey);
  if (!parsed.ok) throw new WharfError('internal', `${file} is not a usable private key: ${parsed.error}`);
  const publicKey = formatPublicKey(parsed.value, 'wharf-server');
  if (created) await writeFile(`${file}.pub`, publicKey, { mode: 0o644 });
  return { privateKey, publicKey };
}
