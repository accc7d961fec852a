import { describe, expect, it } from 'vitest';
import { createAckWindow } from './ack-window.ts';

describe('ack window', () => {
  it('runs each output\'s done once the running total covers it, in order', () => {
    const w = createAckWindow();
    const done: string[] = [];
    w.track(100, () => done.push('a'));
    w.track(50, () => done.push('b'));
    w.track(10, () => done.push('c'));
    expect(w.ack(120).ok).toBe(true);
    expect(done).toEqual(['a']);
    expect(w.ack(160).ok).toBe(true);
    expect(done).toEqual(['a', 'b', 'c']);
  });

  it('refuses a total that is not a byte count, goes back, or exceeds what was sent, and keeps its state', () => {
    const w = createAckWindow();
    const done: string[] = [];
    w.track(100, () => done.push('a'));
    expect(w.ack(60).ok).toBe(true);
    for (const bad of [-1, 1.5, '80', null, Number.MAX_SAFE_INTEGER + 2]) expect(w.ack(bad)).toMatchObject({ ok: false, error: expect.stringContaining('"bytes"') });
    expect(w.ack(50)).toEqual({ ok: false, error: '"bytes" cannot go back (50 after 60)' });
    expect(w.ack(101)).toEqual({ ok: false, error: '"bytes" is more than was sent (101 of 100)' });
    expect(done).toEqual([]);
    expect(w.ack(100).ok).toBe(true);
    expect(done).toEqual(['a']);
  });

  it('keeps at most maxPending outputs waiting, letting the oldest go first', () => {
    const w = createAckWindow({ maxPending: 2 });
    const done: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) w.track(1, () => done.push(name));
    expect(done).toEqual(['a', 'b']);
    expect(w.ack(4).ok).toBe(true);
    expect(done).toEqual(['a', 'b', 'c', 'd']);
  });

  it('lets everything go when the client leaves', () => {
    const w = createAckWindow();
    const done: string[] = [];
    w.track(1, () => done.push('a'));
    w.track(2, () => done.push('b'));
    w.release();
    expect(done).toEqual(['a', 'b']);
  });
});
