import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type SandboxPaths = {
  files: string;
  home: string;
  agentDir: string;
  /** This workspace's own socket folder; other workspaces' sockets stay invisible. */
  socketDir: string;
  codeRoot: string;
  nodePath: string;
  /** The server's data dir: hidden even where it lies under a bound folder (e.g. the code root). */
  dataDir: string;
};

export const SANDBOX_WORKSPACE = '/workspace';
export const SANDBOX_HOME = '/home/wharf';

/**
 * Files under `dir` that only their owner or group may read (/etc/shadow, sshd host keys,
 * /etc/ssl/private...). The sandbox runs with the server's uid, so owner permissions would let
 * it read them: they are covered instead.
 */
export function findPrivateEntries(dir: string, depth = 6): Array<{ path: string; directory: boolean }> {
  const out: Array<{ path: string; directory: boolean }> = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    let stat;
    try {
      stat = lstatSync(path);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) continue;
    const worldReadable = (stat.mode & 0o004) !== 0 && (!stat.isDirectory() || (stat.mode & 0o001) !== 0);
    if (!worldReadable && (stat.isFile() || stat.isDirectory())) out.push({ path, directory: stat.isDirectory() });
    else if (stat.isDirectory() && depth > 0) out.push(...findPrivateEntries(path, depth - 1));
  }
  return out;
}

/**
 * bubblewrap arguments: the workspace at /workspace, a private home, the system read-only, and
 * nothing else of the host (no real home, no data dir beyond this workspace's agent files, no
 * other workspace's socket). Own pid/ipc/uts namespaces, so workspace processes cannot see or
 * signal the host's; as root, every capability is dropped so the sandbox cannot mount its way out.
 */
/** What the agent loads from the code checkout (it runs `server/agent/main.ts` through tsx). */
const AGENT_CODE_PARTS = ['server', 'node_modules', 'package.json'];

export function buildBwrapArgs(paths: SandboxPaths, options: { privileged: boolean; privateEntries: Array<{ path: string; directory: boolean }> }): string[] {
  const args = ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--hostname', 'workspace', '--new-session'];
  if (options.privileged) args.push('--cap-drop', 'ALL');
  for (const dir of ['/usr', '/etc', '/opt']) if (existsSync(dir)) args.push('--ro-bind', dir, dir);
  for (const dir of ['/bin', '/sbin', '/lib', '/lib64', '/lib32']) args.push('--ro-bind-try', dir, dir);
  for (const entry of options.privateEntries) {
    if (entry.directory) args.push('--tmpfs', entry.path);
    else args.push('--ro-bind', '/dev/null', entry.path);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/run');
  // Only what the agent runs from, not the whole checkout (its .git, tests, benchmarks, docs,
  // a data dir kept in it): the server code, its packages, and package.json (its module type).
  for (const part of AGENT_CODE_PARTS) args.push('--ro-bind-try', join(paths.codeRoot, part), join(paths.codeRoot, part));
  const nodeDir = dirname(paths.nodePath);
  if (!nodeDir.startsWith('/usr/')) args.push('--ro-bind', nodeDir, nodeDir);
  // Covers the data dir wherever it is (inside the code root, say); the agent's own files are
  // bound back on top of it below.
  if (!`${paths.codeRoot}/`.startsWith(`${paths.dataDir}/`)) args.push('--tmpfs', paths.dataDir);
  args.push('--bind', paths.files, SANDBOX_WORKSPACE, '--bind', paths.home, SANDBOX_HOME);
  args.push('--ro-bind', paths.agentDir, paths.agentDir, '--bind', paths.socketDir, paths.socketDir);
  args.push('--chdir', SANDBOX_WORKSPACE, '--setenv', 'HOME', SANDBOX_HOME);
  return args;
}

export function findBwrap(): string | undefined {
  for (const p of ['/usr/bin/bwrap', '/usr/local/bin/bwrap']) if (existsSync(p)) return p;
  return undefined;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The pids behind a sandbox started as `bwrap ... -- agent`: bwrap's init inside the new pid
 * namespace (killing it ends every process of the sandbox) and the agent, its child. Signals to
 * the outer bwrap are not passed on, so stopping must address these directly.
 */
export function findSandboxPids(bwrapPid: number): { init: number | undefined; agent: number | undefined } {
  let comm = '';
  try {
    comm = readFileSync(`/proc/${bwrapPid}/comm`, 'utf8').trim();
  } catch {
    return { init: undefined, agent: undefined };
  }
  if (comm !== 'bwrap') return { init: undefined, agent: undefined };
  const init = childrenOf(bwrapPid)[0];
  return { init, agent: init === undefined ? undefined : childrenOf(init)[0] };
}
