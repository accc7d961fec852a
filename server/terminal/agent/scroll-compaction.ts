/**
 * Scroll compaction: the reason a headless screen can keep up with `cat hugefile`.
 *
 * Take terminal output that starts where the parser rests (between sequences, full-screen
 * scroll region) and split it as A + B. Suppose A is made only of text, CR/LF, tabs, backspaces
 * and SGR/EL sequences, holds at least `rows` line feeds and ends in CR LF, and B starts with at
 * least K more line feeds of the same plain kind, K exceeding the terminal's line capacity
 * (rows + scrollback). Then:
 *  - after A the cursor is on the bottom row, in column 0, with no wrap pending, and the SGR
 *    attributes are whatever A's SGR sequences left;
 *  - whatever the buffer holds when B starts, B's K line feeds at the bottom row scroll all of it
 *    out of the screen and the scrollback, and nothing B does in between can read it.
 * So A can be replaced by its SGR sequences and a cursor move to the bottom-left corner: the
 * final screen is identical, byte for byte (a unit test checks this against parsing every byte).
 */

export type Compaction = {
  /** A ends here (exclusive): `run.subarray(end)` is kept as it is. */
  end: number;
  /** What replaces `run.subarray(0, end)`; ASCII. */
  replacement: string;
};

export type CompactionRefusal = {
  /** Where the first byte that compaction cannot vouch for sits, if it found one. */
  blockedAt: number | undefined;
};

const LF = 0x0a;
const CR = 0x0d;

const ESC = 0x1b;

/**
 * Bytes compaction cannot vouch for: C0 controls other than BEL, BS, TAB, LF, CR and ESC, and
 * U+0080..U+009F encoded in UTF-8 (0xC2 0x80..0x9F), which xterm.js treats as C1 controls
 * (U+009B is CSI). `next` is the byte after, if known.
 */
function isNotPlain(byte: number, next: number | undefined): boolean {
  if (byte < 0x20) return !(byte === LF || byte === CR || byte === ESC || (byte >= 0x07 && byte <= 0x09));
  return byte === 0xc2 && next !== undefined && next >= 0x80 && next <= 0x9f;
}

/** Index of the first byte in `chunk[from..to)` that is not plain, or -1; `following` is the byte after the chunk. */
function scanBytes(chunk: Buffer, from: number, to: number, following: number | undefined): number {
  for (let i = from; i < to; i++) if (isNotPlain(chunk[i], i + 1 < chunk.length ? chunk[i + 1] : following)) return i;
  return -1;
}

/**
 * Index of the first byte that is not plain, or -1. Four bytes at a time: a word is looked at
 * byte by byte only if it may hold a control byte or 0xC2 (about once a line for text). That
 * look is a separate function: inlined in this loop it runs too rarely for V8 to have type
 * feedback when the loop is optimised, and the optimised loop then deoptimised on every line
 * (hundreds of times per 68 MB, the rest of each call running in the interpreter).
 */
function findFirstNotPlain(chunk: Buffer, following: number | undefined): number {
  const length = chunk.length;
  const head = Math.min(length, (4 - (chunk.byteOffset & 3)) & 3);
  const inHead = scanBytes(chunk, 0, head, following);
  if (inHead !== -1) return inHead;
  const words = (length - head) >> 2;
  // A typed-array view must start on a word boundary even when it is empty: a chunk shorter than
  // its misalignment (a short view into a larger buffer) has no words to look at.
  const view = words > 0 ? new Uint32Array(chunk.buffer, chunk.byteOffset + head, words) : new Uint32Array(0);
  for (let w = 0; w < words; w++) {
    const x = view[w];
    const c2 = x ^ 0xc2c2c2c2;
    if (((x - 0x20202020) & ~x & 0x80808080) === 0 && ((c2 - 0x01010101) & ~c2 & 0x80808080) === 0) continue;
    const at = head + w * 4;
    const found = scanBytes(chunk, at, at + 4, following);
    if (found !== -1) return found;
  }
  return scanBytes(chunk, head + words * 4, length, following);
}

