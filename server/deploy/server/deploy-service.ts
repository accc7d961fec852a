import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import {
  isProcessAlive,
  WharfError,
  type CommandInfo,
  type DeployEvent,
  type DeployEventInput,
  type DeployKind,
  type DeployMode,
  type DeployRequest,
  type DeployRun,
  type DeployStatus,
  type FailedCommand,
} from '../../common/index.ts';
import type { AgentConnection } from '../../workspace/index.ts';
import { parseBuilderEndpoint, probeBuilder, removeImage, runBuild, type BuilderEndpoint, type BuilderInfo } from './builder-client.ts';
import { pinCallbackHost } from './callback-host.ts';
import {
  CONTEXT_PREFIX,
  createIgnoreMatcher,
  decideMode,
  MANIFEST_NAMES,
  mergeVariables,
  parseIgnoreFile,
  parseManifest,
  patternsFor,
  validateRelativePath,
  validateVariables,
  type ManifestSection,
} from '../../okteto/index.ts';
import { runCommandsLocally } from './local-runner.ts';
import { createRunLog, summariseRun, type RunLog } from '../index.ts';
import { createRunnerTracker } from './runner-output.ts';
import { packRunnerFiles, runnerBuildArgs, validateImageReference } from './runner-files.ts';
import { createSecretStore, renderSecretScript, type SecretPayload } from './secret-store.ts';
import { openWorkspacePack, readWorkspaceFiles, runInWorkspace } from './workspace-source.ts';
import { askBoard, hostRun, watchRun, type HostedRun } from './run-board-client.ts';

/** What the deploy service needs of workspaces (the WorkspaceService provides it). */
export type DeployWorkspaces = {
  get(id: string): Promise<unknown>;
  agent(id: string): Promise<AgentConnection>;
  updateFeatureData<T>(id: string, key: string, update: (current: T | undefined) => T): Promise<T>;
  readFeatureData<T>(id: string, key: string): Promise<T | undefined>;
};

export type DeployLimits = {
  /** Runs kept per workspace in its metadata. */
  historyRuns: number;
  /** Output kept per run in the stored history. */
  storedLogBytes: number;
  /** Output kept per run in memory for replay while it runs. */
  liveLogBytes: number;
  /** How long a runner's single-use variables token stays valid. */
  secretTtlMs: number;
  builderProbeTimeoutMs: number;
  /** A finished run stays in memory (here and on the agent's run board) this long for late subscribers. */
  finishedRetentionMs: number;
  /** How soon a run whose board channel broke (the agent restarted) is hosted on the board again. */
  boardRetryMs: number;
};

export type DeployServiceOptions = {
  workspaces: DeployWorkspaces;
  builder: string | undefined;
  runnerImage: string;
  adminVariables: Record<string, string>;
  kubeconfigPath: string | undefined;
  /** Base URL the runner (in the build, on the builder's host network) reaches this server at. */
  callbackUrl: () => string;
  limits: DeployLimits;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

/** `ended`: the live stream ended without a `done` (the run's board went away); follow it again. */
export type RunSubscription = { replay: DeployEvent[]; live: boolean; unsubscribe: () => void; ended?: Promise<void> };

const EXTRA_KEY = 'deploys';
const MAX_MANIFEST_BYTES = 1024 * 1024;
const CONTEXT_HINT_BYTES = 50 * 1024 * 1024;
const SERVER_ID = `${hostname()}:${process.pid}`;

/** `host`: the run's place on its workspace agent's run board, where every replica follows it. */
type LiveRun = { run: DeployRun; log: RunLog; abort: AbortController; finished: Promise<void>; host?: HostedRun };

function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
}

