import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseWorkspaceResources, type WorkspaceResources } from '../common/index.ts';

/** The checkout (or install) this server runs from: where `npm run build` leaves its artifacts. */
const CODE_ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

/** A DNS name under which preview origins are made: lower-case labels, no scheme, port or wildcard. */
function parsePreviewDomain(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const domain = raw.trim().toLowerCase().replace(/\.$/, '');
  if (!/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(domain)) {
    throw new Error(`--preview-domain: expected a domain like preview.example.com whose subdomains reach this server (got "${raw}")`);
  }
  return domain;
}

export type SandboxMode = 'auto' | 'bwrap' | 'none';

/** Workspace drivers this server can be configured with. */
export const DRIVER_KINDS = ['process', 'docker', 'kubernetes'] as const;
export type DriverKind = (typeof DRIVER_KINDS)[number];
const AVAILABLE_DRIVERS: readonly DriverKind[] = ['process', 'docker', 'kubernetes'];

/** Settings of each driver, grouped by driver; only the chosen one's are used. */
export type DriverSettings = {
  process: {
    /** Bubblewrap around each workspace (`--sandbox`, `WHARF_SANDBOX`). */
    sandbox: SandboxMode;
    /**
     * uid:gid that sandboxed workspace processes run as when the server runs as root
     * (`--sandbox-user`, `WHARF_SANDBOX_USER`; default 65534:65534, "nobody"; 0 keeps root).
     */
    sandboxUser: { uid: number; gid: number };
    /** The user's private runtime dir (`XDG_RUNTIME_DIR`): agent sockets go there when the data dir's path is too long. */
    runtimeDir: string | undefined;
  };
  docker: {
    /** Docker Engine API of the workspaces, Docker or Podman (`--docker-host`, `WHARF_DOCKER_HOST`; default unix:///var/run/docker.sock). */
    host: string;
    /** Image of a workspace whose create request names none (`--workspace-image`, `WHARF_WORKSPACE_IMAGE`; required with --driver docker). */
    image: string;
    /** uid:gid workspace containers run as (`--workspace-user`, `WHARF_WORKSPACE_USER`; default 65534:65534; 0 is refused). */
    user: { uid: number; gid: number };
    /** Network of workspace containers (`--workspace-network`, `WHARF_WORKSPACE_NETWORK`; default none). */
    network: string;
    /**
     * Default limits of a workspace (`--workspace-cpus`, `--workspace-memory`, `--workspace-pids`,
     * `--workspace-disk`, and `WHARF_WORKSPACE_CPUS` … likewise); a create request may name its own.
     */
    resources: WorkspaceResources;
  };
  kubernetes: {
    /**
     * The cluster of the workspaces (`--kubeconfig`, `WHARF_KUBECONFIG`); unset: the pod's own
     * service account when the server runs in a cluster, else the default kubeconfig.
     */
    kubeconfig: string | undefined;
    /** A kubeconfig context other than its current one (`--kube-context`, `WHARF_KUBE_CONTEXT`). */
    context: string | undefined;
    /** Namespace of the workspaces (`--kube-namespace`, `WHARF_KUBE_NAMESPACE`; default: the context's, else `default`). */
    namespace: string | undefined;
    /** Image of a workspace whose create request names none (`--workspace-image`, shared with the docker driver). */
    image: string;
    /** The wharf image whose `wharf agent install-runtime` copies the agent into each pod (`--kube-runtime-image`, `WHARF_KUBE_RUNTIME_IMAGE`). */
    runtimeImage: string;
    /** uid:gid of the agent and the workspace (`--workspace-user`; fsGroup is the gid). */
    user: { uid: number; gid: number };
    /** Default limits (`--workspace-cpus`, `--workspace-memory`, `--workspace-disk` as ephemeral storage); pids are not a pod setting. */
    resources: WorkspaceResources;
    /** StorageClass of the workspaces' PVCs (`--kube-storage-class`; default: the cluster's default class). */
    storageClass: string | undefined;
    /** Size of each workspace's PVC (`--kube-storage-size`, default `10Gi`). */
    storageSize: string;
    /** `--kube-node-selector key=value` (repeatable; `WHARF_KUBE_NODE_SELECTOR=a=1,b=2`). */
    nodeSelector: Record<string, string>;
    /** `--kube-toleration key[=value]:Effect` or `key:Exists` … (repeatable; `WHARF_KUBE_TOLERATIONS`, `;`-separated). */
    tolerations: Array<{ key?: string; operator?: 'Exists' | 'Equal'; value?: string; effect?: string }>;
    /** Service account of workspace pods (`--kube-service-account`); unset: none, and no token is mounted. */
    serviceAccount: string | undefined;
  };
};

