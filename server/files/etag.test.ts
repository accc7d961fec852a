import { describe, expect, it } from 'vitest';
import { etagMatches, formatEtag } from './etag.ts';

describe('ETags', () => {
  const tag = formatEtag('abc123');

  it('quotes the hash', () => expect(tag).toBe('"abc123"'));

  it('matches lists and *, strongly for If-Match and weakly for If-None-Match', () => {
    expect(etagMatches('*', tag, 'strong')).toBe(true);
    expect(etagMatches('"abc123"', tag, 'strong')).toBe(true);
    expect(etagMatches('"x", "abc123"', tag, 'strong')).toBe(true);
    expect(etagMatches('"x,y" ,"abc123"', tag, 'strong')).toBe(true);
    expect(etagMatches('W/"abc123"', tag, 'strong')).toBe(false);
    expect(etagMatches('W/"abc123"', tag, 'weak')).toBe(true);
    expect(etagMatches('"abc"', tag, 'weak')).toBe(false);
  });

  it('matches nothing when the header is garbled', () => {
    for (const header of ['abc123', '"abc123', '"x" junk "abc123"', '']) expect(etagMatches(header, tag, 'strong'), header).toBe(false);
  });
});
