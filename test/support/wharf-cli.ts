import { execFile, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from './server.ts';

/** The helper (`wharf`) as the checkout runs it. */
export const WHARF = resolve(import.meta.dirname, '..', '..', 'bin', 'wharf.js');

export type Run = { code: number | null; stdout: string; stderr: string };

/**
 * Runs a program to its end and collects what it printed. Its stdin is `input` (then closed),
 * or /dev/null without one. `onStdout` sees each piece of stdout as it comes.
 */
export function runProgram(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; input?: string; onStdout?: (chunk: Buffer) => void },
): Promise<Run> {
  return new Promise((done, fail) => {
    const { cwd, env } = options;
    const child = options.input === undefined ? spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      options.onStdout?.(d);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin?.end(options.input);
  });
}

/** The environment of someone whose HOME (and config) is `home`, and nothing else of this machine's but PATH. */
export function userEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_CONFIG_HOME: join(home, 'config'), ...extra };
}

/** A server with `workspace`, and an empty HOME for someone using the helper against it; `server.dispose()` removes both. */
export async function startServerAndHome(workspace: string, homePrefix: string): Promise<{ server: TestServer; home: string }> {
  const server = await startTestServer({ workspaces: [workspace] });
  return { server, home: await server.tempDir(homePrefix) };
}

/** Runs the real helper as that user would, from their HOME. */
export function runWharf(home: string, args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return runProgram(process.execPath, [WHARF, ...args], { cwd: home, env: userEnv(home, options.env), input: options.input ?? '' });
}

/** `wharf login` to the server with its token, from `home`; throws when the helper refuses. */
export async function loginWharf(server: TestServer, home: string): Promise<void> {
  const login = await runWharf(home, ['login', server.url, '--token', server.token]);
  if (login.code !== 0) throw new Error(`wharf login: exit ${login.code}: ${login.stderr}`);
}

/** An unencrypted ed25519 key pair made by OpenSSH's ssh-keygen: `path` and `path`.pub. */
export async function createSshKey(path: string, comment?: string): Promise<string> {
  await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', ...(comment === undefined ? [] : ['-C', comment]), '-f', path]);
  return path;
}
