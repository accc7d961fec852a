import { Worker } from 'node:worker_threads';

/**
 * Reads the context's files for the packer on a worker thread. The walker (main thread) sends
 * the entries it keeps, in archive order; the worker stats and reads them with plain
 * synchronous calls, straight into fixed-size slabs, and hands each full slab over (transferred,
 * not copied) with one record per entry. Per-file async fs calls would cost the main thread a
 * threadpool hop, a promise and a callback each; here the main thread only sees one message per
 * slab, and it stays free for the tar encoding (and, in the agent, for terminals).
 *
 * Memory is bounded by credits: the worker fills at most `slabsInFlight` slabs before the packer
 * says it has handed one over to the tar encoder. A file larger than what is left of a slab
 * continues in the next ones, so a huge file needs no more memory than a small one.
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no loader or bundler
 * support (the CLI ships as one bundled file) and imports nothing but `node:` modules.
 */
/**
 * What the worker found, one record per entry (or per further piece of a file that spans
 * slabs), in archive order. Kept as flat arrays rather than an object per record: a slab holds
 * hundreds of records and the main thread is the busier one.
 */
export const RECORD = { file: 1, piece: 2, link: 3, dir: 4, gone: 5, error: 6, skipped: 7, walked: 8 } as const;
/** Added to a record's kind when the worker found the entry itself (walking a folder), so its name comes with the slab. */
export const NAMED = 16;
/** Numbers per record in `meta`: kind, mode, size (of the whole file), offset and length in the slab. */
export const RECORD_FIELDS = 5;

export type ReadSlab = {
  slab: Buffer;
  meta: Float64Array;
  /** Names of the NAMED records, in order. */
  names: string[];
  /** Record index → symlink target, or error text and code. */
  extras: Map<number, { text: string; code?: string }>;
};

export type PackReaderOptions = {
  slabBytes: number;
  slabsInFlight: number;
  onSlab(slab: ReadSlab): void;
  onFailure(err: Error): void;
};

export type PackReader = {
  /**
   * Queues entries, in archive order: kinds `d`, `f`, `l` (folder, file, symlink) read one entry
   * each; `w` reads everything inside a folder (walking it in the worker), ended by a `walked`
   * record. `names` holds the archive name of each `w` folder.
   */
  read(items: { kinds: string; paths: string[]; names: string[] }): void;
  /**
   * The packer is done with one slab: the worker may fill another, and it reuses this one's
   * memory (which is moved back to it: no view of it may be used after this).
   */
  release(slab: ArrayBuffer): void;
  close(): Promise<void>;
};

/*
 * Messages are kept compact because structured cloning of many small objects costs more than
 * the reads. In: `{t: 'r', kinds: "fldw...", paths: "a\0b\0...", names: "w1\0w2..."}` or
 * `{t: 'c', slab?}` (one credit, and the slab to reuse). Out: `{meta: Float64Array, names: "n1\0n2...", extras: [[i, text,
 * code]...], slab}`; see RECORD for the kinds.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const SLAB = workerData.slabBytes;
const MAX_RECORDS = 4096;
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
const NAMED = ${NAMED};
let credits = workerData.slabsInFlight;
const batches = [];
// Slabs the packer is done with, to fill again: reused memory stays young for the GC to find
// cheaply, where a fresh megabyte per slab would pile up until a full collection.
const free = [];
let slab = Buffer.allocUnsafeSlow(SLAB);
let used = 0;
let meta = new Float64Array(MAX_RECORDS * 5);
let records = 0;
let extras = [];
let names = [];
// The file whose bytes continue in the next slab: {fd, size, got}.
let big = null;
// Folders being walked, innermost last: {abs, name, entries, next}.
let walk = null;
// The name the next record gets (an entry found while walking), or null.
let naming = null;

function record(kind, mode, size, offset, length) {
  const at = records * 5;
  if (naming !== null) {
    kind += NAMED;
    names.push(naming);
    naming = null;
  }
  meta[at] = kind;
  meta[at + 1] = mode;
  meta[at + 2] = size;
  meta[at + 3] = offset;
  meta[at + 4] = length;
  return records++;
}

function fail(err) {
  extras.push([record(${RECORD.error}, 0, 0, 0, 0), err.message, err.code || 'EIO']);
}

function failed(err) {
  if (err.code === 'ENOENT' || err.code === 'ELOOP' || err.code === 'ENOTDIR') record(${RECORD.gone}, 0, 0, 0, 0);
  else fail(err);
}

function flush() {
  // A slab sent mostly empty (the walker is slower than the reads) is copied down to its
  // content, and the big one is kept for the next records.
  const out = used < SLAB / 4 ? new Uint8Array(slab.buffer.slice(0, used)) : slab;
  const m = meta.slice(0, records * 5);
  parentPort.postMessage({ meta: m, names: names.join('\\0'), extras, slab: out.buffer }, [m.buffer, out.buffer]);
  if (out === slab) slab = free.pop() || Buffer.allocUnsafeSlow(SLAB);
  used = 0;
  records = 0;
  extras = [];
  names = [];
  credits--;
}

/** Reads the current big file into what is left of the slab. */
function readPiece(isFirst, mode) {
  const want = Math.min(big.size - big.got, SLAB - used);
  let got = 0;
  try {
    while (got < want) {
      const n = fs.readSync(big.fd, slab, used + got, want - got, big.got + got);
      if (n === 0) break;
      got += n;
    }
  } catch (err) {
    fs.closeSync(big.fd);
    big = null;
    return isFirst ? failed(err) : fail(err);
  }
  // Shrunk while packing: keep the size announced by fstat, the rest reads as zeros.
  if (got < want) slab.fill(0, used + got, used + want);
  record(isFirst ? ${RECORD.file} : ${RECORD.piece}, mode, big.size, used, want);
  used += want;
  big.got += want;
  if (big.got === big.size) {
    fs.closeSync(big.fd);
    big = null;
  }
}

