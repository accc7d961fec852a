import { describe, expect, it } from 'vitest';
import { containsTerminalQuery, createQueryFilter } from './terminal-queries.ts';

const run = (chunks: string[]) => {
  const f = createQueryFilter();
  return chunks.map((c) => f.filter(Buffer.from(c, 'latin1')).toString('latin1')).join('') + f.flush().toString('latin1');
};

describe('terminal queries', () => {
  it('recognises the queries a terminal would answer, and not ordinary sequences', () => {
    for (const q of ['\x1b[c', '\x1b[0c', '\x1b[>c', '\x1b[=c', '\x1b[5n', '\x1b[6n', '\x1b[?6n', '\x1b[?25$p', '\x1b[4$p', '\x1bP$qm\x1b\\', '\x1b]11;?\x07', '\x1b]10;?\x1b\\', '\x1b]4;1;?\x07', '\x1b]4;1;#ff0000;2;?\x1b\\']) {
      expect(containsTerminalQuery(`ab${q}cd`), JSON.stringify(q)).toBe(true);
    }
    for (const s of ['\x1b[1;31mred', '\x1b[2J\x1b[H', '\x1b[?1049h', '\x1b]0;title\x07', '\x1b]11;#000000\x07', '\x1b]4;1;#ff0000\x07', 'plain c n p', '\x1b[?1;2c']) {
      expect(containsTerminalQuery(s), JSON.stringify(s)).toBe(false);
    }
  });

  it('drops queries from output and keeps every other byte, in order', () => {
    expect(run(['a\x1b[31mb\x1b[6nc\x1b[>cd\x1b]11;?\x07e\x1bP$qm\x1b\\f\x1b[0m'])).toBe('a\x1b[31mbcdef\x1b[0m');
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
    expect(run([binary])).toBe(binary);
  });

  it('recognises a query split across chunks, wherever the split falls', () => {
    const stream = 'before \x1b[1;32mgreen\x1b[0m \x1b]11;?\x1b\\ mid \x1b[?6n after \x1b[K';
    const expected = 'before \x1b[1;32mgreen\x1b[0m  mid  after \x1b[K';
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(run([stream.slice(0, cut), stream.slice(cut)]), `cut at ${cut}`).toBe(expected);
    }
  });

  it('holds back only what may still become a query, and a bounded tail at most', () => {
    const f = createQueryFilter();
    expect(f.filter(Buffer.from('x\x1b[31m\x1b]0;title\x07')).toString('latin1')).toBe('x\x1b[31m\x1b]0;title\x07');
    expect(f.filter(Buffer.from('x\x1b[31')).toString('latin1')).toBe('x');
    expect(f.filter(Buffer.from('mred')).toString('latin1')).toBe('\x1b[31mred');
    expect(f.filter(Buffer.from('y\x1b[')).toString('latin1')).toBe('y');
    expect(f.flush().toString('latin1')).toBe('\x1b[');
    const long = `\x1b]11;${'a'.repeat(1000)}`;
    expect(f.filter(Buffer.from(long, 'latin1')).toString('latin1')).toBe(long);
    f.filter(Buffer.from('\x1b[6'));
    f.reset();
    expect(f.flush().length).toBe(0);
  });
});
