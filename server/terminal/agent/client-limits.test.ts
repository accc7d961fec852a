import { describe, expect, it } from 'vitest';
import { createClientLimits } from './client-limits.ts';

const link = (id: string) => ({ kind: 'share', id }) as const;
const admin = { kind: 'admin' } as const;

describe('attached client limits', () => {
  it('refuses a link past its own limit, and admits it again once one of its clients left', () => {
    const limits = createClientLimits({ perLink: 2, perTerminal: 10, perAdmin: 10 });
    const first = limits.admit('t1', link('a'));
    expect(limits.admit('t1', link('a')).ok).toBe(true);
    expect(limits.admit('t1', link('a'))).toEqual({ ok: false, error: 'this share link already has 2 clients attached; close one of them first' });
    // Another link to the same terminal is not affected.
    expect(limits.admit('t1', link('b')).ok).toBe(true);
    if (!first.ok) throw new Error('first was refused');
    first.value();
    first.value(); // releasing twice counts once
    expect(limits.admit('t1', link('a')).ok).toBe(true);
    expect(limits.admit('t1', link('a')).ok).toBe(false);
  });

  it('caps share-link clients per terminal, counting the admin, but never locks the admin out by it', () => {
    const limits = createClientLimits({ perLink: 10, perTerminal: 3, perAdmin: 5 });
    expect(limits.admit('t1', admin).ok).toBe(true);
    expect(limits.admit('t1', link('a')).ok).toBe(true);
    expect(limits.admit('t1', link('b')).ok).toBe(true);
    expect(limits.admit('t1', link('c'))).toEqual({ ok: false, error: 'this terminal already has 3 clients attached; try again later' });
    expect(limits.admit('t2', link('c')).ok).toBe(true);
    // The owner still gets in, up to the admin's own limit across the workspace.
    for (let i = 0; i < 3; i++) expect(limits.admit('t1', admin).ok).toBe(true);
    expect(limits.admit('t2', admin).ok).toBe(true);
    expect(limits.admit('t2', admin)).toEqual({ ok: false, error: '5 terminal clients are already attached to this workspace as the admin; close some first' });
    expect(limits.countOf('t1')).toBe(6);
  });
});
