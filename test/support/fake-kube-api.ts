import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tar from 'tar-stream';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A stand-in for a Kubernetes API server, on 127.0.0.1, for the kubernetes driver's tests (no API
 * server can run on these machines). It answers exactly the paths the driver uses — StatefulSets,
 * Deployments, Pods, Secrets, ConfigMaps, PVCs: create, read, list with label and field
 * selectors, merge-patch, delete (Foreground and Background, with garbage collection by owner
 * reference), watch streams, and exec over the websocket channel subprotocols — with the object
 * shapes and Status errors (404, 409, 422) of the real API.
 *
 * Pods are real: a small StatefulSet controller makes `<set>-0`, and a kubelet of sorts realises
 * it on the local dockerd: emptyDir, Secret and PVC volumes as docker volumes (fsGroup applied as
 * kubelet does: group-owned, setgid), init containers run to completion first, then the
 * containers; `shareProcessNamespace` becomes docker's init as PID 1 (a pause process's job). A
 * missing image is ErrImagePull then ImagePullBackOff; a container that exits is restarted with
 * its lastState kept. Tests can evict a pod or have its container OOM-killed (`oomKill`), which a
 * machine without memory pressure cannot do on demand.
 */

type Meta = {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  deletionTimestamp?: string;
  finalizers?: string[];
  generation?: number;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type KubeObject = { apiVersion: string; kind: string; metadata: Meta; spec?: any; status?: any; data?: Record<string, string>; stringData?: Record<string, string>; type?: string };

const RESOURCES: Record<string, { kind: string; apiVersion: string; prefix: string }> = {
  statefulsets: { kind: 'StatefulSet', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  deployments: { kind: 'Deployment', apiVersion: 'apps/v1', prefix: '/apis/apps/v1' },
  pods: { kind: 'Pod', apiVersion: 'v1', prefix: '/api/v1' },
  secrets: { kind: 'Secret', apiVersion: 'v1', prefix: '/api/v1' },
  configmaps: { kind: 'ConfigMap', apiVersion: 'v1', prefix: '/api/v1' },
  persistentvolumeclaims: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', prefix: '/api/v1' },
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/** RFC 7386 merge patch. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function mergePatch(target: any, patch: any): any {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function matchesLabels(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').filter(Boolean).every((term) => {
    const neq = term.split('!=');
    if (neq.length === 2) return (labels ?? {})[neq[0]] !== neq[1];
    const [k, v] = term.split('=');
    return v === undefined ? k in (labels ?? {}) : (labels ?? {})[k] === v;
  });
}

function matchesFields(obj: KubeObject, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').filter(Boolean).every((term) => {
    const [k, v] = term.split('=');
    if (k === 'metadata.name') return obj.metadata.name === v;
    if (k === 'metadata.namespace') return obj.metadata.namespace === v;
    if (k === 'status.phase') return obj.status?.phase === v;
    return false;
  });
}

/** Kubernetes quantities to numbers: `512Mi` bytes, `500m` CPUs. */
function quantity(raw: string | number | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(raw));
  if (!m) return undefined;
  const scale: Record<string, number> = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
}

type DockerReply = { status: number; body: Buffer };

function dockerCall(socketPath: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<DockerReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath, method, path, headers: { ...(payload && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function dockerJson<T>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await dockerCall(socketPath, method, path, body);
  if (r.status >= 300) throw new Error(`dockerd ${method} ${path}: ${r.status} ${r.body.toString()}`);
  return (r.body.length ? JSON.parse(r.body.toString()) : {}) as T;
}

type TarEntry = { name: string; type?: 'file' | 'directory'; mode: number; uid?: number; gid?: number; body?: Buffer | string };

function packTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve) => pack.on('end', () => resolve(Buffer.concat(chunks))));
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date() } as const;
    if (e.type === 'directory') pack.entry(header);
    else pack.entry(header, e.body ?? '');
  }
  pack.finalize();
  return done;
}

export type FakeKubeOptions = {
  /** The dockerd that realises pods (a unix socket path). */
  dockerSocket: string;
  /** Exec subprotocols this API server speaks, in its order of preference. */
  protocols?: string[];
  /** How long an evicted pod stays before the StatefulSet controller replaces it. */
  evictionHoldMs?: number;
  /**
   * A docker network standing for the cluster's pod network: pods' containers join it, and
   * containers put on it with network aliases stand for Services (Docker's embedded DNS answers
   * their names inside the pods, as cluster DNS does). Without it pods have no network.
   */
  podNetwork?: string;
};

type PodRuntime = {
  /** Docker volumes by pod volume name. */
  volumes: Map<string, string>;
  containers: Map<string, string>;
  realising?: Promise<void>;
  /** Set once the pod's containers run. */
  started: boolean;
  restartAt: Map<string, number>;
  oomNext: Set<string>;
};

