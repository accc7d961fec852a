import { setFlagsFromString } from 'node:v8';

/**
 * The control server relays every tunnel's bytes (`wharf up`, `wharf ssh`, previews): each
 * relayed chunk is a buffer that dies young, its bytes outside V8's heap. V8 scavenges once
 * 32 MiB of such young backing stores pile up, and counts the external memory allocated since
 * its last full collection against the old generation's limit. With V8's own heuristics that made
 * the server start incremental marking of its whole heap (~50 MB live, ~25 ms of marking each
 * time) after nearly every one of those scavenges: every 50–140 ms under a tunnel, and the relay
 * cost two to three times a bare relay's CPU per GB (`npm run bench -- tunnel`, docs/benchmarks.md;
 * seen with `--trace-incremental-marking`: "Start (allocation limit)" and "Start (task)", each just
 * after an "external memory pressure" scavenge, with 31–46 MB of room left).
 *
 * - A fixed growing factor of 2: the old generation's limit is twice what survived the last full
 *   collection, so its room (≥ 50 MB at the server's size) outgrows one scavenge's worth of
 *   relayed buffers. V8's adaptive factor ranges 1.1–4; at 1.1–1.6 the room was 5–31 MB.
 * - Explicit triggers: marking starts, still incrementally, once 80% of that room is used (at
 *   once past 90%), rather than once less than a young generation of it is left.
 *
 * Incremental marking itself is kept (turning it off would make every full collection one long
 * pause of a large heap). V8 reads these flags each time it sets a limit or checks one, so setting
 * them at start-up is enough. The server's other tuning is glibc's trim threshold, which has to
 * be in the environment it starts with (scripts/start.sh, the Dockerfile): docs/server-image.md.
 */
export function tuneServerGarbageCollection(): void {
  setFlagsFromString('--heap-growing-percent=100');
  setFlagsFromString('--incremental-marking-soft-trigger=80');
  setFlagsFromString('--incremental-marking-hard-trigger=90');
}
