import { describe, expect, it } from 'vitest';
import { describeReadOnly, formatBytes, formatDuration } from './format.ts';

describe('format', () => {
  it('formats sizes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(5 * 1024 * 1024 + 1)).toBe('5.0 MiB');
    expect(formatBytes(300 * 1024)).toBe('300 KiB');
  });
  it('formats durations for humans', () => {
    expect(formatDuration(42)).toBe('42 ms');
    expect(formatDuration(2500)).toBe('2.5 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
  });
  it('explains why a file is read-only', () => {
    expect(describeReadOnly('binary', 2048)).toBe('This is a binary file (2.0 KiB): it is shown read-only.');
    expect(describeReadOnly('too_large', 6 * 1024 * 1024)).toContain('too large');
    expect(describeReadOnly(undefined, undefined)).toBe('This file is read-only.');
  });
});
