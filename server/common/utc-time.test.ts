import { describe, expect, it } from 'vitest';
import { isoTimestamp } from './utc-time.ts';

describe('isoTimestamp', () => {
  it('reads as toISOString does', () => {
    for (const ms of [0, 1, 999, 1_000, 59_999, 86_399_999, 951_782_400_000, 1_796_000_000_123, Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(1, 0, 1), -1, -62_135_596_800_000]) {
      expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('is now by default', () => {
    const before = Date.now();
    const stamp = Date.parse(isoTimestamp());
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Date.now());
  });

  it('leaves years outside 0–9999 and invalid times to toISOString', () => {
    const far = Date.UTC(10000, 0, 1);
    expect(isoTimestamp(far)).toBe(new Date(far).toISOString());
    expect(() => isoTimestamp(Number.NaN)).toThrow(RangeError);
  });
});
