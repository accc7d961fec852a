import { lstat, readdir, type Dirent, type Stats } from 'node:fs';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { IgnoreMatcher } from './ignore-rules.ts';
import { NAMED, RECORD, RECORD_FIELDS, startPackReader, type ReadSlab } from './pack-reader.ts';

/**
 * Packs a folder as a tar stream for the builder: `.oktetoignore` applied while walking,
 * file modes, symlinks (as links) and empty folders kept, owners and times normalised so the
 * same tree always gives the same bytes. Streams: the walker runs at most a bounded number of
 * entries ahead of the encoder, and file contents pass through a bounded number of slabs.
 *
 * The work is split in three, so that each part runs while the others wait:
 * - the walker (main thread) lists folders and applies the ignore rules;
 * - a worker thread stats and reads the files it is sent, into slabs (see pack-reader.ts);
 * - tar-stream encodes each slab's entries (main thread) into output blocks of OUTPUT_BLOCK.
 */
export type PackOptions = {
  root: string;
  matcher: IgnoreMatcher;
  /** Every entry goes under this folder of the archive (`src/`); empty for none. */
  prefix: string;
  /** Size of the buffers file contents are read into; a larger file spans several. */
  slabBytes: number;
  /** How many slabs may be read ahead of the encoder. */
  slabsInFlight: number;
  /** Size of the chunks the packed stream gives out (the last one may be smaller). */
  outputBlockBytes: number;
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

export type PackedContext = {
  stream: Readable;
  summary: Promise<PackSummary>;
  /**
   * Gives a chunk of `stream` back once the consumer is completely done with it (for a socket:
   * in the write callback, when the bytes have left). The packer then fills it again instead of
   * allocating a new block. Optional: a chunk never given back is simply garbage-collected.
   */
  recycle(chunk: Buffer): void;
};

/**
 * 1 MiB slabs: large enough that a slab holds hundreds of typical source files (one message
 * each way per slab), small enough that four of them in flight keep memory flat. 256 KiB output
 * blocks: an HTTP chunk or SSH frame per block instead of three per file.
 */
export const DEFAULT_PACK_LIMITS = { slabBytes: 1024 * 1024, slabsInFlight: 4, outputBlockBytes: 256 * 1024 };

/** Every entry gets this time, so packing the same tree twice gives identical archives. */
const FIXED_MTIME = new Date(Date.UTC(2000, 0, 1));
/** Entries sent to the reader in one message. */
const BATCH = 256;
/** Blocks given back by the consumer and kept for reuse; any more are left to the GC. */
const MAX_SPARE_BLOCKS = 8;
/** The walker waits when this many entries are sent but not yet encoded. */
const MAX_AHEAD = 8192;

type Kind = 'd' | 'f' | 'l' | 'w';

function describeFailure(message: string, code: string | undefined, detail: string): Error {
  const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : detail;
  return new Error(`${message}: ${reason}`);
}

function readdirAsync(path: string): Promise<Dirent[]> {
  return new Promise((resolve, reject) => readdir(path, { withFileTypes: true }, (err, entries) => (err ? reject(err) : resolve(entries))));
}

export function packContext(options: PackOptions): PackedContext {
  const pack = tar.pack();
  const summary: PackSummary = { bytes: 0, files: 0, directories: 0, symlinks: 0, contentBytes: 0, skipped: [] };
  // One block buffered at most: a paused reader (`for await`, `read()`) then gets each block as
  // it is, where two buffered blocks would be concatenated into a copy.
  let packPaused = false;
  const counted = new Readable({
    highWaterMark: options.outputBlockBytes,
    read() {
      if (!packPaused) return;
      packPaused = false;
      pack.resume();
    },
  });
  let failed: Error | undefined;
  const stop = (err: Error) => {
    if (failed) return;
    failed = err;
    // Destroying (not finalizing) leaves a truncated archive, so a half-packed context is never
    // mistaken for a complete one downstream.
    counted.destroy(err);
    pack.destroy();
    wakeWalker();
  };

  /* ---- walker → reader: the names sent and not yet encoded, in archive order ---- */
  let names: string[] = [];
  let nameHead = 0;
  let batchKinds = '';
  let batchPaths: string[] = [];
  let batchNames: string[] = [];
  let walkerWaiting: (() => void) | undefined;
  const ahead = () => names.length - nameHead;
  function wakeWalker(): void {
    const w = walkerWaiting;
    walkerWaiting = undefined;
    w?.();
  }

  const reader = startPackReader({ slabBytes: options.slabBytes, slabsInFlight: options.slabsInFlight, onSlab: encodeSlab, onFailure: stop });

  function sendBatch(): void {
    if (batchPaths.length === 0) return;
    reader.read({ kinds: batchKinds, paths: batchPaths, names: batchNames });
    batchKinds = '';
    batchPaths = [];
    batchNames = [];
  }

  function add(kind: Kind, rel: string): void {
    const name = `${options.prefix}${rel}`;
    names.push(name);
    if (kind === 'w') batchNames.push(name);
    batchKinds += kind;
    batchPaths.push(`${options.root}/${rel}`);
    if (batchPaths.length >= BATCH) sendBatch();
  }

  /** Before the walker waits for anything: a reader with little left to do gets what we have. */
  async function pause<T>(wait: Promise<T>): Promise<T> {
    if (ahead() - batchPaths.length < BATCH) sendBatch();
    return wait;
  }

  async function walk(dirAbs: string, dirRel: string, pendingParents: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await pause(readdirAsync(dirAbs));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return;
      throw describeFailure(`cannot list ${dirRel || '.'}`, e.code, e.message);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (failed) return;
      const rel = dirRel ? `${dirRel}/${entry.name}` : entry.name;
      const excluded = options.matcher.excludes(rel);
      if (entry.isDirectory()) {
        if (!excluded) {
          for (const p of pendingParents.splice(0)) add('d', p);
          add('d', rel);
          // No ignore rule can tell anything inside apart from this kept folder: the reader
          // walks it itself, without a message (or a match) per entry.
          if (options.matcher.decidesBelow(rel)) add('w', rel);
          else await walk(`${dirAbs}/${entry.name}`, rel, []);
        } else if (options.matcher.mayReinclude(rel)) {
          // Its header is written only if something inside is brought back by a `!` rule.
          const parents = [...pendingParents, rel];
          await walk(`${dirAbs}/${entry.name}`, rel, parents);
          if (parents.length === 0) pendingParents.splice(0);
        }
        continue;
      }
      if (excluded) continue;
      if (entry.isFile() || entry.isSymbolicLink()) {
        for (const p of pendingParents.splice(0)) add('d', p);
        add(entry.isFile() ? 'f' : 'l', rel);
        if (ahead() > MAX_AHEAD) await pause(new Promise<void>((r) => (walkerWaiting = r)));
      } else if (summary.skipped.length < 20) summary.skipped.push(rel);
    }
  }

  /* ---- reader → tar-stream ---- */
  // The entry whose content continues in the next slab.
  let openSink: { sink: ReturnType<typeof pack.entry>; left: number; name: string } | undefined;
  let finalizing = false;

  function nextName(): string {
    const name = names[nameHead];
    names[nameHead++] = '';
    if (nameHead > 4096 && nameHead * 2 > names.length) {
      names = names.slice(nameHead);
      nameHead = 0;
    }
    if (walkerWaiting && ahead() <= MAX_AHEAD / 2) wakeWalker();
    return name;
  }

  /** Writes bytes of the file being streamed; `taken` runs once tar-stream has accepted them. */
  function writeBody(bytes: Buffer, taken: (() => void) | undefined): void {
    const open = openSink as NonNullable<typeof openSink>;
    open.left -= bytes.length;
    const more = open.sink.write(bytes);
    if (open.left === 0) {
      openSink = undefined;
      open.sink.end(undefined);
    }
    if (taken) {
      if (more) queueMicrotask(taken);
      else open.sink.once('drain', taken);
    }
  }

  /*
   * Slabs given to tar-stream, oldest first. One goes back to the reader when its last record has
   * been taken and every byte of it has come out of tar-stream (and been copied into a block), so
   * nothing can still read it when the worker refills it.
   */
  const slabs: Array<{ buffer: ArrayBuffer; unread: number; taken: boolean }> = [];
  function recycleSlabs(): void {
    while (slabs.length > 0 && slabs[0].taken && slabs[0].unread === 0) {
      inFlight--;
      reader.release((slabs.shift() as (typeof slabs)[number]).buffer);
    }
    if (finalizing) finishIfDone();
  }

  /** Hands every record of a slab to tar-stream. */
  function encodeSlab({ slab, meta, names: found, extras }: ReadSlab): void {
    if (failed) return;
    inFlight++;
    const count = meta.length / RECORD_FIELDS;
    let unread = 0;
    for (let at = 0; at < meta.length; at += RECORD_FIELDS) unread += meta[at + 4];
    const state = { buffer: slab.buffer as ArrayBuffer, unread, taken: false };
    slabs.push(state);
    let nextFound = 0;
    const released = (err?: Error | null) => {
      if (err) return stop(err);
      state.taken = true;
      recycleSlabs();
    };
    for (let i = 0; i < count; i++) {
      const at = i * RECORD_FIELDS;
      const named = meta[at] > NAMED;
      const kind = named ? meta[at] - NAMED : meta[at];
      const onLast = i === count - 1 ? released : undefined;
      const offset = meta[at + 3];
      const length = meta[at + 4];
      if (kind === RECORD.piece) {
        writeBody(slab.subarray(offset, offset + length), onLast);
        continue;
      }
      // A read that failed halfway through a file is reported for that file.
      const name = named ? found[nextFound++] : kind === RECORD.error && openSink ? openSink.name : nextName();
      if (kind === RECORD.file) {
        const size = meta[at + 2];
        const header = { name, type: 'file' as const, mode: meta[at + 1], size, mtime: FIXED_MTIME, uid: 0, gid: 0 };
        const body = slab.subarray(offset, offset + length);
        summary.files++;
        summary.contentBytes += size;
        if (length === size) pack.entry(header, body, onLast);
        else {
          openSink = { sink: pack.entry(header, (err) => err && stop(err)), left: size, name };
          writeBody(body, onLast);
        }
      } else if (kind === RECORD.dir) {
        pack.entry({ name: `${name}/`, type: 'directory', mode: meta[at + 1], mtime: FIXED_MTIME, uid: 0, gid: 0 }, onLast);
        summary.directories++;
      } else if (kind === RECORD.link) {
        pack.entry({ name, type: 'symlink', linkname: extras.get(i)?.text ?? '', mode: 0o777, mtime: FIXED_MTIME, uid: 0, gid: 0 }, onLast);
        summary.symlinks++;
      } else if (kind === RECORD.gone || kind === RECORD.walked || kind === RECORD.skipped) {
        if (kind === RECORD.skipped && summary.skipped.length < 20) summary.skipped.push(name.slice(options.prefix.length));
        onLast?.();
      } else {
        const extra = extras.get(i);
        const verb = meta[at + 1] === 1 ? 'list' : 'read';
        return stop(describeFailure(`cannot ${verb} ${name.slice(options.prefix.length)}`, extra?.code, extra?.text ?? 'failed'));
      }
    }
  }

  let inFlight = 0;
  /** The walk is over: once every name has come back from the reader and been encoded, finalize. */
  function finishIfDone(): void {
    if (failed || !finalizing || ahead() > 0 || inFlight > 0 || openSink) return;
    finalizing = false;
    pack.finalize();
  }

  /* ---- tar-stream → output blocks ---- */
  // tar-stream emits every header, body and padding as its own small chunk; copying them into
  // blocks of outputBlockBytes keeps the per-chunk cost of whatever consumes the stream (an SSH
  // channel, an HTTP request) off the hot path. A block handed out is never written again unless
  // the consumer gives it back with `recycle` (it may still hold it, e.g. queued in a socket).
  // Without that, every block is fresh, and dead blocks pile up as external memory until V8
  // next collects: the peak then grew with the size of the context.
  const given = new WeakSet<ArrayBuffer>();
  const spare: Buffer[] = [];
  const takeBlock = (): Buffer => {
    return spare.pop() ?? Buffer.allocUnsafeSlow(options.outputBlockBytes);
  };
  const recycle = (chunk: Buffer): void => {
    // Only a block of ours that is out, once: a second call, or any other buffer, is ignored.
    const buffer = chunk.buffer as ArrayBuffer;
    if (!given.delete(buffer) || failed || spare.length >= MAX_SPARE_BLOCKS) return;
    spare.push(Buffer.from(buffer, 0, options.outputBlockBytes));
  };
  let block = takeBlock();
  let blockUsed = 0;
  const flushBlock = (): boolean => {
    if (blockUsed === 0) return true;
    const full = blockUsed === block.length ? block : block.subarray(0, blockUsed);
    given.add(full.buffer as ArrayBuffer);
    block = takeBlock();
    blockUsed = 0;
    return counted.push(full);
  };
  pack.on('data', (chunk: unknown) => {
    if (!(chunk instanceof Uint8Array)) return;
    summary.bytes += chunk.length;
    // File contents come out as the very views of the slab they were read into.
    for (const state of slabs) {
      if (state.buffer !== chunk.buffer) continue;
      state.unread -= chunk.length;
      if (state.unread === 0 && state === slabs[0]) queueMicrotask(recycleSlabs);
      break;
    }
    let from = 0;
    let blocked = false;
    while (from < chunk.length) {
      const n = Math.min(chunk.length - from, block.length - blockUsed);
      block.set(from === 0 && n === chunk.length ? chunk : chunk.subarray(from, from + n), blockUsed);
      blockUsed += n;
      from += n;
      if (blockUsed === block.length && !flushBlock()) blocked = true;
    }
    if (blocked && !packPaused) {
      packPaused = true;
      pack.pause();
    }
  });
  pack.on('end', () => {
    flushBlock();
    counted.push(null);
  });
  pack.on('error', (err: unknown) => stop(err as Error));

  const done = new Promise<PackSummary>((resolve, reject) => {
    counted.on('end', () => resolve(summary));
    counted.on('error', reject);
    counted.on('close', () => {
      if (!counted.readableEnded) reject(failed ?? new Error('packing was stopped'));
    });
  });
  done.catch(() => {});
  counted.on('close', () => {
    void reader.close();
    // The consumer went away (build aborted): stop walking and reading.
    if (!counted.readableEnded) stop(new Error('packing was stopped'));
  });

  async function walkAll(): Promise<void> {
    const rootStats = await new Promise<Stats>((resolve, reject) => lstat(options.root, (err, st) => (err ? reject(err) : resolve(st)))).catch(
      (err: NodeJS.ErrnoException) => {
        throw describeFailure(`cannot pack ${options.root}`, err.code, err.message);
      },
    );
    if (!rootStats.isDirectory()) throw new Error(`cannot pack ${options.root}: not a folder`);
    if (options.prefix) {
      pack.entry({ name: options.prefix, type: 'directory', mode: rootStats.mode & 0o7777, mtime: FIXED_MTIME, uid: 0, gid: 0 });
      summary.directories++;
    }
    await walk(options.root, '', []);
    sendBatch();
  }

  walkAll().then(
    () => {
      finalizing = true;
      finishIfDone();
    },
    (err: Error) => stop(err),
  );

  return { stream: counted, summary: done, recycle };
}