export type ServerConfig = {
  host: string;
  port: number;
  dataDir: string;
  /** Admin token given by flag or environment; when absent one is generated and kept in dataDir. */
  token: string | undefined;
  /** Which driver runs workspaces by default (the first of `--driver`, `WHARF_DRIVER`; default `process`). */
  driver: DriverKind;
  /**
   * Every driver this server offers, the default first: `--driver process,docker` lets a create
   * request (and the web UI's create form) choose.
   */
  driverKinds: DriverKind[];
  drivers: DriverSettings;
  logLevel: string;
  /** Docker Engine API endpoint for remote deploys: `unix:///path.sock` or `tcp://host:port`. */
  builder: string | undefined;
  /** Variables injected into every deploy (Okteto "admin variables"). */
  adminVariables: Record<string, string>;
  /** Public base URL used in printed and shared links. */
  publicUrl: string | undefined;
  /** Browser origins besides the public URL's own that may use a session (`--allowed-origin`, `WHARF_ALLOWED_ORIGINS`). */
  allowedOrigins: string[];
  /**
   * Serves each workspace port at the root of an origin of its own, `<port>--<workspace>.<domain>`
   * (`--preview-domain`, `WHARF_PREVIEW_DOMAIN`), with the public URL's scheme and port. Its
   * wildcard DNS must reach this server. Unset: previews are served by path only.
   */
  previewDomain: string | undefined;
  /**
   * The only variables workspace agents inherit from the server's environment: never the admin
   * token or anything else a workspace user could read back from /proc.
   */
  agentEnvironment: Record<string, string>;
  /** Default runner image of remote deploys (`--runner-image`, `WHARF_RUNNER_IMAGE`). */
  runnerImage: string;
  /** Settings of remote deploys' commands. */
  deploy: {
    /**
     * Kubeconfig handed to deploy commands at run time, never baked into an image
     * (`--deploy-kubeconfig`, `WHARF_DEPLOY_KUBECONFIG`; `--kubeconfig`, `WHARF_KUBECONFIG` are
     * deprecated names of it). Not the cluster the kubernetes driver runs workspaces in.
     */
    kubeconfig: string | undefined;
  };
  /** Settings that were accepted with a warning (deprecated names); the server logs them at start. */
  warnings: string[];
  /** Base URL a deploy runner (on the builder's host network) calls back; default: this server's own address. */
  deployCallbackUrl: string | undefined;
  /** Server folder whose subfolders may seed new workspaces (`--seed-root`, `WHARF_SEED_ROOT`); unset: seeding is off. */
  seedRoot: string | undefined;
  /**
   * The built agent (`agent.mjs` and its native add-ons) that drivers run in each workspace
   * (`--agent-bundle`, `WHARF_AGENT_BUNDLE`; default `<code root>/dist/agent`, made by `npm run build`).
   */
  agentBundle: string;
  /**
   * Built artifacts the server hands out: the helper's downloads, such as `wharf.cjs` of
   * `GET /api/downloads/wharf.js` and `wharf-linux-x64` of `GET /downloads/wharf-linux-x64`
   * (`--artifacts-dir`, `WHARF_ARTIFACTS_DIR`; default `<code root>/dist`).
   */
  artifactsDir: string;
  /** Limits and timings are passed down from here, never read elsewhere. */
  limits: {
    /**
     * How long the server waits for a workspace agent to finish the SSH handshake, open a
     * channel or answer a request before it calls the agent unresponsive (`--agent-timeout`).
     */
    agentTimeoutMs: number;
    /** How long a started workspace agent may take to listen before the start fails (`--agent-start-timeout`). */
    agentStartTimeoutMs: number;
    agentRestartDelayMs: number;
    /** How often a driver looks at every workspace (adopting, restarting, letting go; docs/replicas.md). */
    agentSuperviseIntervalMs: number;
    agentStopGraceMs: number;
    /** Life of a helper's session key when `POST …/session-keys` names none. */
    sessionKeyDefaultTtlMs: number;
    /** Longest life a session key may be registered for (`--session-key-max-ttl`); agents are started with the same cap. */
    sessionKeyMaxTtlMs: number;
    maxWebSocketMessageBytes: number;
    sessionTtlMs: number;
    /** Largest request body of a file write or tar upload (`--max-upload-bytes`, `WHARF_MAX_UPLOAD_BYTES`). */
    maxUploadBytes: number;
    /** Files up to this size are read into memory once to hash them for their ETag; larger ones are read twice. */
    maxBufferedReadBytes: number;
    /** A terminal nobody is attached to is killed after this long (`--terminal-grace`). */
    terminalGraceMs: number;
    /** Per websocket client of a terminal: bytes queued before it is resynced from a snapshot. */
    terminalClientQueueBytes: number;
    /** How often live share-link clients are re-checked for revocation. */
    terminalShareRecheckMs: number;
    /** Longest life of a terminal share link (`--share-max-ttl`), and how many one workspace may hold. */
    terminalShareMaxTtlMs: number;
    terminalSharesPerWorkspace: number;
    /**
     * Attached clients, counted by each workspace's agent across every replica: per share link
     * (`--terminal-link-clients`), per terminal (`--terminal-clients`; share-link clients are
     * refused beyond it) and of the admin in one workspace (`--terminal-admin-clients`).
     */
    terminalClientsPerLink: number;
    terminalClientsPerTerminal: number;
    terminalClientsPerAdmin: number;
    /**
     * Live editing, per browser websocket of a document: the server stops reading the agent while
     * more than `docHighWaterBytes` waits to go out to the browser, until it is below
     * `docLowWaterBytes` (looked at every `docDrainCheckMs`).
     */
    docHighWaterBytes: number;
    docLowWaterBytes: number;
    docDrainCheckMs: number;
    /** Browser messages up to this size (typing, cursors) go straight to the server's other editors of the document; larger ones only through the agent. */
    docFanOutMaxBytes: number;
    /** While only this server's editors have a document open, updates to the agent are held up to this long, or this much. */
    docAgentBatchMs: number;
    docAgentBatchMaxBytes: number;
    /** Largest answer to a one-shot document request (the names .gitignore hides in one directory). */
    docReplyMaxBytes: number;
    /** An SSH connection to an agent that has not authenticated this long is closed (`--ssh-login-grace`). */
    sshLoginGraceMs: number;
    /** Unauthenticated SSH connections an agent keeps at once (`--ssh-max-startups`). */
    sshMaxStartups: number;
    /** Deploy runs kept per workspace, and command output kept per stored run. */
    deployHistoryRuns: number;
    deployStoredLogBytes: number;
    /** Command output kept in memory per live run for replay. */
    deployLiveLogBytes: number;
    /** Lifetime of a runner's single-use variables token. */
    deploySecretTtlMs: number;
    /** How long the builder may take to answer a probe or an image removal (`--builder-timeout`). */
    builderTimeoutMs: number;
    /** A finished run stays live (its output replayable to late viewers) this long before only its stored log is left. */
    deployFinishedRetentionMs: number;
    /** A deploy run whose place on its workspace's run board broke (agent restart) is hosted again after this. */
    deployBoardRetryMs: number;
    /** On shutdown, running deploys are aborted and awaited at most this long. */
    deployShutdownGraceMs: number;
    /**
     * Largest value of one key of a workspace's feature data (deploy history, share links), kept
     * by its agent (`--feature-data-max-bytes`, `WHARF_FEATURE_DATA_MAX_BYTES`).
     */
    featureDataMaxBytes: number;
    /** Largest body of a JSON request (the login included); beyond it the answer is 413. */
    maxJsonBodyBytes: number;
    /** Failed logins allowed per client address within the window before 429. */
    loginFailureLimit: number;
    loginFailureWindowMs: number;
  };
};

