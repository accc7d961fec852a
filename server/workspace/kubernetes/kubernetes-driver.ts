import * as k8s from '@kubernetes/client-node';
import type { Duplex } from 'node:stream';
import { WharfError, type WorkspaceResources } from '../../common/index.ts';
import type { WorkspaceDriver, WorkspaceRecord } from '../driver.ts';
import { ExecBridge } from './exec-bridge.ts';
import { loadKubeApi, MERGE_PATCH, orMissing, selectorOf, statusOf, toWharfError, type KubeTarget } from './kube-api.ts';
import { judgePod } from './pod-status.ts';
import { readWorkloadEnvironment } from './workload-env.ts';
import {
  ANNOTATIONS,
  bridgeCommand,
  claimOf,
  CONTAINER,
  LABELS,
  objectNameOf,
  ownedBy,
  secretOf,
  statefulSetOf,
  type PodSettings,
  type Toleration,
} from './workspace-objects.ts';

export type KubernetesDriverOptions = KubeTarget & {
  /** Namespace of the workspaces; default: the kubeconfig context's (in a pod: its own), else `default`. */
  namespace: string | undefined;
  /** Names this server's workspaces (a label and a name part): servers of one instance see the same ones. */
  instance: string;
  /** Image of a workspace that names none. */
  image: string;
  /** The wharf image: its `wharf agent install-runtime` fills each pod's runtime emptyDir. */
  runtimeImage: string;
  user: { uid: number; gid: number };
  resources: WorkspaceResources;
  storageClass: string | undefined;
  storageSize: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  serviceAccount: string | undefined;
  extraAgentArgs?: string[];
  agentEnv?: Record<string, string>;
  restartDelayMs: number;
  stopGraceMs: number;
  /** How long a pod may take to run its agent (an image pull included) before a start fails. */
  startTimeoutMs: number;
  log: (event: string, fields?: Record<string, unknown>) => void;
};

const MAX_QUICK_CRASHES = 5;

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Workspaces as Kubernetes workloads: a one-replica StatefulSet whose pod runs the workspace
 * image with the agent copied in by an init container (from the wharf image, into an emptyDir),
 * a PVC for /workspace and the agent's home, a Secret for the agent's keys. The StatefulSet's
 * labels and annotations are the metadata; the Secret and PVC are owned by it, so deleting it
 * removes everything. The agent is reached only through the exec API's stdio bridge.
 */
