import { randomBytes } from 'node:crypto';
import { constants, lstatSync, renameSync, type Stats } from 'node:fs';
import { lstat, open, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type FileContent =
  | { kind: 'text'; text: string; size: number }
  | { kind: 'binary'; size: number }
  | { kind: 'too_large'; size: number };

/** What identifies one version of a file on disk without reading it. */
export type DiskStamp = { ino: number; size: number; mtimeMs: number };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Temp files of our atomic writes: the watcher must never mistake them for user files. */
export const TEMP_FILE_PATTERN = /^\..+\.wharf-[0-9a-f]{12}\.tmp$/;

export function stampOf(stats: Stats): DiskStamp {
  return { ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
}

export function sameStamp(a: DiskStamp | undefined, b: DiskStamp | undefined): boolean {
  return !!a && !!b && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** Text, or why it cannot be edited as text: NUL bytes or invalid UTF-8 mean binary. */
export function classifyBytes(bytes: Buffer): FileContent {
  if (bytes.includes(0)) return { kind: 'binary', size: bytes.length };
  try {
    return { kind: 'text', text: utf8.decode(bytes), size: bytes.length };
  } catch {
    return { kind: 'binary', size: bytes.length };
  }
}

/**
 * Reads a file for editing, refusing to load more than `maxBytes` into memory: the size is
 * checked on the open descriptor, and the read stops one byte past the limit in case the file
 * grew in between.
 */
export async function readDocFile(path: string, maxBytes: number): Promise<{ content: FileContent; stats: Stats }> {
  // Never through a symlink: `path` is a real path, and a link put in its place must not be followed.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const stats = await handle.stat();
    if (stats.size > maxBytes) return { content: { kind: 'too_large', size: stats.size }, stats };
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return { content: { kind: 'too_large', size: length }, stats };
    return { content: classifyBytes(buffer.subarray(0, length)), stats };
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` atomically: a reader sees the old or the new content, never half of it. The
 * temp file lives in the same directory (rename does not cross file systems) and takes the old
 * file's mode (and owner, when we may), since rename replaces the inode.
 *
 * `previous` is the file as the caller last saw it. If it changed while the temp file was being
 * written, nothing is replaced and the result is undefined: the caller merges that change first.
 */
export async function writeFileAtomic(path: string, text: string, previous: Stats): Promise<DiskStamp | undefined> {
  const temp = join(dirname(path), `.${basename(path)}.wharf-${randomBytes(6).toString('hex')}.tmp`);
  const mode = previous.mode & 0o7777;
  const handle = await open(temp, 'wx', mode);
  let renamed = false;
  try {
    await handle.writeFile(text, 'utf8');
    const written = await handle.stat();
    // The umask may have narrowed the mode given to open(). (chmod and chown leave the stamp alone.)
    if ((written.mode & 0o7777) !== mode) await handle.chmod(mode);
    if (previous.uid !== written.uid || previous.gid !== written.gid) {
      await handle.chown(previous.uid, previous.gid).catch(() => {});
    }
    await handle.close();
    // Synchronous on purpose: the check and the rename are microseconds apart, not two turns of
    // the event loop, so another program's write can hardly fall between them and be lost.
    let current: Stats | undefined;
    try {
      current = lstatSync(path);
    } catch {
      current = undefined;
    }
    if (!current || !sameStamp(stampOf(current), stampOf(previous))) return undefined;
    renameSync(temp, path);
    renamed = true;
    return stampOf(written);
  } finally {
    if (!renamed) {
      await handle.close().catch(() => {});
      await rm(temp, { force: true });
    }
  }
}

/**
 * The file's stats if `path` is still a regular file reached without any symlink (none of its
 * directories replaced by one either); otherwise undefined. An open document must not follow a
 * link that appeared where its file was, out of the workspace.
 */
export async function statInPlace(path: string): Promise<Stats | undefined> {
  try {
    if ((await realpath(path)) !== path) return undefined;
    const stats = await lstat(path);
    return stats.isFile() ? stats : undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
    throw err;
  }
}
