import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/**
 * A folder of the server's own disk as a tar stream, for the agent to unpack into a new
 * workspace (the same path as a tar upload), so seeding works the same on every driver. Links
 * are kept as links, verbatim (as `cp --no-dereference` did); other kinds (fifos, sockets,
 * devices) are left out.
 */
export function packSeedFolder(folder: string): Readable {
  const pack = tar.pack();
  (async () => {
    async function walk(dir: string, prefix: string): Promise<void> {
      for (const name of (await readdir(dir)).sort()) {
        const path = join(dir, name);
        const entryName = prefix ? `${prefix}/${name}` : name;
        const stats = await lstat(path);
        const mode = stats.mode & 0o7777;
        if (stats.isDirectory()) {
          pack.entry({ name: entryName, type: 'directory', mode, mtime: stats.mtime });
          await walk(path, entryName);
        } else if (stats.isSymbolicLink()) {
          pack.entry({ name: entryName, type: 'symlink', linkname: await readlink(path), mtime: stats.mtime });
        } else if (stats.isFile()) {
          const entry = pack.entry({ name: entryName, type: 'file', size: stats.size, mode, mtime: stats.mtime });
          await pipeline(createReadStream(path), entry);
        }
      }
    }
    await walk(folder, '');
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}
