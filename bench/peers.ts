import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type * as Y from 'yjs';

/**
 * The programs the benchmarks measure wharf against (wetty, the stock Yjs server and its client
 * library) live in bench/peers with their own package.json and lockfile, never in wharf's own
 * install: wetty pulls file-type 22, which needs a newer Node than wharf does. They are installed
 * there (`npm ci` in bench/peers) the first time a benchmark needs them.
 *
 * Their libraries are loaded through bench/peers/index.js, so that Node resolves them from that
 * folder; the types below are the little of them the benchmarks use, written out because the
 * type checker must pass without the peers installed.
 */
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const PEERS_DIR = join(root, 'bench', 'peers');

export type PeerProvider = {
  readonly synced: boolean;
  once(event: 'sync', listener: (synced: boolean) => void): void;
  destroy(): void;
};

export type PeerSocket = {
  on(event: string, listener: (...args: never[]) => void): PeerSocket;
  once(event: string, listener: (...args: never[]) => void): PeerSocket;
  emit(event: string, ...args: unknown[]): PeerSocket;
  close(): PeerSocket;
};

type PeerLibraries = {
  WebsocketProvider: new (url: string, room: string, doc: Y.Doc, options: Record<string, unknown>) => PeerProvider;
  io: (url: string, options: Record<string, unknown>) => PeerSocket;
};

let installing: Promise<void> | undefined;

async function isInstalled(): Promise<boolean> {
  try {
    // npm writes node_modules/.package-lock.json on every install: older than the lockfile means stale.
    const [installed, lock] = await Promise.all([stat(join(PEERS_DIR, 'node_modules', '.package-lock.json')), stat(join(PEERS_DIR, 'package-lock.json'))]);
    return installed.mtimeMs >= lock.mtimeMs;
  } catch {
    return false;
  }
}

/** Installs the peers into bench/peers unless they are there already. */
export function ensurePeers(): Promise<void> {
  installing ??= (async () => {
    if (await isInstalled()) return;
    process.stderr.write(
      'bench: installing the benchmark peers (wetty, @y/websocket-server, y-websocket) into bench/peers with `npm ci`, once;\n' +
        "bench: wetty's file-type asks for Node >= 22 (an EBADENGINE warning): the benchmark runs it on this Node anyway\n",
    );
    try {
      const { stderr } = await promisify(execFile)('npm', ['ci', '--no-audit', '--no-fund'], { cwd: PEERS_DIR, maxBuffer: 16 * 1024 * 1024 });
      if (stderr.trim()) process.stderr.write(stderr);
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`bench: could not install the benchmark peers (cd bench/peers && npm ci): ${e.stderr || e.message}`);
    }
  })();
  return installing;
}

/** The client libraries of the peers. */
export async function importPeers(): Promise<PeerLibraries> {
  await ensurePeers();
  // A computed specifier: the type checker must not follow it into packages that may be absent.
  const entry = pathToFileURL(join(PEERS_DIR, 'index.js')).href;
  return (await import(entry)) as PeerLibraries;
}

/** Absolute path of a file inside an installed peer package, e.g. `wetty/build/main.js`. */
export async function locatePeerFile(path: string): Promise<string> {
  await ensurePeers();
  return join(PEERS_DIR, 'node_modules', path);
}
