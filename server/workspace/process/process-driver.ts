import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { preparePrivateDir } from './run-dir.ts';
import { chmod, chown, mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { isProcessAlive, WharfError } from '../../common/index.ts';
import type { CreateWorkspaceInput, WorkspaceDriver, WorkspaceRecord } from '../driver.ts';
import type { ReplicaRegistry } from '../replica-registry.ts';
import {
  buildBwrapArgs,
  chownTree,
  dropPrivilegesPrefix,
  findBwrap,
  findPrivateEntries,
  findSandboxPids,
  findSetpriv,
  SANDBOX_HOME,
  SANDBOX_WORKSPACE,
  type SandboxUser,
} from './sandbox.ts';

export type ProcessDriverOptions = {
  dataDir: string;
  /** Short directory for agent sockets (unix socket paths are limited to ~107 bytes). */
  runDir: string;
  sandbox: 'auto' | 'bwrap' | 'none';
  /**
   * Who workspace processes run as inside the sandbox when the server runs as root (uid 0 keeps
   * root, and the server's own uid is used whenever it is not root).
   */
  sandboxUser?: SandboxUser;
  /**
   * The built agent (`npm run build`): a folder with `agent.cjs` (its bundle and code cache) and its native add-ons, run as
   * `<nodePath> <agentBundle>/agent.cjs` and, in the sandbox, the only code bound (read-only).
   */
  agentBundle: string;
  /** The Node.js binary that runs the agent. */
  nodePath: string;
  /** Feature flags passed through to every agent (e.g. `--terminal-grace-ms`). */
  extraAgentArgs?: string[];
  /** The agent's whole environment (nothing else of the server's is inherited). */
  agentEnv?: Record<string, string>;
  restartDelayMs: number;
  stopGraceMs: number;
  /** A started agent that does not listen within this long fails the start (its log tail is reported). */
  startTimeoutMs: number;
  /**
   * How often the driver looks at every workspace of the data dir: an agent another replica
   * started is adopted, one that died under another replica is restarted, one stopped by another
   * replica is let go (see docs/replicas.md).
   */
  superviseMs: number;
  /** The other servers on this data dir: the last one out stops the agents. */
  replicas: ReplicaRegistry;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

/**
 * `extra` is the feature data of metas written before it moved to the agent's store: the next
 * start hands it to the agent (`--import-store`), which takes the keys it lacks, then it is dropped.
 */
type StoredMeta = Omit<WorkspaceRecord, 'status'> & {
  agentPid?: number;
  extra?: Record<string, unknown>;
  /** `uid:gid` the workspace's files and home were last given to (see chownTree). */
  filesOwner?: string;
};

type Supervised = {
  child?: ChildProcess;
  pid?: number;
  stopping: boolean;
  restartTimer?: NodeJS.Timeout;
  pollTimer?: NodeJS.Timeout;
  ready?: Promise<void>;
  /** bwrap's init inside the sandbox: it outlives the agent while any workspace process runs. */
  sandboxInit?: number;
  startedAt?: number;
  /** Agents in a row that died soon after starting: each doubles the wait before the next. */
  quickFailures?: number;
  /** A start in progress: callers wait for it instead of spawning a second agent. */
  launching?: Promise<void>;
};

/**
 * Wait before restarting an agent: the base delay, doubled for each agent in a row that died
 * within `60 × base` of starting, up to that same bound — a broken workspace (bad key file,
 * full disk) must not keep a core busy restarting forever.
 */
export function restartDelay(baseMs: number, quickFailures: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, quickFailures - 1), baseMs * 60);
}

/** The agent program inside its bundle (scripts/build-agent.mjs). */
const AGENT_ENTRY = 'agent.cjs';

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Ends whatever is left of a sandbox: killing its pid namespace's init kills everything in it. */
function killSandboxInit(s: Supervised): void {
  const init = s.sandboxInit;
  s.sandboxInit = undefined;
  if (!init) return;
  try {
    // Only if that pid is still a bwrap: it may have been reused since.
    if (readFileSync(`/proc/${init}/comm`, 'utf8').trim() !== 'bwrap') return;
    process.kill(init, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function tryConnect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    // \`on\`, not \`once\`: the listener stays for the socket's whole life, so an error after the
    // connect (the peer gone mid-handshake) is never one with nobody listening, which would throw.
    socket.on('error', () => resolve(undefined));
  });
}

