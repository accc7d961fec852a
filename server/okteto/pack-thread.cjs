// The packing thread of pack-worker.ts. Plain CommonJS, loaded as source text and run as an
// `eval` worker, so it needs no loader (a worker does not inherit tsx) and is inlined into the
// bundled CLI (scripts/build-cli.mjs inlines `readFileSync(new URL(...))` reads).
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS worker has no `import` */
/*
 * In: `{t: 'a', kinds: "fldw...", paths: "a\0b\0..."}`, `{t: 'c', n}` (credits), `{t: 'b', block}`
 * (a block to reuse), `{t: 'e'}` (walk done), `{t: 'x'}` (stop). Out: `{block, length, consumed}`,
 * then `{end: summary}`, or `{failure: {verb, path, message, code}}`.
 */
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');

function load(source, modules) {
  const module = { exports: {} };
  new Function('module', 'exports', 'require', source)(module, module.exports, (id) => modules[id] || require(id));
  return module.exports;
}
const headers = load(workerData.headersSource, { b4a: load(workerData.b4aSource, {}) });

const ROOT = workerData.root;
const PREFIX = workerData.prefix;
const BLOCK = workerData.blockBytes;
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
const ZEROS = Buffer.alloc(1024);
const MAX_SPARE = 8;
let credits = workerData.blocksInFlight;
// Blocks the consumer gave back, to fill again: reused memory instead of a fresh block each time.
const spare = [];
let block = Buffer.allocUnsafeSlow(BLOCK);
let used = 0;
const batches = [];
let consumed = 0;
let ended = false;
let stopped = false;
const result = { skipped: [], files: 0, directories: 0, symlinks: 0, contentBytes: 0 };
// The file whose content is being read: {fd, size, got}.
let big = null;
// Folders being walked, innermost last: {abs, rel, entries, next}.
let walk = null;

function flush() {
  if (used === 0) return;
  if (used < BLOCK / 4) {
    // Mostly empty (the walker is behind): a copy of what is there goes out, and the block stays
    // here for what comes next, rather than a whole block per few entries.
    const copy = block.buffer.slice(0, used);
    parentPort.postMessage({ block: copy, length: used, consumed }, [copy]);
  } else {
    parentPort.postMessage({ block: block.buffer, length: used, consumed }, [block.buffer]);
    block = spare.pop() || Buffer.allocUnsafeSlow(BLOCK);
  }
  used = 0;
  credits--;
}

/** Copies bytes into the output; a header may end a block and go on in the next. */
function put(bytes) {
  let from = 0;
  while (from < bytes.length) {
    const n = Math.min(bytes.length - from, BLOCK - used);
    bytes.copy(block, used, from, from + n);
    used += n;
    from += n;
    if (used === BLOCK) flush();
  }
}

function pad(size) {
  if (size & 511) put(ZEROS.subarray(0, 512 - (size & 511)));
}

// One header object, filled again for each entry: tar-stream's encoder reads only these fields.
const header = { name: '', mode: 0, uid: 0, gid: 0, size: 0, mtime: new Date(workerData.mtimeMs), type: 'file', linkname: null };

/** The header as tar-stream's pack writes it, with a PAX record first when the name or link does not fit ustar. */
function putHeader(type, name, mode, size, linkname) {
  header.name = name;
  header.type = type;
  header.mode = mode || (type === 'directory' ? 0o755 : 0o644);
  header.size = size;
  header.linkname = linkname;
  const encoded = headers.encode(header);
  if (encoded) return put(encoded);
  const pax = headers.encodePax({ name, linkname });
  const paxHeader = { name: 'PaxHeader', mode: header.mode, uid: 0, gid: 0, size: pax.byteLength, mtime: header.mtime, type: 'pax-header', linkname: linkname && 'PaxHeader' };
  put(headers.encode(paxHeader));
  put(pax);
  pad(pax.byteLength);
  paxHeader.size = size;
  paxHeader.type = type;
  put(headers.encode(paxHeader));
}

function fail(verb, path, err) {
  stopped = true;
  if (big) closeBig();
  parentPort.postMessage({ failure: { verb, path: path || '.', message: err.message, code: err.code } });
}

/** Vanished (or replaced) since it was listed: left out, as if it had not been there. */
function isGone(err) {
  return err.code === 'ENOENT' || err.code === 'ELOOP' || err.code === 'ENOTDIR';
}

function closeBig() {
  try {
    fs.closeSync(big.fd);
  } catch {}
  big = null;
}