export type ProcessContext = { argv: string[]; env: NodeJS.ProcessEnv };

const AGENT_ENV_ALLOWLIST = ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'WHARF_SHELL'];

/** The only place that touches process.env / argv, and only when called. */
export function readProcessContext(): ProcessContext {
  return { argv: process.argv.slice(2), env: process.env };
}

function parseVariables(list: string[], source: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`${source}: expected NAME=value, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `90s`, `15m`, `1h`, `7d`, `500ms`; a bare number is seconds. */
export function parseDuration(raw: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(raw.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match?.[2] ?? 's'] ?? 1000;
  const ms = match ? Math.round(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1) throw new Error(`${flag}: expected a duration like 90s, 15m, 1h or 7d (got "${raw}")`);
  return ms;
}

/** `1048576`, `512KiB`, `100MiB`, `2GiB` (K/M/G and KB/MB/GB are read as binary units too). */
function parseByteSize(raw: string, flag: string): number {
  const match = /^(\d+)\s*(?:([KMG])(?:i?B)?|B)?$/i.exec(raw.trim());
  const scale = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(match?.[2] ?? '').toUpperCase() as 'K' | 'M' | 'G'] ?? 1;
  const bytes = match ? Number(match[1]) * scale : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`${flag}: expected a size like 1048576, 512KiB or 100MiB (got "${raw}")`);
  return bytes;
}

/** The public URL's origin is what browsers' `Origin` is compared with: it must be an http(s) URL. */
function checkPublicUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let protocol = '';
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = '';
  }
  if (!['http:', 'https:'].includes(protocol)) throw new Error(`--public-url: expected a URL like https://ide.example.com (got "${raw}")`);
  return raw.replace(/\/+$/, '');
}

