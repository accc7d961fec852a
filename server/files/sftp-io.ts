import { Readable, Writable } from 'node:stream';
import ssh2 from 'ssh2';
import type { FileEntryWithStats, InputAttributes, SFTPWrapper, Stats } from 'ssh2';
import type { ErrorCode } from '../common/index.ts';

const { STATUS_CODE } = ssh2.utils.sftp;

/** An expected failure of a file operation, on its way to becoming a `Result` at the service's edge. */
export class FileFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

type SftpError = Error & { code?: number | string };

/**
 * SFTP status → wharf error code. The agent starts its FAILURE messages with the errno name
 * (see server/agent/sftp-server.ts), which is what tells a conflict from a real fault.
 */
export function failureOf(err: unknown, path: string): FileFailure {
  if (err instanceof FileFailure) return err;
  const e = err as SftpError;
  const reason = (e?.message ?? String(err)).replace(/^[A-Z]+: /, '');
  const errno = /^(E[A-Z]+):/.exec(e?.message ?? '')?.[1];
  switch (e?.code) {
    case STATUS_CODE.NO_SUCH_FILE:
      return new FileFailure('not_found', `"${path}" does not exist`);
    case STATUS_CODE.PERMISSION_DENIED:
      return new FileFailure('forbidden', `"${path}": ${reason}`);
    case STATUS_CODE.BAD_MESSAGE:
      return new FileFailure('bad_request', `"${path}": ${reason}`);
    case STATUS_CODE.FAILURE:
      if (errno === 'EEXIST' || errno === 'ENOTEMPTY' || errno === 'EISDIR' || errno === 'ENOTDIR') {
        return new FileFailure('conflict', `"${path}": ${reason}`);
      }
      if (errno === 'EINVAL') return new FileFailure('bad_request', `"${path}": ${reason}`);
      if (errno === 'EMFILE') return new FileFailure('unavailable', `"${path}": ${reason}`);
      return new FileFailure('internal', `"${path}": ${reason}`);
    default:
      // No status at all: the SSH session to the agent broke underneath us.
      if (typeof e?.code !== 'number') return new FileFailure('unavailable', `"${path}": lost the connection to the workspace agent (${reason})`);
      return new FileFailure('internal', `"${path}": ${reason}`);
  }
}

/**
 * ssh2's client splits READ and WRITE requests larger than this and waits for each piece in
 * turn; staying under it and keeping several requests in flight is what makes transfers fast.
 */
const CHUNK_BYTES = 31 * 1024;
const IN_FLIGHT = 16;

export type SftpIo = ReturnType<typeof createSftpIo>;

