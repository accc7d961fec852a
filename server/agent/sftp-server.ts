import { constants as fsConstants, type Stats } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readdir, readlink, realpath, rename, rmdir, stat, symlink, truncate, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, InputAttributes, SFTPWrapper } from 'ssh2';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;
/**
 * Modes a client may set: permission bits only. setuid, setgid and sticky bits from an archive or
 * a client would make workspace files that run with their owner's rights (the sandbox's uid).
 */
const PERMISSION_BITS = 0o777;

/**
 * Limits of one SFTP session. The defaults follow OpenSSH's sftp-server where it has one
 * (its read cap), so clients tuned for OpenSSH behave the same here.
 */
export type SftpLimits = {
  /** Open file and directory handles per session; more are refused so a client cannot exhaust fds. */
  maxOpenHandles: number;
  /** Largest READ answered; a longer request gets a short read, which every client handles. */
  maxReadBytes: number;
  /** Names per READDIR reply. */
  readdirBatch: number;
  /** Symlinks followed while resolving one path before giving up (Linux's own limit is 40). */
  maxSymlinkHops: number;
};

export const DEFAULT_SFTP_LIMITS: SftpLimits = {
  maxOpenHandles: 512,
  maxReadBytes: 255 * 1024,
  readdirBatch: 128,
  maxSymlinkHops: 40,
};

/** A refusal with the SFTP status the client gets. Messages start with the errno name when there is one. */
class SftpFailure extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const ESCAPES = 'EACCES: path resolves outside the workspace';

function denied(): SftpFailure {
  return new SftpFailure(STATUS_CODE.PERMISSION_DENIED, ESCAPES);
}

function noSuchFile(message = 'ENOENT: no such file or directory'): SftpFailure {
  return new SftpFailure(STATUS_CODE.NO_SUCH_FILE, message);
}