/** `https://ide.example.com` → its origin; a path, query or a non-http scheme is a mistake worth naming. */
function parseOrigins(list: string[]): string[] {
  return list
    .map((s) => s.trim())
    .filter(Boolean)
    .map((raw) => {
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        url = undefined;
      }
      if (!url || !['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username || /[?#]/.test(raw)) {
        throw new Error(`--allowed-origin: expected an origin like https://ide.example.com (scheme, host and port only; got "${raw}")`);
      }
      return url.origin;
    });
}

function parseCount(raw: string, flag: string): number {
  const count = Number(raw.trim());
  if (!Number.isSafeInteger(count) || count < 1 || !/^\d+$/.test(raw.trim())) throw new Error(`${flag}: expected a positive whole number (got "${raw}")`);
  return count;
}

/** `uid` or `uid:gid` (numbers only: names would depend on the host's /etc/passwd). */
export function parseSandboxUser(raw: string): { uid: number; gid: number } {
  const match = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(raw.trim());
  const uid = match ? Number(match[1]) : NaN;
  const gid = match ? Number(match[2] ?? match[1]) : NaN;
  if (!match || uid > 0xfffffffe || gid > 0xfffffffe) throw new Error(`--sandbox-user must be a numeric uid or uid:gid, e.g. 65534:65534 (got "${raw}")`);
  return { uid, gid };
}

/** `--driver process,docker`: one or more kinds, each known and built, none twice; the first is the default. */
function parseDriverKinds(text: string): DriverKind[] {
  const kinds = text.split(',').map((k) => k.trim()).filter(Boolean) as DriverKind[];
  if (kinds.length === 0) throw new Error(`--driver must name one or more of ${DRIVER_KINDS.join(', ')} (got "${text}")`);
  for (const kind of kinds) {
    if (!DRIVER_KINDS.includes(kind)) throw new Error(`--driver must be ${DRIVER_KINDS.join(', ')}, or several of them separated by commas (got "${kind}")`);
    if (!AVAILABLE_DRIVERS.includes(kind)) throw new Error(`--driver ${kind}: the ${kind} driver is not available yet; use --driver process (the default)`);
  }
  const twice = kinds.find((k, i) => kinds.indexOf(k) !== i);
  if (twice) throw new Error(`--driver names "${twice}" twice`);
  return kinds;
}

/**
 * `--deploy-kubeconfig` / `WHARF_DEPLOY_KUBECONFIG` (flag first), or their older names
 * `--kubeconfig` / `WHARF_KUBECONFIG`, renamed so they cannot be taken for the cluster settings of
 * the kubernetes driver: an old name still works, with a warning; beside the new one it is ignored.
 */
