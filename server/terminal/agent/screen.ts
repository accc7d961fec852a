import serializeModule from '@xterm/addon-serialize';
import headlessModule from '@xterm/headless';
import { containsTerminalQuery } from '../../common/index.ts';
import { createColorReporter, type ColorEvent } from './screen-colors.ts';
import { findCompactableRun } from './scroll-compaction.ts';

// Both packages are CommonJS in Node: their classes hang off the default export.
const { Terminal } = headlessModule;
const { SerializeAddon } = serializeModule;

export type ScreenState = { data: string; cols: number; rows: number };

export type Screen = {
  /** Feeds output bytes; they are parsed asynchronously, in order. */
  write(data: Buffer): void;
  /** Resizes at this point of the stream (after everything written so far has been parsed). */
  resize(cols: number, rows: number): void;
  /** The screen as an escape-sequence string, once everything written so far is parsed. */
  snapshot(): Promise<ScreenState>;
  /** Bytes written but not parsed yet: the caller pauses its source when this grows. */
  readonly backlog: number;
  /** Bytes replaced by scroll compaction so far (diagnostics). */
  readonly compactedBytes: number;
  dispose(): void;
};

export type ScreenOptions = {
  cols: number;
  rows: number;
  scrollback: number;
  /** Called whenever parsing made progress (the backlog shrank). */
  onParsed?: () => void;
  /** Bytes the parser is handed at a time; the rest waits in our own queue. */
  feedBytes?: number;
  /** Queued bytes at which a run of plain scrolling text is compacted. */
  compactAtBytes?: number;
  /** Output quiet for this long is parsed (busy output waits to be compacted). */
  idleMs?: number;
  /**
   * Receives the screen's answers to the program's terminal queries (device attributes, cursor
   * position, mode and colour reports), to be typed into the pty. The screen is the one terminal
   * that answers, as tmux is for its windows: each attached view answering would give the program
   * one answer per editor, and the extra ones would arrive as keystrokes.
   */
  onReply?: (data: string) => void;
};

/**
 * Queries usually arrive whole, in a short write of their own. A chunk holding one is parsed at
 * once instead of when output goes quiet, so the answer comes back within a millisecond or so; a
 * query split across reads is answered at the next quiet moment.
 */
const QUERY_SCAN_BYTES = 4096;

/** Snapshots travel as one websocket message: keep them well under the message limit. */
const MAX_SNAPSHOT_CHARS = 4 * 1024 * 1024;

/** `force`: parse this now; otherwise it may wait in the queue to be compacted with what follows. */
type Entry = { data: Buffer; force: boolean } | { mark: () => void };

/** The xterm.js internals compaction relies on; if a release renames them, compaction turns off. */
type CoreInternals = {
  _inputHandler?: {
    _parser?: { currentState?: number };
    _utf8Decoder?: { interim?: Uint8Array };
    onColor?: (listener: (events: ColorEvent[]) => void) => unknown;
  };
  buffer?: { scrollTop?: number; scrollBottom?: number; lines?: { maxLength?: number } };
  coreService?: { isCursorHidden?: boolean };
};

/**
 * A headless terminal kept beside a pty and fed every output byte, so a late or returning client
 * gets the current screen (alternate screen, colours, cursor, modes) instead of a raw replay.
 *
 * xterm.js parses plain text slower than a pty can produce it. When the parser falls behind, a
 * run of plain text that scrolls far enough is replaced by an equivalent short sequence (see
 * scroll-compaction.ts): the screen ends up exactly as if every byte had been parsed.
 */
