import { describe, expect, it } from 'vitest';
import { restartDelay } from './process-driver.ts';

describe('agent restart delay', () => {
  it('starts at the base delay and doubles for each quick failure in a row, up to 60× the base', () => {
    expect([0, 1, 2, 3, 4].map((n) => restartDelay(500, n))).toEqual([500, 500, 1000, 2000, 4000]);
    expect(restartDelay(500, 7)).toBe(30_000);
    expect(restartDelay(500, 50)).toBe(30_000);
  });
});
