/**
 * Failed logins per client address in a fixed window; past the limit the address gets 429 until
 * its window ends. Written by hand (a map and a counter) because hono has no rate limiter and the
 * one thing needed, counting failures only, is what general limiters make awkward.
 *
 * Kept in memory per replica, deliberately: behind N replicas an attacker gets N × limit guesses
 * per window, which against a 192-bit token changes nothing, while a shared counter would need a
 * write to shared storage on every failed request. What it stops is a cheap flood of guesses (and
 * log noise) from one address.
 */
export function createLoginLimiter(options: { limit: number; windowMs: number; maxTracked?: number; now?: () => number }) {
  const now = options.now ?? Date.now;
  const maxTracked = options.maxTracked ?? 10_000;
  const failures = new Map<string, { count: number; resetAt: number }>();

  function current(address: string) {
    const entry = failures.get(address);
    if (entry && entry.resetAt <= now()) {
      failures.delete(address);
      return undefined;
    }
    return entry;
  }

  return {
    /** `undefined` when the address may try; otherwise the seconds until it may. */
    retryAfterSeconds(address: string): number | undefined {
      const entry = current(address);
      if (!entry || entry.count < options.limit) return undefined;
      return Math.max(1, Math.ceil((entry.resetAt - now()) / 1000));
    },
    recordFailure(address: string): void {
      const entry = current(address);
      if (entry) {
        entry.count++;
        return;
      }
      // Bounded memory: expired entries go first, then the oldest ones.
      if (failures.size >= maxTracked) {
        for (const [key, value] of failures) if (value.resetAt <= now()) failures.delete(key);
        for (const key of failures.keys()) {
          if (failures.size < maxTracked) break;
          failures.delete(key);
        }
      }
      failures.set(address, { count: 1, resetAt: now() + options.windowMs });
    },
  };
}

export type LoginLimiter = ReturnType<typeof createLoginLimiter>;
