import serializeModule from '@xterm/addon-serialize';
import headlessModule from '@xterm/headless';
import { describe, expect, it } from 'vitest';
import { createScreen } from './screen.ts';
import { findCompactableRun } from './scroll-compaction.ts';

const { Terminal } = headlessModule;
const { SerializeAddon } = serializeModule;

/** The reference: a plain headless terminal that parses every byte. */
function parseAll(chunks: Buffer[], cols: number, rows: number, scrollback: number): Promise<string> {
  const term = new Terminal({ cols, rows, scrollback, allowProposedApi: true });
  const serializer = new SerializeAddon();
  term.loadAddon(serializer as never);
  for (const chunk of chunks) term.write(chunk);
  return new Promise((resolve) => term.write('', () => resolve(serializer.serialize({ scrollback }))));
}

/** A small deterministic PRNG so a failing stream can be reproduced. */
function random(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

function makeStream(seed: number, lines: number): Buffer[] {
  const rand = random(seed);
  const colours = ['\x1b[31m', '\x1b[1;32m', '\x1b[0m', '\x1b[m', '\x1b[38;5;208m', '\x1b[48:2::10:20:30m', '\x1b[K', '\x1b[7m'];
  const words = ['alpha', 'beta', 'γάμμα', '日本語', 'tab\there', 'back\bspace', 'bell\x07', 'x'.repeat(150)];
  let text = '';
  for (let i = 0; i < lines; i++) {
    const r = rand();
    // Now and then something compaction must not cross: the alternate screen, a scroll
    // region, cursor movement.
    if (r < 0.0004) text += '\x1b[?1049h\x1b[2J\x1b[5;10Hfull screen\x1b[?1049l';
    else if (r < 0.0008) text += '\x1b[3;20r\x1b[10;1Hregion\x1b[r';
    else if (r < 0.0012) text += '\x1b[2A\x1b[4Cmoved';
    for (let w = 0; w < 1 + Math.floor(rand() * 6); w++) {
      if (rand() < 0.3) text += colours[Math.floor(rand() * colours.length)];
      text += words[Math.floor(rand() * words.length)] + ' ';
    }
    text += rand() < 0.97 ? '\r\n' : '\n';
  }
  const bytes = Buffer.from(text);
  // Split at arbitrary points, including inside escape sequences and UTF-8 characters.
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(rand() * 9000);
    chunks.push(bytes.subarray(i, i + n));
    i += n;
  }
  return chunks;
}

async function parseCompacting(chunks: Buffer[], cols: number, rows: number, scrollback: number): Promise<{ data: string; compactedBytes: number }> {
  const screen = createScreen({ cols, rows, scrollback, feedBytes: 4096, compactAtBytes: 16 * 1024 });
  for (const chunk of chunks) screen.write(Buffer.from(chunk));
  const state = await screen.snapshot();
  const compactedBytes = screen.compactedBytes;
  screen.dispose();
  return { data: state.data, compactedBytes };
}

describe('headless screen with scroll compaction', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`renders exactly what parsing every byte renders (stream ${seed})`, async () => {
      const chunks = makeStream(seed, 6000);
      const expected = await parseAll(chunks, 80, 24, 100);
      const { data, compactedBytes } = await parseCompacting(chunks, 80, 24, 100);
      expect(data).toBe(expected);
      // The stream must really have exercised compaction, or this test proves nothing.
      expect(compactedBytes).toBeGreaterThan(10_000);
    });
  }

  it('keeps colours and the cursor when base64-like output is compacted', async () => {
    const line = 'QUFB'.repeat(25);
    const chunks = [Buffer.from('\x1b[1;33m'), Buffer.from(`${line}\r\n`.repeat(20000)), Buffer.from('tail\x1b[0m end')];
    const expected = await parseAll(chunks, 100, 30, 200);
    const { data, compactedBytes } = await parseCompacting(chunks, 100, 30, 200);
    expect(data).toBe(expected);
    expect(compactedBytes).toBeGreaterThan(1_000_000);
  });

  it('takes output at any byte alignment, as pty reads gathered into frames arrive', async () => {
    // Output is a view 5 bytes into its frame; short chunks at odd offsets once crashed the
    // word-at-a-time scan (a typed-array view must start on a word boundary, even an empty one).
    const chunks = makeStream(7, 3000).flatMap((chunk, i) => (i % 3 === 0 ? [chunk.subarray(0, 2), chunk.subarray(2)] : [chunk]));
    const expected = await parseAll(chunks, 80, 24, 100);
    const screen = createScreen({ cols: 80, rows: 24, scrollback: 100, feedBytes: 4096, compactAtBytes: 16 * 1024 });
    for (const chunk of chunks) {
      const frame = Buffer.alloc(chunk.length + 5);
      chunk.copy(frame, 5);
      screen.write(frame.subarray(5));
    }
    const state = await screen.snapshot();
    screen.dispose();
    expect(state.data).toBe(expected);
    expect(screen.compactedBytes).toBeGreaterThan(10_000);
    const odd = Buffer.from('.ab\r\n');
    expect(findCompactableRun([odd.subarray(1, 3), odd.subarray(3)], 130, 24)).toEqual({ blockedAt: undefined });
  });

  it('compacts a long plain run into far fewer bytes, and refuses past a cursor-moving sequence', () => {
    const run = Buffer.from('\x1b[32mline\r\n'.repeat(5000) + '\x1b[H' + 'x\r\n'.repeat(10));
    const found = findCompactableRun([run], 130, 24);
    // 5000 lines before the cursor move; 130 of them must stay after the compacted prefix.
    expect('end' in found && found.end).toBe((5000 - 130) * '\x1b[32mline\r\n'.length);
    expect('end' in found && found.replacement).toBe('\x1b[32m\x1b[24;1H');
    const blocked = findCompactableRun([Buffer.from('\x1b[H' + 'a\r\n'.repeat(1000))], 130, 24);
    expect(blocked).toEqual({ blockedAt: 0 });
    // A UTF-8 encoded C1 control (U+009B is CSI) is not plain text.
    const c1 = findCompactableRun([Buffer.from('a\r\n'.repeat(400) + '\u009b2J')], 130, 24);
    expect('end' in c1).toBe(true);
    expect(findCompactableRun([Buffer.from('\u009b2J' + 'a\r\n'.repeat(400))], 130, 24)).toEqual({ blockedAt: 0 });
    // ... also when its two bytes arrive in different chunks; © (0xC2 0xA9) is plain text.
    const csi = Buffer.from('\u009b');
    const split = findCompactableRun([Buffer.from(`${'\u00a9\r\n'.repeat(100)}x`), csi.subarray(0, 1), Buffer.concat([csi.subarray(1), Buffer.from('a\r\n'.repeat(400))])], 130, 24);
    expect(split).toEqual({ blockedAt: 401 });
  });
});

