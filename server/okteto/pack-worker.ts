import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * Writes the context's tar on a worker thread. The walker (main thread) sends the entries it
 * keeps, in archive order; the worker stats and reads them with plain synchronous calls, encodes
 * each header with tar-stream's own header encoder and reads file contents straight into output
 * blocks, which it hands over (transferred, not copied). The main thread only forwards blocks:
 * nothing per file is allocated there, so its heap does not grow with the context (V8 grows a
 * thread's young generation the longer it keeps allocating, and the main thread's cannot be
 * bounded from here), and it stays free for the agent's other work (terminals). The worker's
 * own young generation is bounded with `resourceLimits`.
 *
 * Memory is bounded by credits: the worker fills a block only when the packer has asked for one
 * (the stream's consumer is keeping up). A file larger than a block continues in the next ones,
 * so a huge file needs no more memory than a small one.
 *
 * The worker is plain JavaScript (pack-thread.cjs) evaluated from its source text, so it needs no
 * loader or bundler support (the CLI ships as one bundled file, and a worker does not inherit tsx). tar-stream's
 * header encoder is not among its package exports, so its source (and that of `b4a`, the only
 * module it needs) is read as text and evaluated in the worker. Read through
 * `readFileSync(new URL(...))`, it is inlined by scripts/build-cli.mjs into the bundle.
 */
export type PackWorkerOptions = {
  root: string;
  prefix: string;
  blockBytes: number;
  blocksInFlight: number;
  /** Every entry's time, in milliseconds. */
  mtimeMs: number;
  /** Young-generation bound of the worker's heap. */
  youngGenerationMb: number;
  /** A block of tar, `consumed` the number of walker entries done so far. */
  onBlock(block: Buffer, consumed: number): void;
  onEnd(result: { skipped: string[]; files: number; directories: number; symlinks: number; contentBytes: number }): void;
  onFailure(failure: { verb: string; path: string; message: string; code?: string } | Error): void;
};

export type PackWorker = {
  /** Queues entries, in archive order (see WALK_KIND); `paths` are relative to the root ('' is the root). */
  add(kinds: string, paths: string[]): void;
  /** The walker is done: the worker ends the archive once everything queued is written. */
  end(): void;
  /** The packer may take `count` more blocks. */
  credit(count: number): void;
  /** A block the consumer is done with, to fill again (moved back: no view of it may be used after this). */
  reuse(block: ArrayBuffer): void;
  close(): void;
};

/**
 * Kinds of queued entries: a folder, file or symlink found by the walker; `w` a kept folder the
 * worker walks itself (no ignore rule can tell anything inside apart from it); `s` a special
 * file (socket, fifo, device) left out and listed in the summary.
 */
export const WALK_KIND = { dir: 'd', file: 'f', link: 'l', walk: 'w', skipped: 's' } as const;


type ThreadSources = { threadSource: string; headersSource: string; b4aSource: string };
let threadSources: ThreadSources | undefined;

/** The thread's program, tar-stream's header encoder and its one dependency, as source text (read once). */
function readThreadSources(): ThreadSources {
  threadSources ??= {
    threadSource: readFileSync(new URL('./pack-thread.cjs', import.meta.url), 'utf8'),
    headersSource: readFileSync(new URL('../../node_modules/tar-stream/headers.js', import.meta.url), 'utf8'),
    b4aSource: readFileSync(new URL('../../node_modules/b4a/index.js', import.meta.url), 'utf8'),
  };
  return threadSources;
}

export function startPackWorker(options: PackWorkerOptions): PackWorker {
  const { threadSource, ...libraries } = readThreadSources();
  const worker = new Worker(threadSource, {
    eval: true,
    workerData: { ...libraries, root: options.root, prefix: options.prefix, blockBytes: options.blockBytes, blocksInFlight: options.blocksInFlight, mtimeMs: options.mtimeMs },
    resourceLimits: { maxYoungGenerationSizeMb: options.youngGenerationMb },
  });
  worker.unref();
  let closed = false;
  const fail = (err: Parameters<PackWorkerOptions['onFailure']>[0]) => {
    if (closed) return;
    closed = true;
    options.onFailure(err);
  };
  worker.on('error', fail);
  worker.on('exit', () => fail(new Error('the packing thread stopped')));
  worker.on('message', (msg: { block?: ArrayBuffer; length: number; consumed: number; end?: Parameters<PackWorkerOptions['onEnd']>[0]; failure?: { verb: string; path: string; message: string; code?: string } }) => {
    if (closed) return;
    if (msg.block) options.onBlock(Buffer.from(msg.block, 0, msg.length), msg.consumed);
    else if (msg.end) {
      closed = true;
      options.onEnd(msg.end);
      void worker.terminate();
    } else if (msg.failure) fail(msg.failure);
  });

  return {
    add(kinds, paths) {
      if (!closed) worker.postMessage({ t: 'a', kinds, paths: paths.join('\0') });
    },
    end() {
      if (!closed) worker.postMessage({ t: 'e' });
    },
    credit(count) {
      if (!closed) worker.postMessage({ t: 'c', n: count });
    },
    reuse(block) {
      if (!closed) worker.postMessage({ t: 'b', block }, [block]);
    },
    close() {
      if (closed) return;
      closed = true;
      worker.removeAllListeners('exit');
      worker.postMessage({ t: 'x' });
      // A thread busy walking a large folder reads its messages only between files: terminate
      // it, so a cancelled deploy stops using the disk and the CPU now, not when the walk ends.
      void worker.terminate();
    },
  };
}