function deployKubeconfig(flags: { current: string | undefined; old: string | undefined }, env: NodeJS.ProcessEnv, warnings: string[]): string | undefined {
  const sources: Array<{ name: string; value: string | undefined; instead?: string }> = [
    { name: '--deploy-kubeconfig', value: flags.current },
    { name: '--kubeconfig', value: flags.old, instead: '--deploy-kubeconfig' },
    { name: 'WHARF_DEPLOY_KUBECONFIG', value: env.WHARF_DEPLOY_KUBECONFIG || undefined },
    { name: 'WHARF_KUBECONFIG', value: env.WHARF_KUBECONFIG || undefined, instead: 'WHARF_DEPLOY_KUBECONFIG' },
  ];
  const chosen = sources.find((source) => source.value !== undefined);
  for (const source of sources) {
    if (!source.instead || source.value === undefined) continue;
    const ignored = source === chosen ? '' : ` (and ignored: ${chosen?.name} is set)`;
    warnings.push(`${source.name} is deprecated${ignored}: use ${source.instead}, the kubeconfig handed to deploy commands`);
  }
  return chosen?.value;
}

function parsePort(raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${raw}"`);
  return port;
}

/** The docker driver's settings; checked strictly only when it is the driver in use. */
function loadDockerSettings(values: Record<string, string | boolean | string[] | boolean[] | undefined>, env: NodeJS.ProcessEnv, used: boolean): DriverSettings['docker'] {
  const flag = (name: string, variable: string) => (values[name] as string | undefined) ?? (env[variable] || undefined);
  const host = flag('docker-host', 'WHARF_DOCKER_HOST') ?? 'unix:///var/run/docker.sock';
  if (!/^(unix:\/\/\/|tcp:\/\/|http:\/\/)/.test(host)) throw new Error(`--docker-host must be unix:///path/to/docker.sock or tcp://host:port (got "${host}")`);
  const image = flag('workspace-image', 'WHARF_WORKSPACE_IMAGE') ?? '';
  if (used && !image) throw new Error('--driver docker needs --workspace-image (WHARF_WORKSPACE_IMAGE): the image workspaces run, already on the engine');
  const user = parseSandboxUser(flag('workspace-user', 'WHARF_WORKSPACE_USER') ?? '65534:65534');
  if (used && user.uid === 0) throw new Error('--workspace-user: workspace containers do not run as root (uid 0); name another uid:gid');
  const network = flag('workspace-network', 'WHARF_WORKSPACE_NETWORK') ?? 'none';
  if (!/^[\w][\w.-]*$/.test(network)) throw new Error(`--workspace-network must be none, host or a network's name (got "${network}")`);
  const raw: Record<string, string> = {};
  for (const limit of ['cpus', 'memory', 'pids', 'disk']) {
    const value = flag(`workspace-${limit}`, `WHARF_WORKSPACE_${limit.toUpperCase()}`);
    if (value !== undefined) raw[limit] = value;
  }
  const resources = parseWorkspaceResources(raw, 'workspace limits');
  if (!resources.ok) throw new Error(`--workspace-<limit>: ${resources.error}`);
  return { host, image, user, network, resources: resources.value };
}

/** `key=value:NoSchedule`, `key:NoExecute`, `key` (any effect), `key=value`; an `Exists` operator without `=`. */
export function parseToleration(raw: string): DriverSettings['kubernetes']['tolerations'][number] {
  const match = /^([A-Za-z0-9][-A-Za-z0-9_./]*)(?:=([-A-Za-z0-9_.]*))?(?::(NoSchedule|PreferNoSchedule|NoExecute))?$/.exec(raw.trim());
  if (!match) throw new Error(`--kube-toleration: expected key[=value][:NoSchedule|PreferNoSchedule|NoExecute] (got "${raw}")`);
  const [, key, value, effect] = match;
  return { key, ...(value === undefined ? { operator: 'Exists' as const } : { operator: 'Equal' as const, value }), ...(effect ? { effect } : {}) };
}

