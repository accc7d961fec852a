import { describe, expect, it } from 'vitest';
import { createLoginLimiter } from './login-limiter.ts';

describe('login limiter', () => {
  it('throttles an address after the limit until its window ends, and keeps a bounded number of addresses', () => {
    let t = 0;
    const limiter = createLoginLimiter({ limit: 3, windowMs: 60_000, maxTracked: 2, now: () => t });
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfterSeconds('a')).toBeUndefined();
      limiter.recordFailure('a');
    }
    expect(limiter.retryAfterSeconds('a')).toBe(60);
    expect(limiter.retryAfterSeconds('b')).toBeUndefined();
    t = 30_000;
    expect(limiter.retryAfterSeconds('a')).toBe(30);
    t = 60_000;
    expect(limiter.retryAfterSeconds('a')).toBeUndefined();
    // More addresses than it tracks: the oldest are forgotten, memory stays bounded.
    for (const address of ['x', 'y', 'z']) for (let i = 0; i < 3; i++) limiter.recordFailure(address);
    expect(limiter.retryAfterSeconds('z')).toBeGreaterThan(0);
    expect(limiter.retryAfterSeconds('x')).toBeUndefined();
  });
});
