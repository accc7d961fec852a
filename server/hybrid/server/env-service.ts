import { createFrameDecoder, encodeFrame, WharfError, type ConfigSetInfo, type SecretSetInfo } from '../../common/index.ts';
import type { AgentConnection, WorkloadEnvironment } from '../../workspace/index.ts';
import {
  applyVariablePatch,
  checkSetName,
  ENV_LIMITS,
  HYBRID_SUBSYSTEM,
  resolveEnvironment,
  SERVICE_MARKER,
  workloadLayers,
  workspaceLayers,
  type HybridAgentRequest,
  type HybridServiceEnvReply,
  type ResolvedEnvironment,
} from '../index.ts';

/** What the environment service needs of workspaces (the WorkspaceService provides it). */
export type HybridEnvWorkspaces = {
  agent(id: string): Promise<AgentConnection>;
  readFeatureData<T>(id: string, key: string): Promise<T | undefined>;
  updateFeatureData<T>(id: string, key: string, update: (current: T | undefined) => T): Promise<T>;
  /** The service's original workload's layers, where the workspace's driver has workloads (Kubernetes). */
  workloadEnvironment?(id: string, service: string, selector?: Record<string, string>): Promise<WorkloadEnvironment | undefined>;
};

export type SetKind = 'config' | 'secret';

/**
 * Feature data keys (kept by the workspace's agent, docs/hybrid.md): the workspace's own
 * variables, and its config and secret sets, each `{name: {NAME: value}}`.
 */
export const FEATURE_KEYS = { env: 'hybrid-env', config: 'hybrid-config-sets', secret: 'hybrid-secret-sets' } as const;

type Sets = Record<string, Record<string, string>>;
type Variables = Record<string, string>;

const label = (kind: SetKind) => `${kind} set`;

/** The dev-container layer's answer is one small frame; this bounds a broken agent's. */
const MAX_REPLY_BYTES = 8 * 1024 * 1024;

async function askAgent(agent: AgentConnection, request: HybridAgentRequest): Promise<HybridServiceEnvReply> {
  const channel = await agent.subsystem(HYBRID_SUBSYSTEM).catch((err: Error) => {
    if (err instanceof WharfError) throw err;
    // Refused: an agent adopted from an older server runs its old code until it restarts.
    throw new WharfError('unavailable', `the workspace agent cannot read a service's environment (${err.message}); it may be older than this server: stop and start the workspace`);
  });
  return new Promise((resolve) => {
    let answered = false;
    const answer = (reply: HybridServiceEnvReply) => {
      if (answered) return;
      answered = true;
      resolve(reply);
      channel.close();
    };
    const decoder = createFrameDecoder(MAX_REPLY_BYTES, {
      onError: (e) => answer({ ok: false, error: e.message }),
      onFrame: (frame) => {
        try {
          answer(JSON.parse(frame.toString('utf8')) as HybridServiceEnvReply);
        } catch {
          answer({ ok: false, error: 'the workspace agent sent an unreadable answer' });
        }
      },
    });
    channel.on('data', (chunk: Buffer) => decoder.push(chunk));
    channel.on('error', () => {});
    channel.on('close', () => answer({ ok: false, error: 'the workspace agent closed the channel without answering (is it older than this server? stop and start the workspace)' }));
    channel.write(encodeFrame(Buffer.from(JSON.stringify(request))));
  });
}

function sortedNames<T>(record: Record<string, T>): string[] {
  return Object.keys(record).sort();
}

export type HybridEnvService = ReturnType<typeof createHybridEnvService>;

/**
 * Hybrid mode's environment settings of a workspace, and their resolution for one service.
 * Everything is feature data kept by the workspace's agent, never by a driver or this server, so
 * every replica sees the same and a driver stays lifecycle plus a byte stream. Secret values are
 * write-only here: listing a secret set gives its names, and only `resolve` with
 * `includeSecrets` (the helper about to start the service) returns them.
 */
