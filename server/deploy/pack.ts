import { close, constants as fsConstants, fstat, lstat, open, read, readdir, type Dirent, type Stats } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import type { IgnoreMatcher } from './ignore-rules.ts';
import { startPackReader, type ReadResult } from './pack-reader.ts';

/**
 * Packs a folder as a tar stream for the builder: `.oktetoignore` applied while walking,
 * file modes, symlinks (as links) and empty folders kept, owners and times normalised so the
 * same tree always gives the same bytes. Streams: only a bounded window of upcoming files is
 * read ahead (concurrently), never the whole context.
 */
export type PackOptions = {
  root: string;
  matcher: IgnoreMatcher;
  /** Every entry goes under this folder of the archive (`src/`); empty for none. */
  prefix: string;
  /** How many upcoming entries are being read at once. */
  readAheadEntries: number;
  /** Files up to this size are read whole, ahead of their turn; larger ones stream at their turn. */
  smallFileBytes: number;
};

export type PackSummary = {
  /** Bytes of tar produced. */
  bytes: number;
  files: number;
  directories: number;
  symlinks: number;
  /** Bytes of file content. */
  contentBytes: number;
  /** Sockets, fifos and devices are left out (a tar of them would not help a deploy). */
  skipped: string[];
};

export type PackedContext = { stream: Readable; summary: Promise<PackSummary> };

export const DEFAULT_PACK_LIMITS = { readAheadEntries: 128, smallFileBytes: 128 * 1024 };

/** Every entry gets this time, so packing the same tree twice gives identical archives. */
const FIXED_MTIME = new Date(Date.UTC(2000, 0, 1));
const STREAM_CHUNK = 256 * 1024;
const OUTPUT_BLOCK = 256 * 1024;
const MAX_QUEUED = 4096;

type Item = {
  type: 'dir' | 'file' | 'symlink';
  /** Path inside the context, POSIX, no leading or trailing slash. */
  rel: string;
  abs: string;
  result?: Promise<ReadResult>;
};

function describeFailure(message: string, code: string | undefined, detail: string): Error {
  const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : detail;
  return new Error(`${message}: ${reason}`);
}

function readdirAsync(path: string): Promise<Dirent[]> {
  return new Promise((resolve, reject) => readdir(path, { withFileTypes: true }, (err, entries) => (err ? reject(err) : resolve(entries))));
}