/** Length of an SGR (`ESC [ ... m`) or EL (`ESC [ n K`) sequence at `at`, or 0 for anything else. */
function measurePlainSequence(chunk: Buffer, at: number): { length: number; sgr: boolean } {
  if (chunk[at + 1] !== 0x5b) return { length: 0, sgr: false };
  for (let i = at + 2; i < chunk.length && i - at < 64; i++) {
    const b = chunk[i];
    if (b >= 0x30 && b <= 0x3b) continue;
    if (b === 0x6d) return { length: i - at + 1, sgr: true };
    // EL takes at most one parameter, 0 to 2.
    if (b === 0x4b && (i === at + 2 || (i === at + 3 && chunk[at + 2] >= 0x30 && chunk[at + 2] <= 0x32))) return { length: i - at + 1, sgr: false };
    return { length: 0, sgr: false };
  }
  return { length: 0, sgr: false };
}

/** Whether an SGR sequence starts by resetting every attribute (`ESC[m`, `ESC[0;31m`...). */
function isFullReset(sequence: string): boolean {
  const first = sequence.slice(2, -1).split(/[;:]/)[0];
  return first === '' || /^0+$/.test(first);
}

/**
 * Finds the longest prefix of the queued chunks that can be replaced, with `lines` line feeds
 * standing for "more than the terminal can hold" and `rows` the screen's height. Offsets count across the chunks, which are
 * scanned one by one (no concatenation: this runs on every byte of a busy terminal).
 */
export function findCompactableRun(chunks: Buffer[], lines: number, rows: number): Compaction | CompactionRefusal {
  // Only the last `lines` line feeds, and the one before them, matter (plus a little room to step
  // back over a bare LF): keep those in a ring instead of every position.
  const ringSize = lines + 64;
  const ring = new Float64Array(ringSize);
  let count = 0;
  const sgr: Array<{ at: number; text: string }> = [];
  let base = 0;
  let previous = -1;
  let blockedAt: number | undefined;
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c];
    let limit = chunk.length;
    // A UTF-8 encoded C1 control split across two chunks.
    if (previous === 0xc2 && chunk[0] >= 0x80 && chunk[0] <= 0x9f) limit = 0;
    const notPlain = findFirstNotPlain(chunk, chunks[c + 1]?.[0]);
    if (notPlain !== -1 && notPlain < limit) limit = notPlain;
    for (let at = chunk.indexOf(ESC); at !== -1 && at < limit; at = chunk.indexOf(ESC, at + 1)) {
      const seq = measurePlainSequence(chunk, at);
      // A sequence cut off by the end of the chunk counts as blocking too: that is only caution.
      if (seq.length === 0) {
        limit = at;
        break;
      }
      if (seq.sgr) sgr.push({ at: base + at, text: chunk.toString('latin1', at, at + seq.length) });
    }
    for (let at = chunk.indexOf(LF); at !== -1 && at < limit; at = chunk.indexOf(LF, at + 1)) {
      // Only a line feed right after a carriage return may end the prefix: mark the others.
      const before = at > 0 ? chunk[at - 1] : previous;
      ring[count++ % ringSize] = before === CR ? base + at : -(base + at) - 1;
    }
    if (limit < chunk.length) {
      blockedAt = base + limit;
      break;
    }
    base += chunk.length;
    previous = chunk[chunk.length - 1] ?? previous;
  }
  // The last line feed that may end A: at least `lines` plain line feeds must follow it.
  let last = count - 1 - lines;
  const oldest = Math.max(0, count - ringSize);
  while (last >= oldest && ring[last % ringSize] < 0) last--;
  if (last < oldest || last + 1 < rows) return { blockedAt };
  const end = ring[last % ringSize] + 1;
  // Every SGR parameter assigns an attribute, so the last sequence assigning it wins: keep only
  // what follows the last full reset, and of repeated sequences only the last occurrence.
  const replay = new Map<string, true>();
  for (const s of sgr) {
    if (s.at >= end) break;
    if (isFullReset(s.text)) replay.clear();
    replay.delete(s.text);
    replay.set(s.text, true);
  }
  return { end, replacement: `${[...replay.keys()].join('')}\x1b[${rows};1H` };
}
