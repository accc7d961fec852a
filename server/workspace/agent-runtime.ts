import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { WharfError } from '../common/index.ts';
import { SUPERVISOR_SH_SOURCE, SUPERVISOR_SOURCE } from './agent-supervisor.ts';

/**
 * The agent's runtime, shared by the container drivers: node, the libraries it and the agent's
 * add-ons load, the agent bundle and its supervisor, laid out as
 * `bin/node`, `bin/sh`, `lib/`, `agent/`, `supervise.mjs`, `supervise.sh`. The docker driver puts it into a volume through
 * the engine's archive API; the kubernetes driver's init container writes it into an emptyDir
 * with `wharf agent install-runtime <dir>` (writeRuntimeTo below).
 */

/** One file or folder of the runtime (the docker driver's archive entries have this shape). */
export type RuntimeEntry = { name: string; type?: 'file' | 'directory'; mode: number; body?: Buffer | string };

/** Where the runtime volume is mounted (read-only) in every workspace container. */
export const RUNTIME_MOUNT = '/.wharf';
/** The agent's supervisor (agent-supervisor.ts), run by the runtime's node under the container's init. */
export const SUPERVISOR = `${RUNTIME_MOUNT}/supervise.mjs`;
/** The same supervisor in POSIX sh (agent-supervisor.ts), run by the runtime's `bin/sh` when it has one. */
export const SUPERVISOR_SH = `${RUNTIME_MOUNT}/supervise.sh`;
/** The runtime's shell (the server's dash or /bin/sh), which runs SUPERVISOR_SH. */
export const RUNTIME_SHELL = `${RUNTIME_MOUNT}/bin/sh`;
/** Written last into the volume: its presence says the copy was complete. */
export const COMPLETE_MARKER = '.complete';

/** The runtime as files: node, the libraries it and the agent's add-ons load, the agent bundle. */
export type RuntimeFiles = {
  hash: string;
  entries: RuntimeEntry[];
  loader: string | undefined;
  /** Whether `bin/sh` and `supervise.sh` are in it (a server with a usable shell: see shellOf). */
  shell: boolean;
};

/** Where the server's shell is looked for: dash first (a tenth of bash's size, and as fast to start). */
const SHELL_CANDIDATES = ['/usr/bin/dash', '/bin/dash', '/bin/sh'];

/**
 * How the agent (or its bridge) is run inside any image, with a libc of the image's or none:
 * the runtime's own dynamic loader with the runtime's libraries. Only for node itself — it is an
 * argument of the loader, not LD_LIBRARY_PATH, so the shells the agent starts load the image's
 * own libc.
 */
export function nodeCommand(loader: string | undefined): string[] {
  return runtimeCommand(`${RUNTIME_MOUNT}/bin/node`, loader);
}

/** The runtime's shell, run as node is (nodeCommand). */
export function shellCommand(loader: string | undefined): string[] {
  return runtimeCommand(RUNTIME_SHELL, loader);
}

function runtimeCommand(program: string, loader: string | undefined): string[] {
  return loader ? [`${RUNTIME_MOUNT}/lib/${loader}`, '--library-path', `${RUNTIME_MOUNT}/lib`, program] : [program];
}

/**
 * The server's shell and its libraries, when the runtime can carry it: one with node's dynamic
 * loader (it runs through that one, as node does). Otherwise none, and the docker driver keeps
 * the Node supervisor.
 */
async function shellOf(nodeLoader: string | undefined): Promise<{ path: string; libraries: Map<string, string> } | undefined> {
  for (const candidate of SHELL_CANDIDATES) {
    const path = await realpath(candidate).catch(() => undefined);
    if (!path) continue;
    const found = await librariesOf(path).catch(() => undefined);
    // Run through node's loader, or both static: a loader cannot run a static program.
    if (!found || found.loader !== nodeLoader) continue;
    return { path, libraries: found.libraries };
  }
  return undefined;
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
  if (!agentFiles.some((f) => basename(f) === 'agent.cjs')) {
    throw new WharfError('unavailable', `the workspace agent is not built: ${join(agentBundle, 'agent.cjs')} is missing; run "npm run build"`);
  }
  const node = await realpath(nodePath);
  const libraries = new Map<string, string>();
  const nodeLibs = await librariesOf(node);
  for (const [name, path] of nodeLibs.libraries) libraries.set(name, path);
  // The agent's native add-ons (node-pty, ssh2's crypto) load libstdc++ and friends too.
  for (const addon of agentFiles.filter((f) => f.endsWith('.node'))) {
    for (const [name, path] of (await librariesOf(addon)).libraries) libraries.set(name, path);
  }
  const shell = await shellOf(nodeLibs.loader);
  for (const [name, path] of shell?.libraries ?? []) if (!libraries.has(name)) libraries.set(name, path);
  const hash = createHash('sha256');
  const entries: RuntimeEntry[] = [
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
  if (shell) await add('bin/sh', shell.path, 0o755);
  for (const [name, path] of [...libraries].sort(([a], [b]) => a.localeCompare(b))) await add(`lib/${name}`, await realpath(path), 0o755);
  for (const file of agentFiles) await add(`agent/${relative(agentBundle, file)}`, file, 0o644);
  hash.update('supervise.mjs\0').update(SUPERVISOR_SOURCE);
  entries.push({ name: 'supervise.mjs', mode: 0o644, body: SUPERVISOR_SOURCE });
  if (shell) {
    hash.update('supervise.sh\0').update(SUPERVISOR_SH_SOURCE);
    entries.push({ name: 'supervise.sh', mode: 0o644, body: SUPERVISOR_SH_SOURCE });
  }
  entries.push({ name: COMPLETE_MARKER, mode: 0o644, body: 'ok\n' });
  return { hash: hash.digest('hex').slice(0, 16), entries, loader: nodeLibs.loader, shell: !!shell };
}


/**
 * A stable name of the runtime's dynamic loader (`lib/ld.so`, a relative symlink): the loader's
 * own name depends on the machine (ld-linux-x86-64.so.2, ld-linux-aarch64.so.1), and a pod spec
 * is written before the init container has looked at the runtime.
 */
export const LOADER_LINK = 'ld.so';

/**
 * Writes the runtime into `dir` (an empty folder, or one of an earlier write): each file to a
 * temporary name first and renamed, the complete marker last, so a half-written runtime is never
 * taken for a whole one. Returns what it wrote.
 */
export async function writeRuntimeTo(dir: string, runtime: RuntimeFiles): Promise<{ files: number; bytes: number }> {
  if (!runtime.loader) throw new WharfError('unavailable', 'this node has no dynamic loader (a static build?): the runtime needs the loader to run node in any image');
  await mkdir(dir, { recursive: true });
  await rm(join(dir, COMPLETE_MARKER), { force: true });
  let files = 0;
  let bytes = 0;
  for (const entry of runtime.entries) {
    const target = join(dir, entry.name);
    if (entry.name === COMPLETE_MARKER) continue;
    if (entry.type === 'directory') {
      await mkdir(target, { recursive: true, mode: entry.mode });
      continue;
    }
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.partial`;
    await writeFile(temporary, entry.body ?? '');
    await chmod(temporary, entry.mode);
    await rename(temporary, target);
    files++;
    bytes += Buffer.byteLength(entry.body ?? '');
  }
  const link = join(dir, 'lib', LOADER_LINK);
  await rm(link, { force: true });
  await symlink(runtime.loader, link);
  await writeFile(join(dir, COMPLETE_MARKER), `${runtime.hash}\n`, { mode: 0o644 });
  return { files, bytes };
}