function readFile(path) {
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
    record(${RECORD.gone}, 0, 0, 0, 0);
    return;
  }
  big = { fd, size: st.size, got: 0 };
  readPiece(true, st.mode & 0o7777);
}

function readEntry(kind, path) {
  try {
    if (kind === 100 /* d */) record(${RECORD.dir}, fs.lstatSync(path).mode & 0o7777, 0, 0, 0);
    else if (kind === 108 /* l */) extras.push([record(${RECORD.link}, 0, 0, 0, 0), fs.readlinkSync(path)]);
    else readFile(path);
  } catch (err) {
    failed(err);
  }
}

const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Lists a folder for the walk; false when it cannot be listed (reported, or vanished). */
function enter(abs, name) {
  let entries;
  try {
    entries = fs.readdirSync(abs, { withFileTypes: true });
  } catch (err) {
    if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') {
      const i = record(${RECORD.error}, 1, 0, 0, 0);
      extras.push([i, err.message, err.code || 'EIO']);
      names.push(name);
      meta[i * 5] += NAMED;
    }
    return false;
  }
  entries.sort(byName);
  walk.push({ abs, name, entries, next: 0 });
  return true;
}

/** One entry of the folders being walked: everything inside is kept, in the walker's order. */
function walkStep() {
  const top = walk[walk.length - 1];
  if (top.next === top.entries.length) {
    walk.pop();
    if (walk.length === 0) {
      walk = null;
      record(${RECORD.walked}, 0, 0, 0, 0);
    }
    return;
  }
  const entry = top.entries[top.next++];
  const abs = top.abs + '/' + entry.name;
  naming = top.name + '/' + entry.name;
  if (entry.isDirectory()) {
    let mode;
    try {
      mode = fs.lstatSync(abs).mode & 0o7777;
    } catch (err) {
      return failed(err);
    }
    const name = naming;
    record(${RECORD.dir}, mode, 0, 0, 0);
    enter(abs, name);
  } else if (entry.isFile()) readEntry(102, abs);
  else if (entry.isSymbolicLink()) readEntry(108, abs);
  else record(${RECORD.skipped}, 0, 0, 0, 0);
}

function pump() {
  while (credits > 0) {
    if (used === SLAB || records >= MAX_RECORDS - 1) {
      flush();
      continue;
    }
    if (big) {
      readPiece(false, 0);
      continue;
    }
    if (walk) {
      walkStep();
      continue;
    }
    const batch = batches[0];
    if (!batch) break;
    const kind = batch.kinds.charCodeAt(batch.next);
    const path = batch.paths[batch.next];
    if (++batch.next === batch.paths.length) batches.shift();
    if (kind === 119 /* w */) {
      walk = [];
      if (!enter(path, batch.names[batch.nextName++])) walk = null;
      if (!walk || walk.length === 0) {
        walk = null;
        record(${RECORD.walked}, 0, 0, 0, 0);
      }
    } else readEntry(kind, path);
  }
  // Out of work for now: what is read goes out, so the packer never waits on a half slab.
  if (credits > 0 && records > 0) flush();
}

parentPort.on('message', (msg) => {
  if (msg.t === 'c') {
    credits++;
    if (msg.slab && msg.slab.byteLength === SLAB) free.push(Buffer.from(msg.slab));
  }
  else batches.push({ kinds: msg.kinds, paths: msg.paths.split('\\0'), names: msg.names.split('\\0'), next: 0, nextName: 0 });
  pump();
});
`;

export function startPackReader(options: PackReaderOptions): PackReader {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { slabBytes: options.slabBytes, slabsInFlight: options.slabsInFlight } });
  worker.unref();
  let closed = false;
  const fail = (err: Error) => {
    if (closed) return;
    closed = true;
    options.onFailure(err);
  };
  worker.on('error', fail);
  worker.on('exit', () => fail(new Error('file reader stopped')));
  worker.on('message', (msg: { meta: Float64Array; names: string; extras: Array<[number, string, string?]>; slab: ArrayBuffer }) => {
    if (closed) return;
    options.onSlab({
      slab: Buffer.from(msg.slab),
      meta: msg.meta,
      names: msg.names ? msg.names.split('\0') : [],
      extras: new Map(msg.extras.map(([i, text, code]) => [i, { text, code }])),
    });
  });

  return {
    read(items) {
      if (!closed) worker.postMessage({ t: 'r', kinds: items.kinds, paths: items.paths.join('\0'), names: items.names.join('\0') });
    },
    release(slab) {
      if (closed) return;
      if (slab.byteLength === options.slabBytes) worker.postMessage({ t: 'c', slab }, [slab]);
      else worker.postMessage({ t: 'c' });
    },
    async close() {
      closed = true;
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
