import { existsSync } from 'node:fs';
import { dirname } from 'node:path';

export type SandboxPaths = {
  files: string;
  home: string;
  agentDir: string;
  runDir: string;
  codeRoot: string;
  nodePath: string;
};

export const SANDBOX_WORKSPACE = '/workspace';
export const SANDBOX_HOME = '/home/wharf';

/**
 * bubblewrap arguments: the workspace at /workspace, a private home, the system read-only, and
 * nothing else of the host (no real home, no data dir beyond this workspace's agent files).
 * Own pid/ipc/uts namespaces, so workspace processes cannot see or signal the host's.
 */
export function buildBwrapArgs(paths: SandboxPaths): string[] {
  const args = ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--hostname', 'workspace', '--new-session'];
  for (const dir of ['/usr', '/etc', '/opt']) if (existsSync(dir)) args.push('--ro-bind', dir, dir);
  for (const dir of ['/bin', '/sbin', '/lib', '/lib64', '/lib32']) args.push('--ro-bind-try', dir, dir);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/run');
  args.push('--bind', paths.files, SANDBOX_WORKSPACE, '--bind', paths.home, SANDBOX_HOME);
  args.push('--ro-bind', paths.agentDir, paths.agentDir, '--bind', paths.runDir, paths.runDir);
  args.push('--ro-bind', paths.codeRoot, paths.codeRoot);
  const nodeDir = dirname(paths.nodePath);
  if (!nodeDir.startsWith('/usr/')) args.push('--ro-bind', nodeDir, nodeDir);
  args.push('--chdir', SANDBOX_WORKSPACE, '--setenv', 'HOME', SANDBOX_HOME);
  return args;
}

export function findBwrap(): string | undefined {
  for (const p of ['/usr/bin/bwrap', '/usr/local/bin/bwrap']) if (existsSync(p)) return p;
  return undefined;
}
