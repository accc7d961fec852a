import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { parseWorkspacePath, fromSftpPath, joinPath, parentOf, toSftpPath, type WorkspacePath } from './paths.ts';
import { FileFailure, type SftpIo } from './sftp-io.ts';

type Writable = ReturnType<tar.Pack['entry']>;

const CLOSED = 'the download was closed';

/**
 * Waits for `work`, or fails as soon as the pack is torn down (the client went away): a torn-down
 * pack never drains an entry nor finishes one, and a walk left waiting would hold its open file
 * in the workspace for ever (the agent allows 512 per connection).
 */
function unlessTornDown<T>(work: Promise<T>, torn: AbortSignal): Promise<T> {
  if (torn.aborted) return Promise.reject(new Error(CLOSED));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(CLOSED));
    torn.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        torn.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        torn.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** Writes to a tar entry honouring back-pressure, and fails (instead of hanging) if the pack is torn down. */
function writeTo(entry: Writable, chunk: Buffer, torn: AbortSignal): Promise<void> {
  if (torn.aborted || entry.destroying || entry.destroyed) return Promise.reject(new Error(CLOSED));
  if (entry.write(chunk)) return Promise.resolve();
  return unlessTornDown(
    new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        entry.off('drain', onDrain);
        entry.off('close', onClose);
        entry.off('error', done);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new Error(CLOSED));
      entry.on('drain', onDrain);
      entry.on('close', onClose);
      entry.on('error', done);
    }),
    torn,
  );
}

function entryDone(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): { entry: Writable; finished: Promise<void> } {
  let settle!: (err?: Error | null) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  // A torn-down pack fails every pending entry; the walk reports the first failure, not each one.
  finished.catch(() => {});
  const entry = pack.entry(header, settle);
  // tar-stream reports a failure to `settle` but also emits it, and nobody else listens.
  entry.on('error', () => {});
  return { entry, finished };
}

/**
 * Streams a folder as a tar archive: names relative to the folder, folders before their content,
 * symlinks stored as links (never followed, so nothing outside can be packed). A file that grows
 * while being packed is cut at the size it had when its header was written.
 */
export function packTarFrom(io: SftpIo, folder: WorkspacePath): Readable {
  const pack = tar.pack();
  // A client that goes away destroys the wrapper, which destroys `pack` with an AbortError;
  // the consumer learns of failures through the wrapper, and an unheard 'error' would kill the server.
  pack.on('error', () => {});
  const tornDown = new AbortController();
  pack.once('close', () => tornDown.abort());
  const torn = tornDown.signal;

  async function addFile(path: WorkspacePath, name: string, size: number, mode: number, mtime: Date): Promise<void> {
    const handle = await io.open(toSftpPath(path), 'r', path);
    // From here on every way out, a torn-down pack included, goes through `finally`, which gives
    // the handle back.
    const reader = io.createReader(handle, path, () => io.close(handle, path));
    try {
      if (torn.aborted) throw new Error(CLOSED);
      const { entry, finished } = entryDone(pack, { name, type: 'file', size, mode, mtime });
      let written = 0;
      for await (const chunk of reader) {
        const piece = (chunk as Buffer).subarray(0, size - written);
        if (piece.length > 0) await writeTo(entry, piece, torn);
        written += piece.length;
        if (written >= size) break;
      }
      if (written < size) {
        const err = new Error(`"${path}" shrank while it was being packed`);
        entry.destroy(err);
        throw err;
      }
      entry.end(undefined);
      await unlessTornDown(finished, torn);
    } finally {
      reader.destroy();
    }
  }

  async function walk(dir: WorkspacePath, prefix: string): Promise<void> {
    if (torn.aborted) throw new Error(CLOSED);
    const entries = await io.readdir(toSftpPath(dir), dir || '/');
    entries.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
    for (const item of entries) {
      const path = joinPath(dir, item.filename);
      const name = `${prefix}${item.filename}`;
      const { attrs } = item;
      const mode = attrs.mode & 0o7777;
      const mtime = new Date(attrs.mtime * 1000);
      if (attrs.isDirectory()) {
        const { entry, finished } = entryDone(pack, { name: `${name}/`, type: 'directory', mode, mtime });
        entry.end(undefined);
        await unlessTornDown(finished, torn);
        await walk(path, `${name}/`);
      } else if (attrs.isFile()) {
        await addFile(path, name, attrs.size, mode, mtime);
      } else if (attrs.isSymbolicLink()) {
        const linkname = await io.readlink(toSftpPath(path), path);
        const { entry, finished } = entryDone(pack, { name, type: 'symlink', linkname, mode, mtime });
        entry.end(undefined);
        await unlessTornDown(finished, torn);
      }
      // Sockets, fifos and devices have no content worth shipping.
    }
  }

  walk(folder, '').then(
    () => pack.finalize(),
    (err: Error) => pack.destroy(err),
  );
  return Readable.from(pack);
}

