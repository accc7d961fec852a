/**
 * Scroll compaction: the reason a headless screen can keep up with `cat hugefile`.
 *
 * Take terminal output that starts where the parser rests (between sequences, full-screen
 * scroll region) and a prefix A of it made only of text, CR/LF, tabs, backspaces and SGR/EL
 * sequences, ending in CR LF and holding at least K line feeds, where K exceeds the terminal's
 * line capacity (rows + scrollback). If at least K more line feeds of the same plain kind follow
 * A, then everything A wrote has scrolled out of the screen and the scrollback by the time they
 * are parsed. The only state A leaves behind that outlives them is the cursor (bottom row,
 * column 0) and the SGR attributes, so A can be replaced by its SGR sequences followed by
 * CR and K line feeds: the final screen is identical, byte for byte.
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

/**
 * Bytes compaction cannot vouch for: C0 controls other than BEL, BS, TAB, LF, CR and ESC, and
 * U+0080..U+009F encoded in UTF-8, which xterm.js treats as C1 controls (U+009B is CSI).
 * Searched in the latin1 view of the bytes, where one character is one byte.
 */
const NOT_PLAIN = /[\x00-\x06\x0b\x0c\x0e-\x1a\x1c-\x1f]|\xc2[\x80-\x9f]/;
/** The only escape sequences allowed: SGR (`ESC [ ... m`) and EL (`ESC [ n K`). */
const PLAIN_SEQUENCE = /\x1b\[(?:([0-9;:]{0,60})m|[0-2]?K)/y;

/** Whether an SGR sequence starts by resetting every attribute (`ESC[m`, `ESC[0;31m`...). */
function resetsAll(sequence: string): boolean {
  const first = sequence.slice(2, -1).split(/[;:]/)[0];
  return first === '' || /^0+$/.test(first);
}

/**
 * Finds the longest prefix of `run` that can be replaced, with `lines` line feeds standing for
 * "more than the terminal can hold". Scans until the first byte it cannot vouch for.
 */
export function findCompactableRun(run: Buffer, lines: number): Compaction | CompactionRefusal {
  const text = run.toString('latin1');
  let limit = text.length;
  let blockedAt: number | undefined;
  const notPlain = NOT_PLAIN.exec(text);
  if (notPlain) limit = blockedAt = notPlain.index;
  const sgr: Array<{ at: number; text: string }> = [];
  for (let at = text.indexOf('\x1b'); at !== -1 && at < limit; at = text.indexOf('\x1b', at + 1)) {
    PLAIN_SEQUENCE.lastIndex = at;
    const match = PLAIN_SEQUENCE.exec(text);
    if (!match) {
      limit = blockedAt = at;
      break;
    }
    if (match[1] !== undefined) sgr.push({ at, text: match[0] });
  }
  const feeds: number[] = [];
  for (let at = run.indexOf(LF); at !== -1 && at < limit; at = run.indexOf(LF, at + 1)) feeds.push(at);
  // The last line feed that may end A: at least `lines` plain line feeds must follow it.
  let last = feeds.length - 1 - lines;
  while (last >= 0 && run[feeds[last] - 1] !== CR) last--;
  if (last + 1 < lines) return { blockedAt };
  const end = feeds[last] + 1;
  // Every SGR parameter assigns an attribute, so the last sequence assigning it wins: keep only
  // what follows the last full reset, and of repeated sequences only the last occurrence.
  const replay = new Map<string, true>();
  for (const s of sgr) {
    if (s.at >= end) break;
    if (resetsAll(s.text)) replay.clear();
    replay.delete(s.text);
    replay.set(s.text, true);
  }
  return { end, replacement: `${[...replay.keys()].join('')}\r${'\n'.repeat(lines)}` };
}
