import { describe, expect, it } from 'vitest';
import { baseName, checkEntryName, encodePathForUrl, isSameOrUnder, joinPath, parentOf } from './paths.ts';

describe('paths', () => {
  it('joins and splits workspace paths', () => {
    expect(joinPath('', 'a.txt')).toBe('a.txt');
    expect(joinPath('src', 'a.txt')).toBe('src/a.txt');
    expect(parentOf('src/lib/a.ts')).toBe('src/lib');
    expect(parentOf('a.ts')).toBe('');
    expect(baseName('src/lib/a.ts')).toBe('a.ts');
  });
  it('knows what lies under a folder', () => {
    expect(isSameOrUnder('src/a.ts', 'src')).toBe(true);
    expect(isSameOrUnder('src', 'src')).toBe(true);
    expect(isSameOrUnder('srcx/a.ts', 'src')).toBe(false);
  });
  it('refuses names that escape the folder', () => {
    expect(checkEntryName('../etc/passwd')).toBeDefined();
    expect(checkEntryName('/abs')).toBeDefined();
    expect(checkEntryName('a//b')).toBeDefined();
    expect(checkEntryName('src/new.ts')).toBeUndefined();
  });
  it('escapes each path segment for URLs', () => {
    expect(encodePathForUrl('dir/what?#%.txt')).toBe('dir/what%3F%23%25.txt');
  });
});