export type ExtractSummary = {
  files: number;
  directories: number;
  symlinks: number;
  /** Entries of kinds that are not extracted (hard links, devices, fifos), by name. */
  skipped: Array<{ name: string; type: string }>;
};

export type ExtractHelpers = {
  ensureFolder(path: WorkspacePath): Promise<void>;
  writeFile(path: WorkspacePath, source: Readable, mode: number, replace: boolean): Promise<void>;
};

/** A tar member name → a path under the extraction folder, refusing anything that would climb out. */
function entryPath(name: string): WorkspacePath | undefined | FileFailure {
  const trimmed = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (trimmed === '' || trimmed === '.') return undefined;
  if (trimmed.startsWith('/')) return new FileFailure('bad_request', `tar entry "${name}" has an absolute path`);
  const parsed = parseWorkspacePath(trimmed, { encoded: false });
  if (!parsed.ok) return new FileFailure('bad_request', `tar entry "${name}": ${parsed.error.message}`);
  return parsed.value;
}

/**
 * Extracts a tar stream into `folder`. Each file is written atomically; a bad entry (a path with
 * `..`, an absolute path, a link that would carry later entries out of the folder) stops the
 * extraction with an error naming it and what was already extracted.
 */
export async function extractTarInto(io: SftpIo, folder: WorkspacePath, source: Readable, helpers: ExtractHelpers): Promise<ExtractSummary> {
  const summary: ExtractSummary = { files: 0, directories: 0, symlinks: 0, skipped: [] };
  const folderReal = fromSftpPath(await io.realpath(toSftpPath(folder), folder || '/'));
  const confined = new Set<string>();
  const extract = tar.extract();
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract as unknown as NodeJS.WritableStream);

  /** The parent exists and, symlinks resolved, is still inside the extraction folder. */
  async function prepareParent(path: WorkspacePath): Promise<void> {
    const parent = parentOf(path);
    if (confined.has(parent)) return;
    await helpers.ensureFolder(parent);
    const real = fromSftpPath(await io.realpath(toSftpPath(parent), parent || '/'));
    if (!(folderReal === '' || real === folderReal || real.startsWith(`${folderReal}/`))) {
      throw new FileFailure('bad_request', `tar entry "${path}" would be written outside "${folder || '/'}" through a symlink`, { extracted: summary });
    }
    confined.add(parent);
  }

  try {
    for await (const entry of extract) {
      const { header } = entry;
      const relative = entryPath(header.name);
      if (relative instanceof FileFailure) throw new FileFailure(relative.code, relative.message, { extracted: summary });
      if (relative === undefined) {
        entry.resume();
        continue;
      }
      const path = joinPath(folder, relative);
      switch (header.type) {
        case 'file':
        case 'contiguous-file': {
          await prepareParent(path);
          const existing = await io.lstatIfExists(toSftpPath(path), path);
          if (existing?.isDirectory()) throw new FileFailure('conflict', `tar entry "${relative}" is a file but "${path}" is a folder`, { extracted: summary });
          await helpers.writeFile(path, Readable.from(entry), (header.mode ?? 0o644) & 0o777, existing !== undefined);
          summary.files++;
          break;
        }
        case 'directory':
          await prepareParent(path);
          await helpers.ensureFolder(path);
          summary.directories++;
          entry.resume();
          break;
        case 'symlink': {
          await prepareParent(path);
          const existing = await io.lstatIfExists(toSftpPath(path), path);
          if (existing?.isDirectory()) throw new FileFailure('conflict', `tar entry "${relative}" is a link but "${path}" is a folder`, { extracted: summary });
          if (existing) await io.unlink(toSftpPath(path), path);
          await io.symlink(header.linkname ?? '', toSftpPath(path), path);
          // Later entries beneath this link are checked against the folder by prepareParent.
          confined.clear();
          summary.symlinks++;
          entry.resume();
          break;
        }
        default:
          summary.skipped.push({ name: relative, type: header.type ?? 'unknown' });
          entry.resume();
      }
    }
  } catch (err) {
    extract.destroy();
    source.destroy();
    if (err instanceof FileFailure) {
      throw err.details ? err : new FileFailure(err.code, err.message, { extracted: summary });
    }
    throw new FileFailure('bad_request', `not a valid tar archive: ${(err as Error).message}`, { extracted: summary });
  }
  return summary;
}