/** errno → SFTP v3 status, as OpenSSH's sftp-server maps them. */
function failureOf(err: unknown): SftpFailure {
  if (err instanceof SftpFailure) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? 'EIO';
  const text = `${code}: ${(e?.message ?? String(err)).replace(/^[A-Z]+: /, '').replace(/, \w+ '.*$/, '')}`;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EBADF':
    case 'ELOOP':
      return new SftpFailure(STATUS_CODE.NO_SUCH_FILE, text);
    case 'EPERM':
    case 'EACCES':
    case 'EFAULT':
      return new SftpFailure(STATUS_CODE.PERMISSION_DENIED, text);
    case 'ENAMETOOLONG':
    case 'EINVAL':
      return new SftpFailure(STATUS_CODE.BAD_MESSAGE, text);
    case 'ENOSYS':
      return new SftpFailure(STATUS_CODE.OP_UNSUPPORTED, text);
    default:
      return new SftpFailure(STATUS_CODE.FAILURE, text);
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export type Resolved = { real: string; exists: boolean };

/**
 * Maps the client's view (`/` is the workspace root) onto the disk and keeps every path inside
 * the root: `..` stops at `/`, and a symlink is only followed when what it resolves to is inside.
 *
 * Checks happen right before each operation and the final component is opened with O_NOFOLLOW;
 * a workspace process that swaps an intermediate directory for a symlink in between could still
 * win a race, which is why the sandboxed driver also confines the agent itself.
 */
export function createPathJail(root: string, maxSymlinkHops = DEFAULT_SFTP_LIMITS.maxSymlinkHops) {
  let rootReal: Promise<string> | undefined;
  const realRoot = () => (rootReal ??= realpath(root));

  function inside(rootPath: string, real: string): boolean {
    return rootPath === '/' || real === rootPath || real.startsWith(`${rootPath}/`);
  }

  /** Client path → canonical client path; relative paths are relative to `/`. */
  function normalize(clientPath: string): string {
    if (clientPath.includes('\0')) throw new SftpFailure(STATUS_CODE.BAD_MESSAGE, 'EINVAL: path contains a NUL byte');
    const normalized = posix.normalize(posix.join('/', clientPath));
    return normalized.length > 1 && normalized.endsWith('/') ? normalized.slice(0, -1) : normalized;
  }

  async function hostPathOf(clientPath: string): Promise<string> {
    const rootPath = await realRoot();
    const virtual = normalize(clientPath);
    if (virtual === '/') return rootPath;
    return rootPath === '/' ? virtual : rootPath + virtual;
  }

  /** A host path that may not exist yet: its parent must exist inside; a dangling link is followed by hand. */
  async function resolveHost(hostPath: string, hops: number): Promise<Resolved> {
    const rootPath = await realRoot();
    try {
      const real = await realpath(hostPath);
      if (!inside(rootPath, real)) throw denied();
      return { real, exists: true };
    } catch (err) {
      if (!isMissing(err)) throw failureOf(err);
    }
    let parentReal: string;
    try {
      parentReal = await realpath(posix.dirname(hostPath));
    } catch (err) {
      throw failureOf(err);
    }
    if (!inside(rootPath, parentReal)) throw denied();
    const candidate = posix.join(parentReal, posix.basename(hostPath));
    let info: Stats;
    try {
      info = await lstat(candidate);
    } catch (err) {
      if (isMissing(err)) return { real: candidate, exists: false };
      throw failureOf(err);
    }
    if (!info.isSymbolicLink()) return { real: candidate, exists: true };
    if (hops >= maxSymlinkHops) throw new SftpFailure(STATUS_CODE.FAILURE, 'ELOOP: too many levels of symbolic links');
    // A dangling link: where it would lead decides, as creating through it would land there.
    const next = posix.resolve(parentReal, await readlink(candidate));
    if (!inside(rootPath, next)) throw denied();
    return resolveHost(next, hops + 1);
  }

  return {
    normalize,
    realRoot,

    /** For operations that follow symlinks (open, stat, opendir, setstat, realpath). */
    async follow(clientPath: string): Promise<Resolved> {
      return resolveHost(await hostPathOf(clientPath), 0);
    },

    /** For operations on the name itself (lstat, remove, rename, readlink, mkdir, symlink). */
    async noFollow(clientPath: string): Promise<{ real: string; isRoot: boolean }> {
      const rootPath = await realRoot();
      const virtual = normalize(clientPath);
      if (virtual === '/') return { real: rootPath, isRoot: true };
      const parent = await resolveHost(await hostPathOf(posix.dirname(virtual)), 0);
      if (!parent.exists) throw noSuchFile();
      return { real: posix.join(parent.real, posix.basename(virtual)), isRoot: false };
    },

    /** A real path inside the root → the client's view of it. */
    async toClient(real: string): Promise<string> {
      const rootPath = await realRoot();
      if (rootPath === '/') return real;
      return real === rootPath ? '/' : real.slice(rootPath.length);
    },

    /** Symlink targets: absolute ones are written in the client's view, so store them under the root. */
    async targetToHost(target: string): Promise<string> {
      if (!target.startsWith('/')) {
        if (target.includes('\0')) throw new SftpFailure(STATUS_CODE.BAD_MESSAGE, 'EINVAL: path contains a NUL byte');
        return target;
      }
      return hostPathOf(target);
    },

    async targetToClient(target: string): Promise<string> {
      const rootPath = await realRoot();
      if (!target.startsWith('/') || !inside(rootPath, target)) return target;
      if (rootPath === '/') return target;
      return target === rootPath ? '/' : target.slice(rootPath.length);
    },
  };
}

export type PathJail = ReturnType<typeof createPathJail>;

function attrsOf(info: Stats): Attributes {
  return {
    mode: info.mode,
    uid: info.uid,
    gid: info.gid,
    size: info.size,
    atime: Math.floor(info.atimeMs / 1000),
    mtime: Math.floor(info.mtimeMs / 1000),
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function modeString(mode: number): string {
  const type = (mode & fsConstants.S_IFMT) >>> 0;
  const kind =
    type === fsConstants.S_IFDIR ? 'd'
    : type === fsConstants.S_IFLNK ? 'l'
    : type === fsConstants.S_IFCHR ? 'c'
    : type === fsConstants.S_IFBLK ? 'b'
    : type === fsConstants.S_IFIFO ? 'p'
    : type === fsConstants.S_IFSOCK ? 's'
    : '-';
  const bits = 'rwxrwxrwx';
  let out = kind;
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

/** `ls -l` style line: OpenSSH's `ls -l` prints the server's longname as is. */
export function formatLongname(name: string, info: Stats, now = Date.now()): string {
  const t = info.mtime;
  const recent = Math.abs(now - info.mtimeMs) < 182 * 24 * 3600 * 1000;
  const day = String(t.getDate()).padStart(2, ' ');
  const when = recent
    ? `${MONTHS[t.getMonth()]} ${day} ${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`
    : `${MONTHS[t.getMonth()]} ${day}  ${t.getFullYear()}`;
  return `${modeString(info.mode)} ${String(info.nlink).padStart(3)} ${String(info.uid).padEnd(8)} ${String(info.gid).padEnd(8)} ${String(info.size).padStart(8)} ${when} ${name}`;
}

function openFlagsOf(pflags: number): number {
  const { READ, WRITE, APPEND, CREAT, TRUNC, EXCL } = OPEN_MODE;
  let flags = pflags & READ && pflags & WRITE ? fsConstants.O_RDWR : pflags & WRITE ? fsConstants.O_WRONLY : fsConstants.O_RDONLY;
  if (pflags & APPEND) flags |= fsConstants.O_APPEND;
  if (pflags & CREAT) flags |= fsConstants.O_CREAT;
  if (pflags & TRUNC) flags |= fsConstants.O_TRUNC;
  if (pflags & EXCL) flags |= fsConstants.O_EXCL;
  // O_NONBLOCK: opening a fifo would otherwise park one of libuv's few threads until a writer came,
  // and a handful of those would stall every file operation of the agent. Regular files ignore it.
  return flags | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
}

type OpenFile = { kind: 'file'; file: FileHandle; pending: Set<Promise<unknown>> };
type OpenDir = { kind: 'dir'; real: string; names?: string[]; position: number };
type Handle = OpenFile | OpenDir;

async function applyAttrs(real: string, attrs: InputAttributes, file?: FileHandle): Promise<void> {
  if (typeof attrs.size === 'number') await (file ? file.truncate(attrs.size) : truncate(real, attrs.size));
  if (typeof attrs.uid === 'number' && typeof attrs.gid === 'number') await (file ? file.chown(attrs.uid, attrs.gid) : chown(real, attrs.uid, attrs.gid));
  if (typeof attrs.mode === 'number') await (file ? file.chmod(attrs.mode & PERMISSION_BITS) : chmod(real, attrs.mode & PERMISSION_BITS));
  if (attrs.atime !== undefined && attrs.mtime !== undefined) await (file ? file.utimes(attrs.atime, attrs.mtime) : utimes(real, attrs.atime, attrs.mtime));
}

export type SftpOptions = {
  /**
   * Whether a listing carries `ls -l` lines (formatLongname) or the bare names. The control
   * server reads only the attributes of a listing; OpenSSH's `sftp` prints the lines. They show
   * the local time, and a process's first local time makes V8 load the time zone from ICU's data
   * (about 0.8 MiB of the agent's RSS, kept for its life): an agent that only the server lists
   * files for never pays it.
   */
  longnames: boolean;
};

/**
 * Serves the standard `sftp` subsystem (protocol v3, as OpenSSH speaks it) on an accepted
 * channel, rooted at the workspace: clients see `/` as the root and never leave it.
 */
export function serveSftp(sftp: SFTPWrapper, root: string, limits: SftpLimits = DEFAULT_SFTP_LIMITS, options: SftpOptions = { longnames: true }): void {
  const jail = createPathJail(root, limits.maxSymlinkHops);
  const handles = new Map<string, Handle>();
  let nextHandle = 0;
  let closed = false;

  function addHandle(handle: Handle): Buffer {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(nextHandle++ >>> 0);
    handles.set(id.toString('hex'), handle);
    return id;
  }

  function reserveHandle(): void {
    if (handles.size >= limits.maxOpenHandles) {
      throw new SftpFailure(STATUS_CODE.FAILURE, `EMFILE: more than ${limits.maxOpenHandles} open handles`);
    }
  }

  function fileOf(id: Buffer): OpenFile {
    const h = handles.get(id.toString('hex'));
    if (!h || h.kind !== 'file') throw new SftpFailure(STATUS_CODE.FAILURE, 'EBADF: invalid file handle');
    return h;
  }

  function dirOf(id: Buffer): OpenDir {
    const h = handles.get(id.toString('hex'));
    if (!h || h.kind !== 'dir') throw new SftpFailure(STATUS_CODE.FAILURE, 'EBADF: invalid directory handle');
    return h;
  }

  /** Runs one request; any failure becomes its status reply, never a crash of the agent. */
  function serve(reqId: number, work: () => Promise<void>): void {
    work().catch((err: unknown) => {
      if (closed) return;
      const failure = failureOf(err);
      sftp.status(reqId, failure.status, failure.message);
    });
  }

  /** Tracks work on an open file so CLOSE waits for writes the client did not wait for. */
  function track<T>(file: OpenFile, work: Promise<T>): Promise<T> {
    file.pending.add(work);
    const done = () => file.pending.delete(work);
    work.then(done, done);
    return work;
  }

  const ok = (reqId: number) => sftp.status(reqId, STATUS_CODE.OK);

  sftp.on('OPEN', (reqId: number, filename: string, pflags: number, attrs: InputAttributes) =>
    serve(reqId, async () => {
      reserveHandle();
      const target = await jail.follow(filename);
      if (!target.exists && !(pflags & OPEN_MODE.CREAT)) throw noSuchFile();
      const mode = typeof attrs?.mode === 'number' ? attrs.mode & PERMISSION_BITS : 0o666;
      const file = await open(target.real, openFlagsOf(pflags), mode);
      if (closed) return void file.close();
      sftp.handle(reqId, addHandle({ kind: 'file', file, pending: new Set() }));
    }),
  );

  sftp.on('READ', (reqId: number, id: Buffer, offset: number, length: number) =>
    serve(reqId, async () => {
      const file = fileOf(id);
      const size = Math.min(length, limits.maxReadBytes);
      const buffer = Buffer.allocUnsafe(size);
      const { bytesRead } = await track(file, file.file.read(buffer, 0, size, offset));
      if (bytesRead === 0) return sftp.status(reqId, STATUS_CODE.EOF);
      sftp.data(reqId, buffer.subarray(0, bytesRead));
    }),
  );

  sftp.on('WRITE', (reqId: number, id: Buffer, offset: number, data: Buffer) =>
    serve(reqId, async () => {
      const file = fileOf(id);
      await track(file, (async () => {
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await file.file.write(data, written, data.length - written, offset + written);
          written += bytesWritten;
        }
      })());
      ok(reqId);
    }),
  );

  sftp.on('FSTAT', (reqId: number, id: Buffer) =>
    serve(reqId, async () => {
      const file = fileOf(id);
      sftp.attrs(reqId, attrsOf(await track(file, file.file.stat())));
    }),
  );

  sftp.on('FSETSTAT', (reqId: number, id: Buffer, attrs: InputAttributes) =>
    serve(reqId, async () => {
      const file = fileOf(id);
      await track(file, applyAttrs('', attrs, file.file));
      ok(reqId);
    }),
  );

  sftp.on('CLOSE', (reqId: number, id: Buffer) =>
    serve(reqId, async () => {
      const key = id.toString('hex');
      const h = handles.get(key);
      if (!h) throw new SftpFailure(STATUS_CODE.FAILURE, 'EBADF: invalid handle');
      handles.delete(key);
      if (h.kind === 'file') {
        await Promise.allSettled([...h.pending]);
        await h.file.close();
      }
      ok(reqId);
    }),
  );

  sftp.on('OPENDIR', (reqId: number, path: string) =>
    serve(reqId, async () => {
      reserveHandle();
      const target = await jail.follow(path);
      if (!target.exists) throw noSuchFile();
      if (!(await stat(target.real)).isDirectory()) throw noSuchFile('ENOTDIR: not a directory');
      sftp.handle(reqId, addHandle({ kind: 'dir', real: target.real, position: 0 }));
    }),
  );

  sftp.on('READDIR', (reqId: number, id: Buffer) =>
    serve(reqId, async () => {
      const dir = dirOf(id);
      dir.names ??= await readdir(dir.real);
      const now = Date.now();
      while (dir.position < dir.names.length) {
        const batch = dir.names.slice(dir.position, dir.position + limits.readdirBatch);
        dir.position += batch.length;
        const entries = await Promise.all(
          batch.map(async (filename) => {
            // Attributes of the entry itself, not of what a symlink points to (as OpenSSH does).
            const info = await lstat(posix.join(dir.real, filename)).catch(() => undefined);
            return info && { filename, longname: options.longnames ? formatLongname(filename, info, now) : filename, attrs: attrsOf(info) };
          }),
        );
        const present = entries.filter((e) => e !== undefined);
        // Names removed since the listing began are skipped; an all-vanished batch reads on.
        if (present.length > 0) return sftp.name(reqId, present);
      }
      sftp.status(reqId, STATUS_CODE.EOF);
    }),
  );

  sftp.on('LSTAT', (reqId: number, path: string) =>
    serve(reqId, async () => {
      const target = await jail.noFollow(path);
      sftp.attrs(reqId, attrsOf(await lstat(target.real)));
    }),
  );

  sftp.on('STAT', (reqId: number, path: string) =>
    serve(reqId, async () => {
      const target = await jail.follow(path);
      if (!target.exists) throw noSuchFile();
      sftp.attrs(reqId, attrsOf(await stat(target.real)));
    }),
  );

  sftp.on('SETSTAT', (reqId: number, path: string, attrs: InputAttributes) =>
    serve(reqId, async () => {
      const target = await jail.follow(path);
      if (!target.exists) throw noSuchFile();
      await applyAttrs(target.real, attrs);
      ok(reqId);
    }),
  );

  sftp.on('REMOVE', (reqId: number, path: string) =>
    serve(reqId, async () => {
      const target = await jail.noFollow(path);
      if (target.isRoot) throw new SftpFailure(STATUS_CODE.PERMISSION_DENIED, 'EPERM: the workspace root cannot be removed');
      await unlink(target.real);
      ok(reqId);
    }),
  );

  sftp.on('RMDIR', (reqId: number, path: string) =>
    serve(reqId, async () => {
      const target = await jail.noFollow(path);
      if (target.isRoot) throw new SftpFailure(STATUS_CODE.PERMISSION_DENIED, 'EPERM: the workspace root cannot be removed');
      await rmdir(target.real);
      ok(reqId);
    }),
  );

  sftp.on('MKDIR', (reqId: number, path: string, attrs: InputAttributes) =>
    serve(reqId, async () => {
      const target = await jail.noFollow(path);
      const mode = typeof attrs?.mode === 'number' ? attrs.mode & PERMISSION_BITS : 0o777;
      await mkdir(target.real, { mode });
      ok(reqId);
    }),
  );

  sftp.on('REALPATH', (reqId: number, path: string) =>
    serve(reqId, async () => {
      // A name that does not exist yet resolves too (through a dangling link, to where it leads).
      const clientPath = await jail.toClient((await jail.follow(path)).real);
      sftp.name(reqId, [{ filename: clientPath, longname: clientPath, attrs: {} as Attributes }]);
    }),
  );

  sftp.on('RENAME', (reqId: number, from: string, to: string) =>
    serve(reqId, async () => {
      const source = await jail.noFollow(from);
      const destination = await jail.noFollow(to);
      if (source.isRoot || destination.isRoot) throw new SftpFailure(STATUS_CODE.PERMISSION_DENIED, 'EPERM: the workspace root cannot be renamed');
      // SFTP v3 RENAME never replaces an existing name (OpenSSH's server behaves the same).
      const existing = await lstat(destination.real).catch((err: unknown) => (isMissing(err) ? undefined : Promise.reject(err)));
      if (existing) throw new SftpFailure(STATUS_CODE.FAILURE, 'EEXIST: the new name already exists');
      await lstat(source.real);
      await rename(source.real, destination.real);
      ok(reqId);
    }),
  );

  sftp.on('READLINK', (reqId: number, path: string) =>
    serve(reqId, async () => {
      const target = await jail.noFollow(path);
      const link = await jail.targetToClient(await readlink(target.real));
      sftp.name(reqId, [{ filename: link, longname: link, attrs: {} as Attributes }]);
    }),
  );

  // ssh2 hands us (linkPath, targetPath) in that order whatever the client's quirk.
  sftp.on('SYMLINK', (reqId: number, linkPath: string, targetPath: string) =>
    serve(reqId, async () => {
      const link = await jail.noFollow(linkPath);
      // The link may point anywhere; following it is what the jail refuses.
      await symlink(await jail.targetToHost(targetPath), link.real);
      ok(reqId);
    }),
  );

  const release = () => {
    if (closed) return;
    closed = true;
    for (const h of handles.values()) if (h.kind === 'file') void h.file.close().catch(() => {});
    handles.clear();
  };
  // The client closing its side (EOF) ends the session; the channel closing frees everything.
  sftp.on('end', () => {
    sftp.end();
    release();
  });
  sftp.on('close', release);
}
