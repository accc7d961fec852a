import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { generateKeyPair, mapAgentFailure, WharfError, type DriverOffer, type KeyPair, type Workspace, type WorkspaceResources } from '../common/index.ts';
import { createFilesService, WORKSPACE_ROOT } from '../files/index.ts';
import { connectAgent, type AgentConnection } from './agent-connection.ts';
import type { WorkloadEnvironment, WorkspaceDriver, WorkspaceRecord } from './driver.ts';
import { packSeedFolder } from './seed-pack.ts';

export type WorkspaceServiceOptions = {
  driver: WorkspaceDriver;
  /** The kinds of driver a create request may name, the default first (a driver set's; else the one driver's). */
  driverKinds?: readonly string[];
  /** What each kind offers a create request (its default image and limits), from the configuration. */
  driverOffers?: Record<string, Omit<DriverOffer, 'kind' | 'default'>>;
  serverKey: KeyPair;
  /** Handshake, channel-open and request deadline of agent connections; past it the agent is unresponsive. */
  agentTimeoutMs: number;
  /** Server folder whose subfolders may seed a new workspace (`--seed-root`); none: seeding is off. */
  seedRoot: string | undefined;
  /** Folders a seed may neither be nor contain (the data dir: tokens and keys). */
  protectedDirs: string[];
  /** Largest value of one feature-data key (the agents' store is started with the same bound). */
  featureDataMaxBytes: number;
  /** Read-modify-write attempts of one feature-data update before concurrent writers are called too many. */
  featureDataAttempts?: number;
};

/** A live session key as the agent lists it (times in ms since the epoch). */
export type SessionKeyInfo = { id: string; label: string; forward: string[]; reverse: number[]; addedAt: number; expiresAt?: number; connections: number };

export type SessionKeyGrant = { ttlMs: number; label: string; forward?: string[]; reverse?: number[] };

const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

export function toWorkspace(record: WorkspaceRecord): Workspace {
  return {
    id: record.id,
    name: record.name,
    driver: record.driver,
    status: record.status,
    createdAt: record.createdAt,
    hostKey: record.hostPublicKey.trim(),
    ...(record.statusReason ? { statusReason: record.statusReason } : {}),
    ...(record.image ? { image: record.image } : {}),
    ...(record.resources ? { resources: record.resources } : {}),
  };
}

/**
 * Ids come from URLs: anything that is not a valid name (`..`, `a/b`, NUL) names no workspace,
 * and must never reach a driver that builds paths or container names from it.
 */
function assertWorkspaceId(id: string): void {
  if (typeof id !== 'string' || !NAME_PATTERN.test(id)) throw new WharfError('not_found', `workspace "${id}" does not exist`);
}

export type WorkspaceService = ReturnType<typeof createWorkspaceService>;

