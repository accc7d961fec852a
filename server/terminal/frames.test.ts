import { describe, expect, it } from 'vitest';
import { createFrameDecoder, encodeFrame } from '../common/index.ts';
import { createTypedFrameDecoder, dataFrameOf, encodeDataFrame, encodeJsonFrame, encodeOutputFrame } from './frames.ts';

function collect(maxFrameBytes = 1 << 20) {
  const seen: string[] = [];
  const decoder = createTypedFrameDecoder(maxFrameBytes, {
    onData: (data) => seen.push(`data:${data.toString('latin1')}`),
    onJson: (message) => seen.push(`json:${JSON.stringify(message)}`),
    onError: (message) => seen.push(`error:${message}`),
  });
  return { seen, decoder };
}

describe('terminal frames', () => {
  const stream = Buffer.concat([
    encodeDataFrame(Buffer.from('hello')),
    encodeJsonFrame({ type: 'resize', cols: 80, rows: 24 }),
    encodeDataFrame(Buffer.alloc(0)),
    encodeDataFrame(Buffer.from('x'.repeat(300))),
  ]);
  const expected = ['data:hello', 'json:{"type":"resize","cols":80,"rows":24}', 'data:', `data:${'x'.repeat(300)}`];

  it('decodes the same frames however the stream is cut', () => {
    for (let cut = 1; cut <= stream.length; cut += 1) {
      const { seen, decoder } = collect();
      for (let i = 0; i < stream.length; i += cut) decoder.push(stream.subarray(i, i + cut));
      expect(seen).toEqual(expected);
    }
  });

  it('reads what server/common encodes, and writes what it decodes', () => {
    const { seen, decoder } = collect();
    decoder.push(encodeFrame(Buffer.concat([Buffer.from([0]), Buffer.from('via common')])));
    expect(seen).toEqual(['data:via common']);
    const frames: string[] = [];
    const common = createFrameDecoder(1024, { onFrame: (f) => frames.push(f.subarray(1).toString()), onError: () => frames.push('error') });
    common.push(stream);
    expect(frames).toEqual(['hello', '{"type":"resize","cols":80,"rows":24}', '', 'x'.repeat(300)]);
  });

  it('gathers pty reads into one data frame and sends that very frame, not a copy', () => {
    const reads = [Buffer.from('first read, '), Buffer.alloc(0), Buffer.from('second\r\n'), Buffer.from('x'.repeat(5000))];
    const payload = encodeOutputFrame(reads, 12 + 8 + 5000);
    expect(payload.toString('latin1')).toBe(Buffer.concat(reads).toString('latin1'));
    const frame = dataFrameOf(payload);
    expect(frame.buffer).toBe(payload.buffer);
    expect(frame).toEqual(encodeDataFrame(Buffer.concat(reads)));
    const { seen, decoder } = collect();
    decoder.push(frame);
    expect(seen).toEqual([`data:${Buffer.concat(reads).toString('latin1')}`]);
    // Bytes that were not gathered here are framed as before.
    expect(dataFrameOf(Buffer.from('other'))).toEqual(encodeDataFrame(Buffer.from('other')));
    expect(() => encodeOutputFrame(reads, 10)).toThrow(/not 10/);
  });

  it('reports bad frames and carries on, but stops for good at an oversized one', () => {
    const { seen, decoder } = collect(64);
    decoder.push(encodeFrame(Buffer.from([7, 1, 2])));
    decoder.push(encodeFrame(Buffer.from([1, ...Buffer.from('{not json')])));
    decoder.push(encodeFrame(Buffer.from([1, ...Buffer.from('[1,2]')])));
    decoder.push(encodeFrame(Buffer.alloc(0)));
    decoder.push(encodeDataFrame(Buffer.from('still fine')));
    decoder.push(encodeDataFrame(Buffer.alloc(100)));
    decoder.push(encodeDataFrame(Buffer.from('ignored')));
    expect(seen).toEqual([
      'error:unknown frame type 7',
      'error:frame is not JSON',
      'error:frame is not a JSON object',
      'error:empty frame',
      'data:still fine',
      'error:frame of 101 bytes exceeds the limit of 64 bytes',
    ]);
  });
});