/**
 * The embedded default: a workspace is a folder under the data dir, its agent a detached child
 * process (so its ptys outlive a crashed or upgraded control server), optionally in bubblewrap.
 */
export function createProcessDriver(options: ProcessDriverOptions): WorkspaceDriver {
  const root = join(options.dataDir, 'workspaces');
  const supervised = new Map<string, Supervised>();
  const metaLocks = new Map<string, Promise<unknown>>();
  let bwrap: string | undefined;
  let privateEtc: ReturnType<typeof findPrivateEntries> | undefined;
  let shuttingDown = false;
  let reconcileTimer: NodeJS.Timeout | undefined;

  const dirOf = (id: string) => join(root, id);
  const paths = (id: string) => ({
    dir: dirOf(id),
    meta: join(dirOf(id), 'workspace.json'),
    files: join(dirOf(id), 'files'),
    home: join(dirOf(id), 'home'),
    agentDir: join(dirOf(id), 'agent'),
    hostKey: join(dirOf(id), 'agent', 'host_key'),
    legacyStore: join(dirOf(id), 'agent', 'legacy-store.json'),
    authorizedKeys: join(dirOf(id), 'agent', 'authorized_keys'),
    log: join(dirOf(id), 'agent.log'),
    // Outside agent/ (bound into the sandbox): only servers take it.
    launchLock: join(dirOf(id), 'launch.lock'),
    socketDir: join(options.runDir, id),
    socket: join(options.runDir, id, 'agent.sock'),
  });

  async function readMeta(id: string): Promise<StoredMeta | undefined> {
    try {
      return JSON.parse(await readFile(paths(id).meta, 'utf8')) as StoredMeta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async function writeMeta(meta: StoredMeta): Promise<void> {
    const file = paths(meta.id).meta;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(meta, null, 2), { mode: 0o600 });
    await rename(tmp, file);
  }

  /** Serialises read-modify-write of one workspace's metadata within this process. */
  function withMeta<T>(id: string, fn: (meta: StoredMeta) => Promise<T> | T): Promise<T> {
    const previous = metaLocks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(async () => {
      const meta = await readMeta(id);
      if (!meta) throw new WharfError('not_found', `workspace "${id}" does not exist`);
      return fn(meta);
    });
    metaLocks.set(id, next);
    return next;
  }

  function toRecord(meta: StoredMeta): WorkspaceRecord {
    const s = supervised.get(meta.id);
    // Another replica's agent counts too: the pid in the metadata is of this host (docs/replicas.md).
    const alive = isProcessAlive(s?.child?.pid ?? s?.pid ?? meta.agentPid);
    const status = meta.desired === 'stopped' ? (alive ? 'running' : 'stopped') : alive ? 'running' : s ? 'starting' : 'stopped';
    const { agentPid: _pid, extra: _legacy, filesOwner: _owner, ...rest } = meta;
    return { ...rest, status };
  }


  /**
   * The workspace's launch lock (a file made with O_EXCL, holding its server's pid): several
   * control servers on one data dir take it to start or stop an agent, so no two agents of one
   * workspace ever run, and a stop never misses an agent another replica is starting. A lock
   * whose holder is gone (or older than twice the start timeout) is broken.
   */
  async function withLaunchLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const file = paths(id).launchLock;
    const deadline = Date.now() + options.startTimeoutMs * 2;
    for (;;) {
      try {
        await writeFile(file, JSON.stringify({ pid: process.pid, at: Date.now() }), { flag: 'wx', mode: 0o600 });
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new WharfError('not_found', `workspace "${id}" does not exist`);
        if (code !== 'EEXIST') throw err;
      }
      let holder: { pid?: number; at?: number } = {};
      try {
        holder = JSON.parse(await readFile(file, 'utf8')) as typeof holder;
      } catch {
        // Being written or just removed: look again.
      }
      const stale = holder.pid !== undefined && (!isProcessAlive(holder.pid) || Date.now() - (holder.at ?? 0) > options.startTimeoutMs * 2);
      if (stale) {
        await unlink(file).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new WharfError('unavailable', `workspace "${id}" is being started or stopped by another server (pid ${holder.pid ?? 'unknown'}) for too long`);
      await delay(50);
    }
    try {
      return await fn();
    } finally {
      await unlink(file).catch(() => {});
    }
  }

  async function agentAnswers(id: string): Promise<boolean> {
    const socket = await tryConnect(paths(id).socket);
    socket?.destroy();
    return socket !== undefined;
  }


  /**
   * One look at every workspace: each replica watches every agent meant to run (its own
   * children through their exit, others' through their pid), so whichever notices a crash first
   * restarts it under the launch lock, and the others adopt the new agent.
   */
  async function reconcile(): Promise<void> {
    const ids = new Set(await readdir(root).catch(() => [] as string[]));
    for (const [id, s] of supervised) {
      if (!ids.has(id) && !s.launching) release(id, s);
    }
    for (const id of ids) {
      if (shuttingDown) return;
      const s = supervised.get(id);
      if (s?.launching || s?.restartTimer) continue;
      const meta = await readMeta(id).catch(() => undefined);
      if (!meta || meta.desired !== 'running') continue;
      const ours = s?.child?.pid ?? s?.pid;
      if (ours && isProcessAlive(ours)) continue;
      if (meta.agentPid && isProcessAlive(meta.agentPid)) adopt(id, meta.agentPid);
      else if (!s) {
        // Meant to run, and nobody's agent: its supervisor went away with it, or it never started.
        const fresh: Supervised = { stopping: false };
        supervised.set(id, fresh);
        scheduleRestart(id, fresh);
      }
    }
  }

  function startReconciling(): void {
    let busy = false;
    reconcileTimer = setInterval(() => {
      if (busy || shuttingDown) return;
      busy = true;
      reconcile()
        .catch((err: Error) => options.log('supervise.failed', { error: err.message }))
        .finally(() => (busy = false));
    }, options.superviseMs);
    reconcileTimer.unref();
  }

  function useSandbox(): boolean {
    if (options.sandbox === 'none') return false;
    bwrap ??= findBwrap();
    if (!bwrap) {
      if (options.sandbox === 'bwrap') throw new WharfError('unavailable', 'sandbox "bwrap" requested but bubblewrap (bwrap) is not installed');
      return false;
    }
    return true;
  }

  async function waitForSocket(id: string, s: Supervised): Promise<void> {
    const deadline = Date.now() + options.startTimeoutMs;
    while (Date.now() < deadline) {
      const socket = await tryConnect(paths(id).socket);
      if (socket) {
        socket.destroy();
        return;
      }
      if (!s.stopping && !isProcessAlive(s.child?.pid ?? s.pid)) break;
      await delay(50);
    }
    const log = await readFile(paths(id).log, 'utf8').catch(() => '');
    throw new WharfError('unavailable', `agent of workspace "${id}" did not start`, { log: log.split('\n').slice(-10).join('\n') });
  }

  /**
   * One start at a time per workspace. After a crash, the restart timer and a client asking for
   * the agent (ensureRunning) both want one; two spawns left the first agent running untracked,
   * with its socket file removed under it, after the workspace was stopped.
   */
  function launch(id: string): Promise<void> {
    // A request still in flight when the server stops must not start an agent nobody will stop.
    if (shuttingDown) return Promise.reject(new WharfError('unavailable', 'the server is shutting down'));
    const s = supervised.get(id) ?? { stopping: false };
    supervised.set(id, s);
    clearTimeout(s.restartTimer);
    s.launching ??= startAgent(id, s).finally(() => {
      s.launching = undefined;
    });
    return s.launching;
  }

  /**
   * Under the launch lock, a replica first looks at what the others did: an agent already
   * running (started by another server) is adopted, a workspace stopped meanwhile is let go.
   */
  function startAgent(id: string, s: Supervised): Promise<void> {
    return withLaunchLock(id, async () => {
      const meta = await readMeta(id);
      if (!meta) throw new WharfError('not_found', `workspace "${id}" does not exist`);
      if (meta.desired !== 'running') {
        release(id, s);
        return;
      }
      const ours = s.child?.pid ?? s.pid;
      if (meta.agentPid && meta.agentPid !== ours && isProcessAlive(meta.agentPid) && (await agentAnswers(id))) {
        adopt(id, meta.agentPid);
        return;
      }
      await spawnAgent(id, s);
    });
  }

  /** Stops watching a workspace here (stopped or removed, maybe by another replica). */
  function release(id: string, s: Supervised): void {
    clearTimeout(s.restartTimer);
    clearInterval(s.pollTimer);
    if (supervised.get(id) === s) supervised.delete(id);
  }

  async function spawnAgent(id: string, s: Supervised): Promise<void> {
    const p = paths(id);
    s.stopping = false;
    await preparePrivateDir(options.runDir);
    await mkdir(p.socketDir, { recursive: true, mode: 0o700 });
    await rm(p.socket, { force: true });
    const agentEntry = join(options.agentBundle, AGENT_ENTRY);
    if (!existsSync(agentEntry)) {
      throw new WharfError('unavailable', `the workspace agent is not built: ${agentEntry} is missing; run "npm run build" (or point --agent-bundle at a built agent)`);
    }
    const sandboxed = useSandbox();
    // In the agent's own folder: readable inside the sandbox (bound read-only), never by the workspace's files.
    const legacy = (await readMeta(id))?.extra;
    const migrating = legacy !== undefined && Object.keys(legacy).length > 0;
    if (migrating) await writeFile(p.legacyStore, JSON.stringify(legacy), { mode: 0o600 });
    const privileged = process.getuid?.() === 0;
    const user = sandboxed && privileged && options.sandboxUser && options.sandboxUser.uid !== 0 ? options.sandboxUser : undefined;
    let setpriv: string | undefined;
    if (user) {
      setpriv = findSetpriv();
      if (!setpriv) {
        throw new WharfError('unavailable', `setpriv (util-linux) is needed to run workspace processes as uid ${user.uid}; install util-linux, or set --sandbox-user 0 to keep them root`);
      }
      await handOver(id, user);
      if (migrating) await chown(p.legacyStore, user.uid, user.gid);
    }
    const agentArgs = [
      ...(migrating ? ['--import-store', p.legacyStore] : []),
      '--socket', p.socket,
      '--root', sandboxed ? SANDBOX_WORKSPACE : p.files,
      '--home', sandboxed ? SANDBOX_HOME : p.home,
      '--host-key', p.hostKey,
      '--authorized-keys', p.authorizedKeys,
      ...(options.extraAgentArgs ?? []),
    ];
    const [cmd, ...cmdArgs] = sandboxed
      ? [
          bwrap as string,
          ...buildBwrapArgs(
            { files: p.files, home: p.home, agentDir: p.agentDir, socketDir: p.socketDir, agentBundle: options.agentBundle, nodePath: options.nodePath, dataDir: options.dataDir },
            { privileged, privateEntries: (privateEtc ??= findPrivateEntries('/etc')), user },
          ),
          '--',
          ...(user && setpriv ? dropPrivilegesPrefix(setpriv, user) : []),
          options.nodePath,
          agentEntry,
          ...agentArgs,
        ]
      : [options.nodePath, agentEntry, ...agentArgs];
    const logFile = await open(p.log, 'a', 0o600);
    const child = spawn(cmd, cmdArgs, {
      cwd: sandboxed ? '/' : p.files,
      detached: true,
      env: options.agentEnv ?? {},
      stdio: ['ignore', logFile.fd, logFile.fd],
    });
    await logFile.close();
    child.unref();
    s.child = child;
    s.startedAt = Date.now();
    s.pid = child.pid;
    await withMeta(id, (meta) => writeMeta({ ...meta, agentPid: child.pid }));
    options.log('agent.started', { workspace: id, pid: child.pid, sandboxed });
    child.on('exit', (code, signal) => {
      if (s.child !== child) return;
      s.child = undefined;
      s.pid = undefined;
      options.log('agent.exited', { workspace: id, code, signal, expected: s.stopping });
      killSandboxInit(s);
      if (!s.stopping && !shuttingDown) scheduleRestart(id, s);
    });
    s.ready = waitForSocket(id, s);
    await s.ready;
    if (legacy !== undefined) {
      // The agent imports before it listens: answering means the store has the data.
      await withMeta(id, (meta) => {
        const { extra: _done, ...rest } = meta;
        return writeMeta(rest);
      });
      await rm(p.legacyStore, { force: true });
      if (migrating) options.log('agent.store_migrated', { workspace: id, keys: Object.keys(legacy) });
    }
    if (sandboxed && child.pid) s.sandboxInit = findSandboxPids(child.pid).init;
  }

  /**
   * What the unprivileged agent must own: its key files (read-only inside, still 0600), its
   * socket folder (it creates the socket), and the workspace's files and home — walked once per
   * owner, since after that everything in them is made by the agent itself.
   */
  async function handOver(id: string, user: SandboxUser): Promise<void> {
    const p = paths(id);
    for (const file of [p.agentDir, p.hostKey, p.authorizedKeys]) await chown(file, user.uid, user.gid);
    await chown(p.socketDir, user.uid, user.gid);
    const owner = `${user.uid}:${user.gid}`;
    const meta = await readMeta(id);
    if (meta?.filesOwner === owner) return;
    const changed = (await chownTree(p.files, user)) + (await chownTree(p.home, user));
    await withMeta(id, (current) => writeMeta({ ...current, filesOwner: owner }));
    options.log('workspace.owner', { workspace: id, owner, changed });
  }

  function scheduleRestart(id: string, s: Supervised): void {
    clearTimeout(s.restartTimer);
    const quick = s.startedAt !== undefined && Date.now() - s.startedAt < options.restartDelayMs * 60;
    s.quickFailures = quick ? (s.quickFailures ?? 0) + 1 : 0;
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      launch(id).catch((err: Error) => options.log('agent.restart_failed', { workspace: id, error: err.message }));
    }, restartDelay(options.restartDelayMs, s.quickFailures));
  }

  /** An agent left running by an earlier server process: watch its pid instead of a child handle. */
  function adopt(id: string, pid: number): void {
    const s: Supervised = supervised.get(id) ?? { stopping: false };
    clearInterval(s.pollTimer);
    clearTimeout(s.restartTimer);
    Object.assign(s, { child: undefined, pid, stopping: false, sandboxInit: findSandboxPids(pid).init, ready: Promise.resolve() });
    s.startedAt ??= Date.now();
    supervised.set(id, s);
    s.pollTimer = setInterval(() => {
      if (isProcessAlive(pid)) return;
      clearInterval(s.pollTimer);
      if (s.pid !== pid) return;
      s.pid = undefined;
      options.log('agent.exited', { workspace: id, pid, expected: s.stopping });
      killSandboxInit(s);
      if (!s.stopping && !shuttingDown) scheduleRestart(id, s);
    }, 1000);
    s.pollTimer.unref();
    options.log('agent.adopted', { workspace: id, pid });
  }

  /** Stops the agent: ours, or (`pidHint`, from the metadata) one another replica started. */
  async function terminate(id: string, pidHint?: number): Promise<void> {
    let s = supervised.get(id);
    if (!s && pidHint && isProcessAlive(pidHint)) {
      s = { pid: pidHint, stopping: false };
      supervised.set(id, s);
    }
    if (!s) return;
    // An agent being started has no pid yet: let the start finish, or it outlives the stop.
    await s.launching?.catch(() => {});
    s.stopping = true;
    clearTimeout(s.restartTimer);
    clearInterval(s.pollTimer);
    const pid = s.child?.pid ?? s.pid;
    if (pid && isProcessAlive(pid)) {
      // bwrap does not pass signals on: address the agent inside, and the sandbox's init, itself.
      const sandbox = findSandboxPids(pid);
      // The agent flushes open documents on SIGTERM; kill the whole group only if it hangs.
      try { process.kill(sandbox.agent ?? pid, 'SIGTERM'); } catch { /* already gone */ }
      const deadline = Date.now() + options.stopGraceMs;
      while (isProcessAlive(pid) && Date.now() < deadline) await delay(25);
      if (isProcessAlive(pid)) {
        try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
      }
      // Background jobs keep the sandbox's init alive after the agent is gone: end them too.
      s.sandboxInit ??= sandbox.init;
      killSandboxInit(s);
    }
    // A stopped agent's socket folder would otherwise stay in the temp dir for good.
    await rm(paths(id).socketDir, { recursive: true, force: true });
    supervised.delete(id);
  }

  async function ensureRunning(id: string): Promise<void> {
    const s = supervised.get(id);
    if (s && !s.stopping && isProcessAlive(s.child?.pid ?? s.pid)) {
      await s.ready;
      return;
    }
    await launch(id);
  }

  return {
    kind: 'process',

    async init() {
      await mkdir(root, { recursive: true, mode: 0o700 });
      await options.replicas.start();
      startReconciling();
      for (const id of await readdir(root)) {
        const meta = await readMeta(id).catch(() => undefined);
        if (!meta || meta.desired !== 'running') continue;
        if (meta.agentPid && isProcessAlive(meta.agentPid) && (await tryConnect(paths(id).socket).then((s) => (s?.destroy(), !!s)))) {
          adopt(id, meta.agentPid);
        } else {
          await launch(id).catch((err: Error) => options.log('agent.start_failed', { workspace: id, error: err.message }));
        }
      }
    },

    async create(input: CreateWorkspaceInput) {
      const p = paths(input.id);
      if (existsSync(p.dir)) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
      await mkdir(p.agentDir, { recursive: true, mode: 0o700 });
      await mkdir(p.home, { recursive: true });
      await mkdir(p.files, { recursive: true });
      await writeFile(p.hostKey, input.hostPrivateKey, { mode: 0o600 });
      await writeFile(p.authorizedKeys, input.authorizedKeys, { mode: 0o600 });
      await chmod(p.agentDir, 0o700);
      const meta: StoredMeta = {
        id: input.id,
        name: input.name,
        driver: 'process',
        createdAt: new Date().toISOString(),
        desired: 'running',
        hostPublicKey: input.hostPublicKey,
      };
      await writeMeta(meta);
      await launch(input.id);
      return toRecord(meta);
    },

    async list() {
      const out: WorkspaceRecord[] = [];
      for (const id of await readdir(root).catch(() => [] as string[])) {
        const meta = await readMeta(id).catch(() => undefined);
        if (meta) out.push(toRecord(meta));
      }
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    async get(id) {
      const meta = await readMeta(id);
      return meta && toRecord(meta);
    },

    async start(id) {
      const meta = await withMeta(id, async (m) => {
        const next = { ...m, desired: 'running' as const };
        await writeMeta(next);
        return next;
      });
      await ensureRunning(id);
      return toRecord(meta);
    },

    async stop(id) {
      // Under the launch lock: an agent another replica is starting right now is in the metadata
      // before we read it, and no replica starts one after `desired` says stopped.
      const { meta, pid } = await withLaunchLock(id, () =>
        withMeta(id, async (m) => {
          const next = { ...m, desired: 'stopped' as const, agentPid: undefined };
          await writeMeta(next);
          return { meta: next, pid: m.agentPid };
        }),
      );
      await terminate(id, pid);
      return toRecord(meta);
    },

    async remove(id) {
      const meta = await readMeta(id);
      if (!meta) throw new WharfError('not_found', `workspace "${id}" does not exist`);
      await terminate(id, meta.agentPid);
      await rm(paths(id).dir, { recursive: true, force: true });
      await rm(paths(id).socketDir, { recursive: true, force: true });
    },

    async connect(id) {
      const meta = await readMeta(id);
      if (!meta) throw new WharfError('not_found', `workspace "${id}" does not exist`);
      if (meta.desired !== 'running') throw new WharfError('conflict', `workspace "${id}" is stopped; start it first`);
      let socket = await tryConnect(paths(id).socket);
      if (!socket) {
        await ensureRunning(id);
        socket = await tryConnect(paths(id).socket);
      }
      if (!socket) throw new WharfError('unavailable', `agent of workspace "${id}" is not reachable`);
      return socket;
    },

    async shutdown({ stopAgents }) {
      shuttingDown = true;
      clearInterval(reconcileTimer);
      for (const s of supervised.values()) {
        clearTimeout(s.restartTimer);
        clearInterval(s.pollTimer);
      }
      await options.replicas.stop();
      // The last server out stops the agents; while another replica runs they are its to serve.
      const others = stopAgents && (await options.replicas.others());
      if (others) options.log('agents.left_to_replicas', { replicas: others });
      if (stopAgents && !others) {
        await Promise.all([...supervised.keys()].map((id) => terminate(id)));
        // Only if empty: a replica on the same data dir may still have agents there.
        await rmdir(options.runDir).catch(() => {});
      }
      supervised.clear();
    },
  };
}
