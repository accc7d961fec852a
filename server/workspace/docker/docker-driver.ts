import type { Duplex } from 'node:stream';
import { WharfError, type WorkspaceResources } from '../../common/index.ts';
import { createEngineClient, engineMessage, type EngineEndpoint } from '../../engine-api/index.ts';
import type { CreateWorkspaceInput, WorkspaceDriver, WorkspaceRecord } from '../driver.ts';
import type { ReplicaRegistry } from '../replica-registry.ts';
import { BridgeStream } from './bridge-stream.ts';
import { createEngineCalls } from './engine-calls.ts';
import { GAVE_UP_EXIT_CODE, KEY_ENV, OOM_EXIT_CODE } from '../agent-supervisor.ts';
import { collectRuntime, ensureRuntimeVolume, nodeCommand, pruneRuntimeVolumes, RUNTIME_MOUNT, RUNTIME_VOLUME_PREFIX, shellCommand, SUPERVISOR_SH, type RuntimeFiles } from './runtime-volume.ts';

export type DockerDriverOptions = {
  /** The Docker Engine API (dockerd, or Podman's compatible service). */
  endpoint: EngineEndpoint;
  /**
   * Names this server's workspaces on a shared engine (a label and a name prefix): servers with
   * the same instance see the same workspaces, others never touch them.
   */
  instance: string;
  /** Image of a workspace that names none. */
  image: string;
  /** uid:gid the agent and everything in the workspace run as. */
  user: { uid: number; gid: number };
  /** `none` (default: loopback inside the container only), `host`, or a network's name. */
  network: string;
  /** Limits of a workspace whose create request names none. */
  resources: WorkspaceResources;
  /** The built agent (`agent.mjs` and its native add-ons). */
  agentBundle: string;
  /** The node binary copied into the runtime volume, with the libraries ldd lists for it. */
  nodePath: string;
  extraAgentArgs?: string[];
  agentEnv?: Record<string, string>;
  restartDelayMs: number;
  stopGraceMs: number;
  startTimeoutMs: number;
  /** How often containers are looked at for crashed agents. */
  superviseIntervalMs?: number;
  /** Crashes in a row, each soon after its start, before the workspace is reported as an error. */
  maxQuickCrashes?: number;
  /**
   * Runtime volumes of other builds that no container uses are removed at init once at least
   * this old (default 15 minutes: another server may have just filled one it is about to use).
   */
  runtimePruneMinAgeMs?: number;
  /** Bound of one engine request (not of a connection's life). */
  engineTimeoutMs?: number;
  /** The other servers on this data dir (docs/replicas.md): the last one out stops the containers. */
  replicas?: ReplicaRegistry;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

/** Labels every workspace container and volume carries: the metadata, kept with the workspace. */
export const LABELS = {
  workspace: 'dev.wharf.workspace',
  instance: 'dev.wharf.instance',
  name: 'dev.wharf.name',
  createdAt: 'dev.wharf.created-at',
  hostPublicKey: 'dev.wharf.host-public-key',
  image: 'dev.wharf.image',
  resources: 'dev.wharf.resources',
  runtime: 'dev.wharf.runtime',
  loader: 'dev.wharf.loader',
  /** `bridge.mjs` when the runtime has the bridge program of its own; empty for runtimes made before it (they run `agent.mjs bridge`). */
  bridge: 'dev.wharf.bridge',
} as const;

const WORKSPACE_DIR = '/workspace';
/** How long one bridge exec waits for an agent that does not listen yet (see connectWhenReady). */
const BRIDGE_WAIT_MS = 2000;
const HOME_DIR = '/home/wharf';
/**
 * Key files and the agent's socket: a tmpfs of the agent's user (mode 0700), filled by the
 * supervisor from the container's environment at each start (agent-supervisor.ts). Containers
 * made before had it in their own file system, written through the archive API.
 */
const KEY_DIR = '/run/wharf';
const SOCKET = `${KEY_DIR}/agent.sock`;
/**
 * What the user asked for (running / stopped, and why it is in error): labels cannot change
 * after a container is created, so it is a root-owned file in the container, written and read
 * through the archive API (which works on stopped containers too).
 */
const DESIRED_FILE = '/.wharf-state/desired';

type Desired = { desired: 'running' | 'stopped'; error?: string };

type ContainerState = {
  Status: string;
  Running: boolean;
  Restarting?: boolean;
  OOMKilled: boolean;
  ExitCode: number;
  StartedAt: string;
  FinishedAt: string;
  Error?: string;
};
type ContainerInfo = { Id: string; Name: string; State: ContainerState; Config: { Labels: Record<string, string> | null }; HostConfig: Record<string, unknown> };

/** Same rule as the process driver's: double the wait per quick crash in a row, bounded. */
function restartDelay(baseMs: number, quickFailures: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, quickFailures - 1), baseMs * 60);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function formatBytes(bytes: number): string {
  for (const [unit, size] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}`;
}

/**
 * Workspaces as containers of a Docker Engine API (Docker or Podman): a container from the
 * workspace's image plus a named volume at /workspace; the agent runs in it from a read-only
 * runtime volume, and is reached only through an exec of its stdio bridge.
 */
export function createDockerDriver(options: DockerDriverOptions): WorkspaceDriver {
  const client = createEngineClient(options.endpoint);
  const engine = createEngineCalls(client, options.engineTimeoutMs ?? 60_000);
  const prefix = `wharf-${options.instance}`;
  const containerName = (id: string) => `${prefix}-${id}`;
  const volumeName = (id: string) => `${prefix}-${id}`;
  const superviseMs = options.superviseIntervalMs ?? 1000;
  const maxQuickCrashes = options.maxQuickCrashes ?? 5;
  /** Agents known to answer, by workspace: the container start they answered in. */
  const ready = new Map<string, string>();
  const probing = new Set<string>();
  /** Workspaces this process is stopping or removing: the supervisor leaves them alone. */
  const busy = new Set<string>();
  const launching = new Map<string, Promise<void>>();
  /**
   * The bridge a start opened to see its agent answer, kept a few seconds for the connect that
   * usually follows (a create's first request): each bridge is a node process started in the
   * container, a good part of a create's time. Unread: the agent's SSH banner waits in it.
   */
  const spares = new Map<string, { stream: Duplex; timer: NodeJS.Timeout }>();
  const SPARE_MS = 5000;
  function dropSpare(id: string): void {
    const spare = spares.get(id);
    if (!spare) return;
    spares.delete(id);
    clearTimeout(spare.timer);
    spare.stream.destroy();
  }
  function keepSpare(id: string, stream: Duplex): void {
    dropSpare(id);
    stream.on('error', () => {});
    const timer = setTimeout(() => dropSpare(id), SPARE_MS);
    timer.unref();
    spares.set(id, { stream, timer });
    stream.once('close', () => {
      if (spares.get(id)?.stream === stream) {
        clearTimeout(timer);
        spares.delete(id);
      }
    });
  }
  /** The spare bridge of `id` if it is still whole (nothing read from it, nothing ended). */
  function takeSpare(id: string): Duplex | undefined {
    const spare = spares.get(id);
    if (!spare) return undefined;
    spares.delete(id);
    clearTimeout(spare.timer);
    if (spare.stream.destroyed || spare.stream.readableEnded || spare.stream.writableEnded) {
      spare.stream.destroy();
      return undefined;
    }
    return spare.stream;
  }
  const crashes = new Map<string, { quick: number; next: number }>();
  let tmpfsOwnerOption: Promise<string> | undefined;
  /**
   * How a tmpfs is made the agent's user's: dockerd takes tmpfs's own `uid=`/`gid=` and Podman
   * refuses them ("unknown mount option"), taking its `U` (chown to the container's user) instead.
   */
  function tmpfsOwner(): Promise<string> {
    tmpfsOwnerOption ??= engine
      .json<{ Components?: Array<{ Name?: string }> }>('cannot ask the container engine its version', 'GET', '/version')
      .then((v) => ((v.Components ?? []).some((c) => /podman/i.test(c.Name ?? '')) ? 'U' : `uid=${options.user.uid},gid=${options.user.gid}`))
      .catch((err: unknown) => {
        tmpfsOwnerOption = undefined;
        throw err;
      });
    return tmpfsOwnerOption;
  }
  let runtime: Promise<RuntimeFiles> | undefined;
  const runtimeVolumes = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let shuttingDown = false;

  const labelFilter = (extra: string[] = []) => JSON.stringify({ label: [`${LABELS.instance}=${options.instance}`, ...extra] });

  async function inspect(id: string): Promise<ContainerInfo | undefined> {
    const r = await engine.call('GET', `/containers/${encodeURIComponent(containerName(id))}/json`);
    if (r.status === 404) return undefined;
    const info = (await engine.expectOk(`cannot look at workspace "${id}"`, Promise.resolve(r))).text;
    const parsed = JSON.parse(info) as ContainerInfo;
    const labels = parsed.Config.Labels ?? {};
    // Only ours: a container of that name made by someone else is no workspace of this server.
    if (labels[LABELS.instance] !== options.instance || labels[LABELS.workspace] !== id) return undefined;
    return parsed;
  }

  async function readDesired(id: string): Promise<Desired> {
    const text = await engine.readFile(containerName(id), DESIRED_FILE).catch(() => undefined);
    try {
      const parsed = JSON.parse(text ?? '') as Desired;
      if (parsed.desired === 'running' || parsed.desired === 'stopped') return parsed;
    } catch {
      // absent or unreadable: a workspace is meant to run unless it was stopped
    }
    return { desired: 'running' };
  }

  function writeDesired(id: string, desired: Desired): Promise<void> {
    return engine.putArchive(containerName(id), '/', [
      { name: '.wharf-state/', type: 'directory', mode: 0o755 },
      { name: '.wharf-state/desired', mode: 0o644, body: JSON.stringify(desired) },
    ]);
  }

  /** The engine's flag, or the supervisor's word for it (it exits so when the kernel killed the agent for memory). */
  function outOfMemory(info: ContainerInfo): boolean {
    return info.State.OOMKilled || info.State.ExitCode === OOM_EXIT_CODE;
  }

  function oomReason(info: ContainerInfo): string {
    const memory = Number(info.HostConfig.Memory ?? 0);
    return `out of memory: a process of the workspace went over its memory limit${memory ? ` (${formatBytes(memory)})` : ''} and the kernel killed it, which stopped the workspace; start it again (or give it more memory)`;
  }

  function toRecord(id: string, info: ContainerInfo, desired: Desired): WorkspaceRecord {
    const labels = info.Config.Labels ?? {};
    const state = info.State;
    let status: WorkspaceRecord['status'];
    let statusReason: string | undefined;
    if (state.Running && !state.Restarting) {
      if (desired.desired === 'stopped' || ready.get(id) === state.StartedAt) status = 'running';
      else {
        status = 'starting';
        void probe(id, state.StartedAt);
      }
    } else if (desired.desired === 'stopped') status = 'stopped';
    else if (state.Status === 'exited' && outOfMemory(info)) {
      status = 'error';
      statusReason = oomReason(info);
    } else if (state.Status === 'exited' && state.ExitCode === GAVE_UP_EXIT_CODE) {
      status = 'error';
      statusReason = `the agent crashed ${maxQuickCrashes} times in a row, each soon after it started; see the container's log (docker logs ${containerName(id)}), then start the workspace again`;
    } else if (desired.error) {
      status = 'error';
      statusReason = desired.error;
    } else status = 'starting';
    let resources: WorkspaceResources | undefined;
    try {
      resources = labels[LABELS.resources] ? (JSON.parse(labels[LABELS.resources]) as WorkspaceResources) : undefined;
    } catch {
      resources = undefined;
    }
    return {
      id,
      name: labels[LABELS.name] ?? id,
      driver: 'docker',
      createdAt: labels[LABELS.createdAt] ?? '',
      desired: desired.desired,
      status,
      ...(statusReason ? { statusReason } : {}),
      hostPublicKey: labels[LABELS.hostPublicKey] ?? '',
      image: labels[LABELS.image],
      resources,
    };
  }

  async function record(id: string): Promise<WorkspaceRecord | undefined> {
    const info = await inspect(id);
    return info && toRecord(id, info, await desiredOf(id, info));
  }

  /**
   * The desired state, read from the container only when it matters: for a running container it
   * does not (toRecord goes by readiness), and reading it is an archive request, which the engine
   * serves by re-executing itself (about 40 ms, measured): once per get, per listed workspace and
   * per connect before this.
   */
  async function desiredOf(id: string, info: ContainerInfo): Promise<Desired> {
    return info.State.Running && !info.State.Restarting ? { desired: 'running' } : readDesired(id);
  }

  async function requireInfo(id: string): Promise<ContainerInfo> {
    const info = await inspect(id);
    if (!info) throw new WharfError('not_found', `workspace "${id}" does not exist`);
    return info;
  }

  /** This server's runtime as files (collected once; again after a failure, e.g. an agent not built yet). */
  function ensureRuntimeFiles(): Promise<RuntimeFiles> {
    runtime ??= collectRuntime(options.nodePath, options.agentBundle).then((files) => {
      if (!files.shell) throw new WharfError('unavailable', `the docker driver runs the agent's supervisor with the server's shell, and none could be carried into workspaces: dash or /bin/sh, linked with the dynamic loader of ${options.nodePath}`);
      return files;
    }).catch((err: unknown) => {
      runtime = undefined;
      throw err;
    });
    return runtime;
  }

  async function ensureRuntime(image: string): Promise<RuntimeFiles> {
    const files = await ensureRuntimeFiles();
    const name = `${RUNTIME_VOLUME_PREFIX}${files.hash}`;
    let filling = runtimeVolumes.get(name);
    // Filled once, but a volume can go ("docker volume rm", an engine reset): a create would then
    // mount an empty one made on the fly, and its agent could not start. So it is looked at again.
    if (filling && (await engine.call('GET', `/volumes/${encodeURIComponent(name)}`)).status === 404) {
      runtimeVolumes.delete(name);
      filling = undefined;
    }
    if (!filling) {
      filling = ensureRuntimeVolume(engine, { name, image, runtime: files, labels: { [LABELS.runtime]: files.hash }, log: options.log });
      runtimeVolumes.set(name, filling);
      filling.catch(() => runtimeVolumes.delete(name));
    }
    await filling;
    return files;
  }

  /**
   * The exec that reaches the agent. `waitMs`: how long the bridge keeps trying while the agent
   * does not listen yet (just after a start), so that one exec connects the moment it does.
   */
  function bridgeCommand(labels: Record<string, string> | null | undefined, waitMs: number): string[] {
    const program = labels?.[LABELS.bridge] === 'bridge.mjs' ? [`${RUNTIME_MOUNT}/agent/bridge.mjs`] : [`${RUNTIME_MOUNT}/agent/agent.mjs`, 'bridge'];
    return [...nodeCommand(labels?.[LABELS.loader] || undefined), ...program, '--socket', SOCKET, '--wait-ms', String(Math.max(0, Math.round(waitMs)))];
  }

  /** One exec of the agent's bridge; undefined when the agent did not answer (not listening yet). */
  async function openBridge(id: string, labels: Record<string, string> | null | undefined, waitMs = 0, onStarted?: () => void): Promise<BridgeStream | undefined> {
    const created = await engine.call('POST', `/containers/${encodeURIComponent(containerName(id))}/exec`, {
      json: { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: bridgeCommand(labels, waitMs) },
    });
    // Not running (409) or gone (404): the caller looks at the container again.
    if (created.status === 404 || created.status === 409) return undefined;
    const execId = (JSON.parse((await engine.expectOk(`cannot reach the agent of workspace "${id}"`, Promise.resolve(created))).text) as { Id: string }).Id;
    const hijacked = await engine.hijack({ path: `/exec/${execId}/start`, json: { Detach: false, Tty: false }, timeoutMs: options.engineTimeoutMs ?? 60_000 });
    if (!hijacked.ok) throw new WharfError('unavailable', `cannot reach the agent of workspace "${id}": ${hijacked.error.message}`);
    onStarted?.();
    const stream = new BridgeStream(hijacked.value);
    stream.on('close', () => {
      if (stream.stderr.trim()) options.log('bridge.stderr', { workspace: id, text: stream.stderr.trim().slice(0, 500) });
    });
    if (await stream.answered) return stream;
    stream.on('error', () => {});
    stream.destroy();
    return undefined;
  }

  /** Waits until the agent answers through a bridge (it listens), or says why it does not. */
  async function connectWhenReady(id: string, timeoutMs: number): Promise<Duplex> {
    return (await reachAgent(id, timeoutMs, { markReady: true })).stream;
  }

  /**
   * connectWhenReady, and the start of the container whose agent answered. `onExecStarted`: told
   * once a bridge exec runs (the engine then does other work on the container beside it).
   */
  async function reachAgent(id: string, timeoutMs: number, how: { markReady: boolean; onExecStarted?: () => void }): Promise<{ stream: Duplex; startedAt: string }> {
    const deadline = Date.now() + timeoutMs;
    let last: ContainerInfo | undefined;
    while (Date.now() < deadline) {
      last = await requireInfo(id);
      if (last.State.Running) {
        // Up to 2 s per exec: long enough for an agent that is starting, short enough to look at
        // the container again soon when it is not going to (it exited, or its supervisor gave up).
        const stream = await openBridge(id, last.Config.Labels, Math.min(BRIDGE_WAIT_MS, Math.max(0, deadline - Date.now())), how.onExecStarted);
        if (stream) {
          if (how.markReady) ready.set(id, last.State.StartedAt);
          return { stream, startedAt: last.State.StartedAt };
        }
      } else if (last.State.Status !== 'created' && !last.State.Restarting && !launching.has(id)) break;
      await delay(200);
    }
    const logs = await engine.call('GET', `/containers/${encodeURIComponent(containerName(id))}/logs`, { query: { stdout: '1', stderr: '1', tail: '20' } }).catch(() => undefined);
    const tail = logs ? logs.text.replace(/[\x00-\x08\x0e-\x1f]/g, '').trim().slice(-2000) : '';
    const why = last && !last.State.Running ? (outOfMemory(last) ? oomReason(last) : `the container exited (code ${last.State.ExitCode}${last.State.Error ? `, ${last.State.Error}` : ''})`) : 'the agent did not answer in time';
    throw new WharfError('unavailable', `agent of workspace "${id}" did not start: ${why}`, { log: tail });
  }

  async function probe(id: string, startedAt: string): Promise<void> {
    // A launch says when its agent is ready itself (after what it does alongside, see launch).
    if (probing.has(id) || shuttingDown || launching.has(id)) return;
    probing.add(id);
    try {
      const info = await inspect(id);
      if (!info?.State.Running || info.State.StartedAt !== startedAt) return;
      const stream = await openBridge(id, info.Config.Labels);
      if (stream) {
        ready.set(id, startedAt);
        stream.on('error', () => {});
        stream.destroy();
      }
    } catch {
      // the next look tries again
    } finally {
      probing.delete(id);
    }
  }

  /**
   * Starts the container (one start at a time per workspace) and waits for its agent.
   * `alongside`: work on the container done while its agent starts (a create's folders: the
   * engine does one thing at a time for a container until the start returns, but an archive
   * request then runs beside the agent's own start); the workspace is ready when both are done.
   */
  function launch(id: string, alongside?: () => Promise<void>): Promise<void> {
    if (shuttingDown) return Promise.reject(new WharfError('unavailable', 'the server is shutting down'));
    let pending = launching.get(id);
    if (!pending) {
      pending = (async () => {
        const r = await engine.call('POST', `/containers/${encodeURIComponent(containerName(id))}/start`, { timeoutMs: Math.max(options.startTimeoutMs, 60_000) });
        // 304: already running.
        if (r.status !== 304) await engine.expectOk(`cannot start workspace "${id}"`, Promise.resolve(r));
        options.log('agent.started', { workspace: id });
        // Begun once the first bridge exec runs, not before: the engine would make that exec wait
        // for the archive (measured: 46 ms instead of 2), and the bridge's start is on the way to ready.
        let beside: Promise<void> | undefined;
        const startBeside = () => {
          if (!alongside || beside) return;
          beside = alongside();
          beside.catch(() => {});
        };
        const { stream, startedAt } = await reachAgent(id, options.startTimeoutMs, { markReady: !alongside, onExecStarted: startBeside });
        startBeside();
        if (beside) {
          try {
            await beside;
          } catch (err) {
            stream.destroy();
            throw err;
          }
          ready.set(id, startedAt);
        }
        keepSpare(id, stream);
      })().finally(() => launching.delete(id));
      launching.set(id, pending);
    }
    return pending;
  }

  async function stopContainer(id: string): Promise<void> {
    dropSpare(id);
    const grace = Math.max(1, Math.ceil(options.stopGraceMs / 1000));
    const r = await engine.call('POST', `/containers/${encodeURIComponent(containerName(id))}/stop`, { query: { t: String(grace) }, timeoutMs: options.stopGraceMs + 60_000 });
    if (r.status !== 304 && r.status !== 404) await engine.expectOk(`cannot stop workspace "${id}"`, Promise.resolve(r));
    ready.delete(id);
  }

  /**
   * Supervision of containers (a crashed agent is restarted inside its container by the
   * supervisor, agent-supervisor.ts): a container meant to run that exited is started again after a backoff, unless
   * the kernel killed it for memory (the user must know: it is reported as an error) or its
   * agent keeps dying soon after each start (then too).
   */
  async function supervise(): Promise<void> {
    const r = await engine.call('GET', '/containers/json', { query: { all: '1', filters: labelFilter() } });
    if (r.status !== 200) return;
    const now = Date.now();
    for (const summary of JSON.parse(r.text) as Array<{ Labels: Record<string, string>; State: string }>) {
      const id = summary.Labels[LABELS.workspace];
      if (!id || busy.has(id) || launching.has(id) || !['exited', 'dead'].includes(summary.State)) continue;
      const info = await inspect(id);
      if (!info || info.State.Running || outOfMemory(info) || info.State.ExitCode === GAVE_UP_EXIT_CODE) continue;
      const desired = await readDesired(id);
      if (desired.desired !== 'running' || desired.error) continue;
      const crash = crashes.get(id);
      if (crash && now < crash.next) continue;
      if (!crash || crash.next === 0) {
        // A new crash: when did it happen, and how soon after its start?
        const lived = Date.parse(info.State.FinishedAt) - Date.parse(info.State.StartedAt);
        const quick = lived >= 0 && lived < options.restartDelayMs * 60 ? (crash?.quick ?? 0) + 1 : 0;
        options.log('agent.exited', { workspace: id, code: info.State.ExitCode, livedMs: lived });
        if (quick >= maxQuickCrashes) {
          const error = `the agent crashed ${quick} times in a row, each soon after it started (last exit code ${info.State.ExitCode}); see the server log, then start the workspace again`;
          await writeDesired(id, { desired: 'running', error }).catch(() => {});
          crashes.delete(id);
          options.log('agent.gave_up', { workspace: id, error });
          continue;
        }
        crashes.set(id, { quick, next: now + restartDelay(options.restartDelayMs, Math.max(quick, 1)) });
        continue;
      }
      crash.next = 0;
      launch(id).catch((err: Error) => options.log('agent.restart_failed', { workspace: id, error: err.message }));
    }
  }

  function startSupervising(): void {
    let running = false;
    timer = setInterval(() => {
      if (running || shuttingDown) return;
      running = true;
      supervise()
        .catch((err: Error) => options.log('supervise.failed', { error: err.message }))
        .finally(() => (running = false));
    }, superviseMs);
    timer.unref();
  }

  async function listIds(): Promise<string[]> {
    const list = await engine.json<Array<{ Labels: Record<string, string> }>>('cannot list workspaces', 'GET', '/containers/json', { query: { all: '1', filters: labelFilter() } });
    return [...new Set(list.map((c) => c.Labels[LABELS.workspace]).filter((id): id is string => !!id))];
  }

  function containerSpec(input: CreateWorkspaceInput & { image: string; resources: WorkspaceResources }, files: RuntimeFiles, createdAt: string, owner: string) {
    const { uid, gid } = options.user;
    const [entrypoint, ...command] = [
      // init → supervisor (the runtime's sh) → agent: see agent-supervisor.ts.
      ...shellCommand(files.loader),
      SUPERVISOR_SH, SOCKET, String(options.restartDelayMs), String(maxQuickCrashes), nodeCommand(files.loader).join(' '), KEY_DIR, '--',
      ...nodeCommand(files.loader),
      `${RUNTIME_MOUNT}/agent/agent.cjs`,
      '--socket', SOCKET,
      '--root', WORKSPACE_DIR,
      '--home', HOME_DIR,
      '--host-key', `${KEY_DIR}/host_key`,
      '--authorized-keys', `${KEY_DIR}/authorized_keys`,
      ...(options.extraAgentArgs ?? []),
    ];
    const labels = {
      [LABELS.workspace]: input.id,
      [LABELS.instance]: options.instance,
      [LABELS.name]: input.name,
      [LABELS.createdAt]: createdAt,
      [LABELS.hostPublicKey]: input.hostPublicKey,
      [LABELS.image]: input.image,
      [LABELS.resources]: JSON.stringify(input.resources),
      [LABELS.runtime]: files.hash,
      [LABELS.loader]: files.loader ?? '',
      [LABELS.bridge]: files.entries.some((e) => e.name === 'agent/bridge.mjs') ? 'bridge.mjs' : '',
    };
    // The keys as the supervisor takes them (it unsets them before the agent starts). Only who
    // may use the engine sees a container's environment, and can exec into it anyway.
    const env = Object.entries({ ...(options.agentEnv ?? {}), HOME: HOME_DIR, USER: 'wharf', [KEY_ENV.hostKey]: input.hostPrivateKey.trim(), [KEY_ENV.authorizedKeys]: input.authorizedKeys.trim() })
      // The server's PATH names the server's folders; the image's (or the engine's default) fits the image.
      .filter(([name]) => name !== 'PATH')
      .map(([name, value]) => `${name}=${value}`);
    const { cpus, memory, pids, disk } = input.resources;
    return {
      labels,
      body: {
        Image: input.image,
        Entrypoint: [entrypoint],
        Cmd: command,
        User: `${uid}:${gid}`,
        WorkingDir: WORKSPACE_DIR,
        Env: env,
        Labels: labels,
        HostConfig: {
          // An init as PID 1 (docker-init / catatonit): the agent can be killed, and orphans are reaped.
          Init: true,
          NetworkMode: options.network,
          Mounts: [
            { Type: 'volume', Source: volumeName(input.id), Target: WORKSPACE_DIR },
            { Type: 'volume', Source: `${RUNTIME_VOLUME_PREFIX}${files.hash}`, Target: RUNTIME_MOUNT, ReadOnly: true },
          ],
          // The keys' folder in memory, the agent's alone (the supervisor writes into it; the container's user could not create it).
          Tmpfs: { [KEY_DIR]: `rw,nosuid,nodev,noexec,size=1m,mode=0700,${owner}` },
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
          RestartPolicy: { Name: 'no' },
          ...(cpus ? { NanoCpus: Math.round(cpus * 1e9) } : {}),
          // No swap beyond the limit: an over-limit workspace is stopped, not slowed to a crawl.
          ...(memory ? { Memory: memory, MemorySwap: memory } : {}),
          ...(pids ? { PidsLimit: pids } : {}),
          ...(disk ? { StorageOpt: { size: String(disk) } } : {}),
        },
      },
    };
  }

  async function removeAll(id: string): Promise<void> {
    dropSpare(id);
    const gone = await engine.call('DELETE', `/containers/${encodeURIComponent(containerName(id))}`, { query: { force: '1', v: '1' }, timeoutMs: options.stopGraceMs + 60_000 });
    if (gone.status !== 404) await engine.expectOk(`cannot remove the container of workspace "${id}"`, Promise.resolve(gone));
    const volume = await engine.call('DELETE', `/volumes/${encodeURIComponent(volumeName(id))}`, { query: { force: '1' } });
    if (volume.status !== 404) await engine.expectOk(`cannot remove the volume of workspace "${id}"`, Promise.resolve(volume));
    ready.delete(id);
    crashes.delete(id);
  }

  return {
    kind: 'docker',

    async init() {
      const ping = await engine.call('GET', '/_ping');
      if (ping.status !== 200) throw new WharfError('unavailable', `the container engine at ${options.endpoint.display} does not answer /_ping (${ping.status})`);
      await options.replicas?.start();
      for (const id of await listIds()) {
        const info = await inspect(id);
        if (!info) continue;
        const desired = await desiredOf(id, info);
        if (info.State.Running) {
          // Adopted as it is: its agent and terminals live on.
          void probe(id, info.State.StartedAt);
          options.log('agent.adopted', { workspace: id });
        } else if (desired.desired === 'running' && !desired.error && !outOfMemory(info) && info.State.ExitCode !== GAVE_UP_EXIT_CODE) {
          await launch(id).catch((err: Error) => options.log('agent.start_failed', { workspace: id, error: err.message }));
        }
      }
      startSupervising();
      // In the background: the runtime is collected (hashed) first, and nothing waits for this.
      void (async () => {
        const files = await ensureRuntimeFiles();
        await pruneRuntimeVolumes(engine, { keep: `${RUNTIME_VOLUME_PREFIX}${files.hash}`, label: LABELS.runtime, minAgeMs: options.runtimePruneMinAgeMs ?? 15 * 60_000, log: options.log });
      })().catch((err: Error) => options.log('runtime.prune_failed', { error: err.message }));
    },

    async create(input) {
      const image = input.image ?? options.image;
      const resources = { ...options.resources, ...(input.resources ?? {}) };
      if (await inspect(input.id)) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
      const found = await engine.call('GET', `/images/${encodeURIComponent(image)}/json`);
      if (found.status === 404) throw new WharfError('bad_request', `the image "${image}" is not on the container engine (${options.endpoint.display}): pull or import it there first`);
      const files = await ensureRuntime(image);
      const createdAt = new Date().toISOString();
      const spec = containerSpec({ ...input, image, resources }, files, createdAt, await tmpfsOwner());
      // A volume of an earlier create that failed half-way holds nothing of anyone's.
      await engine.call('DELETE', `/volumes/${encodeURIComponent(volumeName(input.id))}`);
      await engine.expectOk(`cannot create the volume of workspace "${input.id}"`, engine.call('POST', '/volumes/create', { json: { Name: volumeName(input.id), Labels: spec.labels } }));
      busy.add(input.id);
      try {
        const created = await engine.call('POST', '/containers/create', { query: { name: containerName(input.id) }, json: spec.body, timeoutMs: 10 * 60_000 });
        if (created.status === 409) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
        if (created.status >= 400 && disk(resources) && /storage.?opt|quota|size/i.test(created.text)) {
          throw new WharfError('bad_request', `a disk limit is not supported by this engine's storage driver (${options.endpoint.display}): ${engineMessage(created.text).slice(0, 300)}; create the workspace without "disk"`);
        }
        await engine.expectOk(`cannot create the container of workspace "${input.id}"`, Promise.resolve(created));
        const { uid, gid } = options.user;
        busy.delete(input.id);
        // The volume and the home folder become the user's while the agent starts: it needs
        // neither to start (its keys and socket are in the tmpfs), and the create waits for both.
        // (Before the start this request cost ~55 ms of every create; during the start call the
        // engine does one at a time, measured.) No desired state is written: none is "running".
        await launch(input.id, () =>
          engine.putArchive(containerName(input.id), '/', [
            { name: 'workspace/', type: 'directory', mode: 0o755, uid, gid },
            { name: 'home/', type: 'directory', mode: 0o755 },
            { name: 'home/wharf/', type: 'directory', mode: 0o700, uid, gid },
          ]),
        );
      } catch (err) {
        busy.delete(input.id);
        if (!(err instanceof WharfError && err.code === 'conflict')) await removeAll(input.id).catch(() => {});
        throw err;
      }
      return (await record(input.id)) as WorkspaceRecord;
    },

    async list() {
      const out: WorkspaceRecord[] = [];
      for (const id of await listIds()) {
        const found = await record(id).catch(() => undefined);
        if (found) out.push(found);
      }
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    get: (id) => record(id),

    async start(id) {
      await requireInfo(id);
      await writeDesired(id, { desired: 'running' });
      crashes.delete(id);
      await launch(id);
      return (await record(id)) as WorkspaceRecord;
    },

    async stop(id) {
      await requireInfo(id);
      busy.add(id);
      try {
        await writeDesired(id, { desired: 'stopped' });
        await launching.get(id)?.catch(() => {});
        await stopContainer(id);
      } finally {
        busy.delete(id);
      }
      return (await record(id)) as WorkspaceRecord;
    },

    async remove(id) {
      await requireInfo(id);
      busy.add(id);
      try {
        await launching.get(id)?.catch(() => {});
        // The private key and authorized_keys live in the container's own files: gone with it.
        await removeAll(id);
      } finally {
        busy.delete(id);
      }
    },

    async connect(id) {
      const info = await requireInfo(id);
      // A stop by another replica writes "stopped" before it stops the container: a connect in
      // between gets an agent that goes with the container, as one a moment earlier would.
      const desired = await desiredOf(id, info);
      if (desired.desired !== 'running') throw new WharfError('conflict', `workspace "${id}" is stopped; start it first`);
      const current = toRecord(id, info, desired);
      if (current.status === 'error') throw new WharfError('unavailable', `workspace "${id}" is in error: ${current.statusReason}`);
      if (!info.State.Running && !launching.has(id)) await launch(id);
      await launching.get(id)?.catch(() => {});
      return takeSpare(id) ?? connectWhenReady(id, options.startTimeoutMs);
    },

    async shutdown({ stopAgents }) {
      shuttingDown = true;
      for (const id of [...spares.keys()]) dropSpare(id);
      clearInterval(timer);
      await Promise.all([...launching.values()].map((p) => p.catch(() => {})));
      await options.replicas?.stop();
      const others = stopAgents && options.replicas ? await options.replicas.others() : 0;
      if (others) options.log('agents.left_to_replicas', { replicas: others });
      if (stopAgents && !others) {
        // Desired states stay: the next server start brings up what was meant to run.
        for (const id of await listIds().catch(() => [] as string[])) await stopContainer(id).catch(() => {});
      }
    },
  };
}

function disk(resources: WorkspaceResources): boolean {
  return resources.disk !== undefined;
}
