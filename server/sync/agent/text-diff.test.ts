import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { applyTextChange, computeTextEdits, MAX_DIFF_SPAN } from './text-diff.ts';

function applyEdits(text: string, before: string, after: string): string {
  let out = text;
  for (const e of computeTextEdits(before, after)) out = out.slice(0, e.index) + e.insert + out.slice(e.index + e.delete);
  return out;
}

function randomText(seed: number, length: number): string {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
  const alphabet = 'ab c\nde😀é';
  let s = '';
  while (s.length < length) s += [...alphabet][next() % [...alphabet].length];
  return s;
}

function mutate(text: string, seed: number): string {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff);
  const chars = [...text];
  for (let i = 0; i < 5; i++) {
    const at = next() % (chars.length + 1);
    if (next() % 2 === 0) chars.splice(at, next() % 4, ...randomText(next(), next() % 6));
    else chars.splice(at, 0, '😀');
  }
  return chars.join('');
}

describe('text edits', () => {
  it('turn one text into another, whatever the change', () => {
    for (let seed = 1; seed < 200; seed++) {
      const before = randomText(seed, 40);
      const after = mutate(before, seed * 7);
      expect(applyEdits(before, before, after)).toBe(after);
    }
  });

  it('keep unchanged runs and never split a surrogate pair', () => {
    const edits = computeTextEdits('let a = 1;\nlet b = 2;\n', 'let a = 1;\nlet b = 3;\n');
    expect(edits).toEqual([{ index: 19, delete: 1, insert: '3' }]);
    // Two emoji sharing their high surrogate: the edit must cover whole code points.
    const emoji = computeTextEdits('x😀y', 'x😁y');
    expect(emoji).toEqual([{ index: 1, delete: 2, insert: '😁' }]);
    expect(computeTextEdits('same', 'same')).toEqual([]);
  });

  it('replace a huge changed middle wholesale instead of diffing it', () => {
    const before = `head\n${'a'.repeat(MAX_DIFF_SPAN + 1)}\ntail`;
    const after = `head\n${'b'.repeat(MAX_DIFF_SPAN + 1)}\ntail`;
    const started = performance.now();
    const edits = computeTextEdits(before, after);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(edits).toEqual([{ index: 5, delete: MAX_DIFF_SPAN + 1, insert: 'b'.repeat(MAX_DIFF_SPAN + 1) }]);
  });

  it('apply to a Y.Text without losing a concurrent edit elsewhere', () => {
    const server = new Y.Doc();
    const browser = new Y.Doc();
    server.getText('content').insert(0, 'function add(a, b) {\n  return a + b;\n}\n');
    Y.applyUpdate(browser, Y.encodeStateAsUpdate(server));
    // The browser types at the end while a formatter rewrites the first line on disk.
    browser.getText('content').insert(browser.getText('content').length, '// typed\n');
    const text = server.getText('content');
    const changes = applyTextChange(text, text.toString(), 'function add(a: number, b: number) {\n  return a + b;\n}\n');
    expect(changes).toBeGreaterThan(0);
    Y.applyUpdate(browser, Y.encodeStateAsUpdate(server));
    Y.applyUpdate(server, Y.encodeStateAsUpdate(browser));
    const expected = 'function add(a: number, b: number) {\n  return a + b;\n}\n// typed\n';
    expect(server.getText('content').toString()).toBe(expected);
    expect(browser.getText('content').toString()).toBe(expected);
  });
});