export function createScreen(options: ScreenOptions): Screen {
  const term = new Terminal({ cols: options.cols, rows: options.rows, scrollback: options.scrollback, allowProposedApi: true });
  const serializer = new SerializeAddon();
  term.loadAddon(serializer as never);
  const core = (term as unknown as { _core?: CoreInternals })._core ?? {};
  const feedBytes = options.feedBytes ?? 128 * 1024;
  const compactAtBytes = options.compactAtBytes ?? 512 * 1024;
  const { onReply } = options;
  if (onReply) {
    term.onData(onReply);
    // xterm.js answers colour queries only where it has a theme to read, which headless has not.
    const colors = createColorReporter();
    core._inputHandler?.onColor?.((events) => {
      for (const reply of colors.handle(events)) onReply(reply);
    });
  }

  const idleMs = options.idleMs ?? 25;

  const queue: Entry[] = [];
  let queuedBytes = 0;
  /** Bytes handed to xterm and not parsed yet. */
  let inParser = 0;
  let draining = false;
  let disposed = false;
  let compactedBytes = 0;
  let marksQueued = 0;
  let lastWriteAt = 0;
  let idleTimer: NodeJS.Timeout | undefined;

  // The addon leaves out the window title; a client joining late should still see it (tab names).
  let title = '';
  term.onTitleChange((next) => (title = next));

  function render(): ScreenState {
    let data = serializer.serialize({ scrollback: options.scrollback });
    // Wide, colourful scrollback can make a huge snapshot: then the visible screen has to do.
    if (data.length > MAX_SNAPSHOT_CHARS) data = serializer.serialize({ scrollback: 0 });
    // The addon leaves out cursor visibility; full-screen programs hide the cursor.
    if (core.coreService?.isCursorHidden) data += '\x1b[?25l';
    // Control characters would end the sequence early: a title cannot hold them anyway.
    if (title) data += `\x1b]2;${title.replace(/[\x00-\x1f\x7f-\x9f]/g, '')}\x07`;
    return { data, cols: term.cols, rows: term.rows };
  }

  /** Whether the parser sits between sequences with a full-screen scroll region. */
  function checkParserAtRest(): { lines: number } | undefined {
    const parser = core._inputHandler?._parser;
    const interim = core._inputHandler?._utf8Decoder?.interim;
    const buffer = core.buffer;
    if (parser?.currentState !== 0 || !interim || interim[0] !== 0) return undefined;
    if (buffer?.scrollTop !== 0 || buffer.scrollBottom !== term.rows - 1 || !buffer.lines?.maxLength) return undefined;
    return { lines: buffer.lines.maxLength };
  }

  function forceAll(): void {
    for (const entry of queue) if ('data' in entry) entry.force = true;
  }

  /** Forces the data entries that hold the first `bytes` queued bytes. */
  function forcePrefix(bytes: number): void {
    let covered = 0;
    for (const entry of queue) {
      if (covered >= bytes) break;
      if (!('data' in entry)) continue;
      entry.force = true;
      covered += entry.data.length;
    }
  }

  /**
   * Replaces a long plain-text prefix of the queued data with its short equivalent, or, when
   * that is not possible, marks what must be parsed the slow way.
   */
  function compact(): void {
    let runEnd = 0;
    while (runEnd < queue.length && 'data' in queue[runEnd]) runEnd++;
    if (runEnd === 0) return;
    const atRest = checkParserAtRest();
    if (!atRest) {
      // Mid-sequence or inside a scroll region: parse a little and look again.
      forcePrefix(1);
      return;
    }
    const chunks = (queue.slice(0, runEnd) as Array<{ data: Buffer }>).map((e) => e.data);
    const found = findCompactableRun(chunks, atRest.lines + 1, term.rows);
    if (!('end' in found)) {
      if (found.blockedAt !== undefined) forcePrefix(found.blockedAt + 1);
      else forceAll();
      return;
    }
    // Drop the chunks A covers; the rest of the run stays queued as the start of the next one.
    let dropped = 0;
    let consumed = 0;
    while (consumed + chunks[dropped].length <= found.end) consumed += chunks[dropped++].length;
    const kept = found.end > consumed ? [{ data: chunks[dropped].subarray(found.end - consumed), force: false }] : [];
    const replacement = Buffer.from(found.replacement, 'latin1');
    queue.splice(0, dropped + kept.length, { data: replacement, force: true }, ...kept);
    queuedBytes += replacement.length - found.end;
    compactedBytes += found.end - replacement.length;
  }

  /** Whether the head of the queue is to be parsed now. */
  function isHeadDue(): boolean {
    const head = queue[0];
    if (!head) return false;
    return 'mark' in head || head.force || marksQueued > 0;
  }

  function pump(): void {
    if (disposed) return;
    const head = queue[0];
    if (queuedBytes >= compactAtBytes && head && 'data' in head && !head.force) {
      // Compaction needs to know the parser's state: let it finish what it holds first.
      if (inParser > 0) {
        draining = true;
        return;
      }
      draining = false;
      compact();
    }
    while (inParser < feedBytes && isHeadDue()) {
      const entry = queue.shift() as Entry;
      if ('mark' in entry) {
        marksQueued--;
        term.write('', entry.mark);
        continue;
      }
      const length = entry.data.length;
      queuedBytes -= length;
      inParser += length;
      term.write(entry.data, () => {
        inParser -= length;
        options.onParsed?.();
        if (!draining || inParser === 0) pump();
      });
    }
    if (queue.length > 0 && !idleTimer) armIdleTimer(idleMs);
  }

  /** Output that stops is parsed once it has been quiet for a moment, so the queue empties. */
  function armIdleTimer(ms: number): void {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (disposed || queue.length === 0) return;
      const quiet = performance.now() - lastWriteAt;
      if (quiet < idleMs) return armIdleTimer(idleMs - quiet);
      forceAll();
      pump();
    }, ms);
  }

  function push(entry: Entry, bytes: number): void {
    if (disposed) return;
    queue.push(entry);
    queuedBytes += bytes;
    if ('mark' in entry) marksQueued++;
    if (!draining) pump();
  }

  return {
    write(data) {
      lastWriteAt = performance.now();
      const asks = onReply !== undefined && data.length <= QUERY_SCAN_BYTES && data.includes(0x1b) && containsTerminalQuery(data.toString('latin1'));
      if (asks) forceAll();
      push({ data, force: asks }, data.length);
    },
    resize(cols, rows) {
      push({ mark: () => term.resize(cols, rows) }, 0);
    },
    snapshot() {
      return new Promise((resolve, reject) => {
        if (disposed) return reject(new Error('terminal is gone'));
        push(
          {
            mark: () => {
              try {
                resolve(render());
              } catch (err) {
                reject(err as Error);
              }
            },
          },
          0,
        );
      });
    },
    get backlog() {
      return queuedBytes + inParser;
    },
    get compactedBytes() {
      return compactedBytes;
    },
    dispose() {
      disposed = true;
      clearTimeout(idleTimer);
      queue.length = 0;
      term.dispose();
    },
  };
}
