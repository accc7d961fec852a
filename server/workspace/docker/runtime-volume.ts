import { COMPLETE_MARKER, RUNTIME_MOUNT, type RuntimeFiles } from '../agent-runtime.ts';
import type { EngineCalls } from './engine-calls.ts';

export { collectRuntime, nodeCommand, RUNTIME_MOUNT, SUPERVISOR } from '../agent-runtime.ts';
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
