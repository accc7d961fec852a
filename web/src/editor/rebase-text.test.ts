import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { applyTextDiff, continuesHistory, mergeTexts } from './rebase-text.ts';

describe('applyTextDiff', () => {
  it('turns the text into the target and keeps concurrent edits elsewhere', () => {
    const a = new Y.Doc();
    a.getText('content').insert(0, 'hello world\nsecond line\n');
    const b = new Y.Doc();
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    applyTextDiff(a.getText('content'), 'hello there world\nsecond line\n');
    b.getText('content').insert(b.getText('content').length, 'third line\n');
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
    expect(a.getText('content').toString()).toBe('hello there world\nsecond line\nthird line\n');
    expect(b.getText('content').toString()).toBe(a.getText('content').toString());
  });

  it('handles characters outside the basic plane', () => {
    const doc = new Y.Doc();
    doc.getText('t').insert(0, 'a😀b');
    applyTextDiff(doc.getText('t'), 'a😀😀b');
    expect(doc.getText('t').toString()).toBe('a😀😀b');
  });
});

describe('mergeTexts', () => {
  it('keeps both sides of non-overlapping edits', () => {
    expect(mergeTexts('one\ntwo\nthree\n', 'one!\ntwo\nthree\n', 'one\ntwo\nthree?\n')).toBe('one!\ntwo\nthree?\n');
  });
  it('returns the changed side when only one side changed', () => {
    expect(mergeTexts('x', 'x', 'y')).toBe('y');
    expect(mergeTexts('x', 'z', 'x')).toBe('z');
  });
});

describe('continuesHistory', () => {
  it('accepts a server that has everything we got from it, plus our offline edits missing', () => {
    expect(continuesHistory(new Map([[10, 5], [99, 7]]), new Map([[10, 6], [99, 3]]), 99)).toBe(true);
  });
  it('rejects a rebuilt document that lacks history we received from it', () => {
    expect(continuesHistory(new Map([[10, 5], [99, 7]]), new Map([[11, 5]]), 99)).toBe(false);
  });
  it('rejects a rebuilt document when all our history is our own', () => {
    expect(continuesHistory(new Map([[99, 7]]), new Map([[11, 5]]), 99)).toBe(false);
  });
  it('accepts anything on a first connection', () => {
    expect(continuesHistory(new Map(), new Map([[11, 5]]), 99)).toBe(true);
  });
});
