import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { driverArgs } from './driver-matrix.ts';
import type { TestServer } from './server.ts';

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/**
 * A control server in a process of its own (`node --import tsx server/serve.ts`, what `npm start`
 * runs), on a data dir it may share with other replicas. Shaped like a TestServer where the test
 * helpers need it (`url`, `token`, `api`), so DocClient, TerminalClient and friends work on it.
 */
export type Replica = Pick<TestServer, 'url' | 'token' | 'dataDir' | 'api' | 'loginUrl'> & {
  readonly child: ChildProcess;
  /** What it printed, for failure messages. */
  output(): string;
  /** SIGTERM (a clean stop; agents are left to other replicas) and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash or a lost machine would: nothing of it runs any more. */
  kill(): Promise<void>;
};

export async function startReplica(options: { dataDir: string; token: string; argv?: string[]; timeoutMs?: number }): Promise<Replica> {
  const args = [
    '--import', 'tsx', join(ROOT, 'server', 'serve.ts'),
    '--data-dir', options.dataDir, '--port', '0', '--host', '127.0.0.1', '--token', options.token,
    '--sandbox', 'none', '--log-level', 'warn', '--seed-root', tmpdir(),
    ...driverArgs(), ...(options.argv ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d));
  child.stderr?.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not start within ${options.timeoutMs ?? 60_000} ms:\n${out}`)), options.timeoutMs ?? 60_000);
    const look = () => {
      const match = /wharf is running at (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited (${code}) before it listened:\n${out}`));
    });
  });
  const token = options.token;
  return {
    child,
    url,
    token,
    dataDir: options.dataDir,
    loginUrl: `${url}/login?token=${encodeURIComponent(token)}`,
    output: () => out,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${url}${path}`, { ...init, headers, body });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