/** Reads the current file into what is left of the block. */
function readPiece() {
  const want = Math.min(big.size - big.got, BLOCK - used);
  let got = 0;
  try {
    while (got < want) {
      const n = fs.readSync(big.fd, block, used + got, want - got, big.got + got);
      if (n === 0) break;
      got += n;
    }
  } catch (err) {
    return fail('read', big.rel, err);
  }
  // Shrunk while packing: keep the size announced in the header, the rest reads as zeros.
  if (got < want) block.fill(0, used + got, used + want);
  used += want;
  big.got += want;
  if (big.got === big.size) {
    const size = big.size;
    closeBig();
    pad(size);
  }
  if (used === BLOCK) flush();
}

function addFile(abs, rel) {
  let fd;
  try {
    fd = fs.openSync(abs, FLAGS);
  } catch (err) {
    return isGone(err) ? undefined : fail('read', rel, err);
  }
  let st;
  try {
    st = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    return fail('read', rel, err);
  }
  if (!st.isFile()) return fs.closeSync(fd);
  result.files++;
  result.contentBytes += st.size;
  putHeader('file', PREFIX + rel, st.mode & 0o7777, st.size, null);
  big = { fd, size: st.size, got: 0, rel };
  if (st.size === 0) closeBig();
}

function addDir(abs, rel) {
  let mode;
  try {
    mode = fs.lstatSync(abs).mode & 0o7777;
  } catch (err) {
    return isGone(err) ? false : (fail('read', rel, err), false);
  }
  putHeader('directory', rel ? PREFIX + rel + '/' : PREFIX, mode, 0, null);
  result.directories++;
  return true;
}

function addLink(abs, rel) {
  let target;
  try {
    target = fs.readlinkSync(abs);
  } catch (err) {
    return isGone(err) || err.code === 'EINVAL' ? undefined : fail('read', rel, err);
  }
  putHeader('symlink', PREFIX + rel, 0o777, 0, target);
  result.symlinks++;
}

function addSkipped(rel) {
  if (result.skipped.length < 20) result.skipped.push(rel);
}

const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Lists a folder for the walk; false when it cannot be listed (reported, or vanished). */
function enter(abs, rel) {
  let entries;
  try {
    entries = fs.readdirSync(abs, { withFileTypes: true });
  } catch (err) {
    if (!isGone(err)) fail('list', rel, err);
    return false;
  }
  entries.sort(byName);
  walk.push({ abs, rel, entries, next: 0 });
  return true;
}

/** One entry of the folders being walked: everything inside is kept, in the walker's order. */
function walkStep() {
  const top = walk[walk.length - 1];
  if (top.next === top.entries.length) {
    walk.pop();
    if (walk.length === 0) {
      walk = null;
      consumed++;
    }
    return;
  }
  const entry = top.entries[top.next];
  top.entries[top.next++] = null;
  const abs = top.abs + '/' + entry.name;
  const rel = top.rel + '/' + entry.name;
  if (entry.isDirectory()) {
    if (addDir(abs, rel)) enter(abs, rel);
  } else if (entry.isFile()) addFile(abs, rel);
  else if (entry.isSymbolicLink()) addLink(abs, rel);
  else addSkipped(rel);
}

function nextEntry() {
  const batch = batches[0];
  const kind = batch.kinds[batch.next];
  const rel = batch.paths[batch.next];
  if (++batch.next === batch.paths.length) batches.shift();
  const abs = rel ? ROOT + '/' + rel : ROOT;
  if (kind === 'w') {
    walk = [];
    if (!enter(abs, rel) || walk.length === 0) {
      walk = null;
      consumed++;
    }
    return;
  }
  if (kind === 'd') addDir(abs, rel);
  else if (kind === 'f') addFile(abs, rel);
  else if (kind === 'l') addLink(abs, rel);
  else addSkipped(rel);
  consumed++;
}

function pump() {
  while (credits > 0 && !stopped) {
    if (big) readPiece();
    else if (walk) walkStep();
    else if (batches.length > 0) nextEntry();
    else break;
  }
  if (stopped || credits <= 0 || big || walk || batches.length > 0) return;
  if (ended) {
    // tar-stream's finalize: two zero records end the archive.
    put(ZEROS);
    flush();
    stopped = true;
    parentPort.postMessage({ end: result });
    return;
  }
  // Out of work for now: what is written goes out, so the consumer never waits on a half block.
  flush();
}

parentPort.on('message', (msg) => {
  if (msg.t === 'a') batches.push({ kinds: msg.kinds, paths: msg.paths.split('\0'), next: 0 });
  else if (msg.t === 'c') credits += msg.n;
  else if (msg.t === 'b') {
    if (spare.length < MAX_SPARE && msg.block.byteLength === BLOCK) spare.push(Buffer.from(msg.block));
    return;
  } else if (msg.t === 'e') ended = true;
  else if (msg.t === 'x') {
    stopped = true;
    if (big) closeBig();
    parentPort.close();
    return;
  }
  pump();
});