function isServerAlive(serverId: string | undefined): boolean {
  if (!serverId) return true;
  const [host, pid] = serverId.split(':');
  if (host !== hostname()) return true;
  return isProcessAlive(Number(pid));
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Turns the builder's error before any command ran into words a user can act on. */
function explainBuildFailure(message: string, image: string): string {
  const bare = image.replace(/^docker\.io\//, '').replace(/:latest$/, '');
  const aboutImage = message.includes(bare) || /load metadata|FROM/i.test(message);
  if (aboutImage && /pull access denied|repository does not exist|not found|manifest unknown|no such host|failed to resolve|failed to do request|dial tcp|name unknown|unauthorized|initializing source/i.test(message)) {
    return `the runner image "${image}" is not available to the builder: it is not among the builder's images and it could not be pulled (${message})`;
  }
  if (/unexpected EOF|archive\/tar|invalid tar|context/i.test(message)) return `the builder rejected the context: ${message}`;
  return `the build failed before any command ran: ${message}`;
}

export type DeployService = ReturnType<typeof createDeployService>;

export function createDeployService(options: DeployServiceOptions) {
  const { workspaces, limits } = options;
  const live = new Map<string, LiveRun>();
  const secretStore = createSecretStore({ ttlMs: limits.secretTtlMs });
  let shuttingDown = false;

  async function persist(workspace: string, run: DeployRun): Promise<void> {
    await workspaces.updateFeatureData<DeployRun[]>(workspace, EXTRA_KEY, (current) => {
      const list = Array.isArray(current) ? current.filter((r) => r.id !== run.id) : [];
      return [run, ...list].sort((a, b) => b.startedAt.localeCompare(a.startedAt)).slice(0, limits.historyRuns);
    });
  }

  /**
   * A stored "running" run that neither this replica nor the workspace's run board has was
   * interrupted (its replica went away, and the board's own record of that has expired). When
   * the board could not be asked (`onBoard` undefined), the stored server id decides, as far as
   * this host can tell.
   */
  function resolveStored(run: DeployRun, onBoard?: boolean): DeployRun {
    if (run.status !== 'running' || live.has(run.id) || onBoard === true) return run;
    if (onBoard === false || run.server === SERVER_ID || !isServerAlive(run.server)) {
      return { ...run, status: 'error', message: run.message ?? 'the run was interrupted: the server running it stopped' };
    }
    return run;
  }

  function beginRun(run: DeployRun): LiveRun {
    const log = createRunLog({ startedAt: Date.parse(run.startedAt), maxOutputBytes: limits.liveLogBytes });
    const entry: LiveRun = { run, log, abort: new AbortController(), finished: Promise.resolve() };
    live.set(run.id, entry);
    return entry;
  }

  function finishRun(entry: LiveRun, outcome: { status: Exclude<DeployStatus, 'running'>; failedCommand?: FailedCommand; message?: string }): void {
    const durationMs = Date.now() - Date.parse(entry.run.startedAt);
    entry.run.status = outcome.status;
    entry.run.durationMs = durationMs;
    if (outcome.failedCommand) entry.run.failedCommand = outcome.failedCommand;
    if (outcome.message) entry.run.message = outcome.message;
    // The board has the final summary before the `done` its watchers stop at.
    entry.host?.send({ t: 'run', run: summariseRun(entry.run) });
    entry.log.emit({ type: 'done', status: outcome.status, failedCommand: outcome.failedCommand, message: outcome.message, durationMs });
    options.log('deploy.done', { id: entry.run.id, workspace: entry.run.workspace || undefined, kind: entry.run.kind, status: outcome.status, durationMs, message: outcome.message });
  }

  function forget(entry: LiveRun): void {
    setTimeout(() => live.delete(entry.run.id), limits.finishedRetentionMs).unref();
  }

  /** Wraps a run's emitter: the first command start also announces the "running" phase. */
  function emitterFor(entry: LiveRun, runningMessage: () => string) {
    let announced = false;
    return (event: DeployEventInput) => {
      if (event.type === 'command-start' && !announced) {
        announced = true;
        entry.log.emit({ type: 'phase', phase: 'running', message: runningMessage() });
      }
      entry.log.emit(event);
    };
  }

  function planRun(entry: LiveRun, kind: DeployKind, section: ManifestSection, mode: DeployMode, reason: string): CommandInfo[] {
    const commands = section.commands.map((c, i) => ({ index: i + 1, name: c.name, command: c.command }));
    entry.run.mode = mode;
    entry.run.commands = commands;
    entry.host?.send({ t: 'run', run: summariseRun(entry.run) });
    entry.log.emit({ type: 'plan', id: entry.run.id, kind, mode, image: mode === 'remote' ? section.image ?? options.runnerImage : undefined, commands });
    entry.log.emit({ type: 'phase', phase: mode === 'remote' ? 'packing' : 'local', message: `${mode === 'remote' ? 'remote' : 'local'} execution: ${reason}` });
    return commands;
  }

  async function prepareBuilder(): Promise<{ endpoint: BuilderEndpoint; info: BuilderInfo }> {
    if (!options.builder) {
      throw new WharfError('unavailable', 'no builder is configured for remote deploys: start the server with --builder unix:///var/run/docker.sock (or set WHARF_BUILDER)');
    }
    const endpoint = parseBuilderEndpoint(options.builder);
    if (!endpoint.ok) throw new WharfError('unavailable', endpoint.error);
    const info = await probeBuilder(endpoint.value, limits.builderProbeTimeoutMs);
    if (!info.ok) throw new WharfError('unavailable', info.error);
    return { endpoint: endpoint.value, info: info.value };
  }

  async function secretsFor(variables: Record<string, string>, runId: string): Promise<{ url: string | undefined; token: string | undefined; extraHosts: string[] }> {
    let kubeconfig: string | undefined;
    if (options.kubeconfigPath) {
      kubeconfig = await readFile(options.kubeconfigPath, 'utf8').catch((err: Error) => {
        throw new WharfError('unavailable', `cannot read the server's kubeconfig ${options.kubeconfigPath}: ${err.message}`);
      });
    }
    if (Object.keys(variables).length === 0 && kubeconfig === undefined) return { url: undefined, token: undefined, extraHosts: [] };
    const payload: SecretPayload = { variables, kubeconfig };
    const { token } = secretStore.issue(payload, runId);
    const base = options.callbackUrl().replace(/\/$/, '');
    return { url: `${base}/api/deploy-secrets/${token}`, token, extraHosts: await pinCallbackHost(base) };
  }

  /**
   * The remote part shared by workspace runs and CLI uploads: generated files + context to the
   * builder, runner output back as events.
   */
  async function runRemote(entry: LiveRun, input: {
    section: ManifestSection;
    commands: CommandInfo[];
    variables: Record<string, string>;
    prepared: { endpoint: BuilderEndpoint; info: BuilderInfo };
    context: () => Promise<{ stream: Readable; summary: Promise<{ ok: true; value: { bytes: number; files: number } } | { ok: false; error: string }> | undefined }>;
  }): Promise<void> {
    const image = input.section.image ?? options.runnerImage;
    const checkedImage = validateImageReference(image);
    if (!checkedImage.ok) return finishRun(entry, { status: 'error', message: checkedImage.error });
    const secrets = await secretsFor(input.variables, entry.run.id);
    const nonce = randomBytes(12).toString('hex');
    try {
      const generated = await packRunnerFiles({ runId: entry.run.id, image, kind: entry.run.kind, commands: input.commands });
      const context = await input.context();
      // Cancelling stops the packing itself (the agent's packer, or the CLI's upload), not only
      // the build: a body generator waiting on the stream would never get to close it.
      const stopPacking = () => context.stream.destroy();
      entry.abort.signal.addEventListener('abort', stopPacking, { once: true });
      let packError: string | undefined;
      void context.summary?.then((summary) => {
        if (!summary.ok) {
          packError = summary.error;
          return;
        }
        const { bytes, files } = summary.value;
        entry.log.emit({
          type: 'context',
          bytes,
          files,
          hint: bytes > CONTEXT_HINT_BYTES ? `the context is ${megabytes(bytes)}: list what the ${entry.run.kind} does not need (node_modules, build output, .git...) in .oktetoignore to send less` : undefined,
        });
      });
      async function* body() {
        yield generated;
        for await (const chunk of context.stream) yield chunk as Buffer;
      }
      const { info, endpoint } = input.prepared;
      entry.log.emit({ type: 'phase', phase: 'building', message: `sending the context to the builder at ${endpoint.display} (${info.engine} ${info.version}${info.buildkit ? ', BuildKit' : ''})` });
      const emit = emitterFor(entry, () => `running ${plural(input.commands.length, 'command')} in ${image}`);
      const tracker = createRunnerTracker({ nonce, commands: input.commands, emit });
      const outcome = await runBuild(
        { endpoint, info, body: Readable.from(body()), buildArgs: runnerBuildArgs({ runId: entry.run.id, nonce, secretsUrl: secrets.url }), extraHosts: secrets.extraHosts, signal: entry.abort.signal },
        {
          onStep: (name) => emit({ type: 'phase', phase: 'building', message: name }),
          onOutput: (source, data) => tracker.feed(source, data),
          onWarning: (message) => emit({ type: 'warning', message: `builder: ${message}` }),
        },
      );
      tracker.flush();
      entry.abort.signal.removeEventListener('abort', stopPacking);
      if (!context.stream.readableEnded) context.stream.destroy();
      if (outcome.imageId) {
        const removed = await removeImage(endpoint, outcome.imageId, limits.builderProbeTimeoutMs);
        if (!removed.ok) options.log('deploy.image_not_removed', { id: entry.run.id, image: outcome.imageId, error: removed.error });
      }
      if (context.summary) {
        // The build failing first can leave the packer's verdict on its way; wait for it briefly.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const summary = await Promise.race([context.summary, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 2000)))]);
        clearTimeout(timer);
        if (summary && !summary.ok) packError = summary.error;
      }
      if (tracker.failed) {
        const f = tracker.failed;
        return finishRun(entry, { status: 'failed', failedCommand: f, message: `command ${f.index} (${f.name}) failed with exit code ${f.exitCode}` });
      }
      if (entry.abort.signal.aborted) return finishRun(entry, { status: 'cancelled', message: 'the run was cancelled' });
      if (outcome.ok) {
        if (tracker.allSucceeded) return finishRun(entry, { status: 'succeeded' });
        return finishRun(entry, { status: 'error', message: 'the build ended, but the runner did not report every command (is /bin/sh in the runner image a POSIX shell?)' });
      }
      if (packError) return finishRun(entry, { status: 'error', message: `packing the context failed: ${packError}` });
      if (tracker.fatal) return finishRun(entry, { status: 'error', message: `the runner could not start the commands: ${tracker.fatal}` });
      if (tracker.running !== undefined) {
        const c = input.commands[tracker.running - 1];
        return finishRun(entry, { status: 'error', message: `the runner stopped during command ${c.index} (${c.name}): ${outcome.message}` });
      }
      if (tracker.started === 0) {
        return finishRun(entry, { status: 'error', message: outcome.requestFailed ? outcome.message : explainBuildFailure(outcome.message, image) });
      }
      return finishRun(entry, { status: 'error', message: `the build failed after the commands: ${outcome.message}` });
    } finally {
      if (secrets.token) secretStore.revoke(secrets.token);
    }
  }

  async function executeWorkspaceRun(entry: LiveRun, request: DeployRequest): Promise<void> {
    const workspace = entry.run.workspace;
    const kind = request.kind;
    entry.log.emit({ type: 'phase', phase: 'reading-manifest', message: `reading ${request.file ?? MANIFEST_NAMES.join(' or ')}` });
    const agent = await workspaces.agent(workspace);
    const candidates = request.file ? [request.file] : [...MANIFEST_NAMES];
    const read = await readWorkspaceFiles(agent, candidates, MAX_MANIFEST_BYTES);
    if (!read.ok) return finishRun(entry, { status: 'error', message: `cannot read the manifest: ${read.error}` });
    const file = candidates.find((name) => typeof read.value[name] === 'string');
    if (!file) {
      return finishRun(entry, {
        status: 'error',
        message: request.file ? `the manifest ${request.file} does not exist in the workspace` : 'there is no okteto.yml (or okteto.yaml) at the root of the workspace',
      });
    }
    const parsed = parseManifest(read.value[file] as string, file);
    if (!parsed.ok) return finishRun(entry, { status: 'error', message: parsed.error.message });
    for (const warning of parsed.value.warnings) entry.log.emit({ type: 'warning', message: warning });
    const section = parsed.value.manifest[kind];
    if (!section) return finishRun(entry, { status: 'error', message: `${file} has no "${kind}" section: there is nothing to ${kind === 'deploy' ? 'deploy' : 'destroy'}` });
    const decision = decideMode({ section, remoteFlag: request.remote, callerVariables: request.variables, adminVariables: options.adminVariables });
    const manifestDir = posix.dirname(file);
    const variables = mergeVariables(options.adminVariables, request.variables);

    if (decision.mode === 'local') {
      const commands = planRun(entry, kind, section, 'local', decision.reason);
      entry.log.emit({ type: 'warning', message: 'local execution is deprecated: the commands run inside the workspace itself. Set "remote: true" in the manifest (or pass --remote) to run them in a clean runner.' });
      if (section.image) entry.log.emit({ type: 'warning', message: `"image: ${section.image}" is not used: the ${kind} runs locally` });
      const emit = emitterFor(entry, () => `running ${plural(commands.length, 'command')} in the workspace`);
      const result = await runCommandsLocally({
        run: (input, onOutput, signal) => runInWorkspace(agent, input, onOutput, signal),
        commands,
        cwd: manifestDir,
        env: variables,
        emit,
        signal: entry.abort.signal,
      });
      if (result.failed) {
        const f = result.failed;
        return finishRun(entry, { status: 'failed', failedCommand: f, message: `command ${f.index} (${f.name}) failed with exit code ${f.exitCode}` });
      }
      if (result.cancelled) return finishRun(entry, { status: 'cancelled', message: 'the run was cancelled' });
      return finishRun(entry, { status: 'succeeded' });
    }

    const commands = planRun(entry, kind, section, 'remote', decision.reason);
    const contextPath = validateRelativePath(posix.join(manifestDir, section.context ?? '.'), `${kind}.context`);
    if (!contextPath.ok) return finishRun(entry, { status: 'error', message: contextPath.error });
    const prepared = await prepareBuilder();
    const ignoreName = contextPath.value === '.' ? '.oktetoignore' : `${contextPath.value}/.oktetoignore`;
    const ignoreRead = await readWorkspaceFiles(agent, [ignoreName], MAX_MANIFEST_BYTES);
    if (!ignoreRead.ok) return finishRun(entry, { status: 'error', message: `cannot read ${ignoreName}: ${ignoreRead.error}` });
    const ignore = parseIgnoreFile(ignoreRead.value[ignoreName] ?? '', ignoreName);
    if (!ignore.ok) return finishRun(entry, { status: 'error', message: ignore.error.message });
    for (const warning of ignore.value.warnings) entry.log.emit({ type: 'warning', message: warning });
    const patterns = patternsFor(ignore.value, kind);
    const manifestInContext = contextPath.value === '.' ? file : posix.relative(contextPath.value, file);
    if (!manifestInContext.startsWith('..') && createIgnoreMatcher(patterns).excludes(manifestInContext)) {
      return finishRun(entry, { status: 'error', message: `${file} is excluded by ${ignoreName}: the ${kind} context must contain its manifest (remove the rule, or add "!${manifestInContext}")` });
    }
    await runRemote(entry, {
      section,
      commands,
      variables,
      prepared,
      context: async () => {
        const pack = await openWorkspacePack(agent, { context: contextPath.value, patterns, prefix: CONTEXT_PREFIX });
        return { stream: pack.stream, summary: pack.summary };
      },
    });
  }

  async function executeUploadRun(entry: LiveRun, request: DeployRequest & { manifest: string; file: string }, tar: Readable): Promise<void> {
    const kind = request.kind;
    entry.log.emit({ type: 'phase', phase: 'reading-manifest', message: `reading ${request.file}` });
    const parsed = parseManifest(request.manifest, request.file);
    if (!parsed.ok) return finishRun(entry, { status: 'error', message: parsed.error.message });
    for (const warning of parsed.value.warnings) entry.log.emit({ type: 'warning', message: warning });
    const section = parsed.value.manifest[kind];
    if (!section) return finishRun(entry, { status: 'error', message: `${request.file} has no "${kind}" section: there is nothing to ${kind}` });
    const commands = planRun(entry, kind, section, 'remote', 'the CLI uploaded its folder for remote execution');
    const prepared = await prepareBuilder();
    await runRemote(entry, {
      section,
      commands,
      variables: mergeVariables(options.adminVariables, request.variables),
      prepared,
      context: async () => ({ stream: tar, summary: undefined }),
    });
  }

  function cancelLocal(entry: LiveRun): void {
    if (entry.log.done) return;
    options.log('deploy.cancel', { id: entry.run.id, workspace: entry.run.workspace });
    entry.abort.abort();
  }

  /**
   * Puts a workspace run on its agent's run board and keeps it there: every event goes on to
   * the board, a cancel from any replica comes back through it, and when the channel breaks
   * while the run goes on (the agent restarted) the run is hosted again with its log so far.
   */
  async function host(entry: LiveRun, events: DeployEvent[]): Promise<ReturnType<typeof hostRun>> {
    const agent = await workspaces.agent(entry.run.workspace);
    const hosted = await hostRun(agent, { run: summariseRun(entry.run), events, retentionMs: limits.finishedRetentionMs, maxOutputBytes: limits.liveLogBytes }, () => cancelLocal(entry));
    if (!hosted.ok) return hosted;
    entry.host = hosted.value;
    const unsubscribe = entry.log.subscribe((event) => hosted.value.send({ t: 'event', event }));
    void hosted.value.closed.then(() => {
      unsubscribe();
      if (entry.host === hosted.value) entry.host = undefined;
      if (!entry.log.done && !shuttingDown) void rehost(entry);
    });
    return hosted;
  }

  async function rehost(entry: LiveRun): Promise<void> {
    while (!entry.log.done && !shuttingDown) {
      await new Promise((r) => setTimeout(r, limits.boardRetryMs));
      if (entry.log.done) return;
      try {
        const again = await host(entry, [...entry.log.events]);
        if (again.ok) {
          options.log('deploy.rehosted', { id: entry.run.id, workspace: entry.run.workspace });
          return;
        }
        // Another run holds the board now: ours was ended as interrupted there; it still finishes here.
        if (again.error.conflict) return;
      } catch {
        // The agent is not back yet.
      }
    }
  }

  /** What the workspace's run board says, or undefined when its agent cannot be asked. */
  async function boardRuns(workspace: string): Promise<Map<string, DeployRun> | undefined> {
    try {
      const reply = await askBoard(await workspaces.agent(workspace), { op: 'list' });
      return reply.ok ? new Map((reply.runs ?? []).map((r) => [r.id, r])) : undefined;
    } catch {
      return undefined;
    }
  }

  function launch(entry: LiveRun, work: () => Promise<void>, onEnd: () => Promise<void> | void): void {
    entry.finished = (async () => {
      try {
        await work();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (!entry.log.done) finishRun(entry, { status: 'error', message });
      }
      if (!entry.log.done) finishRun(entry, { status: 'error', message: 'the run ended without a result' });
      try {
        await onEnd();
      } catch (err) {
        options.log('deploy.persist_failed', { id: entry.run.id, error: (err as Error).message });
      }
      forget(entry);
    })();
  }

  return {
    /** Starts a deploy or destroy of a workspace; the run goes on in the background. */
    async start(workspace: string, request: DeployRequest): Promise<DeployRun> {
      if (shuttingDown) throw new WharfError('unavailable', 'the server is stopping');
      const variables = validateVariables(request.variables);
      if (!variables.ok) throw new WharfError('bad_request', variables.error);
      if (request.file !== undefined) {
        const file = validateRelativePath(request.file, '"file"');
        if (!file.ok) throw new WharfError('bad_request', file.error);
        request = { ...request, file: file.value };
      }
      await workspaces.get(workspace);
      const run: DeployRun = {
        id: newRunId(),
        workspace,
        kind: request.kind,
        mode: null,
        status: 'running',
        startedAt: new Date().toISOString(),
        durationMs: null,
        commands: [],
        server: SERVER_ID,
      };
      const entry = beginRun(run);
      // The board takes one run per workspace, whichever replica asks: that is the 409.
      try {
        const hosted = await host(entry, []);
        if (!hosted.ok) {
          if (hosted.error.conflict) throw new WharfError('conflict', `a deploy or destroy of "${workspace}" is already running`, { id: hosted.error.conflict });
          throw new WharfError('unavailable', `the workspace agent did not take the run: ${hosted.error.error}`);
        }
        await persist(workspace, { ...run, events: [] });
      } catch (err) {
        live.delete(run.id);
        entry.host?.end();
        throw err;
      }
      options.log('deploy.start', { id: run.id, workspace, kind: run.kind });
      launch(
        entry,
        () => executeWorkspaceRun(entry, { ...request, variables: variables.value }),
        async () => {
          const snapshot = entry.log.snapshot(limits.storedLogBytes);
          try {
            await persist(workspace, { ...entry.run, events: snapshot.events, ...(snapshot.truncated ? { logTruncated: true } : {}) });
          } finally {
            entry.host?.end();
          }
        },
      );
      return { ...run };
    },

    /** A run from the CLI's uploaded folder; not kept in any workspace's history. */
    startUpload(
      request: DeployRequest & { manifest: string; file: string },
      tar: Readable,
    ): { run: DeployRun; subscribe: (listener: (event: DeployEvent) => void) => RunSubscription; cancel: () => void } {
      if (shuttingDown) throw new WharfError('unavailable', 'the server is stopping');
      const run: DeployRun = {
        id: newRunId(),
        workspace: '',
        kind: request.kind,
        mode: 'remote',
        status: 'running',
        startedAt: new Date().toISOString(),
        durationMs: null,
        commands: [],
        server: SERVER_ID,
      };
      const entry = beginRun(run);
      options.log('deploy.start', { id: run.id, upload: true, kind: run.kind });
      const subscribe = (listener: (event: DeployEvent) => void): RunSubscription => {
        const replay = [...entry.log.events];
        const unsubscribe = entry.log.done ? () => {} : entry.log.subscribe(listener);
        return { replay, live: !entry.log.done, unsubscribe };
      };
      launch(entry, () => executeUploadRun(entry, request, tar), () => {
        tar.destroy();
      });
      return { run: { ...run }, subscribe, cancel: () => entry.abort.abort() };
    },

    async list(workspace: string): Promise<DeployRun[]> {
      await workspaces.get(workspace);
      const stored = (await workspaces.readFeatureData<DeployRun[]>(workspace, EXTRA_KEY)) ?? [];
      const board = await boardRuns(workspace);
      return stored.map((run) => summariseRun(live.get(run.id)?.run ?? board?.get(run.id) ?? resolveStored(run, board && board.has(run.id))));
    },

    async get(workspace: string, id: string): Promise<DeployRun> {
      const entry = live.get(id);
      if (entry && entry.run.workspace === workspace) return { ...entry.run, events: [...entry.log.events], ...(entry.log.truncated ? { logTruncated: true } : {}) };
      await workspaces.get(workspace);
      let onBoard: boolean | undefined;
      try {
        const reply = await askBoard(await workspaces.agent(workspace), { op: 'get', id });
        if (reply.ok && reply.run) return reply.run;
        onBoard = reply.ok ? undefined : reply.notFound ? false : undefined;
      } catch {
        onBoard = undefined;
      }
      const stored = ((await workspaces.readFeatureData<DeployRun[]>(workspace, EXTRA_KEY)) ?? []).find((r) => r.id === id);
      if (!stored) throw new WharfError('not_found', `no deploy run "${id}" in workspace "${workspace}"`);
      return resolveStored(stored, onBoard);
    },

    /**
     * Cancels a run of this server: its build is aborted (the engine stops the runner) or its
     * local command killed, and it ends as `cancelled`, "the run was cancelled". Waits up to `waitMs`
     * for the run to end and be stored; returns the run as it then is (a run that had already
     * ended is returned unchanged). A run another replica runs is cancelled through the
     * workspace's run board, which passes the request on to that replica.
     */
    async cancel(workspace: string, id: string, waitMs: number): Promise<DeployRun> {
      const entry = live.get(id);
      if (!entry || entry.run.workspace !== workspace) {
        await workspaces.get(workspace);
        const agent = await workspaces.agent(workspace);
        const watch = await watchRun(agent, id, () => {});
        if (!watch) return summariseRun(await this.get(workspace, id));
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          if (watch.run.status === 'running') await askBoard(agent, { op: 'cancel', id });
          await Promise.race([watch.ended, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
        } finally {
          clearTimeout(timer);
          watch.stop();
        }
        return summariseRun(await this.get(workspace, id));
      }
      cancelLocal(entry);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([entry.finished, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
      return summariseRun({ ...entry.run });
    },

    /** Replay, then live events; for a finished or remote-replica run, the stored log only. */
    async subscribe(workspace: string, id: string, listener: (event: DeployEvent) => void): Promise<RunSubscription> {
      const entry = live.get(id);
      if (entry && entry.run.workspace === workspace) {
        const replay = [...entry.log.events];
        const unsubscribe = entry.log.done ? () => {} : entry.log.subscribe(listener);
        return { replay, live: !entry.log.done, unsubscribe };
      }
      await workspaces.get(workspace);
      // Run by another replica (or hosted by us and already forgotten here): follow the board.
      const watch = await watchRun(await workspaces.agent(workspace), id, listener).catch(() => undefined);
      if (watch) return { replay: [], live: true, unsubscribe: watch.stop, ended: watch.ended };
      const run = await this.get(workspace, id);
      const replay = [...(run.events ?? [])];
      if (run.status !== 'running' && !replay.some((e) => e.type === 'done')) {
        replay.push({ type: 'done', at: run.durationMs ?? 0, status: run.status, failedCommand: run.failedCommand, message: run.message, durationMs: run.durationMs ?? 0 });
      }
      return { replay, live: false, unsubscribe: () => {} };
    },

    /** What the CLI needs to decide remote vs local and to run a local deploy itself. */
    settings(): { forceRemote: boolean; adminVariables: Record<string, string> } {
      const decision = decideMode({ section: { commands: [] }, remoteFlag: undefined, callerVariables: {}, adminVariables: options.adminVariables });
      return { forceRemote: decision.mode === 'remote', adminVariables: { ...options.adminVariables } };
    },

    /** For authentication: a live runner token in a `/api/deploy-secrets/<token>` path. */
    secretTokenForPath(pathname: string): { token: string; runId: string; expiresAt: number } | undefined {
      const match = /^\/api\/deploy-secrets\/([A-Za-z0-9_-]+)$/.exec(pathname);
      if (!match) return undefined;
      const found = secretStore.peek(match[1]);
      return found && { token: match[1], ...found };
    },

    /** The runner's single fetch: the sh script with its variables, or undefined (used, expired, unknown). */
    consumeSecret(token: string): string | undefined {
      const payload = secretStore.consume(token);
      return payload && renderSecretScript(payload);
    },

    async shutdown(timeoutMs: number): Promise<void> {
      shuttingDown = true;
      // Runs this replica talks to the builder for cannot outlive it: they end as cancelled, said
      // so on the board (every replica's watchers get the `done`) and in the history.
      for (const entry of live.values()) if (!entry.log.done) entry.abort.abort();
      await Promise.race([Promise.all([...live.values()].map((e) => e.finished)), new Promise((r) => setTimeout(r, timeoutMs))]);
    },
  };
}
