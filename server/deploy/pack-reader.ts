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

/*
 * Messages are kept compact because structured cloning of many small objects costs more than
 * the reads: a request is `{id, kinds: "fld...", paths: "a\0b\0..."}`; an answer is
 * `{id, meta: Float64Array [kind, mode, size, offset] per item, extras: [[i, text, code]...], slab}`
 * with kind 1 file, 2 big file, 3 link (target in extras), 4 dir, 5 gone, 6 error (extras).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const SMALL = workerData.smallFileBytes;
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
parentPort.on('message', (batch) => {
  const paths = batch.paths.split('\\0');
  const n = paths.length;
  const meta = new Float64Array(n * 4);
  const extras = [];
  const open = [];
  let total = 0;
  const failed = (i, err) => {
    if (err.code === 'ENOENT' || err.code === 'ELOOP' || err.code === 'ENOTDIR') meta[i * 4] = 5;
    else {
      meta[i * 4] = 6;
      extras.push([i, err.message, err.code || 'EIO']);
    }
  };
  // First open and stat everything, so the slab is allocated once at its exact size.
  for (let i = 0; i < n; i++) {
    const kind = batch.kinds.charCodeAt(i);
    const path = paths[i];
    try {
      if (kind === 100 /* d */) {
        meta[i * 4] = 4;
        meta[i * 4 + 1] = fs.lstatSync(path).mode & 0o7777;
      } else if (kind === 108 /* l */) {
        meta[i * 4] = 3;
        extras.push([i, fs.readlinkSync(path)]);
      } else {
        const fd = fs.openSync(path, FLAGS);
        let st;
        try {
          st = fs.fstatSync(fd);
        } catch (err) {
          fs.closeSync(fd);
          throw err;
        }
        if (!st.isFile()) {
          fs.closeSync(fd);
          meta[i * 4] = 5;
        } else if (st.size > SMALL) {
          fs.closeSync(fd);
          meta[i * 4] = 2;
          meta[i * 4 + 1] = st.mode & 0o7777;
          meta[i * 4 + 2] = st.size;
        } else {
          meta[i * 4] = 1;
          meta[i * 4 + 1] = st.mode & 0o7777;
          meta[i * 4 + 2] = st.size;
          meta[i * 4 + 3] = total;
          open.push(i, fd);
          total += st.size;
        }
      }
    } catch (err) {
      failed(i, err);
    }
  }
  const slab = new Uint8Array(total);
  for (let k = 0; k < open.length; k += 2) {
    const i = open[k];
    const fd = open[k + 1];
    const off = meta[i * 4 + 3];
    const size = meta[i * 4 + 2];
    try {
      let got = 0;
      while (got < size) {
        const r = fs.readSync(fd, slab, off + got, size - got, got);
        if (r === 0) break;
        got += r;
      }
      // Shrunk while packing: keep the size announced by fstat, the rest reads as zeros.
      slab.fill(0, off + got, off + size);
    } catch (err) {
      failed(i, err);
    } finally {
      fs.closeSync(fd);
    }
  }
  parentPort.postMessage({ id: batch.id, meta, extras, slab: slab.buffer }, [meta.buffer, slab.buffer]);
});
`;

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
  worker.on('message', (msg: { id: number; meta: Float64Array; extras: Array<[number, string, string?]>; slab: ArrayBuffer }) => {
    const resolvers = pending.get(msg.id);
    if (!resolvers) return;
    pending.delete(msg.id);
    const extras = new Map(msg.extras.map(([i, text, code]) => [i, { text, code }]));
    const { meta } = msg;
    for (let i = 0; i < resolvers.length; i++) {
      const kind = meta[i * 4];
      const mode = meta[i * 4 + 1];
      const size = meta[i * 4 + 2];
      const resolve = resolvers[i];
      if (kind === 1) resolve({ kind: 'file', mode, size, data: Buffer.from(msg.slab, meta[i * 4 + 3], size) });
      else if (kind === 2) resolve({ kind: 'big', mode, size });
      else if (kind === 3) resolve({ kind: 'link', target: extras.get(i)?.text ?? '' });
      else if (kind === 4) resolve({ kind: 'dir', mode });
      else if (kind === 5) resolve({ kind: 'gone' });
      else resolve({ kind: 'error', code: extras.get(i)?.code ?? 'EIO', message: extras.get(i)?.text ?? 'read failed' });
    }
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
      worker.postMessage({ id, kinds: items.map((item) => item.kind[0]).join(''), paths: items.map((item) => item.path).join('\0') });
      return promises;
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