function readChunk(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, 0, buffer.length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export function packContext(options: PackOptions): PackedContext {
  const pack = tar.pack();
  const summary: PackSummary = { bytes: 0, files: 0, directories: 0, symlinks: 0, contentBytes: 0, skipped: [] };
  const counted = new PassThrough({ highWaterMark: 1024 * 1024 });
  const reader = startPackReader({ smallFileBytes: options.smallFileBytes });

  // The walker fills `queue` in archive order; the writer drains it, with reads requested a
  // window ahead of it.
  const queue: Item[] = [];
  let head = 0;
  let requested = 0;
  let walking = true;
  let failed: Error | undefined;
  let wakeWriter: (() => void) | undefined;
  let wakeWalker: (() => void) | undefined;
  const signalWriter = () => {
    const w = wakeWriter;
    wakeWriter = undefined;
    w?.();
  };

  /** Queues an item; the walker awaits `room()` only when the writer has fallen far behind. */
  function enqueue(item: Item): void {
    queue.push(item);
    if (queue.length - requested >= 16) signalWriter();
  }
  const room = (): Promise<void> | undefined => (queue.length - head > MAX_QUEUED ? new Promise<void>((r) => (wakeWalker = r)) : undefined);

  async function walk(dirAbs: string, dirRel: string, pendingParents: Item[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdirAsync(dirAbs);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return;
      throw describeFailure(`cannot list ${dirRel || '.'}`, e.code, e.message);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (failed) return;
      const rel = dirRel ? `${dirRel}/${entry.name}` : entry.name;
      const abs = join(dirAbs, entry.name);
      const excluded = options.matcher.excludes(rel);
      if (entry.isDirectory()) {
        const item: Item = { type: 'dir', rel, abs };
        if (!excluded) {
          for (const p of pendingParents.splice(0)) enqueue(p);
          enqueue(item);
          await walk(abs, rel, []);
        } else if (options.matcher.mayReinclude(rel)) {
          // Its header is written only if something inside is brought back by a `!` rule.
          const parents = [...pendingParents, item];
          await walk(abs, rel, parents);
          if (parents.length === 0) pendingParents.splice(0);
        }
        continue;
      }
      if (excluded) continue;
      if (entry.isFile() || entry.isSymbolicLink()) {
        for (const p of pendingParents.splice(0)) enqueue(p);
        enqueue({ type: entry.isFile() ? 'file' : 'symlink', rel, abs });
        const wait = room();
        if (wait) await wait;
      } else if (summary.skipped.length < 20) summary.skipped.push(rel);
    }
  }

  /** Asks the reader for everything from `requested` up to a window ahead of the writer. */
  function requestReads(): void {
    const end = Math.min(queue.length, head + options.readAheadEntries);
    if (end <= requested) return;
    if (end - requested < options.readAheadEntries / 4 && requested > head && walking) return;
    const batch = queue.slice(requested, end);
    const results = reader.read(batch.map((item) => ({ kind: item.type === 'symlink' ? 'link' : item.type, path: item.abs })));
    for (let i = 0; i < batch.length; i++) batch[i].result = results[i];
    requested = end;
  }

  // Entries are handed to tar-stream without waiting for each one; only this many may be queued
  // inside it before the writer waits, which bounds memory when the consumer is slow.
  let outstanding = 0;
  let entryWaiter: (() => void) | undefined;
  let entryError: Error | undefined;
  const MAX_OUTSTANDING = 32;

  async function writeEntry(header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
    if (entryError) throw entryError;
    outstanding++;
    const onWritten = (err?: Error | null) => {
      outstanding--;
      if (err) entryError ??= err;
      const w = entryWaiter;
      entryWaiter = undefined;
      w?.();
    };
    if (data) pack.entry(header, data, onWritten);
    else pack.entry(header, onWritten);
    while (outstanding >= MAX_OUTSTANDING && !entryError) await new Promise<void>((r) => (entryWaiter = r));
  }

  async function streamBigFile(name: string, rel: string, abs: string): Promise<boolean> {
    let fd: number;
    try {
      fd = await new Promise<number>((resolve, reject) => open(abs, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW, (err, f) => (err ? reject(err) : resolve(f))));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT' || e.code === 'ELOOP') return false;
      throw describeFailure(`cannot read ${rel}`, e.code, e.message);
    }
    try {
      const stats = await new Promise<Stats>((resolve, reject) => fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
      while (outstanding > 0 && !entryError) await new Promise<void>((r) => (entryWaiter = r));
      let sinkDone: (err?: Error | null) => void = () => {};
      const finished = new Promise<void>((resolve, reject) => (sinkDone = (err) => (err ? reject(err) : resolve())));
      const sink = pack.entry({ name, size: stats.size, mode: stats.mode & 0o7777, type: 'file', mtime: FIXED_MTIME, uid: 0, gid: 0 }, (err) => sinkDone(err));
      let position = 0;
      while (position < stats.size) {
        const chunk = Buffer.allocUnsafe(Math.min(STREAM_CHUNK, stats.size - position));
        let n = await readChunk(fd, chunk, position);
        // Shrunk while packing: pad with zeros so the archive stays well-formed.
        if (n === 0) {
          chunk.fill(0);
          n = chunk.length;
        }
        position += n;
        if (!sink.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await new Promise<void>((r) => sink.once('drain', () => r(undefined)));
      }
      sink.end(undefined);
      await finished;
      summary.contentBytes += stats.size;
      return true;
    } finally {
      close(fd, () => {});
    }
  }

  async function writeAll(): Promise<void> {
    const rootStats = await new Promise<Stats>((resolve, reject) => lstat(options.root, (err, st) => (err ? reject(err) : resolve(st)))).catch(
      (err: NodeJS.ErrnoException) => {
        throw describeFailure(`cannot pack ${options.root}`, err.code, err.message);
      },
    );
    if (!rootStats.isDirectory()) throw new Error(`cannot pack ${options.root}: not a folder`);
    if (options.prefix) {
      await writeEntry({ name: options.prefix, type: 'directory', mode: rootStats.mode & 0o7777, mtime: FIXED_MTIME, uid: 0, gid: 0 });
      summary.directories++;
    }
    const walker = walk(options.root, '', []).then(
      () => {
        walking = false;
        signalWriter();
      },
      (err: Error) => {
        failed ??= err;
        walking = false;
        signalWriter();
      },
    );
    for (;;) {
      if (failed) throw failed;
      if (head >= queue.length) {
        if (!walking) break;
        await new Promise<void>((r) => (wakeWriter = r));
        continue;
      }
      requestReads();
      const item = queue[head];
      item.result ??= reader.read([{ kind: item.type === 'symlink' ? 'link' : item.type, path: item.abs }])[0];
      const result = await item.result;
      queue[head] = undefined as unknown as Item;
      head++;
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        requested -= head;
        head = 0;
      }
      if (wakeWalker && queue.length - head <= MAX_QUEUED / 2) {
        const w = wakeWalker;
        wakeWalker = undefined;
        w();
      }
      const name = `${options.prefix}${item.rel}`;
      if (result.kind === 'gone') continue;
      if (result.kind === 'error') throw describeFailure(`cannot read ${item.rel}`, result.code, result.message);
      if (result.kind === 'dir') {
        await writeEntry({ name: `${name}/`, type: 'directory', mode: result.mode, mtime: FIXED_MTIME, uid: 0, gid: 0 });
        summary.directories++;
      } else if (result.kind === 'link') {
        await writeEntry({ name, type: 'symlink', linkname: result.target, mode: 0o777, mtime: FIXED_MTIME, uid: 0, gid: 0 });
        summary.symlinks++;
      } else if (result.kind === 'file') {
        await writeEntry({ name, type: 'file', mode: result.mode, size: result.size, mtime: FIXED_MTIME, uid: 0, gid: 0 }, result.data);
        summary.files++;
        summary.contentBytes += result.size;
      } else if (await streamBigFile(name, item.rel, item.abs)) summary.files++;
    }
    await walker;
    while (outstanding > 0 && !entryError) await new Promise<void>((r) => (entryWaiter = r));
    if (entryError) throw entryError;
    pack.finalize();
  }

  const done = new Promise<PackSummary>((resolve, reject) => {
    counted.on('end', () => resolve(summary));
    counted.on('error', reject);
    counted.on('close', () => {
      if (!counted.readableEnded) reject(failed ?? new Error('packing was stopped'));
    });
  });
  done.catch(() => {});

  // tar-stream emits every header, body and padding as its own small chunk; passing them on in
  // blocks of OUTPUT_BLOCK keeps the per-chunk cost of whatever consumes the stream (an SSH
  // channel, an HTTP request) off the hot path.
  let staged: Buffer[] = [];
  let stagedBytes = 0;
  const flushStaged = (): boolean => {
    if (stagedBytes === 0) return true;
    const block = staged.length === 1 ? staged[0] : Buffer.concat(staged, stagedBytes);
    staged = [];
    stagedBytes = 0;
    return counted.write(block);
  };
  pack.on('data', (chunk: unknown) => {
    if (!(chunk instanceof Uint8Array)) return;
    summary.bytes += chunk.length;
    staged.push(chunk as Buffer);
    stagedBytes += chunk.length;
    if (stagedBytes >= OUTPUT_BLOCK && !flushStaged()) {
      pack.pause();
      counted.once('drain', () => pack.resume());
    }
  });
  pack.on('end', () => {
    flushStaged();
    counted.end();
  });
  pack.on('error', (err: unknown) => counted.destroy(err as Error));
  counted.on('close', () => {
    void reader.close();
    // The consumer went away (build aborted): stop walking and reading.
    if (!counted.readableEnded) {
      failed ??= new Error('packing was stopped');
      pack.destroy();
    }
  });

  writeAll().catch((err: Error) => {
    failed ??= err;
    // Destroying (not finalizing) leaves a truncated archive, so a half-packed context is never
    // mistaken for a complete one downstream.
    counted.destroy(failed);
    pack.destroy();
  });

  return { stream: counted, summary: done };
}