export function createKubernetesDriver(options: KubernetesDriverOptions): WorkspaceDriver {
  const api = loadKubeApi(options);
  const namespace = options.namespace ?? api.contextNamespace ?? 'default';
  const nameOf = (id: string) => objectNameOf(options.instance, id);
  const settings: PodSettings = {
    runtimeImage: options.runtimeImage,
    user: options.user,
    storageClass: options.storageClass,
    storageSize: options.storageSize,
    nodeSelector: options.nodeSelector,
    tolerations: options.tolerations,
    serviceAccount: options.serviceAccount,
    restartDelayMs: options.restartDelayMs,
    maxQuickCrashes: MAX_QUICK_CRASHES,
    stopGraceMs: options.stopGraceMs,
    extraAgentArgs: options.extraAgentArgs ?? [],
    agentEnv: options.agentEnv ?? {},
  };
  /** Container starts whose agent answered, by workspace (judgePod's startKey). */
  const ready = new Map<string, string>();
  const probing = new Set<string>();
  const launching = new Map<string, Promise<void>>();
  let shuttingDown = false;
  const where = `the Kubernetes API at ${api.server} (namespace ${namespace})`;

  async function readSet(id: string): Promise<k8s.V1StatefulSet | undefined> {
    const set = await orMissing(api.apps.readNamespacedStatefulSet({ name: nameOf(id), namespace })).catch((err: unknown) => {
      throw toWharfError(`cannot look at workspace "${id}" on ${where}`, err);
    });
    const labels = set?.metadata?.labels ?? {};
    // Only ours: a StatefulSet of that name made by someone else is no workspace of this server.
    if (!set || labels[LABELS.instance] !== options.instance || labels[LABELS.workspace] !== id) return undefined;
    return set;
  }

  async function requireSet(id: string): Promise<k8s.V1StatefulSet> {
    const set = await readSet(id);
    if (!set) throw new WharfError('not_found', `workspace "${id}" does not exist`);
    return set;
  }

  /** The workspace's pod (StatefulSets name it `<set>-0`), or undefined. */
  async function readPod(id: string): Promise<k8s.V1Pod | undefined> {
    return orMissing(api.core.readNamespacedPod({ name: `${nameOf(id)}-0`, namespace })).catch((err: unknown) => {
      throw toWharfError(`cannot look at the pod of workspace "${id}"`, err);
    });
  }

  function toRecord(id: string, set: k8s.V1StatefulSet, pod: k8s.V1Pod | undefined): WorkspaceRecord {
    const annotations = set.metadata?.annotations ?? {};
    const desired = annotations[ANNOTATIONS.desired] === 'stopped' ? 'stopped' : 'running';
    let status: WorkspaceRecord['status'];
    let statusReason: string | undefined;
    if (desired === 'stopped') status = 'stopped';
    else if (annotations[ANNOTATIONS.error]) {
      status = 'error';
      statusReason = annotations[ANNOTATIONS.error];
    } else if (!pod) status = 'starting';
    else {
      const judged = judgePod(pod);
      if (judged.state === 'error') {
        status = 'error';
        statusReason = judged.reason;
      } else if (judged.state === 'up' && ready.get(id) === judged.startKey) status = 'running';
      else {
        status = 'starting';
        if (judged.state === 'up') void probe(id, judged.startKey);
      }
    }
    let resources: WorkspaceResources | undefined;
    try {
      resources = annotations[ANNOTATIONS.resources] ? (JSON.parse(annotations[ANNOTATIONS.resources]) as WorkspaceResources) : undefined;
    } catch {
      resources = undefined;
    }
    return {
      id,
      name: annotations[ANNOTATIONS.name] ?? id,
      driver: 'kubernetes',
      createdAt: annotations[ANNOTATIONS.createdAt] ?? set.metadata?.creationTimestamp?.toString() ?? '',
      desired,
      status,
      ...(statusReason ? { statusReason } : {}),
      image: annotations[ANNOTATIONS.image],
      ...(resources ? { resources } : {}),
      hostPublicKey: annotations[ANNOTATIONS.hostPublicKey] ?? '',
    };
  }

  async function record(id: string): Promise<WorkspaceRecord | undefined> {
    const set = await readSet(id);
    if (!set) return undefined;
    return toRecord(id, set, await readPod(id));
  }

  /** One bridge exec; undefined when the agent did not answer (not listening yet, or gone). */
  async function openBridge(id: string): Promise<Duplex | undefined> {
    const bridge = await ExecBridge.open(api.config, { namespace, pod: `${nameOf(id)}-0`, container: CONTAINER, command: bridgeCommand() }).catch((err: unknown) => {
      // 404/400: no such pod or container yet; anything else is worth a log line.
      options.log('bridge.open_failed', { workspace: id, error: (err as Error).message });
      return undefined;
    });
    if (!bridge) return undefined;
    bridge.on('error', () => {});
    if (await bridge.answered) {
      bridge.removeAllListeners('error');
      return bridge;
    }
    options.log('bridge.stderr', { workspace: id, stderr: bridge.stderr.slice(0, 500), status: bridge.status?.message });
    bridge.destroy();
    return undefined;
  }

  async function probe(id: string, startKey: string): Promise<void> {
    if (probing.has(id) || shuttingDown) return;
    probing.add(id);
    try {
      const stream = await openBridge(id);
      if (stream) {
        ready.set(id, startKey);
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
   * Waits on a watch of the workspace's pod until `done` says so (or the deadline), looking again
   * after every event: the watch says when to look, a read says what is there (a watch may start
   * after the change it waits for). A dropped watch is opened again.
   */
  async function untilPod<T>(id: string, deadlineMs: number, done: (pod: k8s.V1Pod | undefined) => T | undefined): Promise<T | undefined> {
    const deadline = Date.now() + deadlineMs;
    const watch = new k8s.Watch(api.config);
    let wake: () => void = () => {};
    let controller: AbortController | undefined;
    try {
      while (Date.now() < deadline && !shuttingDown) {
        const changed = new Promise<void>((resolve) => (wake = resolve));
        // Not waited for past a second: a watch whose answer is held back (a buffering proxy)
        // must not stall the look below; the loop looks again at least every second anyway.
        const watching = watch
          .watch(`/api/v1/namespaces/${namespace}/pods`, { fieldSelector: `metadata.name=${nameOf(id)}-0` }, () => wake(), () => wake())
          .catch(() => undefined);
        controller = await Promise.race([watching, delay(1000).then(() => undefined)]);
        if (!controller) void watching.then((late) => late?.abort());
        const answer = done(await readPod(id));
        if (answer !== undefined) return answer;
        // A second at most between looks: a watch that never tells still cannot stall a start.
        await Promise.race([changed, delay(Math.min(1000, Math.max(0, deadline - Date.now())))]);
        controller?.abort();
      }
      return done(await readPod(id));
    } finally {
      controller?.abort();
    }
  }

  async function connectWhenReady(id: string, timeoutMs: number): Promise<Duplex> {
    const deadline = Date.now() + timeoutMs;
    let why = 'the agent did not answer in time';
    while (Date.now() < deadline) {
      const pod = await untilPod(id, Math.max(0, deadline - Date.now()), (p) => {
        const judged = p ? judgePod(p) : undefined;
        return judged && judged.state !== 'pending' ? { pod: p, judged } : undefined;
      });
      if (!pod) break;
      if (pod.judged.state === 'error') throw new WharfError('unavailable', `agent of workspace "${id}" did not start: ${pod.judged.reason}`);
      const stream = await openBridge(id);
      if (stream) {
        if (pod.judged.state === 'up') ready.set(id, pod.judged.startKey);
        return stream;
      }
      why = 'the agent did not answer in time (its pod runs)';
      await delay(200);
    }
    throw new WharfError('unavailable', `agent of workspace "${id}" did not start: ${why}`);
  }

  async function scale(id: string, replicas: number, annotations: Record<string, string | null>): Promise<void> {
    await api.apps
      .patchNamespacedStatefulSet({ name: nameOf(id), namespace, body: { metadata: { annotations }, spec: { replicas } } }, MERGE_PATCH)
      .catch((err: unknown) => {
        throw toWharfError(`cannot ${replicas ? 'start' : 'stop'} workspace "${id}"`, err);
      });
  }

  /** Scales to one (one launch at a time per workspace) and waits for the agent. */
  function launch(id: string): Promise<void> {
    if (shuttingDown) return Promise.reject(new WharfError('unavailable', 'the server is shutting down'));
    let pending = launching.get(id);
    if (!pending) {
      pending = (async () => {
        await scale(id, 1, { [ANNOTATIONS.desired]: 'running', [ANNOTATIONS.error]: null });
        // A pod stuck in error (OOM-killed, evicted, a bad pull) is replaced: a start is a fresh try.
        const pod = await readPod(id);
        if (pod && judgePod(pod).state === 'error') {
          await api.core.deleteNamespacedPod({ name: `${nameOf(id)}-0`, namespace, gracePeriodSeconds: 0 }).catch((err: unknown) => {
            if (statusOf(err) !== 404) throw toWharfError(`cannot replace the failed pod of workspace "${id}"`, err);
          });
          await untilPod(id, options.startTimeoutMs, (p) => (!p || p.metadata?.uid !== pod.metadata?.uid ? true : undefined));
        }
        options.log('agent.started', { workspace: id });
        const stream = await connectWhenReady(id, options.startTimeoutMs);
        stream.on('error', () => {});
        stream.destroy();
      })().finally(() => launching.delete(id));
      launching.set(id, pending);
    }
    return pending;
  }

  async function listSets(): Promise<k8s.V1StatefulSet[]> {
    const list = await api.apps.listNamespacedStatefulSet({ namespace, labelSelector: selectorOf({ [LABELS.instance]: options.instance, [LABELS.managedBy]: 'wharf' }) }).catch((err: unknown) => {
      throw toWharfError(`cannot list workspaces on ${where}`, err);
    });
    return list.items.filter((s) => s.metadata?.labels?.[LABELS.workspace]);
  }

  return {
    kind: 'kubernetes',

    async init() {
      // Reachable, and allowed to list: the first call of every other method.
      await listSets();
      // Nothing to adopt: pods outlive server processes, and the next look probes their agents.
    },

    async create(input) {
      const image = input.image ?? options.image;
      const resources = { ...options.resources, ...(input.resources ?? {}) };
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(input.id) || nameOf(input.id).length > 52) {
        throw new WharfError('bad_request', `workspace id "${input.id}" cannot name Kubernetes objects: lower-case letters, digits and "-", at most ${52 - nameOf('').length} characters`);
      }
      if (await readSet(input.id)) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
      const objectInput = { id: input.id, name: input.name, instance: options.instance, objectName: nameOf(input.id), image, resources, hostPublicKey: input.hostPublicKey, createdAt: new Date().toISOString() };
      let set: k8s.V1StatefulSet;
      try {
        set = await api.apps.createNamespacedStatefulSet({ namespace, body: statefulSetOf(objectInput, settings) });
      } catch (err) {
        if (statusOf(err) === 409) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
        throw toWharfError(`cannot create workspace "${input.id}" on ${where}`, err);
      }
      try {
        const owner = ownedBy(set);
        await api.core.createNamespacedSecret({ namespace, body: secretOf(objectInput, input, owner) });
        await api.core.createNamespacedPersistentVolumeClaim({ namespace, body: claimOf(objectInput, settings, owner) });
        await launch(input.id);
      } catch (err) {
        // Everything made so far is owned by the StatefulSet: one delete takes it all.
        await api.apps.deleteNamespacedStatefulSet({ name: nameOf(input.id), namespace, propagationPolicy: 'Background' }).catch(() => {});
        throw toWharfError(`cannot create workspace "${input.id}"`, err);
      }
      return (await record(input.id)) as WorkspaceRecord;
    },

    async list() {
      const out: WorkspaceRecord[] = [];
      for (const set of await listSets()) {
        const id = set.metadata?.labels?.[LABELS.workspace] as string;
        out.push(toRecord(id, set, await readPod(id).catch(() => undefined)));
      }
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    get: (id) => record(id),

    async start(id) {
      await requireSet(id);
      await launch(id);
      return (await record(id)) as WorkspaceRecord;
    },

    async stop(id) {
      await requireSet(id);
      await launching.get(id)?.catch(() => {});
      // Scale to zero: the pod goes, the PVC (and so /workspace and the agent's home) stays.
      await scale(id, 0, { [ANNOTATIONS.desired]: 'stopped' });
      ready.delete(id);
      await untilPod(id, options.stopGraceMs + 60_000, (pod) => (pod ? undefined : true));
      return (await record(id)) as WorkspaceRecord;
    },

    async remove(id) {
      await requireSet(id);
      await launching.get(id)?.catch(() => {});
      // Foreground: the call returns once the garbage collector removed the pod, the Secret (the
      // keys) and the PVC, all owned by the StatefulSet; then it is gone itself.
      await api.apps.deleteNamespacedStatefulSet({ name: nameOf(id), namespace, propagationPolicy: 'Foreground' }).catch((err: unknown) => {
        if (statusOf(err) !== 404) throw toWharfError(`cannot remove workspace "${id}"`, err);
      });
      ready.delete(id);
      const deadline = Date.now() + options.stopGraceMs + 60_000;
      while (Date.now() < deadline && (await orMissing(api.apps.readNamespacedStatefulSet({ name: nameOf(id), namespace })).catch(() => undefined))) await delay(200);
    },

    async connect(id) {
      const set = await requireSet(id);
      const current = toRecord(id, set, await readPod(id));
      if (current.desired !== 'running') throw new WharfError('conflict', `workspace "${id}" is stopped; start it first`);
      if (current.status === 'error') throw new WharfError('unavailable', `workspace "${id}" is in error: ${current.statusReason}`);
      if ((set.spec?.replicas ?? 0) === 0 && !launching.has(id)) await launch(id);
      await launching.get(id)?.catch(() => {});
      return connectWhenReady(id, options.startTimeoutMs);
    },

    async workloadEnvironment(id, service, selector) {
      await requireSet(id);
      return readWorkloadEnvironment(api, namespace, service, selector);
    },

    async shutdown() {
      // Workspaces are never stopped with a server process: in a cluster other replicas serve
      // them, and the next server finds them running.
      shuttingDown = true;
      await Promise.all([...launching.values()].map((p) => p.catch(() => {})));
    },
  };
}