/** The kubernetes driver's settings; checked strictly only when it is a driver in use. */
function loadKubernetesSettings(values: Record<string, string | boolean | string[] | boolean[] | undefined>, env: NodeJS.ProcessEnv, used: boolean, docker: DriverSettings['docker']): DriverSettings['kubernetes'] {
  const flag = (name: string, variable: string) => (values[name] as string | undefined) ?? (env[variable] || undefined);
  const list = (name: string, variable: string, separator: string) => [...(env[variable] ?? '').split(separator), ...((values[name] as string[] | undefined) ?? [])].map((s) => s.trim()).filter(Boolean);
  const runtimeImage = flag('kube-runtime-image', 'WHARF_KUBE_RUNTIME_IMAGE') ?? '';
  if (used && !docker.image) throw new Error('--driver kubernetes needs --workspace-image (WHARF_WORKSPACE_IMAGE): the image workspaces run');
  if (used && !runtimeImage) throw new Error('--driver kubernetes needs --kube-runtime-image (WHARF_KUBE_RUNTIME_IMAGE): the wharf image, whose "wharf agent install-runtime" puts the agent into each workspace pod');
  if (used && docker.user.uid === 0) throw new Error('--workspace-user: workspace pods do not run as root (uid 0); name another uid:gid');
  const namespace = flag('kube-namespace', 'WHARF_KUBE_NAMESPACE');
  const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (namespace !== undefined && !dnsLabel.test(namespace)) throw new Error(`--kube-namespace must be a namespace's name (got "${namespace}")`);
  const storageSize = flag('kube-storage-size', 'WHARF_KUBE_STORAGE_SIZE') ?? '10Gi';
  if (!/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.test(storageSize)) throw new Error(`--kube-storage-size must be a Kubernetes quantity like 10Gi (got "${storageSize}")`);
  const nodeSelector: Record<string, string> = {};
  for (const pair of list('kube-node-selector', 'WHARF_KUBE_NODE_SELECTOR', ',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--kube-node-selector: expected key=value (got "${pair}")`);
    nodeSelector[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const serviceAccount = flag('kube-service-account', 'WHARF_KUBE_SERVICE_ACCOUNT');
  return {
    kubeconfig: flag('kubeconfig', 'WHARF_KUBECONFIG'),
    context: flag('kube-context', 'WHARF_KUBE_CONTEXT'),
    namespace,
    image: docker.image,
    runtimeImage,
    user: docker.user,
    // pids and a container disk size are engine settings; a pod has ephemeral storage instead.
    resources: { ...(docker.resources.cpus ? { cpus: docker.resources.cpus } : {}), ...(docker.resources.memory ? { memory: docker.resources.memory } : {}), ...(docker.resources.disk ? { disk: docker.resources.disk } : {}) },
    storageClass: flag('kube-storage-class', 'WHARF_KUBE_STORAGE_CLASS'),
    storageSize,
    nodeSelector,
    tolerations: list('kube-toleration', 'WHARF_KUBE_TOLERATIONS', ';').map(parseToleration),
    serviceAccount,
  };
}

export function loadServerConfig(ctx: ProcessContext): ServerConfig {
  const { values } = parseArgs({
    args: ctx.argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string' },
      token: { type: 'string' },
      driver: { type: 'string' },
      sandbox: { type: 'string' },
      'sandbox-user': { type: 'string' },
      'log-level': { type: 'string' },
      builder: { type: 'string' },
      'admin-var': { type: 'string', multiple: true },
      'public-url': { type: 'string' },
      'max-upload-bytes': { type: 'string' },
      'terminal-grace': { type: 'string' },
      'runner-image': { type: 'string' },
      'deploy-kubeconfig': { type: 'string' },
      kubeconfig: { type: 'string' },
      'deploy-callback-url': { type: 'string' },
      'agent-timeout': { type: 'string' },
      'seed-root': { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'preview-domain': { type: 'string' },
      'terminal-link-clients': { type: 'string' },
      'terminal-clients': { type: 'string' },
      'terminal-admin-clients': { type: 'string' },
      'ssh-login-grace': { type: 'string' },
      'ssh-max-startups': { type: 'string' },
      'agent-start-timeout': { type: 'string' },
      'session-key-max-ttl': { type: 'string' },
      'share-max-ttl': { type: 'string' },
      'builder-timeout': { type: 'string' },
      'feature-data-max-bytes': { type: 'string' },
      'agent-bundle': { type: 'string' },
      'artifacts-dir': { type: 'string' },
      'docker-host': { type: 'string' },
      'workspace-image': { type: 'string' },
      'workspace-user': { type: 'string' },
      'workspace-network': { type: 'string' },
      'workspace-cpus': { type: 'string' },
      'workspace-memory': { type: 'string' },
      'workspace-pids': { type: 'string' },
      'workspace-disk': { type: 'string' },
      'kube-context': { type: 'string' },
      'kube-namespace': { type: 'string' },
      'kube-runtime-image': { type: 'string' },
      'kube-storage-class': { type: 'string' },
      'kube-storage-size': { type: 'string' },
      'kube-node-selector': { type: 'string', multiple: true },
      'kube-toleration': { type: 'string', multiple: true },
      'kube-service-account': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const env = ctx.env;
  const driverKinds = parseDriverKinds(values.driver ?? (env.WHARF_DRIVER || 'process'));
  const driver = driverKinds[0];
  const sandbox = (values.sandbox ?? env.WHARF_SANDBOX ?? 'auto') as SandboxMode;
  if (!['auto', 'bwrap', 'none'].includes(sandbox)) {
    throw new Error(`--sandbox must be auto, bwrap or none (got "${sandbox}")`);
  }
  const docker = loadDockerSettings(values, env, driverKinds.includes('docker'));
  const kubernetes = loadKubernetesSettings(values, env, driverKinds.includes('kubernetes'), docker);
  const dataHome = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  const warnings: string[] = [];
  const adminFromEnv = (env.WHARF_ADMIN_VARS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    host: values.host ?? env.WHARF_HOST ?? '127.0.0.1',
    port: parsePort(values.port ?? env.WHARF_PORT ?? '8080'),
    dataDir: resolve(values['data-dir'] ?? env.WHARF_DATA_DIR ?? join(dataHome, 'wharf')),
    token: values.token ?? (env.WHARF_TOKEN || undefined),
    driver,
    driverKinds,
    drivers: {
      process: {
        sandbox,
        sandboxUser: parseSandboxUser(values['sandbox-user'] ?? env.WHARF_SANDBOX_USER ?? '65534:65534'),
        runtimeDir: env.XDG_RUNTIME_DIR || undefined,
      },
      docker,
      kubernetes,
    },
    logLevel: values['log-level'] ?? env.WHARF_LOG_LEVEL ?? 'info',
    builder: values.builder ?? (env.WHARF_BUILDER || undefined),
    adminVariables: {
      ...parseVariables(adminFromEnv, 'WHARF_ADMIN_VARS'),
      ...parseVariables(values['admin-var'] ?? [], '--admin-var'),
    },
    publicUrl: checkPublicUrl(values['public-url'] ?? (env.WHARF_PUBLIC_URL || undefined)),
    allowedOrigins: parseOrigins([...(env.WHARF_ALLOWED_ORIGINS ?? '').split(','), ...(values['allowed-origin'] ?? [])]),
    previewDomain: parsePreviewDomain(values['preview-domain'] ?? (env.WHARF_PREVIEW_DOMAIN || undefined)),
    agentEnvironment: Object.fromEntries(
      AGENT_ENV_ALLOWLIST.flatMap((name) => (env[name] ? [[name, env[name] as string]] : [])),
    ),
    runnerImage: values['runner-image'] ?? (env.WHARF_RUNNER_IMAGE || 'wharf/runner:latest'),
    deploy: {
      // With the kubernetes driver, --kubeconfig / WHARF_KUBECONFIG name its cluster and are no
      // longer old names of the deploy kubeconfig.
      kubeconfig: driverKinds.includes('kubernetes')
        ? values['deploy-kubeconfig'] ?? (env.WHARF_DEPLOY_KUBECONFIG || undefined)
        : deployKubeconfig({ current: values['deploy-kubeconfig'], old: values.kubeconfig }, env, warnings),
    },
    warnings,
    deployCallbackUrl: values['deploy-callback-url'] ?? (env.WHARF_DEPLOY_CALLBACK_URL || undefined),
    seedRoot: (values['seed-root'] ?? env.WHARF_SEED_ROOT) ? resolve(values['seed-root'] ?? (env.WHARF_SEED_ROOT as string)) : undefined,
    agentBundle: resolve(values['agent-bundle'] ?? (env.WHARF_AGENT_BUNDLE || join(CODE_ROOT, 'dist', 'agent'))),
    artifactsDir: resolve(values['artifacts-dir'] ?? (env.WHARF_ARTIFACTS_DIR || join(CODE_ROOT, 'dist'))),
    limits: {
      agentTimeoutMs: parseDuration(values['agent-timeout'] ?? env.WHARF_AGENT_TIMEOUT ?? '15s', '--agent-timeout'),
      agentStartTimeoutMs: parseDuration(values['agent-start-timeout'] ?? env.WHARF_AGENT_START_TIMEOUT ?? '15s', '--agent-start-timeout'),
      agentRestartDelayMs: 500,
      agentSuperviseIntervalMs: 1000,
      agentStopGraceMs: 5000,
      sessionKeyDefaultTtlMs: 3600 * 1000,
      sessionKeyMaxTtlMs: parseDuration(values['session-key-max-ttl'] ?? env.WHARF_SESSION_KEY_MAX_TTL ?? '24h', '--session-key-max-ttl'),
      maxWebSocketMessageBytes: 16 * 1024 * 1024,
      sessionTtlMs: 7 * 24 * 3600 * 1000,
      maxUploadBytes: parseByteSize(values['max-upload-bytes'] ?? env.WHARF_MAX_UPLOAD_BYTES ?? '100MiB', '--max-upload-bytes'),
      maxBufferedReadBytes: 8 * 1024 * 1024,
      terminalGraceMs: parseDuration(values['terminal-grace'] ?? env.WHARF_TERMINAL_GRACE ?? '1h', '--terminal-grace'),
      terminalClientQueueBytes: 1024 * 1024,
      terminalShareRecheckMs: 3000,
      terminalShareMaxTtlMs: parseDuration(values['share-max-ttl'] ?? env.WHARF_SHARE_MAX_TTL ?? '7d', '--share-max-ttl'),
      terminalSharesPerWorkspace: 500,
      docHighWaterBytes: 4 * 1024 * 1024,
      docLowWaterBytes: 1024 * 1024,
      docDrainCheckMs: 5,
      docFanOutMaxBytes: 1024 * 1024,
      docAgentBatchMs: 4,
      docAgentBatchMaxBytes: 256 * 1024,
      docReplyMaxBytes: 16 * 1024 * 1024,
      terminalClientsPerLink: parseCount(values['terminal-link-clients'] ?? env.WHARF_TERMINAL_LINK_CLIENTS ?? '20', '--terminal-link-clients'),
      terminalClientsPerTerminal: parseCount(values['terminal-clients'] ?? env.WHARF_TERMINAL_CLIENTS ?? '50', '--terminal-clients'),
      terminalClientsPerAdmin: parseCount(values['terminal-admin-clients'] ?? env.WHARF_TERMINAL_ADMIN_CLIENTS ?? '200', '--terminal-admin-clients'),
      sshLoginGraceMs: parseDuration(values['ssh-login-grace'] ?? env.WHARF_SSH_LOGIN_GRACE ?? '30s', '--ssh-login-grace'),
      sshMaxStartups: parseCount(values['ssh-max-startups'] ?? env.WHARF_SSH_MAX_STARTUPS ?? '100', '--ssh-max-startups'),
      deployHistoryRuns: 20,
      deployStoredLogBytes: 64 * 1024,
      deployLiveLogBytes: 1024 * 1024,
      deploySecretTtlMs: 15 * 60 * 1000,
      builderTimeoutMs: parseDuration(values['builder-timeout'] ?? env.WHARF_BUILDER_TIMEOUT ?? '10s', '--builder-timeout'),
      deployFinishedRetentionMs: 60_000,
      deployBoardRetryMs: 1000,
      deployShutdownGraceMs: 5000,
      featureDataMaxBytes: parseByteSize(values['feature-data-max-bytes'] ?? env.WHARF_FEATURE_DATA_MAX_BYTES ?? '4MiB', '--feature-data-max-bytes'),
      maxJsonBodyBytes: 64 * 1024,
      loginFailureLimit: 10,
      loginFailureWindowMs: 15 * 60 * 1000,
    },
  };
}
