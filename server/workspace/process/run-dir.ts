import { createHash } from 'node:crypto';
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { WharfError } from '../../common/index.ts';

/** Longest unix socket path Linux takes (`sun_path` is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;
/** The longest socket path an agent gets: a 40-character workspace id and `agent.sock`. */
const LONGEST_SOCKET_TAIL = join('x'.repeat(40), 'agent.sock');

/**
 * Where agent sockets live. Not a predictable name in a shared folder such as /tmp: another
 * local user could create it first and swap sockets or get a writable folder bound into every
 * sandbox. Inside the data dir (0700, ours) when the socket paths fit there; otherwise in the
 * user's own runtime dir (`$XDG_RUNTIME_DIR`, private by definition); otherwise a clear error.
 */
export function chooseRunDir(input: { dataDir: string; runtimeDir: string | undefined }): string {
  const inDataDir = join(input.dataDir, 'run');
  if (Buffer.byteLength(join(inDataDir, LONGEST_SOCKET_TAIL)) <= MAX_SOCKET_PATH) return inDataDir;
  if (input.runtimeDir) {
    const named = join(input.runtimeDir, `wharf-${createHash('sha256').update(input.dataDir).digest('hex').slice(0, 12)}`);
    if (Buffer.byteLength(join(named, LONGEST_SOCKET_TAIL)) <= MAX_SOCKET_PATH) return named;
  }
  throw new WharfError(
    'internal',
    `the data dir ${input.dataDir} is too long a path for agent sockets (unix sockets take ${MAX_SOCKET_PATH} bytes at most) and XDG_RUNTIME_DIR is not set or too long: use a shorter --data-dir or set XDG_RUNTIME_DIR`,
  );
}

/**
 * Makes `path` (its parent must exist) or checks the one already there, without following a
 * symlink: it must be a directory of our own uid that nobody else may read or write.
 */
export async function preparePrivateDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const stats = await lstat(path);
  const refuse = (why: string) => new WharfError('internal', `refusing to keep agent sockets in ${path}: ${why}; remove it or fix it, then start again`);
  if (stats.isSymbolicLink()) throw refuse('it is a symbolic link');
  if (!stats.isDirectory()) throw refuse('it is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) throw refuse(`it belongs to uid ${stats.uid}, not to this server's uid ${uid}`);
  if ((stats.mode & 0o077) !== 0) throw refuse(`its mode is ${(stats.mode & 0o777).toString(8)}, not 700`);
}
