import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { IgnoreMatcher } from './ignore-rules.ts';
import { startPackWorker, WALK_KIND } from './pack-worker.ts';

/**
 * Packs a folder as a tar stream for the builder: `.oktetoignore` applied while walking,
 * file modes, symlinks (as links) and empty folders kept, owners and times normalised so the
 * same tree always gives the same bytes. Streams: the walker runs at most a bounded number of
 * entries ahead of the writer, and the tar passes through a bounded number of blocks.
 *
 * The work is split in two, so that each part runs while the other waits:
 * - the walker (main thread) lists the folders an ignore rule can look inside and applies the
 *   rules there;
 * - a worker thread (pack-worker.ts) walks every kept folder no rule can look inside, stats and
 *   reads the files, and writes the tar (headers by tar-stream's encoder) into output blocks,
 *   which the main thread only forwards.
 */
export type PackOptions = {
  root: string;
  matcher: IgnoreMatcher;
  /** Every entry goes under this folder of the archive (`src/`); empty for none. */
  prefix: string;
  /** Size of the chunks the packed stream gives out (the last one may be smaller). */
  outputBlockBytes: number;
  /** How many blocks may be written ahead of the consumer. */
  blocksInFlight: number;
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
  /**
   * Settles once the walker has stopped, after the end, a failure or a cancel: from then on this
   * pack reads no more folders (the worker thread is terminated by then too).
   */
  walked: Promise<void>;
};

/**
 * 256 KiB blocks: an HTTP chunk or SSH frame and one message between threads per block instead
 * of several per file; four ahead keep the disk busy while the consumer sends.
 */
export const DEFAULT_PACK_LIMITS = { outputBlockBytes: 256 * 1024, blocksInFlight: 4 };

/**
 * Where a deploy's context goes in the build archive (the runner finds it at `/okteto/src`);
 * the server's generated runner files sit beside it under `okteto/wharf/`. Both packers use it:
 * the agent's for a workspace, the CLI's for a local folder.
 */
export const CONTEXT_PREFIX = 'okteto/src/';

