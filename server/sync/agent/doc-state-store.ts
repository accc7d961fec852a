import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Yjs state of each document, kept outside the workspace, so that a browser holding an old copy
 * of a document merges cleanly after the agent closed or lost it. Without it, a document
 * reloaded from disk would consist of new items with new ids: merging a browser's copy into it
 * would duplicate the whole text.
 *
 * One file per path: a log of length-prefixed updates, appended after each flush and compacted
 * into one update when the document closes. A torn last record (a crash mid-append) is dropped.
 */
export type DocStateStore = {
  load(rel: string): Promise<Uint8Array[]>;
  append(rel: string, update: Uint8Array): Promise<void>;
  compact(rel: string, state: Uint8Array): Promise<void>;
  remove(rel: string): Promise<void>;
};

export function createDocStateStore(dir: string): DocStateStore {
  let ready: Promise<unknown> | undefined;
  const fileOf = (rel: string) => join(dir, `${createHash('sha256').update(rel).digest('hex').slice(0, 40)}.ylog`);
  const ensureDir = () => (ready ??= mkdir(dir, { recursive: true, mode: 0o700 }));

  function record(update: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(4 + update.length);
    out.writeUInt32BE(update.length, 0);
    out.set(update, 4);
    return out;
  }

  return {
    async load(rel) {
      let bytes: Buffer;
      try {
        bytes = await readFile(fileOf(rel));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const updates: Uint8Array[] = [];
      let offset = 0;
      while (offset + 4 <= bytes.length) {
        const length = bytes.readUInt32BE(offset);
        if (offset + 4 + length > bytes.length) break;
        updates.push(bytes.subarray(offset + 4, offset + 4 + length));
        offset += 4 + length;
      }
      return updates;
    },
    async append(rel, update) {
      await ensureDir();
      await appendFile(fileOf(rel), record(update), { mode: 0o600 });
    },
    async compact(rel, state) {
      await ensureDir();
      const file = fileOf(rel);
      const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(temp, record(state), { mode: 0o600 });
      await rename(temp, file);
    },
    async remove(rel) {
      await rm(fileOf(rel), { force: true });
    },
  };
}
