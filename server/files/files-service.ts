import { createHash, randomBytes } from 'node:crypto';
import { pipeline as connectStreams, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SFTPWrapper, Stats } from 'ssh2';
import { fail, ok, type DirectoryEntry, type ErrorCode, type Result } from '../common/index.ts';
import { etagMatches, formatEtag } from './etag.ts';
import { baseName, fromSftpPath, joinPath, parentOf, toSftpPath, WORKSPACE_ROOT, type WorkspacePath } from './paths.ts';
import { createSftpIo, FileFailure, type SftpIo } from './sftp-io.ts';
import { extractTarInto, packTarFrom, type ExtractSummary } from './tar.ts';

export type FilesServiceOptions = {
  /** The SFTP session of the server's own SSH connection to a workspace agent. */
  openSftp(workspaceId: string): Promise<SFTPWrapper>;
  limits: {
    /** Largest body accepted by a write or a tar upload. */
    maxUploadBytes: number;
    /** Files up to this size are read once into memory; larger ones are read twice (hash, then send). */
    maxBufferedReadBytes: number;
  };
};

export type FileError = { code: ErrorCode; message: string; details?: Record<string, unknown> };

export type FileRead =
  | { kind: 'file'; etag: string; size: number; mtime: string; mode: number; notModified: true }
  | { kind: 'file'; etag: string; size: number; mtime: string; mode: number; notModified: false; body: Buffer | Readable }
  | { kind: 'directory'; entries: DirectoryEntry[] };

export type FileWritten = { created: boolean; etag: string; size: number };

export type FilesService = ReturnType<typeof createFilesService>;

/** Runs one operation; its expected failures come back as values, anything else is thrown. */
async function attempt<T>(work: () => Promise<T>): Promise<Result<T, FileError>> {
  try {
    return ok(await work());
  } catch (err) {
    if (err instanceof FileFailure) return fail({ code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) });
    throw err;
  }
}

function kindOf(stats: Stats): DirectoryEntry['type'] {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

function isoTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function shown(path: WorkspacePath): string {
  return path === '' ? '/' : path;
}

const TEMP_MARK = '.wharf-upload-';

/** Counts bytes against a limit and hashes them on the way through. */
function createMeter(maxBytes: number, label: string) {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > maxBytes) return callback(new FileFailure('payload_too_large', `${label} is larger than the limit of ${maxBytes} bytes`, { limit: maxBytes }));
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  return { stream, size: () => size, digest: () => hash.digest('hex') };
}

/** A failure of the request body itself (client gone, broken chunking) is the client's problem. */
function asUploadFailure(err: unknown): FileFailure {
  if (err instanceof FileFailure) return err;
  return new FileFailure('bad_request', `the upload was interrupted: ${(err as Error)?.message ?? String(err)}`);
}

