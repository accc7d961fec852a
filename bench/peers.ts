import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
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

/** The little of autocannon's result the preview benchmark reads. */
export type LoadResult = {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
};

type PeerLibraries = {
  autocannon: (options: { url: string; connections: number; duration: number; headers?: Record<string, string> }) => Promise<LoadResult>;
  WebsocketProvider: new (url: string, room: string, doc: Y.Doc, options: Record<string, unknown>) => PeerProvider;
  io: (url: string, options: Record<string, unknown>) => PeerSocket;
};

let installing: Promise<void> | undefined;

function isStale(dir: string): Promise<boolean> {
  // npm writes node_modules/.package-lock.json on every install: older than the lockfile means stale.
  return Promise.all([stat(join(dir, 'node_modules', '.package-lock.json')), stat(join(dir, 'package-lock.json'))]).then(
    ([installed, lock]) => installed.mtimeMs < lock.mtimeMs,
    () => true,
  );
}

async function isInstalled(): Promise<boolean> {
  return !(await isStale(PEERS_DIR));
}

/** Installs the peers into bench/peers unless they are there already. */
export function ensurePeers(): Promise<void> {
  installing ??= (async () => {
    if (await isInstalled()) return;
    process.stderr.write(
      'bench: installing the benchmark peers (wetty, @y/websocket-server, y-websocket, autocannon, http-proxy) into bench/peers with `npm ci`, once;\n' +
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

/** The preview benchmark's load generator, and the entry file of http-proxy to run as a proxy. */
export async function importPreviewPeers(): Promise<{ autocannon: PeerLibraries['autocannon']; httpProxyEntry: string }> {
  const { autocannon } = await importPeers();
  return { autocannon, httpProxyEntry: await locatePeerFile('http-proxy/index.js') };
}

/**
 * code-server lives in a folder of its own (bench/peers-code-server): it is some 200 MB, which no
 * other benchmark should wait for. It is installed with scripts off and then only argon2 (its
 * password hashing, loaded at start) built from source: its own postinstall installs VS Code's
 * workbench, which downloads ripgrep from GitHub (unreachable from these machines), and the
 * `/proxy/<port>/` route measured here is code-server's own express server, which needs none of
 * it. Version 4.100.3 is the newest that runs on Node 20. When the install fails the preview
 * benchmark says why and measures without it.
 */
const CODE_SERVER_DIR = join(root, 'bench', 'peers-code-server');
let installingCodeServer: Promise<{ entry: string; version: string } | undefined> | undefined;

export function locateCodeServer(): Promise<{ entry: string; version: string } | undefined> {
  installingCodeServer ??= (async () => {
    if (await isStale(CODE_SERVER_DIR)) {
      process.stderr.write('bench: installing code-server into bench/peers-code-server, once (about a minute: argon2 is compiled)\n');
      try {
        const npm = (args: string[]) => promisify(execFile)('npm', args, { cwd: CODE_SERVER_DIR, maxBuffer: 64 * 1024 * 1024 });
        await npm(['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
        await npm(['rebuild', 'argon2', '--build-from-source']);
      } catch (err) {
        const e = err as Error & { stderr?: string };
        process.stderr.write(`bench: code-server did not install here (measured without it): ${(e.stderr || e.message).split('\n').filter((l) => /error/i.test(l)).slice(-5).join('\n')}\n`);
        return undefined;
      }
    }
    const pkg = JSON.parse(await readFile(join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'package.json'), 'utf8')) as { version: string };
    return { entry: join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js'), version: pkg.version };
  })();
  return installingCodeServer;
}