export type FakeKubeApi = {
  url: string;
  /** A kubeconfig file's text pointing at this server. */
  kubeconfig(namespace?: string): string;
  /** Objects (by kind/namespace/name) and docker containers/volumes made for objects labelled `label=value`. */
  leftovers(label: string, value: string): Promise<string[]>;
  /** Puts an object into the store as a client would (originals for hybrid tests). */
  put(resource: string, namespace: string, object: Record<string, unknown>): KubeObject;
  get(resource: string, namespace: string, name: string): KubeObject | undefined;
  /** Every object of a resource in a namespace. */
  list(resource: string, namespace: string): KubeObject[];
  /** The node ran out of memory: the pod's containers stop, and it is Failed/Evicted. */
  evict(namespace: string, pod: string): Promise<void>;
  /** The kernel killed the container for memory: it exits with OOMKilled (and is restarted after a back-off). */
  oomKill(namespace: string, pod: string, container: string): Promise<void>;
  /** Exec subprotocol of each exec connection so far. */
  execProtocols: string[];
  close(): Promise<void>;
};

export async function startFakeKubeApi(options: FakeKubeOptions): Promise<FakeKubeApi> {
  const sock = options.dockerSocket;
  const protocols = options.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
  const evictionHoldMs = options.evictionHoldMs ?? 5000;
  const fakeId = randomUUID().slice(0, 8);
  const store = new Map<string, KubeObject>();
  const runtimes = new Map<string, PodRuntime>();
  const watchers = new Set<{ resource: string; namespace: string; labels: string | null; fields: string | null; res: ServerResponse }>();
  const execProtocols: string[] = [];
  let version = 1;
  let closed = false;

  const key = (resource: string, namespace: string, name: string) => `${resource}/${namespace}/${name}`;

  function emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', resource: string, obj: KubeObject): void {
    for (const w of watchers) {
      if (w.resource !== resource || w.namespace !== obj.metadata.namespace) continue;
      if (!matchesLabels(obj.metadata.labels, w.labels) || !matchesFields(obj, w.fields)) continue;
      w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
    }
  }

  function save(resource: string, obj: KubeObject, type: 'ADDED' | 'MODIFIED'): KubeObject {
    obj.metadata.resourceVersion = String(++version);
    store.set(key(resource, obj.metadata.namespace ?? '', obj.metadata.name), obj);
    emit(type, resource, obj);
    return obj;
  }

  function removeObject(resource: string, obj: KubeObject): void {
    store.delete(key(resource, obj.metadata.namespace ?? '', obj.metadata.name));
    obj.metadata.resourceVersion = String(++version);
    emit('DELETED', resource, obj);
  }

  function create(resource: string, namespace: string, body: KubeObject): KubeObject | ReturnType<typeof status> {
    const def = RESOURCES[resource];
    const name = body.metadata?.name;
    if (!name || !DNS_SUBDOMAIN.test(name) || name.length > 253) {
      return status(422, 'Invalid', `${def.kind} "${name ?? ''}" is invalid: metadata.name: Invalid value: "${name ?? ''}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`, { name, kind: resource });
    }
    for (const [k, v] of Object.entries(body.metadata.labels ?? {})) {
      if (!LABEL_VALUE.test(v) || v.length > 63) return status(422, 'Invalid', `${def.kind} "${name}" is invalid: metadata.labels: Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must be no more than 63 characters (label ${k})`, { name, kind: resource });
    }
    if (store.has(key(resource, namespace, name))) return status(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource });
    const obj: KubeObject = {
      ...body,
      apiVersion: def.apiVersion,
      kind: def.kind,
      metadata: { ...body.metadata, name, namespace, uid: randomUUID(), resourceVersion: '0', creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), generation: 1 },
    };
    if (resource === 'statefulsets' || resource === 'deployments') obj.status = { replicas: 0, readyReplicas: 0, availableReplicas: 0, observedGeneration: 1 };
    if (resource === 'persistentvolumeclaims') obj.status = { phase: 'Bound', accessModes: body.spec?.accessModes, capacity: { storage: body.spec?.resources?.requests?.storage } };
    if (resource === 'pods' && !obj.status) obj.status = { phase: 'Pending' };
    if (resource === 'secrets' && obj.stringData) {
      obj.data = { ...(obj.data ?? {}), ...Object.fromEntries(Object.entries(obj.stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) };
      delete obj.stringData;
    }
    return save(resource, obj, 'ADDED');
  }

  /* ---- the kubelet of sorts ---- */

  function runtimeOf(pod: KubeObject): PodRuntime {
    let rt = runtimes.get(pod.metadata.uid);
    if (!rt) {
      rt = { volumes: new Map(), containers: new Map(), started: false, restartAt: new Map(), oomNext: new Set() };
      runtimes.set(pod.metadata.uid, rt);
    }
    return rt;
  }

  const dockerLabels = (obj: KubeObject) => ({ 'fake-kube.server': fakeId, 'fake-kube.object': `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`, 'fake-kube.labels': JSON.stringify(obj.metadata.labels ?? {}) });
  const pvcVolume = (namespace: string, claim: string) => `fk-${fakeId}-pvc-${namespace}-${claim}`;

  async function imageThere(image: string): Promise<boolean> {
    return (await dockerCall(sock, 'GET', `/images/${encodeURIComponent(image)}/json`)).status === 200;
  }

  function setPodStatus(pod: KubeObject, change: (s: Record<string, unknown>) => void): void {
    const current = store.get(key('pods', pod.metadata.namespace ?? '', pod.metadata.name));
    if (!current || current.metadata.uid !== pod.metadata.uid) return;
    const before = JSON.stringify(current.status);
    const next = JSON.parse(before) as Record<string, unknown>;
    change(next);
    if (JSON.stringify(next) === before) return;
    current.status = next;
    save('pods', current, 'MODIFIED');
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  function containerStatus(c: any, state: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    return { name: c.name, image: c.image, imageID: '', ready: 'running' in state, started: 'running' in state, restartCount: 0, state, ...extra };
  }

  /** Fills a pod's docker volumes as kubelet lays them out (through a helper container that never runs). */
  async function prepareVolumes(pod: KubeObject, rt: PodRuntime, helperImage: string): Promise<string | undefined> {
    const spec = pod.spec;
    const fsGroup: number | undefined = spec.securityContext?.fsGroup;
    const mounts: Array<{ Type: string; Source: string; Target: string }> = [];
    const entries: TarEntry[] = [];
    for (const volume of spec.volumes ?? []) {
      if (volume.persistentVolumeClaim) {
        const claim = store.get(key('persistentvolumeclaims', pod.metadata.namespace ?? '', volume.persistentVolumeClaim.claimName));
        if (!claim) return `persistentvolumeclaim "${volume.persistentVolumeClaim.claimName}" not found`;
        rt.volumes.set(volume.name, pvcVolume(pod.metadata.namespace ?? '', claim.metadata.name));
        // The claim's volume: made on first use, kept until the claim goes (labelled as the claim).
        await dockerJson(sock, 'POST', '/volumes/create', { Name: rt.volumes.get(volume.name), Labels: dockerLabels(claim) });
        mounts.push({ Type: 'volume', Source: rt.volumes.get(volume.name) as string, Target: `/v/${volume.name}` });
        // fsGroup: the volume's root belongs to the group, setgid, group-writable.
        entries.push({ name: `v/${volume.name}/`, type: 'directory', mode: 0o2775, gid: fsGroup ?? 0 });
      } else if (volume.emptyDir) {
        const name = `fk-${fakeId}-${pod.metadata.uid.slice(0, 8)}-${volume.name}`;
        await dockerJson(sock, 'POST', '/volumes/create', { Name: name, Labels: dockerLabels(pod) });
        rt.volumes.set(volume.name, name);
        mounts.push({ Type: 'volume', Source: name, Target: `/v/${volume.name}` });
        entries.push({ name: `v/${volume.name}/`, type: 'directory', mode: 0o777 });
      } else if (volume.secret) {
        const secret = store.get(key('secrets', pod.metadata.namespace ?? '', volume.secret.secretName));
        if (!secret) return `secret "${volume.secret.secretName}" not found`;
        const name = `fk-${fakeId}-${pod.metadata.uid.slice(0, 8)}-${volume.name}`;
        await dockerJson(sock, 'POST', '/volumes/create', { Name: name, Labels: dockerLabels(pod) });
        rt.volumes.set(volume.name, name);
        mounts.push({ Type: 'volume', Source: name, Target: `/v/${volume.name}` });
        entries.push({ name: `v/${volume.name}/`, type: 'directory', mode: 0o755 });
        for (const [file, value] of Object.entries(secret.data ?? {})) {
          entries.push({ name: `v/${volume.name}/${file}`, mode: volume.secret.defaultMode ?? 0o644, gid: fsGroup ?? 0, body: Buffer.from(value, 'base64') });
        }
      }
    }
    const helper = `fk-${fakeId}-${pod.metadata.uid.slice(0, 8)}-fill`;
    await dockerJson(sock, 'POST', `/containers/create?name=${helper}`, { Image: helperImage, Cmd: ['/nonexistent'], Labels: dockerLabels(pod), HostConfig: { NetworkMode: 'none', Mounts: mounts } });
    try {
      const r = await dockerCall(sock, 'PUT', `/containers/${helper}/archive?path=/`, await packTar([{ name: 'v/', type: 'directory', mode: 0o755 }, ...entries]), { 'content-type': 'application/x-tar' });
      if (r.status !== 200) throw new Error(`filling volumes: ${r.status} ${r.body.toString()}`);
    } finally {
      await dockerCall(sock, 'DELETE', `/containers/${helper}?force=1`);
    }
    return undefined;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function createContainer(pod: KubeObject, rt: PodRuntime, c: any, init: boolean): Promise<string> {
    const spec = pod.spec;
    const sc = { ...(spec.securityContext ?? {}), ...(c.securityContext ?? {}) };
    const limits = c.resources?.limits ?? {};
    const memory = quantity(limits.memory);
    const cpu = quantity(limits.cpu);
    const mounts = [];
    for (const m of c.volumeMounts ?? []) {
      const volume = rt.volumes.get(m.name) as string;
      if (m.subPath) {
        // As kubelet does a subPath: a bind mount of the folder inside the volume (dockerd 20.10
        // has no volume subpaths). The folder must exist: the driver's init container made it.
        const { Mountpoint } = await dockerJson<{ Mountpoint: string }>(sock, 'GET', `/volumes/${volume}`);
        mounts.push({ Type: 'bind', Source: `${Mountpoint}/${m.subPath}`, Target: m.mountPath, ReadOnly: !!m.readOnly });
      } else mounts.push({ Type: 'volume', Source: volume, Target: m.mountPath, ReadOnly: !!m.readOnly });
    }
    const name = `fk-${fakeId}-${pod.metadata.uid.slice(0, 8)}-${c.name}`;
    await dockerCall(sock, 'DELETE', `/containers/${name}?force=1`);
    const created = await dockerJson<{ Id: string }>(sock, 'POST', `/containers/create?name=${name}`, {
      Image: c.image,
      ...(c.command ? { Entrypoint: c.command } : {}),
      ...(c.args ? { Cmd: c.args } : {}),
      ...(sc.runAsUser !== undefined ? { User: `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` } : {}),
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      Env: (c.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => `${e.name}=${e.value}`),
      Labels: dockerLabels(pod),
      HostConfig: {
        // shareProcessNamespace: a pause process is PID 1; here docker's init plays it.
        Init: !init && !!spec.shareProcessNamespace,
        NetworkMode: options.podNetwork ?? 'none',
        Mounts: mounts,
        ...(sc.fsGroup !== undefined ? { GroupAdd: [String(sc.fsGroup)] } : {}),
        ...(sc.capabilities?.drop ? { CapDrop: sc.capabilities.drop } : {}),
        ...(sc.allowPrivilegeEscalation === false ? { SecurityOpt: ['no-new-privileges'] } : {}),
        ...(memory ? { Memory: Math.round(memory), MemorySwap: Math.round(memory) } : {}),
        ...(cpu ? { NanoCpus: Math.round(cpu * 1e9) } : {}),
        RestartPolicy: { Name: 'no' },
      },
    });
    rt.containers.set(c.name, created.Id);
    return created.Id;
  }

  async function realise(pod: KubeObject): Promise<void> {
    const rt = runtimeOf(pod);
    const spec = pod.spec;
    const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    setPodStatus(pod, (s) => {
      s.startTime = now();
      s.hostIP = '127.0.0.1';
      s.qosClass = 'Burstable';
    });
    // Images first: a missing one is a pull that fails, then backs off (retried on every look).
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const all = [...(spec.initContainers ?? []), ...spec.containers] as any[];
    let pulls = 0;
    for (;;) {
      const missing: Array<{ name: string; image: string }> = [];
      for (const c of all) if (!(await imageThere(c.image))) missing.push(c);
      if (missing.length === 0) break;
      pulls++;
      setPodStatus(pod, (s) => {
        const waiting = (c: { name: string; image: string }) =>
          missing.includes(c) ? { waiting: pulls === 1 ? { reason: 'ErrImagePull', message: `failed to pull and unpack image "${c.image}": not found` } : { reason: 'ImagePullBackOff', message: `Back-off pulling image "${c.image}"` } } : { waiting: { reason: 'PodInitializing' } };
        s.initContainerStatuses = (spec.initContainers ?? []).map((c: { name: string; image: string }) => containerStatus(c, waiting(c)));
        s.containerStatuses = spec.containers.map((c: { name: string; image: string }) => containerStatus(c, waiting(c)));
      });
      await new Promise((r) => setTimeout(r, 300));
      if (closed || !store.has(key('pods', pod.metadata.namespace ?? '', pod.metadata.name)) || store.get(key('pods', pod.metadata.namespace ?? '', pod.metadata.name))?.metadata.deletionTimestamp) return;
    }
    const problem = await prepareVolumes(pod, rt, spec.containers[0].image);
    if (problem) {
      setPodStatus(pod, (s) => (s.conditions = [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: problem }]));
      return;
    }
    const initStatuses: unknown[] = [];
    for (const c of spec.initContainers ?? []) {
      const id = await createContainer(pod, rt, c, true);
      await dockerJson(sock, 'POST', `/containers/${id}/start`);
      setPodStatus(pod, (s) => (s.initContainerStatuses = [...initStatuses, containerStatus(c, { running: { startedAt: now() } })]));
      const waited = await dockerJson<{ StatusCode: number }>(sock, 'POST', `/containers/${id}/wait`);
      const terminated = { exitCode: waited.StatusCode, reason: waited.StatusCode === 0 ? 'Completed' : 'Error', startedAt: now(), finishedAt: now(), containerID: `docker://${id}` };
      if (waited.StatusCode !== 0) {
        const logs = await dockerCall(sock, 'GET', `/containers/${id}/logs?stdout=1&stderr=1&tail=20`);
        setPodStatus(pod, (s) => {
          s.initContainerStatuses = [...initStatuses, containerStatus(c, { terminated: { ...terminated, message: logs.body.toString('latin1').replace(/[\x00-\x08]/g, '').slice(-500) } })];
          s.phase = 'Pending';
        });
        return;
      }
      initStatuses.push(containerStatus(c, { terminated }, { ready: true }));
      await dockerCall(sock, 'DELETE', `/containers/${id}?force=1`);
      rt.containers.delete(c.name);
    }
    for (const c of spec.containers) {
      const id = await createContainer(pod, rt, c, false);
      await dockerJson(sock, 'POST', `/containers/${id}/start`);
    }
    rt.started = true;
    setPodStatus(pod, (s) => {
      s.initContainerStatuses = initStatuses;
      s.phase = 'Running';
      s.podIP = '10.244.0.1';
      s.podIPs = [{ ip: '10.244.0.1' }];
    });
    await observe(pod);
  }

  /** Reads the pod's containers from dockerd into its status; restarts exited ones (restartPolicy Always) after a back-off. */
  async function observe(pod: KubeObject): Promise<void> {
    const rt = runtimeOf(pod);
    if (!rt.started) return;
    const statuses: unknown[] = [];
    const current = store.get(key('pods', pod.metadata.namespace ?? '', pod.metadata.name));
    if (!current || current.status?.phase === 'Failed') return;
    for (const c of pod.spec.containers) {
      const id = rt.containers.get(c.name);
      if (!id) continue;
      const info = await dockerJson<{ State: { Running: boolean; ExitCode: number; OOMKilled: boolean; StartedAt: string; FinishedAt: string } }>(sock, 'GET', `/containers/${id}/json`);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const before = (current.status?.containerStatuses ?? []).find((s: any) => s.name === c.name) ?? { restartCount: 0 };
      if (info.State.Running) {
        statuses.push(containerStatus(c, { running: { startedAt: info.State.StartedAt.replace(/\.\d+Z$/, 'Z') } }, { restartCount: before.restartCount, lastState: before.lastState ?? {}, containerID: `docker://${id}` }));
        continue;
      }
      const oom = info.State.OOMKilled || rt.oomNext.has(c.name);
      const terminated = { exitCode: oom ? 137 : info.State.ExitCode, reason: oom ? 'OOMKilled' : info.State.ExitCode === 0 ? 'Completed' : 'Error', startedAt: info.State.StartedAt, finishedAt: info.State.FinishedAt, containerID: `docker://${id}` };
      if (!rt.restartAt.has(c.name)) rt.restartAt.set(c.name, Date.now() + 10_000 * Math.min(2 ** before.restartCount, 30) / 10);
      if (Date.now() >= (rt.restartAt.get(c.name) as number)) {
        rt.restartAt.delete(c.name);
        rt.oomNext.delete(c.name);
        await dockerCall(sock, 'POST', `/containers/${id}/start`);
        statuses.push(containerStatus(c, { waiting: { reason: 'ContainerCreating' } }, { restartCount: before.restartCount + 1, lastState: { terminated }, containerID: `docker://${id}` }));
      } else {
        statuses.push(containerStatus(c, { waiting: { reason: 'CrashLoopBackOff', message: `back-off restarting failed container ${c.name} in pod ${pod.metadata.name}` } }, { restartCount: before.restartCount, lastState: { terminated }, containerID: `docker://${id}` }));
      }
    }
    setPodStatus(pod, (s) => {
      s.containerStatuses = statuses;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const ready = statuses.every((x: any) => x.ready);
      s.conditions = [{ type: 'Ready', status: ready ? 'True' : 'False' }, { type: 'ContainersReady', status: ready ? 'True' : 'False' }, { type: 'Initialized', status: 'True' }, { type: 'PodScheduled', status: 'True' }];
    });
  }

  async function teardown(pod: KubeObject, graceSeconds: number): Promise<void> {
    const rt = runtimes.get(pod.metadata.uid);
    if (rt) {
      await rt.realising?.catch(() => {});
      for (const id of rt.containers.values()) {
        await dockerCall(sock, 'POST', `/containers/${id}/stop?t=${graceSeconds}`).catch(() => undefined);
        await dockerCall(sock, 'DELETE', `/containers/${id}?force=1&v=1`).catch(() => undefined);
      }
      for (const [name, volume] of rt.volumes) {
        if (!volume.includes('-pvc-')) await dockerCall(sock, 'DELETE', `/volumes/${volume}?force=1`).catch(() => undefined);
        rt.volumes.delete(name);
      }
      runtimes.delete(pod.metadata.uid);
    }
  }

  const deletingPods = new Set<string>();
  function deletePod(pod: KubeObject, graceSeconds?: number): void {
    if (deletingPods.has(pod.metadata.uid)) return;
    deletingPods.add(pod.metadata.uid);
    pod.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    save('pods', pod, 'MODIFIED');
    void teardown(pod, graceSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30).finally(() => {
      deletingPods.delete(pod.metadata.uid);
      if (store.get(key('pods', pod.metadata.namespace ?? '', pod.metadata.name))?.metadata.uid === pod.metadata.uid) removeObject('pods', pod);
    });
  }

  /** The garbage collector: objects whose owners are all gone go too (pods through their teardown). */
  async function collectGarbage(): Promise<void> {
    // An owner in foreground deletion counts as gone for its dependents; it goes itself after them.
    const uids = new Set([...store.values()].filter((o) => !o.metadata.finalizers?.includes('foregroundDeletion')).map((o) => o.metadata.uid));
    for (const [k, obj] of store) {
      const owners = obj.metadata.ownerReferences ?? [];
      if (owners.length === 0 || owners.some((o) => uids.has(o.uid))) continue;
      const resource = k.split('/')[0];
      if (resource === 'pods') deletePod(obj);
      else if (resource === 'persistentvolumeclaims') {
        // pvc-protection: the claim goes once no pod uses it.
        const inUse = [...store.values()].some((p) => p.kind === 'Pod' && (p.spec?.volumes ?? []).some((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === obj.metadata.name));
        if (inUse) continue;
        const gone = await dockerCall(sock, 'DELETE', `/volumes/${pvcVolume(obj.metadata.namespace ?? '', obj.metadata.name)}?force=1`);
        if (gone.status === 409) continue;
        removeObject(resource, obj);
      } else removeObject(resource, obj);
    }
  }

  /** The StatefulSet controller and the kubelet's loop, one pass. */
  async function reconcile(): Promise<void> {
    for (const set of [...store.values()].filter((o) => o.kind === 'StatefulSet')) {
      const ns = set.metadata.namespace ?? '';
      const podName = `${set.metadata.name}-0`;
      const pod = store.get(key('pods', ns, podName));
      const want = set.metadata.deletionTimestamp ? 0 : (set.spec.replicas ?? 1);
      if (want >= 1 && !pod) {
        create('pods', ns, {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: podName,
            labels: { ...(set.spec.template.metadata?.labels ?? {}), 'statefulset.kubernetes.io/pod-name': podName },
            ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: set.metadata.name, uid: set.metadata.uid, controller: true, blockOwnerDeletion: true }],
          } as Meta,
          spec: { ...structuredClone(set.spec.template.spec), nodeName: 'fake-node', serviceAccountName: set.spec.template.spec.serviceAccountName ?? 'default' },
        });
      } else if (pod && !pod.metadata.deletionTimestamp && (want === 0 || (pod.status?.phase === 'Failed' && Date.now() - Date.parse(pod.status.evictedAt ?? 0) > evictionHoldMs))) {
        deletePod(pod);
      }
      const current = store.get(key('pods', ns, podName));
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const ready = current?.status?.containerStatuses?.every((c: any) => c.ready) && current.status.phase === 'Running' ? 1 : 0;
      const next = { replicas: current ? 1 : 0, readyReplicas: ready, availableReplicas: ready, currentReplicas: current ? 1 : 0, observedGeneration: set.metadata.generation };
      if (JSON.stringify(next) !== JSON.stringify(set.status)) {
        set.status = next;
        save('statefulsets', set, 'MODIFIED');
      }
      if (set.metadata.deletionTimestamp && !current && ![...store.values()].some((o) => o.metadata.ownerReferences?.some((r) => r.uid === set.metadata.uid))) {
        removeObject('statefulsets', set);
      }
    }
    for (const pod of [...store.values()].filter((o) => o.kind === 'Pod' && o.metadata.ownerReferences?.some((r) => r.kind === 'StatefulSet'))) {
      if (pod.metadata.deletionTimestamp) continue;
      const rt = runtimeOf(pod);
      if (!rt.realising) {
        rt.realising = realise(pod).catch((err: Error) => {
          setPodStatus(pod, (s) => (s.conditions = [{ type: 'Ready', status: 'False', reason: 'FakeKubeletError', message: err.message }]));
        });
      } else if (rt.started) await observe(pod);
    }
    await collectGarbage();
  }

  let looping = false;
  const timer = setInterval(() => {
    if (looping || closed) return;
    looping = true;
    reconcile()
      .catch(() => {})
      .finally(() => (looping = false));
  }, 250);

  /* ---- HTTP ---- */

  function send(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    return text ? JSON.parse(text) : undefined;
  }

  const route = /^\/(?:api\/v1|apis\/apps\/v1)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(?:\/(exec))?$/;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = route.exec(url.pathname);
    if (!m || !RESOURCES[m[2]] || !url.pathname.startsWith(RESOURCES[m[2]].prefix)) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const [, namespace, resource, name] = m;
    const def = RESOURCES[resource];
    const method = req.method ?? 'GET';
    if (!name && method === 'GET') {
      const labels = url.searchParams.get('labelSelector');
      const fields = url.searchParams.get('fieldSelector');
      const items = [...store.values()].filter((o) => o.kind === def.kind && o.metadata.namespace === namespace && matchesLabels(o.metadata.labels, labels) && matchesFields(o, fields));
      if (['true', '1'].includes(url.searchParams.get('watch') ?? '')) {
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        // The API server answers a watch at once, events or not (Node would hold the headers
        // until the first write: a watch of nothing would never be established).
        res.flushHeaders();
        // A watch without resourceVersion begins with the objects there now, as ADDED events.
        for (const o of items) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
        const watcher = { resource, namespace, labels, fields, res };
        watchers.add(watcher);
        const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
        const end = () => {
          watchers.delete(watcher);
          res.end();
        };
        if (timeout) setTimeout(end, timeout * 1000).unref();
        req.on('close', () => watchers.delete(watcher));
        return;
      }
      return send(res, 200, { apiVersion: def.apiVersion, kind: `${def.kind}List`, metadata: { resourceVersion: String(version) }, items });
    }
    if (!name && method === 'POST') {
      const body = (await readBody(req)) as KubeObject;
      const made = create(resource, namespace, body);
      return send(res, 'code' in made ? made.code : 201, made);
    }
    const existing = name ? store.get(key(resource, namespace, name)) : undefined;
    const missing = () => send(res, 404, status(404, 'NotFound', `${resource}${def.prefix === '/apis/apps/v1' ? '.apps' : ''} "${name}" not found`, { name, kind: resource }));
    if (method === 'GET') return existing ? send(res, 200, existing) : missing();
    if (method === 'PATCH') {
      if (!existing) return missing();
      const type = req.headers['content-type'] ?? '';
      if (!/merge-patch\+json|strategic-merge-patch\+json/.test(type)) return send(res, 415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${type})`));
      const patch = (await readBody(req)) as Record<string, unknown>;
      const next = mergePatch(existing, patch) as KubeObject;
      next.metadata = { ...next.metadata, uid: existing.metadata.uid, name: existing.metadata.name, namespace, creationTimestamp: existing.metadata.creationTimestamp };
      if (typeof next.spec?.replicas === 'number' && next.spec.replicas < 0) return send(res, 422, status(422, 'Invalid', `${def.kind} "${name}" is invalid: spec.replicas: Invalid value: ${next.spec.replicas}: must be greater than or equal to 0`));
      if (JSON.stringify(next.spec) !== JSON.stringify(existing.spec)) next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
      return send(res, 200, save(resource, next, 'MODIFIED'));
    }
    if (method === 'DELETE') {
      if (!existing) return missing();
      const body = ((await readBody(req).catch(() => undefined)) ?? {}) as { propagationPolicy?: string; gracePeriodSeconds?: number };
      const policy = url.searchParams.get('propagationPolicy') ?? body.propagationPolicy ?? 'Background';
      const grace = url.searchParams.get('gracePeriodSeconds') ?? body.gracePeriodSeconds;
      if (resource === 'pods') {
        deletePod(existing, grace === undefined ? undefined : Number(grace));
        return send(res, 200, existing);
      }
      if (policy === 'Foreground') {
        existing.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        existing.metadata.finalizers = ['foregroundDeletion'];
        save(resource, existing, 'MODIFIED');
        // Dependents first (the garbage collector, the controller stops its pod), then the owner itself.
        return send(res, 200, existing);
      }
      removeObject(resource, existing);
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource, uid: existing.metadata.uid } });
    }
    return send(res, 405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
  }

  /* ---- exec over the channel subprotocols ---- */

  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
  });

  function refuseUpgrade(socket: Duplex, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    socket.end(`HTTP/1.1 ${code} ${code === 404 ? 'Not Found' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }

  function startExec(ws: WebSocket, containerId: string, command: string[], user: string | undefined): void {
    execProtocols.push(ws.protocol);
    void (async () => {
      const exec = await dockerJson<{ Id: string }>(sock, 'POST', `/containers/${containerId}/exec`, { AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: command, ...(user ? { User: user } : {}) });
      const socket = await new Promise<Duplex>((resolve, reject) => {
        const req = request({ socketPath: sock, method: 'POST', path: `/exec/${exec.Id}/start`, headers: { 'content-type': 'application/json', connection: 'Upgrade', upgrade: 'tcp' } });
        req.on('upgrade', (_res, upgraded, head) => {
          if (head.length) upgraded.unshift(head);
          resolve(upgraded);
        });
        req.on('response', (res) => reject(new Error(`exec start answered ${res.statusCode}`)));
        req.on('error', reject);
        req.end(JSON.stringify({ Detach: false, Tty: false }));
      });
      socket.on('error', () => {});
      ws.on('message', (data: Buffer) => {
        if (data[0] === 0) {
          if (!socket.write(data.subarray(1))) {
            ws.pause();
            socket.once('drain', () => ws.resume());
          }
        } else if (data[0] === 255 && data[1] === 0 && ws.protocol === 'v5.channel.k8s.io') socket.end();
      });
      ws.on('close', () => socket.destroy());
      // Docker's 8-byte frame headers → channel frames.
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 8) {
          const size = pending.readUInt32BE(4);
          if (pending.length < 8 + size) break;
          const channel = pending[0] === 2 ? 2 : 1;
          const payload = pending.subarray(8, 8 + size);
          pending = pending.subarray(8 + size);
          socket.pause();
          ws.send(Buffer.concat([Buffer.from([channel]), payload]), () => socket.resume());
        }
      });
      socket.on('close', () => {
        void (async () => {
          const info = await dockerJson<{ ExitCode: number | null }>(sock, 'GET', `/exec/${exec.Id}/json`).catch(() => ({ ExitCode: null }));
          const code = info.ExitCode ?? 1;
          const result = code === 0
            ? { metadata: {}, status: 'Success' }
            : { metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] } };
          if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(result))]), () => ws.close(1000));
        })();
      });
    })().catch((err: Error) => {
      if (ws.readyState === ws.OPEN) ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify({ metadata: {}, status: 'Failure', message: err.message, reason: 'InternalError' }))]), () => ws.close(1000));
    });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, status(500, 'InternalError', err.message)));
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = route.exec(url.pathname);
    if (!m || m[2] !== 'pods' || !m[3] || m[4] !== 'exec') return refuseUpgrade(socket, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const pod = store.get(key('pods', m[1], m[3]));
    if (!pod) return refuseUpgrade(socket, 404, status(404, 'NotFound', `pods "${m[3]}" not found`, { name: m[3], kind: 'pods' }));
    const container = url.searchParams.get('container') ?? pod.spec.containers[0].name;
    const id = runtimes.get(pod.metadata.uid)?.containers.get(container);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const running = (pod.status?.containerStatuses ?? []).find((s: any) => s.name === container)?.state?.running;
    if (!id || !running) return refuseUpgrade(socket, 400, status(400, 'BadRequest', `container ${container} is not valid for pod ${m[3]}`));
    const command = url.searchParams.getAll('command');
    const sc = { ...(pod.spec.securityContext ?? {}), ...(pod.spec.containers.find((c: { name: string }) => c.name === container)?.securityContext ?? {}) };
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (!ws.protocol) {
        ws.close(1002, 'no supported exec subprotocol');
        return;
      }
      startExec(ws, id, command, sc.runAsUser !== undefined ? `${sc.runAsUser}:${sc.runAsGroup ?? sc.runAsUser}` : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    execProtocols,
    kubeconfig(namespace = 'default') {
      return [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        // client-node refuses plain http unless TLS checks are off (there is no TLS to check).
        `- name: fake\n  cluster:\n    server: ${url}\n    insecure-skip-tls-verify: true`,
        'users:',
        '- name: fake\n  user:\n    token: fake-token',
        'contexts:',
        `- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n');
    },
    async leftovers(label, value) {
      const objects = [...store.values()].filter((o) => o.metadata.labels?.[label] === value).map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
      const filters = encodeURIComponent(JSON.stringify({ label: [`fake-kube.server=${fakeId}`] }));
      const ours = (labels: Record<string, string> | null) => (JSON.parse(labels?.['fake-kube.labels'] ?? '{}') as Record<string, string>)[label] === value;
      const containers = await dockerJson<Array<{ Names: string[]; Labels: Record<string, string> | null }>>(sock, 'GET', `/containers/json?all=1&filters=${filters}`);
      const volumes = await dockerJson<{ Volumes: Array<{ Name: string; Labels: Record<string, string> | null }> | null }>(sock, 'GET', `/volumes?filters=${filters}`);
      return [
        ...objects,
        ...containers.filter((c) => ours(c.Labels)).map((c) => `container ${c.Names.join(',')}`),
        ...(volumes.Volumes ?? []).filter((v) => ours(v.Labels)).map((v) => `volume ${v.Name}`),
      ];
    },
    put(resource, namespace, object) {
      const made = create(resource, namespace, object as KubeObject);
      if ('code' in made) throw new Error(made.message);
      return made;
    },
    get: (resource, namespace, name) => store.get(key(resource, namespace, name)),
    list: (resource, namespace) => [...store.entries()].filter(([k]) => k.startsWith(`${resource}/${namespace}/`)).map(([, v]) => v),
    async evict(namespace, podName) {
      const pod = store.get(key('pods', namespace, podName));
      if (!pod) throw new Error(`no pod ${podName}`);
      const rt = runtimes.get(pod.metadata.uid);
      for (const id of rt?.containers.values() ?? []) await dockerCall(sock, 'POST', `/containers/${id}/kill`);
      setPodStatus(pod, (s) => {
        s.phase = 'Failed';
        s.reason = 'Evicted';
        s.message = 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki.';
        s.evictedAt = new Date().toISOString();
      });
    },
    async oomKill(namespace, podName, container) {
      const pod = store.get(key('pods', namespace, podName));
      if (!pod) throw new Error(`no pod ${podName}`);
      const rt = runtimeOf(pod);
      rt.oomNext.add(container);
      const id = rt.containers.get(container);
      if (id) await dockerCall(sock, 'POST', `/containers/${id}/kill?signal=KILL`);
    },
    async close() {
      closed = true;
      clearInterval(timer);
      for (const w of watchers) w.res.end();
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Whatever is left of ours on the engine.
      const filters = encodeURIComponent(JSON.stringify({ label: [`fake-kube.server=${fakeId}`] }));
      const containers = await dockerJson<Array<{ Id: string }>>(sock, 'GET', `/containers/json?all=1&filters=${filters}`).catch(() => []);
      for (const c of containers) await dockerCall(sock, 'DELETE', `/containers/${c.Id}?force=1&v=1`).catch(() => undefined);
      const volumes = await dockerJson<{ Volumes: Array<{ Name: string }> | null }>(sock, 'GET', `/volumes?filters=${filters}`).catch(() => ({ Volumes: [] }));
      for (const v of volumes.Volumes ?? []) await dockerCall(sock, 'DELETE', `/volumes/${v.Name}?force=1`).catch(() => undefined);
    },
  };
}
