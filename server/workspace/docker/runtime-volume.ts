import { COMPLETE_MARKER, RUNTIME_MOUNT, type RuntimeFiles } from '../agent-runtime.ts';
import type { EngineCalls } from './engine-calls.ts';

export { collectRuntime, nodeCommand, RUNTIME_MOUNT, shellCommand, SUPERVISOR_SH } from '../agent-runtime.ts';
export type { RuntimeFiles } from '../agent-runtime.ts';

/**
 * Makes sure the engine has the runtime volume `name`, filled. A volume can only be written
 * through a container: a helper is created (never started) from the workspace image with the
 * volume mounted writable, the runtime is put in it, and the helper is removed. Workspaces mount
 * the volume read-only.
 */
export async function ensureRuntimeVolume(engine: EngineCalls, input: { name: string; image: string; runtime: RuntimeFiles; labels: Record<string, string>; log: (event: string, fields?: Record<string, unknown>) => void }): Promise<void> {
  const { name, image, runtime } = input;
  await engine.expectOk(`cannot create the runtime volume ${name}`, engine.call('POST', '/volumes/create', { json: { Name: name, Labels: input.labels } }));
  const helper = `${name}-fill-${process.pid}-${Date.now().toString(36)}`;
  await engine.expectOk(
    `cannot create a helper container from image ${image} to fill the runtime volume`,
    engine.call('POST', '/containers/create', {
      query: { name: helper },
      json: { Image: image, Cmd: ['/.wharf/bin/node'], Labels: input.labels, NetworkDisabled: true, HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: name, Target: RUNTIME_MOUNT }] } },
    }),
  );
  try {
    const done = await engine.readFile(helper, `${RUNTIME_MOUNT}/${COMPLETE_MARKER}`).catch(() => undefined);
    if (done !== undefined) return;
    const started = Date.now();
    await engine.putArchive(helper, RUNTIME_MOUNT, runtime.entries, 10 * 60_000);
    input.log('runtime.volume_filled', { volume: name, ms: Date.now() - started });
  } finally {
    await engine.call('DELETE', `/containers/${encodeURIComponent(helper)}`, { query: { force: '1' } }).catch(() => {});
  }
}

/** The prefix of every runtime volume's name; the rest is its content's hash. */
export const RUNTIME_VOLUME_PREFIX = 'wharf-runtime-';

/**
 * Removes runtime volumes of other builds (or Nodes) that no container uses: each server fills
 * one per build, and upgrades left them behind. Only volumes with the runtime label and name,
 * not `keep`, and older than `minAgeMs`: another server on the same engine (another build) may
 * have just filled its own and not yet made the container that uses it. The engine itself
 * refuses to remove a volume any container (running or stopped) mounts, so a stopped workspace
 * of an older build keeps its runtime. Gives the names removed.
 */
export async function pruneRuntimeVolumes(engine: EngineCalls, input: { keep: string; label: string; minAgeMs: number; now?: number; log: (event: string, fields?: Record<string, unknown>) => void }): Promise<string[]> {
  const filters = JSON.stringify({ label: [input.label] });
  const listed = await engine.json<{ Volumes: Array<{ Name: string; CreatedAt?: string }> | null }>('cannot list the runtime volumes', 'GET', '/volumes', { query: { filters } });
  const now = input.now ?? Date.now();
  const removed: string[] = [];
  for (const volume of listed.Volumes ?? []) {
    if (!volume.Name.startsWith(RUNTIME_VOLUME_PREFIX) || volume.Name === input.keep) continue;
    const created = Date.parse(volume.CreatedAt ?? '');
    if (!Number.isFinite(created) || now - created < input.minAgeMs) continue;
    const res = await engine.call('DELETE', `/volumes/${encodeURIComponent(volume.Name)}`);
    if (res.status === 204 || res.status === 200) {
      removed.push(volume.Name);
      input.log('runtime.volume_pruned', { volume: volume.Name });
    } else if (res.status !== 409 && res.status !== 404) {
      // In use (409) or gone already (404) is normal; anything else is worth a line, not a failure.
      input.log('runtime.volume_prune_failed', { volume: volume.Name, status: res.status, error: res.text.slice(0, 200) });
    }
  }
  return removed;
}