/** Driver-independent workspace operations, and the pool of SSH connections to agents. */
export function createWorkspaceService(options: WorkspaceServiceOptions) {
  const { driver } = options;
  const connections = new Map<string, Promise<AgentConnection>>();

  async function requireRecord(id: string): Promise<WorkspaceRecord> {
    assertWorkspaceId(id);
    const record = await driver.get(id);
    if (!record) throw new WharfError('not_found', `workspace "${id}" does not exist`);
    return record;
  }

  /**
   * A seed is a folder of the server's own file system: only what lies under the configured seed
   * root, resolved with every symlink (`/proc/self/root/...` included) before it is compared.
   */
  async function resolveSeed(seed: string): Promise<string> {
    if (!options.seedRoot) {
      throw new WharfError('bad_request', 'seeding a workspace from a server folder is off: start the server with --seed-root <folder> (WHARF_SEED_ROOT) to allow the folders under it');
    }
    const root = await realpath(options.seedRoot).catch(() => {
      throw new WharfError('bad_request', `the seed root ${options.seedRoot} does not exist on the server`);
    });
    const real = await realpath(isAbsolute(seed) ? seed : join(root, seed)).catch(() => {
      throw new WharfError('bad_request', `the seed folder "${seed}" does not exist under the seed root ${options.seedRoot}`);
    });
    const inside = (dir: string, parent: string) => dir === parent || dir.startsWith(parent.endsWith(sep) ? parent : parent + sep);
    if (!inside(real, root)) throw new WharfError('bad_request', `the seed folder "${seed}" is outside the seed root ${options.seedRoot}`);
    for (const dir of options.protectedDirs) {
      const guarded = await realpath(dir).catch(() => dir);
      if (inside(real, guarded) || inside(guarded, real)) throw new WharfError('bad_request', `the seed folder "${seed}" holds or is inside the server's data dir`);
    }
    if (!(await stat(real)).isDirectory()) throw new WharfError('bad_request', `the seed "${seed}" is not a folder`);
    return real;
  }

  const attempts = options.featureDataAttempts ?? 20;
  const updateLocks = new Map<string, Promise<unknown>>();
  // A store answer carries a whole value; the rest of a frame is a few short fields.
  const maxControlFrameBytes = options.featureDataMaxBytes + 64 * 1024;

  function storeFailure(answer: Record<string, unknown>): WharfError {
    const message = String(answer.message ?? answer.error);
    if (answer.error === 'too_large') return new WharfError('payload_too_large', message);
    // An agent adopted from an older server keeps running its old code until it restarts.
    if (answer.error === 'unknown op') return new WharfError('unavailable', 'the workspace agent is older than this server and keeps no feature data: stop and start the workspace');
    if (answer.error === 'bad_request') return new WharfError('internal', `feature data refused by the agent: ${message}`);
    return new WharfError('internal', `the workspace agent could not keep feature data: ${message}`);
  }

  async function readStored(id: string, key: string): Promise<{ version: number; value?: unknown }> {
    const agent = await service.agent(id);
    const answer = await agent.control({ op: 'store-read', key });
    if (!answer.ok) throw storeFailure(answer);
    return { version: Number(answer.version), value: answer.value };
  }

  /** Seeds go in as a tar upload does: through the agent's SFTP, unbounded (the seed root is the admin's). */
  const seeder = createFilesService({
    openSftp: (id) => service.agent(id).then((c) => c.sftp()),
    limits: { maxUploadBytes: Number.MAX_SAFE_INTEGER, maxBufferedReadBytes: 0 },
  });

  function dropConnection(id: string): void {
    const pending = connections.get(id);
    connections.delete(id);
    pending?.then((c) => c.close()).catch(() => {});
  }

  const service = {
    driver,

    validateName(name: unknown): { ok: true; value: string } | { ok: false; error: string } {
      if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
        return { ok: false, error: 'name must be 1-40 characters of a-z, 0-9 and "-", starting and ending with a letter or digit' };
      }
      return { ok: true, value: name };
    },

    /**
     * A seed is packed here and unpacked by the new workspace's running agent (as a tar upload
     * is), so no driver needs a path of the server's disk; the workspace is reported once it
     * holds the seed, and one that could not take it is removed again.
     */
    /** The drivers a workspace can be created on, the default first. */
    drivers(): DriverOffer[] {
      return (options.driverKinds ?? [driver.kind]).map((kind, i) => ({ kind, default: i === 0, ...options.driverOffers?.[kind] }));
    },

    async create(input: { name: string; seedFrom?: string; driver?: string; image?: string; resources?: WorkspaceResources }): Promise<Workspace> {
      const kinds = options.driverKinds ?? [driver.kind];
      if (input.driver !== undefined && !kinds.includes(input.driver)) {
        throw new WharfError('bad_request', `driver "${input.driver}" is not offered by this server (it has ${kinds.join(', ')})`);
      }
      const seedFrom = input.seedFrom === undefined ? undefined : await resolveSeed(input.seedFrom);
      const host = generateKeyPair(`wharf-workspace-${input.name}`);
      const record = await driver.create({
        id: input.name,
        name: input.name,
        hostPrivateKey: host.privateKey,
        hostPublicKey: host.publicKey,
        authorizedKeys: `${options.serverKey.publicKey.trim()}\n`,
        driver: input.driver,
        ...(input.image !== undefined ? { image: input.image } : {}),
        ...(input.resources !== undefined ? { resources: input.resources } : {}),
      });
      if (seedFrom !== undefined) {
        const written = await seeder.uploadTar(record.id, WORKSPACE_ROOT, packSeedFolder(seedFrom)).catch((err: Error) => ({ ok: false as const, error: { message: err.message } }));
        if (!written.ok) {
          dropConnection(record.id);
          await driver.remove(record.id).catch(() => {});
          throw new WharfError('bad_request', `cannot copy seed folder "${input.seedFrom}" into the workspace: ${written.error.message}`);
        }
      }
      return toWorkspace(record);
    },

    async list(): Promise<Workspace[]> {
      return (await driver.list()).map(toWorkspace);
    },

    async get(id: string): Promise<Workspace> {
      return toWorkspace(await requireRecord(id));
    },

    async start(id: string): Promise<Workspace> {
      assertWorkspaceId(id);
      return toWorkspace(await driver.start(id));
    },

    async stop(id: string): Promise<Workspace> {
      dropConnection(id);
      assertWorkspaceId(id);
      return toWorkspace(await driver.stop(id));
    },

    async remove(id: string): Promise<void> {
      dropConnection(id);
      assertWorkspaceId(id);
      await driver.remove(id);
    },

    /** The server's own SSH session with the agent, opened on first use and reopened after a drop. */
    agent(id: string): Promise<AgentConnection> {
      const existing = connections.get(id);
      if (existing) {
        return existing.then((c) => {
          if (!c.closed) return c;
          connections.delete(id);
          return this.agent(id);
        });
      }
      const pending = (async () => {
        const record = await requireRecord(id);
        const stream = await driver.connect(id);
        const connection = await connectAgent(stream, options.serverKey.privateKey, record.hostPublicKey, options.agentTimeoutMs, maxControlFrameBytes);
        connection.onClose(() => {
          if (connections.get(id) === pending) connections.delete(id);
        });
        return connection;
      })();
      pending.catch(() => connections.delete(id));
      connections.set(id, pending);
      return pending;
    },

    /** A raw byte stream to the agent for a client that does its own SSH (the websocket tunnel). */
    async openTunnel(id: string): Promise<Duplex> {
      await requireRecord(id);
      return driver.connect(id);
    },

    /** Lets a helper's own key into the workspace for a limited time. */
    async registerSessionKey(id: string, publicKey: string, grant: SessionKeyGrant): Promise<{ keyId: string }> {
      const agent = await this.agent(id);
      const response = await agent.control({ op: 'add-key', publicKey, ...grant });
      if (!response.ok) throw mapAgentFailure({ code: response.error, message: response.message }, { fallback: 'bad_request', context: 'key refused' });
      return { keyId: String(response.keyId) };
    },

    /** The workspace's live session keys (helpers' SSH sessions, `wharf up` links), newest first. */
    async listSessionKeys(id: string): Promise<SessionKeyInfo[]> {
      const agent = await this.agent(id);
      const response = await agent.control({ op: 'list-keys' });
      if (!response.ok) throw mapAgentFailure({ code: response.error, message: response.message }, { fallback: 'internal', context: 'listing session keys failed' });
      return (response.keys as SessionKeyInfo[]).map((k) => ({ ...k }));
    },

    /**
     * Revokes a helper's key before it expires: the agent keeps session keys (in memory), so the
     * revocation goes to it, and it also closes the SSH connections the key opened.
     */
    async revokeSessionKey(id: string, keyId: string): Promise<void> {
      const agent = await this.agent(id);
      const response = await agent.control({ op: 'revoke-key', keyId });
      if (!response.ok) throw mapAgentFailure({ code: response.error, message: response.message }, { fallback: 'bad_request', context: 'revoking the key failed' });
      if (!response.removed) throw new WharfError('not_found', `no live session key "${keyId}" in workspace "${id}"`);
    },

    /**
     * Feature data kept with the workspace by its agent: `undefined` for a key never written.
     * It is reached through the running agent only, so for a stopped workspace this fails as
     * every agent call does (WharfError `conflict`, "is stopped; start it first"), for reads and
     * updates alike; an unreachable agent is `unavailable`.
     */
    async readFeatureData<T>(id: string, key: string): Promise<T | undefined> {
      return (await readStored(id, key)).value as T | undefined;
    },

    /**
     * Read-modify-write of one key, compare-and-swap on the store's version: when another writer
     * (another replica) got in between, it reads again and re-applies `update`. So `update` may
     * run more than once and must only compute the new value from `current`.
     */
    updateFeatureData<T>(id: string, key: string, update: (current: T | undefined) => T): Promise<T> {
      // Updates from this replica take turns, so only other replicas' writes can conflict.
      const lockKey = `${id}\0${key}`;
      const run = (updateLocks.get(lockKey) ?? Promise.resolve()).catch(() => {}).then(async () => {
        for (let attempt = 0; attempt < attempts; attempt++) {
          // Spread retries out at random, so replicas that collided do not collide again in step.
          if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 10 * 2 ** attempt)));
          const current = await readStored(id, key);
          const next = update(current.value as T | undefined);
          const agent = await service.agent(id);
          const written = await agent.control({ op: 'store-write', key, value: next, expectVersion: current.version });
          if (written.ok) return next;
          if (written.error !== 'conflict') throw storeFailure(written);
        }
        throw new WharfError('unavailable', `"${key}" of workspace "${id}" kept changing under ${attempts} attempts to update it; try again`);
      });
      updateLocks.set(lockKey, run);
      run.finally(() => {
        if (updateLocks.get(lockKey) === run) updateLocks.delete(lockKey);
      }).catch(() => {});
      return run;
    },

    /**
     * Hybrid mode: the layers of `service`'s original workload, from the driver when it runs
     * beside workloads (WorkspaceDriver.workloadEnvironment); undefined when it does not, or none matches.
     */
    async workloadEnvironment(id: string, service: string, selector?: Record<string, string>): Promise<WorkloadEnvironment | undefined> {
      await requireRecord(id);
      return driver.workloadEnvironment ? driver.workloadEnvironment(id, service, selector) : undefined;
    },

    async shutdown(stopAgents: boolean): Promise<void> {
      for (const id of [...connections.keys()]) dropConnection(id);
      await driver.shutdown({ stopAgents });
    },
  };
  return service;
}
