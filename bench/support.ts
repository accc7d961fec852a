import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRow } from './types.ts';

/** Small helpers shared by the benchmark scenarios. */

const root = dirname(dirname(fileURLToPath(import.meta.url)));

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${seen}`)), 30_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const match = seen.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${seen}`)));
  });
}

/** Ends a child politely, then for sure: SIGTERM, and SIGKILL if it has not exited 10 s later. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([exited, delay(10_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Runs a TypeScript file of this repository in its own Node process, as `npm start` runs the server. */
export function spawnTypeScript(file: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const loader = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
  return spawn(process.execPath, ['--import', loader, join(root, file), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The environment scripts/start.sh (`npm start`) and the server image give the server: glibc's trim threshold (why: start.sh). */
export const SERVER_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864' };

export type WharfProcess = { url: string; token: string; dataDir: string; stop(): Promise<void> };

/**
 * A wharf control server in its own process, as users run it (no sandbox), with a fresh data dir
 * named from `dataDirPrefix` and one workspace, `bench`; `stop` ends it and removes the data dir.
 */
export async function startWharfProcess(dataDirPrefix: string): Promise<WharfProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), dataDirPrefix));
  const token = randomBytes(16).toString('hex');
  const child = spawnTypeScript('server/serve.ts', ['--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--token', token, '--sandbox', 'none', '--log-level', 'warn'], SERVER_ENV);
  const stop = async () => {
    await stopChild(child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const [, url] = await waitForOutput(child, /wharf is running at (http:\/\/\S+)/, 'wharf');
    const res = await fetch(`${url}/api/workspaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    });
    if (res.status !== 201) throw new Error(`create workspace: ${res.status} ${await res.text()}`);
    return { url, token, dataDir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * When the module at `moduleUrl` is the program itself (`npx tsx bench/x.bench.ts`), runs its
 * scenario and prints the rows; imported by the runner, it does nothing.
 */
export function runWhenMain(moduleUrl: string, run: () => Promise<BenchRow[]>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run().then(
    (rows) => {
      for (const row of rows) console.log(`${row.scenario} | ${row.metric} | wharf ${row.wharf} | ${row.peerName} ${row.peer} | goal ${row.goal ?? ''}`);
      process.exit(0);
    },
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
}
