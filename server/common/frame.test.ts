import { describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame } from './frame.ts';

describe('frames', () => {
  it('reassembles frames split across and merged within chunks', () => {
    const frames: string[] = [];
    const decoder = createFrameDecoder(1024, {
      onFrame: (f) => frames.push(f.toString()),
      onError: () => frames.push('ERROR'),
    });
    const bytes = Buffer.concat([encodeFrame(Buffer.from('hello')), encodeFrame(Buffer.from('')), encodeFrame(Buffer.from('world'))]);
    for (let i = 0; i < bytes.length; i += 3) decoder.push(bytes.subarray(i, i + 3));
    expect(frames).toEqual(['hello', '', 'world']);
  });

  it('refuses an oversized frame once and ignores what follows', () => {
    const errors: string[] = [];
    const frames: Buffer[] = [];
    const decoder = createFrameDecoder(8, { onFrame: (f) => frames.push(f), onError: (e) => errors.push(e.code) });
    decoder.push(encodeFrame(Buffer.alloc(9)));
    decoder.push(encodeFrame(Buffer.from('ok')));
    expect(errors).toEqual(['frame_too_large']);
    expect(frames).toHaveLength(0);
  });
});
