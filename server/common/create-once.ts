import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';

/**
 * The content of `file`, made with `content()` if it does not exist yet. Several control-server
 * replicas may start at once on one data dir: the file appears whole or not at all (written
 * beside it, then hard-linked into place, which fails when someone else's is already there), so
 * every replica reads the same secret — never a half-written one, never its own lost one.
 */
export async function readOrCreateFile(file: string, content: () => string, mode: number): Promise<{ value: string; created: boolean }> {
  try {
    return { value: await readFile(file, 'utf8'), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content(), { mode, flag: 'wx' });
  let created = true;
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    created = false;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return { value: await readFile(file, 'utf8'), created };
}