/** Promise-returning SFTP calls whose failures are `FileFailure`s naming the workspace path. */
export function createSftpIo(sftp: SFTPWrapper) {
  function call<T>(path: string, run: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      try {
        run((err, value) => (err ? reject(failureOf(err, path)) : resolve(value as T)));
      } catch (err) {
        // ssh2 throws synchronously when the channel is already gone.
        reject(failureOf(err, path));
      }
    });
  }

  const io = {
    stat: (sftpPath: string, shown: string) => call<Stats>(shown, (cb) => sftp.stat(sftpPath, cb)),
    lstat: (sftpPath: string, shown: string) => call<Stats>(shown, (cb) => sftp.lstat(sftpPath, cb)),
    async lstatIfExists(sftpPath: string, shown: string): Promise<Stats | undefined> {
      try {
        return await io.lstat(sftpPath, shown);
      } catch (err) {
        if (err instanceof FileFailure && err.code === 'not_found') return undefined;
        throw err;
      }
    },
    async statIfExists(sftpPath: string, shown: string): Promise<Stats | undefined> {
      try {
        return await io.stat(sftpPath, shown);
      } catch (err) {
        if (err instanceof FileFailure && err.code === 'not_found') return undefined;
        throw err;
      }
    },
    readdir: (sftpPath: string, shown: string) => call<FileEntryWithStats[]>(shown, (cb) => sftp.readdir(sftpPath, cb as never)),
    mkdir: (sftpPath: string, shown: string) => call<void>(shown, (cb) => sftp.mkdir(sftpPath, cb)),
    rmdir: (sftpPath: string, shown: string) => call<void>(shown, (cb) => sftp.rmdir(sftpPath, cb)),
    unlink: (sftpPath: string, shown: string) => call<void>(shown, (cb) => sftp.unlink(sftpPath, cb)),
    rename: (from: string, to: string, shown: string) => call<void>(shown, (cb) => sftp.rename(from, to, cb)),
    realpath: (sftpPath: string, shown: string) => call<string>(shown, (cb) => sftp.realpath(sftpPath, cb)),
    readlink: (sftpPath: string, shown: string) => call<string>(shown, (cb) => sftp.readlink(sftpPath, cb)),
    symlink: (target: string, linkPath: string, shown: string) => call<void>(shown, (cb) => sftp.symlink(target, linkPath, cb)),
    open: (sftpPath: string, flags: 'r' | 'wx', shown: string, attrs?: InputAttributes) =>
      call<Buffer>(shown, (cb) => (attrs ? sftp.open(sftpPath, flags, attrs, cb) : sftp.open(sftpPath, flags, cb))),
    close: (handle: Buffer, shown: string) => call<void>(shown, (cb) => sftp.close(handle, cb)),
    fchmod: (handle: Buffer, mode: number, shown: string) => call<void>(shown, (cb) => sftp.fchmod(handle, mode, cb)),
    read: (handle: Buffer, buffer: Buffer, length: number, position: number, shown: string) =>
      call<number>(shown, (cb) => sftp.read(handle, buffer, 0, length, position, (err, bytesRead) => cb(err, bytesRead))),
    write: (handle: Buffer, data: Buffer, position: number, shown: string) =>
      call<void>(shown, (cb) => sftp.write(handle, data, 0, data.length, position, (err) => cb(err))),

    /**
     * A readable stream of an open file, with several READs in flight. It ends at the first short
     * read (end of file), so a file that shrinks while being read ends early instead of leaving a gap.
     */
    createReader(handle: Buffer, shown: string, onEnd: () => Promise<void>): Readable {
      let finishing: Promise<void> | undefined;
      const finish = () => (finishing ??= onEnd());
      let nextOffset = 0;
      let ended = false;
      const queue: Array<Promise<Buffer>> = [];
      const fill = () => {
        while (!ended && queue.length < IN_FLIGHT) {
          const position = nextOffset;
          nextOffset += CHUNK_BYTES;
          const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
          const pending = io.read(handle, buffer, CHUNK_BYTES, position, shown).then((n) => buffer.subarray(0, n));
          pending.catch(() => {});
          queue.push(pending);
        }
      };
      return new Readable({
        highWaterMark: CHUNK_BYTES * 4,
        read() {
          fill();
          const head = queue.shift();
          // Nothing queued means the end was reached: push(null) follows once the handle is closed.
          if (!head) return;
          head.then(
            (chunk) => {
              if (chunk.length > 0) this.push(chunk);
              if (chunk.length < CHUNK_BYTES) {
                ended = true;
                queue.length = 0;
                finish().then(() => this.push(null), (err: unknown) => this.destroy(err as Error));
              }
            },
            (err: unknown) => this.destroy(err as Error),
          );
        },
        destroy(err, callback) {
          ended = true;
          queue.length = 0;
          finish().then(() => callback(err), () => callback(err));
        },
      });
    },

    /** A writable stream into an open file, with several WRITEs in flight; `final` waits for all. */
    createWriter(handle: Buffer, shown: string): Writable & { bytesWritten(): number } {
      let position = 0;
      const inFlight = new Set<Promise<void>>();
      let failure: Error | undefined;
      const send = (piece: Buffer) => {
        const pending = io.write(handle, piece, position, shown);
        position += piece.length;
        inFlight.add(pending);
        pending.then(
          () => inFlight.delete(pending),
          (err: Error) => {
            inFlight.delete(pending);
            failure ??= err;
          },
        );
      };
      const writer = new Writable({
        highWaterMark: CHUNK_BYTES * 4,
        write(chunk: Buffer, _encoding, callback) {
          if (failure) return callback(failure);
          for (let offset = 0; offset < chunk.length; offset += CHUNK_BYTES) send(chunk.subarray(offset, offset + CHUNK_BYTES));
          if (inFlight.size < IN_FLIGHT) return callback();
          // Back-pressure: wait for one acknowledgement before taking more input.
          Promise.race(inFlight).then(() => callback(failure), () => callback(failure));
        },
        final(callback) {
          Promise.allSettled([...inFlight]).then(() => callback(failure));
        },
      });
      return Object.assign(writer, { bytesWritten: () => position });
    },
  };
  return io;
}