/** File operations on a workspace, all through its agent's SFTP server (never the server's own disk). */
export function createFilesService(options: FilesServiceOptions) {
  const { limits } = options;

  async function ioFor(workspaceId: string): Promise<SftpIo> {
    return createSftpIo(await options.openSftp(workspaceId));
  }

  async function hashFile(io: SftpIo, path: WorkspacePath): Promise<string> {
    const hash = createHash('sha256');
    const handle = await io.open(toSftpPath(path), 'r', path);
    await pipeline(io.createReader(handle, path, () => io.close(handle, path)), hash);
    return hash.digest('hex');
  }

  async function readWhole(io: SftpIo, path: WorkspacePath): Promise<Buffer> {
    const handle = await io.open(toSftpPath(path), 'r', path);
    const chunks: Buffer[] = [];
    for await (const chunk of io.createReader(handle, path, () => io.close(handle, path))) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** `mkdir -p` that follows symlinked folders inside the workspace and refuses to pass through a file. */
  async function ensureFolder(io: SftpIo, path: WorkspacePath): Promise<boolean> {
    let created = false;
    let current = WORKSPACE_ROOT;
    for (const segment of path === '' ? [] : path.split('/')) {
      current = joinPath(current, segment);
      let stats = await io.statIfExists(toSftpPath(current), current);
      if (!stats) {
        try {
          await io.mkdir(toSftpPath(current), current);
          created = true;
          continue;
        } catch (err) {
          if (!(err instanceof FileFailure && err.code === 'conflict')) throw err;
          // Either someone made it in the meantime (fine if it is a folder) or it is a dangling link.
          stats = await io.statIfExists(toSftpPath(current), current);
          if (!stats) throw new FileFailure('conflict', `"${current}" is a symlink to something that does not exist`);
        }
      }
      if (!stats.isDirectory()) throw new FileFailure('conflict', `"${current}" is a file, not a folder`);
      created = false;
    }
    return created;
  }

  async function removeTree(io: SftpIo, path: WorkspacePath): Promise<void> {
    const entries = await io.readdir(toSftpPath(path), path);
    // A few at a time: fast on big trees without flooding the agent with requests.
    for (let i = 0; i < entries.length; i += 16) {
      await Promise.all(
        entries.slice(i, i + 16).map((entry) => {
          const child = joinPath(path, entry.filename);
          return entry.attrs.isDirectory() ? removeTree(io, child) : io.unlink(toSftpPath(child), child);
        }),
      );
    }
    await io.rmdir(toSftpPath(path), path);
  }

  /**
   * Streams `source` into a temporary file beside `target`, then puts it in place, so an upload
   * that fails half-way (client gone, too large) leaves the old content untouched.
   */
  async function writeFileAtomically(io: SftpIo, target: WorkspacePath, source: Readable, mode: number, meter: ReturnType<typeof createMeter> | undefined, replace: boolean): Promise<void> {
    const temp = joinPath(parentOf(target), `.${baseName(target).slice(0, 180)}${TEMP_MARK}${randomBytes(6).toString('hex')}`);
    const handle = await io.open(toSftpPath(temp), 'wx', target, { mode });
    try {
      const writer = io.createWriter(handle, target);
      try {
        await (meter ? pipeline(source, meter.stream, writer) : pipeline(source, writer));
      } catch (err) {
        throw asUploadFailure(err);
      }
      // OPEN's mode passes through the agent's umask; set it exactly, as the old file had it.
      await io.fchmod(handle, mode, target);
      await io.close(handle, target);
    } catch (err) {
      await io.close(handle, target).catch(() => {});
      await io.unlink(toSftpPath(temp), temp).catch(() => {});
      throw err;
    }
    try {
      if (replace) await io.unlink(toSftpPath(target), target).catch((err: unknown) => (err instanceof FileFailure && err.code === 'not_found' ? undefined : Promise.reject(err)));
      try {
        await io.rename(toSftpPath(temp), toSftpPath(target), target);
      } catch (err) {
        // SFTP RENAME never replaces; a file that appeared meanwhile is replaced, as a write should.
        if (!(err instanceof FileFailure && err.code === 'conflict')) throw err;
        const now = await io.lstat(toSftpPath(target), target);
        if (now.isDirectory()) throw new FileFailure('conflict', `"${target}" is a folder`);
        await io.unlink(toSftpPath(target), target);
        await io.rename(toSftpPath(temp), toSftpPath(target), target);
      }
    } catch (err) {
      await io.unlink(toSftpPath(temp), temp).catch(() => {});
      throw err;
    }
  }

  /** Where a write to `path` lands: through a symlink to the file it names, if that stays inside. */
  async function writeTarget(io: SftpIo, path: WorkspacePath): Promise<{ target: WorkspacePath; existing: Stats | undefined }> {
    const link = await io.lstatIfExists(toSftpPath(path), path);
    if (!link?.isSymbolicLink()) return { target: path, existing: link };
    const target = fromSftpPath(await io.realpath(toSftpPath(path), path));
    return { target, existing: await io.statIfExists(toSftpPath(target), target) };
  }

  return {
    limits,

    /** A file's bytes and ETag, or a folder's entries. */
    read(workspaceId: string, path: WorkspacePath, conditions: { ifNoneMatch?: string } = {}): Promise<Result<FileRead, FileError>> {
      return attempt(async () => {
        const io = await ioFor(workspaceId);
        const stats = await io.stat(toSftpPath(path), shown(path));
        if (stats.isDirectory()) return { kind: 'directory' as const, entries: await listEntries(io, path) };
        if (!stats.isFile()) throw new FileFailure('bad_request', `"${shown(path)}" is not a regular file`);
        const meta = { size: stats.size, mtime: isoTime(stats.mtime), mode: stats.mode & 0o7777 };
        if (stats.size <= limits.maxBufferedReadBytes) {
          const body = await readWhole(io, path);
          const etag = formatEtag(createHash('sha256').update(body).digest('hex'));
          if (conditions.ifNoneMatch && etagMatches(conditions.ifNoneMatch, etag, 'weak')) return { kind: 'file' as const, etag, ...meta, size: body.length, notModified: true as const };
          return { kind: 'file' as const, etag, ...meta, size: body.length, notModified: false as const, body };
        }
        // Too big to hold: hash it first, then stream it, checking it did not change in between.
        const digest = await hashFile(io, path);
        const etag = formatEtag(digest);
        if (conditions.ifNoneMatch && etagMatches(conditions.ifNoneMatch, etag, 'weak')) return { kind: 'file' as const, etag, ...meta, notModified: true as const };
        const handle = await io.open(toSftpPath(path), 'r', path);
        const check = createHash('sha256');
        const verify = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            check.update(chunk);
            callback(null, chunk);
          },
          flush(callback) {
            callback(check.digest('hex') === digest ? null : new Error(`"${path}" changed while it was being read`));
          },
        });
        // pipeline, not pipe: a client that goes away must also stop the reader and free its handle.
        // The error, if any, reaches the client through `verify`, which pipeline destroys with it.
        const reader = io.createReader(handle, path, () => io.close(handle, path));
        // When the client goes away, pipeline destroys the reader with the AbortError and stops
        // listening; the reader reports it after closing its handle, so keep a listener for that.
        reader.on('error', () => {});
        const body = connectStreams(reader, verify, () => {});
        return { kind: 'file' as const, etag, ...meta, notModified: false as const, body };
      });
    },

    /** Writes a whole file; `ifMatch` (ETags or `*`) and `ifNoneMatch: '*'` guard against lost updates. */
    write(workspaceId: string, path: WorkspacePath, body: Readable, conditions: { ifMatch?: string; ifNoneMatch?: string } = {}): Promise<Result<FileWritten, FileError>> {
      return attempt(async () => {
        if (path === '') throw new FileFailure('bad_request', 'the workspace root is a folder; name a file to write');
        const io = await ioFor(workspaceId);
        const { target, existing } = await writeTarget(io, path);
        if (existing?.isDirectory()) throw new FileFailure('conflict', `"${path}" is a folder`);
        if (existing && !existing.isFile()) throw new FileFailure('conflict', `"${path}" is not a regular file`);
        if (conditions.ifNoneMatch !== undefined) {
          if (conditions.ifNoneMatch.trim() !== '*') throw new FileFailure('bad_request', 'If-None-Match on a write only supports "*" (create, never replace)');
          if (existing) throw new FileFailure('precondition_failed', `"${path}" already exists`);
        }
        if (conditions.ifMatch !== undefined) {
          if (!existing) throw new FileFailure('precondition_failed', `"${path}" does not exist, so it cannot match If-Match`);
          if (conditions.ifMatch.trim() !== '*') {
            const current = formatEtag(await hashFile(io, target));
            if (!etagMatches(conditions.ifMatch, current, 'strong')) {
              throw new FileFailure('precondition_failed', `"${path}" has changed since it was read (its ETag is now ${current})`, { etag: current });
            }
          }
        }
        await ensureFolder(io, parentOf(target));
        const meter = createMeter(limits.maxUploadBytes, 'the file');
        await writeFileAtomically(io, target, body, existing ? existing.mode & 0o7777 : 0o644, meter, existing !== undefined);
        return { created: !existing, etag: formatEtag(meter.digest()), size: meter.size() };
      });
    },

    /** Removes a file, a symlink (not what it points to) or a folder with everything in it. */
    remove(workspaceId: string, path: WorkspacePath): Promise<Result<{ type: DirectoryEntry['type'] }, FileError>> {
      return attempt(async () => {
        if (path === '') throw new FileFailure('bad_request', 'the workspace root cannot be deleted');
        const io = await ioFor(workspaceId);
        const stats = await io.lstat(toSftpPath(path), path);
        if (stats.isDirectory()) await removeTree(io, path);
        else await io.unlink(toSftpPath(path), path);
        return { type: kindOf(stats) };
      });
    },

    /** `mkdir -p`; `created` is false when the folder was already there. */
    mkdir(workspaceId: string, path: WorkspacePath): Promise<Result<{ created: boolean }, FileError>> {
      return attempt(async () => {
        if (path === '') return { created: false };
        const io = await ioFor(workspaceId);
        return { created: await ensureFolder(io, path) };
      });
    },

    /** Moves a file or folder; an existing target is replaced only with `overwrite` and never if it is a folder. */
    rename(workspaceId: string, from: WorkspacePath, to: WorkspacePath, options: { overwrite?: boolean } = {}): Promise<Result<{ type: DirectoryEntry['type'] }, FileError>> {
      return attempt(async () => {
        if (from === '' || to === '') throw new FileFailure('bad_request', 'the workspace root cannot be renamed or replaced');
        const io = await ioFor(workspaceId);
        const source = await io.lstat(toSftpPath(from), from);
        if (from === to) return { type: kindOf(source) };
        if (to.startsWith(`${from}/`)) throw new FileFailure('bad_request', `"${from}" cannot be moved into itself`);
        const existing = await io.lstatIfExists(toSftpPath(to), to);
        if (existing) {
          if (!options.overwrite) throw new FileFailure('conflict', `"${to}" already exists (send "overwrite": true to replace it)`);
          if (existing.isDirectory()) throw new FileFailure('conflict', `"${to}" is a folder; delete it first`);
        }
        await ensureFolder(io, parentOf(to));
        if (existing) await io.unlink(toSftpPath(to), to);
        await io.rename(toSftpPath(from), toSftpPath(to), to);
        return { type: kindOf(source) };
      });
    },

    /** A folder as a tar stream (entries relative to the folder; symlinks kept as links, never followed). */
    downloadTar(workspaceId: string, path: WorkspacePath): Promise<Result<Readable, FileError>> {
      return attempt(async () => {
        const io = await ioFor(workspaceId);
        const stats = await io.stat(toSftpPath(path), shown(path));
        if (!stats.isDirectory()) throw new FileFailure('bad_request', `"${shown(path)}" is not a folder; only folders download as tar`);
        return packTarFrom(io, path);
      });
    },

    /** Extracts an uploaded tar into a folder (made if missing); entries may not leave that folder. */
    uploadTar(workspaceId: string, path: WorkspacePath, body: Readable): Promise<Result<ExtractSummary, FileError>> {
      return attempt(async () => {
        const io = await ioFor(workspaceId);
        await ensureFolder(io, path);
        const meter = createMeter(limits.maxUploadBytes, 'the archive');
        body.on('error', (err) => meter.stream.destroy(asUploadFailure(err)));
        body.pipe(meter.stream);
        return extractTarInto(io, path, meter.stream, {
          ensureFolder: (folder) => ensureFolder(io, folder).then(() => undefined),
          writeFile: (target, source, mode, replace) => writeFileAtomically(io, target, source, mode, undefined, replace),
        });
      });
    },
  };

  async function listEntries(io: SftpIo, path: WorkspacePath): Promise<DirectoryEntry[]> {
    const entries = await io.readdir(toSftpPath(path), shown(path));
    return entries
      .map((e) => ({ name: e.filename, type: kindOf(e.attrs), size: e.attrs.size, mode: e.attrs.mode & 0o7777, mtime: isoTime(e.attrs.mtime) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
