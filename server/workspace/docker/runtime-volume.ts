import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { WharfError } from '../../common/index.ts';
import { SUPERVISOR_SOURCE } from './agent-supervisor.ts';
import type { ArchiveEntry, EngineCalls } from './engine-calls.ts';

/** Where the runtime volume is mounted (read-only) in every workspace container. */
export const RUNTIME_MOUNT = '/.wharf';
/** The agent's supervisor (agent-supervisor.ts), run by the runtime's node under the container's init. */
export const SUPERVISOR = `${RUNTIME_MOUNT}/supervise.mjs`;
/** Written last into the volume: its presence says the copy was complete. */
const COMPLETE_MARKER = '.complete';

/** The runtime as files: node, the libraries it and the agent's add-ons load, the agent bundle. */
export type RuntimeFiles = { hash: string; entries: ArchiveEntry[]; loader: string | undefined };

/**
 * How the agent (or its bridge) is run inside any image, with a libc of the image's or none:
 * the runtime's own dynamic loader with the runtime's libraries. Only for node itself — it is an
 * argument of the loader, not LD_LIBRARY_PATH, so the shells the agent starts load the image's
 * own libc.
 */
export function nodeCommand(loader: string | undefined): string[] {
  const node = `${RUNTIME_MOUNT}/bin/node`;
  return loader ? [`${RUNTIME_MOUNT}/lib/${loader}`, '--library-path', `${RUNTIME_MOUNT}/lib`, node] : [node];
}

/** `ldd` of a binary: the libraries' paths, and the dynamic loader's apart (nothing for a static one). */
async function librariesOf(file: string): Promise<{ libraries: Map<string, string>; loader?: string }> {
  const { stdout } = await promisify(execFile)('ldd', [file]).catch((err: Error & { stdout?: string }) => {
    // A static binary: `ldd` says so and fails; it needs nothing.
    if (/not a dynamic executable|statically linked/.test(`${err.stdout ?? ''}${err.message}`)) return { stdout: '' };
    throw new WharfError('unavailable', `cannot list the libraries of ${file} with ldd: ${err.message}`);
  });
  const libraries = new Map<string, string>();
  let loader: string | undefined;
  for (const line of stdout.split('\n')) {
    const arrow = /^\s*(\S+)\s+=>\s+(\/\S+)/.exec(line);
    if (arrow) libraries.set(arrow[1], arrow[2]);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (bare) loader = bare[1];
  }
  if (loader) libraries.set(basename(loader), loader);
  return { libraries, loader: loader && basename(loader) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/** Reads the runtime from the server's disk; its hash names the volume, so a new build gets a new one. */
export async function collectRuntime(nodePath: string, agentBundle: string): Promise<RuntimeFiles> {
  const agentFiles = await filesUnder(agentBundle).catch(() => {
    throw new WharfError('unavailable', `the workspace agent is not built: ${agentBundle} is missing; run "npm run build" (or point --agent-bundle at a built agent)`);
  });
  if (!agentFiles.some((f) => basename(f) === 'agent.mjs')) {
    throw new WharfError('unavailable', `the workspace agent is not built: ${join(agentBundle, 'agent.mjs')} is missing; run "npm run build"`);
  }
  const node = await realpath(nodePath);
  const libraries = new Map<string, string>();
  const nodeLibs = await librariesOf(node);
  for (const [name, path] of nodeLibs.libraries) libraries.set(name, path);
  // The agent's native add-ons (node-pty, ssh2's crypto) load libstdc++ and friends too.
  for (const addon of agentFiles.filter((f) => f.endsWith('.node'))) {
    for (const [name, path] of (await librariesOf(addon)).libraries) libraries.set(name, path);
  }
  const hash = createHash('sha256');
  const entries: ArchiveEntry[] = [
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'lib/', type: 'directory', mode: 0o755 },
    { name: 'agent/', type: 'directory', mode: 0o755 },
  ];
  const add = async (name: string, source: string, mode: number) => {
    const body = await readFile(source);
    hash.update(name).update('\0').update(body);
    entries.push({ name, mode, body });
  };
  await add('bin/node', node, 0o755);
  for (const [name, path] of [...libraries].sort(([a], [b]) => a.localeCompare(b))) await add(`lib/${name}`, await realpath(path), 0o755);
  for (const file of agentFiles) await add(`agent/${relative(agentBundle, file)}`, file, 0o644);
  hash.update('supervise.mjs\0').update(SUPERVISOR_SOURCE);
  entries.push({ name: 'supervise.mjs', mode: 0o644, body: SUPERVISOR_SOURCE });
  entries.push({ name: COMPLETE_MARKER, mode: 0o644, body: 'ok\n' });
  return { hash: hash.digest('hex').slice(0, 16), entries, loader: nodeLibs.loader };
}

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
