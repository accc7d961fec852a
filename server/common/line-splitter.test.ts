import { describe, expect, it } from 'vitest';
import { createLineSplitter } from './line-splitter.ts';

describe('line splitter', () => {
  it('gives whole lines as they complete, keeps a split character whole, and the rest at the end', () => {
    const out: string[] = [];
    const split = createLineSplitter((text) => out.push(text));
    const euro = Buffer.from('€');
    split.push(Buffer.from('one\ntw'));
    split.push(Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]));
    split.push(Buffer.concat([euro.subarray(1), Buffer.from('\nthree')]));
    expect(out).toEqual(['one\n', 'two €\n']);
    split.end();
    expect(out).toEqual(['one\n', 'two €\n', 'three']);
  });

  it('gives nothing at the end when the last line was complete', () => {
    const out: string[] = [];
    const split = createLineSplitter((text) => out.push(text));
    split.push(Buffer.from('a\nb\n'));
    split.end();
    expect(out).toEqual(['a\nb\n']);
  });
});
