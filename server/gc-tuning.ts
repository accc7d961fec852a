import { setFlagsFromString } from 'node:v8';

/**
 * The control server relays every tunnel's bytes (`wharf up`, `wharf ssh`, previews), and each
 * relayed chunk is a buffer that dies young. Its own live heap is ~50 MB, and after the first
 * full collections V8's adaptive growing factor left the old generation only ~10 MB of room
 * over that: less than the young generation, so every scavenge started incremental marking
 * again (every 50–90 ms under a tunnel), and the server's CPU per relayed GB went from 0.8–1.2 s
 * to 2.2–2.9 s (`npm run bench -- tunnel`, docs/benchmarks.md). A fixed growing factor of 1.6
 * gives the old generation room to breathe at this size; a larger heap just grows by 60% before
 * its next collection, which is within what V8's own factor (1.1–4) does. Incremental marking
 * is kept (turning it off would make every full collection one long pause of a large heap).
 * V8 reads the flag each time it sets a new limit, so setting it at start-up is enough.
 */
export function tuneServerGarbageCollection(): void {
  setFlagsFromString('--heap-growing-percent=60');
}
