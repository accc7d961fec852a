import { Worker } from 'node:worker_threads';

/**
 * Reads files for the packer on a worker thread: batches of paths go in, file contents come
 * back packed into transferable slabs. Per-file async fs calls cost more event-loop time than
 * the syscalls themselves; plain synchronous reads on a separate thread run alongside the tar
 * encoding on the main thread and keep the main event loop free (the agent keeps serving
 * terminals while it packs).
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no loader or bundler
 * support and imports nothing but `node:` modules.
 */
export type ReadKind = 'file' | 'link' | 'dir';

export type ReadResult =
  | { kind: 'file'; mode: number; size: number; data: Buffer }
  /** Larger than the small-file limit: the caller streams it itself. */
  | { kind: 'big'; mode: number; size: number }
  | { kind: 'link'; target: string }
  | { kind: 'dir'; mode: number }
  | { kind: 'gone' }
  | { kind: 'error'; code: string; message: string };

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const SMALL = workerData.smallFileBytes;
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
function failure(err) {
  if (err.code === 'ENOENT' || err.code === 'ELOOP' || err.code === 'ENOTDIR') return { k: 'gone' };
  return { k: 'error', code: err.code || 'EIO', message: err.message };
}
parentPort.on('message', (batch) => {
  // First open and stat everything, so the slab is allocated once at its exact size.
  const results = [];
  const open = [];
  let total = 0;
  for (let i = 0; i < batch.items.length; i++) {
    const item = batch.items[i];
    let r;
    try {
      if (item.k === 'dir') r = { k: 'dir', mode: fs.lstatSync(item.p).mode & 0o7777 };
      else if (item.k === 'link') r = { k: 'link', target: fs.readlinkSync(item.p) };
      else {
        const fd = fs.openSync(item.p, FLAGS);
        let st;
        try {
          st = fs.fstatSync(fd);
        } catch (err) {
          fs.closeSync(fd);
          throw err;
        }
        const mode = st.mode & 0o7777;
        if (!st.isFile() || st.size > SMALL) {
          fs.closeSync(fd);
          r = st.isFile() ? { k: 'big', mode, size: st.size } : { k: 'gone' };
        } else {
          r = { k: 'file', mode, size: st.size, off: total };
          open.push([fd, r]);
          total += st.size;
        }
      }
    } catch (err) {
      r = failure(err);
    }
    r.i = i;
    results.push(r);
  }
  const slab = new Uint8Array(total);
  for (const [fd, r] of open) {
    try {
      let got = 0;
      while (got < r.size) {
        const n = fs.readSync(fd, slab, r.off + got, r.size - got, got);
        if (n === 0) break;
        got += n;
      }
      // Shrunk while packing: keep the size announced by fstat, the rest reads as zeros.
      slab.fill(0, r.off + got, r.off + r.size);
    } catch (err) {
      Object.assign(r, failure(err), { i: r.i });
    } finally {
      fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ id: batch.id, results, slab: slab.buffer, last: true }, [slab.buffer]);
});
`;

type RawResult = { i: number; k: string; mode?: number; size?: number; off?: number; target?: string; code?: string; message?: string };

export type PackReader = {
  read(items: Array<{ kind: ReadKind; path: string }>): Array<Promise<ReadResult>>;
  close(): Promise<void>;
};

export function startPackReader(options: { smallFileBytes: number }): PackReader {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { smallFileBytes: options.smallFileBytes } });
  worker.unref();
  const pending = new Map<number, Array<(r: ReadResult) => void>>();
  let nextId = 1;
  let broken: Error | undefined;

  const failAll = (err: Error) => {
    broken ??= err;
    for (const resolvers of pending.values()) for (const resolve of resolvers) resolve({ kind: 'error', code: 'EWORKER', message: err.message });
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', () => failAll(new Error('file reader stopped')));
  worker.on('message', (msg: { id: number; results: RawResult[]; slab: ArrayBuffer; last: boolean }) => {
    const resolvers = pending.get(msg.id);
    if (!resolvers) return;
    for (const r of msg.results) {
      const resolve = resolvers[r.i];
      if (r.k === 'file') resolve({ kind: 'file', mode: r.mode as number, size: r.size as number, data: Buffer.from(msg.slab, r.off, r.size) });
      else if (r.k === 'big') resolve({ kind: 'big', mode: r.mode as number, size: r.size as number });
      else if (r.k === 'link') resolve({ kind: 'link', target: r.target as string });
      else if (r.k === 'dir') resolve({ kind: 'dir', mode: r.mode as number });
      else if (r.k === 'gone') resolve({ kind: 'gone' });
      else resolve({ kind: 'error', code: r.code ?? 'EIO', message: r.message ?? 'read failed' });
    }
    if (msg.last) pending.delete(msg.id);
  });

  return {
    read(items) {
      const promises = items.map(() => undefined as unknown as Promise<ReadResult>);
      const resolvers: Array<(r: ReadResult) => void> = [];
      for (let i = 0; i < items.length; i++) promises[i] = new Promise<ReadResult>((resolve) => (resolvers[i] = resolve));
      if (broken) {
        for (const resolve of resolvers) resolve({ kind: 'error', code: 'EWORKER', message: broken.message });
        return promises;
      }
      const id = nextId++;
      pending.set(id, resolvers);
      worker.postMessage({ id, items: items.map((item) => ({ k: item.kind, p: item.path })) });
      return promises;
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
