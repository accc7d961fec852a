/**
 * Terminal queries: sequences a program writes to ask its terminal something, which the terminal
 * answers by typing a reply. In a shared terminal exactly one party may answer (the headless
 * screen beside the pty), so every other terminal the output reaches must not see them.
 *
 * Covered: device attributes (`CSI c`, `CSI > c`, `CSI = c`), status and cursor position reports
 * (`CSI n`, `CSI ? n`), mode reports (`CSI $ p`, `CSI ? $ p`), setting reports (`DCS $ q ... ST`)
 * and the colour queries (`OSC 4 ; n ; ?`, `OSC 10/11/12 ; ?`).
 */

const CSI_QUERY = String.raw`\x1b\[(?:[>=]?[\d;]*c|\??[\d;]*n|\??[\d;]*\$p)`;
const DCS_QUERY = String.raw`\x1bP\$q[^\x1b\x07]*(?:\x1b\\|\x07)`;
const OSC_QUERY = String.raw`\x1b\](?:1[0-2]|4);[^\x1b\x07]*\?[^\x1b\x07]*(?:\x1b\\|\x07)`;

/** Finds a whole query anywhere in a latin1 string. */
const QUERY = new RegExp(`${CSI_QUERY}|${DCS_QUERY}|${OSC_QUERY}`);
const QUERIES = new RegExp(QUERY.source, 'g');

/** A string that the next output could still complete into a query. */
const QUERY_START = new RegExp(
  String.raw`^\x1b(?:\[(?:[>=?]?[\d;]*\$?)?|P(?:\$(?:q[^\x1b\x07]*\x1b?)?)?|\](?:1(?:[0-2](?:;[^\x1b\x07]*\x1b?)?)?|4(?:;[^\x1b\x07]*\x1b?)?)?)?$`,
);

/** Longest query start held back at the end of a chunk; anything longer is no query we know. */
const MAX_PENDING_BYTES = 256;

/** Whether `text` (output bytes read as latin1) holds a whole terminal query. */
export function containsTerminalQuery(text: string): boolean {
  return QUERY.test(text);
}

/**
 * A filter for output on its way to a real terminal: drops the queries, so that terminal does
 * not answer them, and passes everything else through byte for byte. A query split across chunks
 * is recognised: the start of one at the end of a chunk is held back until the next shows what
 * it is.
 */
export function createQueryFilter() {
  let pending = '';
  return {
    filter(chunk: Uint8Array): Buffer {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (pending === '' && !bytes.includes(0x1b)) return bytes;
      const held = pending;
      const whole = held + bytes.toString('latin1');
      pending = '';
      let text = whole.replace(QUERIES, '');
      const from = Math.max(0, text.length - MAX_PENDING_BYTES);
      for (let at = text.indexOf('\x1b', from); at !== -1; at = text.indexOf('\x1b', at + 1)) {
        if (!QUERY_START.test(text.slice(at))) continue;
        pending = text.slice(at);
        text = text.slice(0, at);
        break;
      }
      // Colourful output is mostly this case: hand the chunk on as it came, without a copy.
      if (held === '' && pending === '' && text.length === whole.length) return bytes;
      return Buffer.from(text, 'latin1');
    },
    /** What is held back, for the end of the stream. */
    flush(): Buffer {
      const rest = Buffer.from(pending, 'latin1');
      pending = '';
      return rest;
    },
    /** Forgets what is held back (the stream starts over from a snapshot). */
    reset(): void {
      pending = '';
    },
  };
}