/** Every entry gets this time, so packing the same tree twice gives identical archives. */
const FIXED_MTIME_MS = Date.UTC(2000, 0, 1);
/** Entries sent to the worker in one message. */
const BATCH = 256;
/** The walker waits when this many entries are sent but not yet written. */
const MAX_AHEAD = 8192;
/**
 * The worker's young generation: it allocates a little per entry (a stat, a header), and V8
 * would otherwise let that space grow with the number of entries.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

type Kind = (typeof WALK_KIND)[keyof typeof WALK_KIND];

function describeFailure(message: string, code: string | undefined, detail: string): Error {
  const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : detail;
  return new Error(`${message}: ${reason}`);
}

export function packContext(options: PackOptions): PackedContext {
  let summary: PackSummary | undefined;
  let failed: Error | undefined;
  /** Blocks asked of the worker and not yet received. */
  let outstanding = options.blocksInFlight;
  let bytes = 0;
  const topUp = () => {
    const more = options.blocksInFlight - outstanding;
    if (more <= 0 || failed || summary) return;
    outstanding += more;
    worker.credit(more);
  };
  // One block buffered at most: a paused reader (`for await`, `read()`) then gets each block as
  // it is, where two buffered blocks would be concatenated into a copy.
  const counted = new Readable({ highWaterMark: options.outputBlockBytes, read: topUp });
  const stop = (err: Error) => {
    if (failed) return;
    failed = err;
    // Destroying (not ending) leaves a truncated archive, so a half-packed context is never
    // mistaken for a complete one downstream.
    counted.destroy(err);
    worker.close();
    wakeWalker();
  };

  /* ---- walker → worker: entries sent and not yet written ---- */
  let sent = 0;
  let consumed = 0;
  let batchKinds = '';
  let batchPaths: string[] = [];
  let walkerWaiting: (() => void) | undefined;
  const ahead = () => sent - consumed;
  function wakeWalker(): void {
    const w = walkerWaiting;
    walkerWaiting = undefined;
    w?.();
  }

  // Blocks handed out and not given back: only these may be refilled, once each.
  const given = new WeakSet<ArrayBuffer>();
  const worker = startPackWorker({
    root: options.root,
    prefix: options.prefix,
    blockBytes: options.outputBlockBytes,
    blocksInFlight: options.blocksInFlight,
    mtimeMs: FIXED_MTIME_MS,
    youngGenerationMb: WORKER_YOUNG_GENERATION_MB,
    onBlock(block, done) {
      if (failed) return;
      outstanding--;
      consumed = done;
      bytes += block.length;
      if (walkerWaiting && ahead() <= MAX_AHEAD / 2) wakeWalker();
      given.add(block.buffer as ArrayBuffer);
      if (counted.push(block)) topUp();
    },
    onEnd(result) {
      if (failed) return;
      summary = { bytes, ...result };
      counted.push(null);
    },
    onFailure(failure) {
      stop(failure instanceof Error ? failure : describeFailure(`cannot ${failure.verb} ${failure.path}`, failure.code, failure.message));
    },
  });

  const recycle = (chunk: Buffer): void => {
    // Only a block of ours that is out, once, and whole: a second call, or any other buffer, is ignored.
    const buffer = chunk.buffer as ArrayBuffer;
    if (!given.delete(buffer) || failed || buffer.byteLength !== options.outputBlockBytes) return;
    worker.reuse(buffer);
  };

  function sendBatch(): void {
    if (batchPaths.length === 0) return;
    worker.add(batchKinds, batchPaths);
    batchKinds = '';
    batchPaths = [];
  }

  function add(kind: Kind, rel: string): void {
    sent++;
    batchKinds += kind;
    batchPaths.push(rel);
    if (batchPaths.length >= BATCH) sendBatch();
  }

  /** Before the walker waits for anything: a worker with little left to do gets what we have. */
  async function pause<T>(wait: Promise<T>): Promise<T> {
    if (ahead() - batchPaths.length < BATCH) sendBatch();
    return wait;
  }

  async function walk(dirAbs: string, dirRel: string, pendingParents: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await pause(readdir(dirAbs, { withFileTypes: true }));
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
          for (const p of pendingParents.splice(0)) add(WALK_KIND.dir, p);
          add(WALK_KIND.dir, rel);
          // No ignore rule can tell anything inside apart from this kept folder: the worker
          // walks it itself, without a message (or a match) per entry.
          if (options.matcher.decidesBelow(rel)) add(WALK_KIND.walk, rel);
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
        for (const p of pendingParents.splice(0)) add(WALK_KIND.dir, p);
        add(entry.isFile() ? WALK_KIND.file : WALK_KIND.link, rel);
        if (ahead() > MAX_AHEAD) await pause(new Promise<void>((r) => (walkerWaiting = r)));
      } else add(WALK_KIND.skipped, rel);
    }
  }

  const done = new Promise<PackSummary>((resolve, reject) => {
    counted.on('end', () => resolve(summary as PackSummary));
    counted.on('error', reject);
    counted.on('close', () => {
      if (!counted.readableEnded) reject(failed ?? new Error('packing was stopped'));
    });
  });
  done.catch(() => {});
  counted.on('close', () => {
    // The consumer went away (build aborted): stop walking and writing.
    if (!counted.readableEnded) stop(new Error('packing was stopped'));
  });

  async function walkAll(): Promise<void> {
    const rootStats = await lstat(options.root).catch((err: NodeJS.ErrnoException) => {
      throw describeFailure(`cannot pack ${options.root}`, err.code, err.message);
    });
    if (!rootStats.isDirectory()) throw new Error(`cannot pack ${options.root}: not a folder`);
    if (options.prefix) add(WALK_KIND.dir, '');
    await walk(options.root, '', []);
    sendBatch();
  }

  const walked = walkAll().then(
    () => worker.end(),
    (err: Error) => stop(err),
  );

  return { stream: counted, summary: done, recycle, walked };
}
