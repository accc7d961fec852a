import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { lchown, lstat, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The uid and gid that workspace processes run as inside the sandbox, when not the server's. */
export type SandboxUser = { uid: number; gid: number };

export type SandboxPaths = {
  files: string;
  home: string;
  agentDir: string;
  /** This workspace's own socket folder; other workspaces' sockets stay invisible. */
  socketDir: string;
  /** The built agent's folder (agent.mjs and its add-ons): the only code the sandbox sees. */
  agentBundle: string;
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

export function buildBwrapArgs(
  paths: SandboxPaths,
  options: { privileged: boolean; privateEntries: Array<{ path: string; directory: boolean }>; user?: SandboxUser },
): string[] {
  const args = ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--hostname', 'workspace', '--new-session'];
  // As root every capability goes; to drop to `user` (see dropPrivilegesPrefix) only the three
  // that setpriv needs stay, and setpriv clears them before the agent starts.
  if (options.privileged) args.push('--cap-drop', 'ALL');
  if (options.privileged && options.user) args.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID', '--cap-add', 'CAP_SETPCAP');
  for (const dir of ['/usr', '/etc', '/opt']) if (existsSync(dir)) args.push('--ro-bind', dir, dir);
  for (const dir of ['/bin', '/sbin', '/lib', '/lib64', '/lib32']) args.push('--ro-bind-try', dir, dir);
  for (const entry of options.privateEntries) {
    if (entry.directory) args.push('--tmpfs', entry.path);
    else args.push('--ro-bind', '/dev/null', entry.path);
  }
  // /tmp is everyone's (sticky), as on any system: the unprivileged user must be able to use it.
  args.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp', '--tmpfs', '/run');
  // bwrap makes the missing parents of a mount point 0700 root: the unprivileged agent could not
  // walk down to its own code and sockets. Each parent is declared 0755 first (existing ones,
  // like /usr/lib, are left alone); they are empty folders of the sandbox's own root.
  const declared = new Set(['/', '/usr', '/etc', '/opt', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/proc', '/dev', '/tmp', '/run']);
  const parentsOf = (path: string) => {
    for (let dir = dirname(path), chain: string[] = []; ; dir = dirname(dir)) {
      if (declared.has(dir)) {
        for (const each of chain.reverse()) args.push('--perms', '0755', '--dir', each);
        return;
      }
      declared.add(dir);
      chain.push(dir);
    }
  };
  const mount = (kind: string, source: string | undefined, dest: string) => {
    parentsOf(dest);
    declared.add(dest);
    args.push(kind, ...(source === undefined ? [] : [source]), dest);
  };
  // Only what the agent runs from, not the checkout (its sources, packages, .git, tests, a data
  // dir kept in it): the agent bundle, one file and its native add-ons.
  mount('--ro-bind', paths.agentBundle, paths.agentBundle);
  const nodeDir = dirname(paths.nodePath);
  if (!nodeDir.startsWith('/usr/')) mount('--ro-bind', nodeDir, nodeDir);
  // Covers the data dir wherever it is (inside the checkout, say); the agent's own files are
  // bound back on top of it below.
  if (!`${paths.agentBundle}/`.startsWith(`${paths.dataDir}/`)) mount('--tmpfs', undefined, paths.dataDir);
  // Through mount() as well, so /home is made 0755: the user must reach its own home (its feature
  // data lives there, ~/.cache/wharf/store).
  mount('--bind', paths.files, SANDBOX_WORKSPACE);
  mount('--bind', paths.home, SANDBOX_HOME);
  mount('--ro-bind', paths.agentDir, paths.agentDir);
  mount('--bind', paths.socketDir, paths.socketDir);
  // bwrap changes folder after dropping its capabilities: as root without them it may not enter
  // a 0700 workspace that belongs to `user`, so it stays at / and the agent (as `user`) uses its --root.
  args.push('--chdir', options.user ? '/' : SANDBOX_WORKSPACE, '--setenv', 'HOME', SANDBOX_HOME);
  return args;
}

/**
 * The command that runs the agent as `user` inside a sandbox bwrap set up as root. bwrap (as
 * root) cannot map the sandbox to another uid: `--unshare-user` there maps to root outside, so
 * a sandbox escape would still be root on the host. setpriv switches the real, effective and
 * saved ids and clears every capability set, bounding set included; bwrap's no_new_privs keeps
 * setuid binaries from giving any of it back.
 */
export function dropPrivilegesPrefix(setpriv: string, user: SandboxUser): string[] {
  return [setpriv, '--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
}

export function findSetpriv(): string | undefined {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv', '/usr/local/bin/setpriv']) if (existsSync(p)) return p;
  return undefined;
}

/**
 * Gives a tree to `user` (lchown: a symlink is changed itself, never what it points at, and
 * directories are not followed through links), so the unprivileged sandbox can write what root
 * put there: a seed copy, or a workspace made before workspaces stopped running as root.
 * Returns how many entries changed.
 */
export async function chownTree(dir: string, user: SandboxUser): Promise<number> {
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    let stat;
    try {
      stat = await lstat(path);
    } catch {
      return;
    }
    if (stat.uid !== user.uid || stat.gid !== user.gid) {
      await lchown(path, user.uid, user.gid);
      changed += 1;
    }
    if (!stat.isDirectory()) return;
    for (const name of await readdir(path).catch(() => [] as string[])) await visit(join(path, name));
  };
  await visit(dir);
  return changed;
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