export function createHybridEnvService(options: { workspaces: HybridEnvWorkspaces }) {
  const { workspaces } = options;

  const getEnv = async (id: string) => (await workspaces.readFeatureData<Variables>(id, FEATURE_KEYS.env)) ?? {};
  const readSets = async (id: string, kind: SetKind) => (await workspaces.readFeatureData<Sets>(id, FEATURE_KEYS[kind])) ?? {};

  function checkName(kind: SetKind, name: string): void {
    const problem = checkSetName(name);
    if (problem) throw new WharfError('bad_request', `${label(kind)}: ${problem}`);
  }

  async function changeSet(id: string, kind: SetKind, name: string, change: (current: Variables | undefined) => Variables): Promise<Variables> {
    checkName(kind, name);
    let result: Variables = {};
    await workspaces.updateFeatureData<Sets>(id, FEATURE_KEYS[kind], (current) => {
      const sets = { ...(current ?? {}) };
      if (!(name in sets) && Object.keys(sets).length >= ENV_LIMITS.sets) throw new WharfError('bad_request', `workspace "${id}" has ${ENV_LIMITS.sets} ${kind} sets already, the most it may have`);
      result = change(sets[name]);
      sets[name] = result;
      return sets;
    });
    return result;
  }

  const describeSet = (kind: SetKind, name: string, variables: Variables): ConfigSetInfo | SecretSetInfo =>
    kind === 'secret' ? { name, keys: sortedNames(variables) } : { name, variables };

  return {
    getEnv(id: string): Promise<Variables> {
      return getEnv(id);
    },

    putEnv(id: string, variables: Variables): Promise<Variables> {
      return workspaces.updateFeatureData<Variables>(id, FEATURE_KEYS.env, () => variables);
    },

    patchEnv(id: string, patch: Record<string, string | null>): Promise<Variables> {
      return workspaces.updateFeatureData<Variables>(id, FEATURE_KEYS.env, (current) => applyVariablePatch(current ?? {}, patch));
    },

    /** Config sets with their values, secret sets with their names only; by name. */
    async listSets(id: string, kind: SetKind): Promise<Array<ConfigSetInfo | SecretSetInfo>> {
      const sets = await readSets(id, kind);
      return sortedNames(sets).map((name) => describeSet(kind, name, sets[name]));
    },

    /** Creates the set, or replaces every variable it had. */
    async putSet(id: string, kind: SetKind, name: string, variables: Variables): Promise<ConfigSetInfo | SecretSetInfo> {
      return describeSet(kind, name, await changeSet(id, kind, name, () => variables));
    },

    /** Changes some variables (null removes one), creating the set when it does not exist. */
    async patchSet(id: string, kind: SetKind, name: string, patch: Record<string, string | null>): Promise<ConfigSetInfo | SecretSetInfo> {
      return describeSet(kind, name, await changeSet(id, kind, name, (current) => applyVariablePatch(current ?? {}, patch)));
    },

    async deleteSet(id: string, kind: SetKind, name: string): Promise<void> {
      checkName(kind, name);
      let found = false;
      await workspaces.updateFeatureData<Sets>(id, FEATURE_KEYS[kind], (current) => {
        const sets = { ...(current ?? {}) };
        found = name in sets;
        delete sets[name];
        return sets;
      });
      if (!found) throw new WharfError('not_found', `workspace "${id}" has no ${label(kind)} "${name}"`);
    },

    /**
     * The workspace's layers for `service`, resolved: the dev container (the agent reads the
     * service's process), the workspace's variables, its config and secret sets, and the agent's
     * base environment as the image layer. Secret values are left out unless `includeSecrets`.
     */
    async resolve(id: string, service: string, resolveOptions: { includeSecrets: boolean; selector?: Record<string, string> }): Promise<ResolvedEnvironment> {
      const agent = await workspaces.agent(id);
      const [spec, configSets, secretSets, reply, workload] = await Promise.all([
        getEnv(id),
        readSets(id, 'config'),
        readSets(id, 'secret'),
        askAgent(agent, { op: 'service-env', service }),
        workspaces.workloadEnvironment ? workspaces.workloadEnvironment(id, service, resolveOptions.selector) : Promise.resolve(undefined),
      ]);
      if (!reply.ok) throw new WharfError('unavailable', `the workspace agent could not read the service's environment: ${reply.error}`);
      const notes: string[] = [];
      if (!reply.process) {
        notes.push(`no process in workspace "${id}" carries ${SERVICE_MARKER}=${service}, so the dev-container layer is empty; start the service there with ${SERVICE_MARKER}=${service} in its environment (e.g. "${SERVICE_MARKER}=${service} npm start" in a terminal)`);
      } else if (reply.process.matches > 1) {
        notes.push(`${reply.process.matches} processes carry ${SERVICE_MARKER}=${service}; the newest (pid ${reply.process.pid}) gave the dev-container layer`);
      }
      const toSets = (sets: Sets) => sortedNames(sets).map((name) => ({ name, variables: sets[name] }));
      const layers = workload
        ? workloadLayers({ devContainer: reply.environment, workspace: { spec, configSets: toSets(configSets), secretSets: toSets(secretSets) }, workload, agentImage: reply.image })
        : workspaceLayers({ devContainer: reply.environment, spec, configSets: toSets(configSets), secretSets: toSets(secretSets), image: reply.image });
      if (workload) notes.push(`the spec, configmap, secret and image layers include ${workload.workload}`, ...workload.notes);
      const variables = resolveEnvironment(layers).map((v) => (v.secret && !resolveOptions.includeSecrets ? { ...v, value: null } : v));
      return { service, process: reply.process, variables, notes };
    },
  };
}
