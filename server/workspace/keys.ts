import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, type KeyPair } from '../common/index.ts';

/** The control server's SSH client key; shared by replicas through the data dir. */
export async function loadOrCreateServerKey(dataDir: string): Promise<KeyPair> {
  const file = join(dataDir, 'server_ed25519');
  try {
    const privateKey = await readFile(file, 'utf8');
    return { privateKey, publicKey: await readFile(`${file}.pub`, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = generateKeyPair('wharf-server');
  // `wx` so two replicas starting at once cannot overwrite each other's key.
  await writeFile(file, pair.privateKey, { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await writeFile(`${file}.pub`, pair.publicKey, { mode: 0o644 }).catch(() => {});
  return { privateKey: await readFile(file, 'utf8'), publicKey: pair.publicKey };
}