describe('answers to terminal queries', () => {
  /** Writes `chunks` and collects the replies that arrive within `ms`. */
  async function collectReplies(chunks: string[], ms = 60): Promise<string[]> {
    const replies: string[] = [];
    const screen = createScreen({ cols: 40, rows: 10, scrollback: 100, idleMs: 1000, onReply: (data) => replies.push(data) });
    for (const chunk of chunks) screen.write(Buffer.from(chunk));
    await new Promise((resolve) => setTimeout(resolve, ms));
    screen.dispose();
    return replies;
  }

  it('reports device attributes and the cursor position where the output left it, at once', async () => {
    // idleMs is 1 s: an answer within 60 ms means the query was parsed without waiting for quiet.
    const replies = await collectReplies(['hello\r\nworld', '\x1b[c', '\x1b[>c', '\x1b[6n']);
    expect(replies).toEqual(['\x1b[?1;2c', '\x1b[>0;276;0c', '\x1b[2;6R']);
  });

  it("reports the web theme's colours", async () => {
    const replies = await collectReplies(['\x1b]11;?\x07', '\x1b]10;?\x1b\\', '\x1b]12;?\x07']);
    expect(replies).toEqual(['\x1b]11;rgb:1e1e/1e1e/1e1e\x1b\\', '\x1b]10;rgb:d4d4/d4d4/d4d4\x1b\\', '\x1b]12;rgb:d4d4/d4d4/d4d4\x1b\\']);
  });

  it('reports palette colours as xterm.js does, and the ones the program changed or restored', async () => {
    const replies = await collectReplies([
      '\x1b]4;1;?\x07', // ANSI red
      '\x1b]4;196;?;244;?\x07', // from the colour cube and the grey ramp
      '\x1b]4;1;#123456\x07\x1b]11;rgb:00/80/ff\x07',
      '\x1b]4;1;?\x07\x1b]11;?\x07',
      '\x1b]104;1\x07\x1b]111\x07',
      '\x1b]4;1;?\x07\x1b]11;?\x07',
    ]);
    expect(replies).toEqual([
      '\x1b]4;1;rgb:cccc/0000/0000\x1b\\',
      '\x1b]4;196;rgb:ffff/0000/0000\x1b\\',
      '\x1b]4;244;rgb:8080/8080/8080\x1b\\',
      '\x1b]4;1;rgb:1212/3434/5656\x1b\\',
      '\x1b]11;rgb:0000/8080/ffff\x1b\\',
      '\x1b]4;1;rgb:cccc/0000/0000\x1b\\',
      '\x1b]11;rgb:1e1e/1e1e/1e1e\x1b\\',
    ]);
  });

  it('answers a query split across two writes once output goes quiet', async () => {
    const replies: string[] = [];
    const screen = createScreen({ cols: 40, rows: 10, scrollback: 100, idleMs: 20, onReply: (data) => replies.push(data) });
    screen.write(Buffer.from('x\x1b['));
    screen.write(Buffer.from('5n'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(replies).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(replies).toEqual(['\x1b[0n']);
    screen.dispose();
  });

  it('answers nothing when plain output arrives', async () => {
    const replies = await collectReplies(['\x1b[1;31mred\x1b[0m\r\n', 'n c p\r\n'], 60);
    expect(replies).toEqual([]);
  });
});

describe('window title', () => {
  it('puts the last title a program set into the snapshot', async () => {
    const screen = createScreen({ cols: 40, rows: 10, scrollback: 100 });
    screen.write(Buffer.from('\x1b]0;first\x07text\r\n\x1b]2;vim notes.txt\x1b\\more'));
    const { data } = await screen.snapshot();
    expect(data.endsWith('\x1b]2;vim notes.txt\x07')).toBe(true);
    // Replaying the snapshot into a terminal gives it that title.
    const replay = new Terminal({ cols: 40, rows: 10, allowProposedApi: true });
    let seen = '';
    replay.onTitleChange((t) => (seen = t));
    await new Promise<void>((resolve) => replay.write(data, resolve));
    expect(seen).toBe('vim notes.txt');
    screen.dispose();
  });

  it('adds nothing while no title was set', async () => {
    const screen = createScreen({ cols: 40, rows: 10, scrollback: 100 });
    screen.write(Buffer.from('plain'));
    expect((await screen.snapshot()).data).not.toContain('\x1b]');
    screen.dispose();
  });
});
