import { setFlagsFromString } from 'node:v8';

/**
 * The helper's heap stays small (about 8 MB while a tunnel moves hundreds of MB/s), but every SSH
 * packet it relays allocates buffers outside it. After many connections have come and gone, V8
 * begins incremental marking on that external-memory pressure every ~50 ms, and its concurrent
 * marking threads doubled the helper's CPU per byte on two cores (measured with
 * `npm run bench -- tunnel`: 1.1 → 2.1 CPU-s per GB after 100 connections; docs/benchmarks.md).
 * Without incremental marking a full collection of so small a heap is one pause of a few ms, and
 * the cost per byte stays where it was. Set from code because the single executable takes no
 * node options; V8 reads this flag each time it considers starting to mark, so setting it before
 * the first tunnel is enough.
 */
export function tuneGarbageCollection(): void {
  setFlagsFromString('--no-incremental-marking');
}
