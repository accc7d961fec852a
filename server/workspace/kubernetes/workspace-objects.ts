import type * as k8s from '@kubernetes/client-node';
import type { WorkspaceResources } from '../../common/index.ts';
import { LOADER_LINK, RUNTIME_MOUNT, SUPERVISOR } from '../agent-runtime.ts';

/** Labels (what selectors find) and annotations (what does not fit a label) of every object a workspace has. */
export const LABELS = {
  workspace: 'wharf.dev/workspace',
  instance: 'wharf.dev/instance',
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
} as const;

export const ANNOTATIONS = {
  name: 'wharf.dev/name',
  createdAt: 'wharf.dev/created-at',
  hostPublicKey: 'wharf.dev/host-public-key',
  image: 'wharf.dev/image',
  resources: 'wharf.dev/resources',
  /** What the user asked for: `running` or `stopped` (an annotation can change, unlike a docker label). */
  desired: 'wharf.dev/desired',
  /** Why the workspace is in error, when the driver decided it (an agent that kept crashing). */
  error: 'wharf.dev/error',
} as const;

export const WORKSPACE_DIR = '/workspace';
export const HOME_DIR = '/home/wharf';
/** The agent's socket folder: an emptyDir, so the socket never lands on the PVC. */
export const RUN_DIR = '/run/wharf';
export const SOCKET = `${RUN_DIR}/agent.sock`;
/** The host key and authorized_keys: a Secret's volume, read-only. */
export const KEY_DIR = '/etc/wharf-keys';
/** The PVC as the init container sees it (whole), to make the folders the workspace container mounts. */
const PVC_SETUP_MOUNT = '/.wharf-pvc';
export const CONTAINER = 'workspace';
export const INIT_CONTAINER = 'wharf-runtime';

/** The runtime's node under its own loader (agent-runtime.ts), whatever libc the image has or lacks. */
export function nodeCommand(): string[] {
  return [`${RUNTIME_MOUNT}/lib/${LOADER_LINK}`, '--library-path', `${RUNTIME_MOUNT}/lib`, `${RUNTIME_MOUNT}/bin/node`];
}

/** What the command of `connect` is: the agent program's stdio bridge to its socket. */
export function bridgeCommand(): string[] {
  // agent.mjs's own entry rather than bridge.mjs: the runtime image may be older than the server.
  // --wait-ms: one exec connects the moment a starting agent listens (older agents ignore it).
  return [...nodeCommand(), `${RUNTIME_MOUNT}/agent/agent.mjs`, 'bridge', '--socket', SOCKET, '--wait-ms', '2000'];
}

export type Toleration = { key?: string; operator?: 'Exists' | 'Equal'; value?: string; effect?: string };

export type PodSettings = {
  /** Image of the init container: the wharf image, which runs `wharf agent install-runtime <dir>`. */
  runtimeImage: string;
  user: { uid: number; gid: number };
  storageClass: string | undefined;
  storageSize: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  /** None: no token is mounted in workspaces (they have no business with the API server). */
  serviceAccount: string | undefined;
  restartDelayMs: number;
  maxQuickCrashes: number;
  stopGraceMs: number;
  extraAgentArgs: string[];
  agentEnv: Record<string, string>;
};

export type WorkspaceInput = {
  id: string;
  name: string;
  instance: string;
  objectName: string;
  image: string;
  resources: WorkspaceResources;
  hostPublicKey: string;
  createdAt: string;
};

/** Names are DNS labels; `wharf-<instance>-<id>` is kept short enough for a StatefulSet's pod names and their labels. */
export function objectNameOf(instance: string, id: string): string {
  return `wharf-${instance}-${id}`.toLowerCase();
}

export function labelsOf(input: { instance: string; id: string }): Record<string, string> {
  return { [LABELS.workspace]: input.id, [LABELS.instance]: input.instance, [LABELS.managedBy]: 'wharf', [LABELS.component]: 'workspace' };
}

/** Kubernetes quantities of the limits: memory in bytes, CPUs as millicores. */
export function quantities(resources: WorkspaceResources): Record<string, string> {
  const out: Record<string, string> = {};
  if (resources.cpus) out.cpu = `${Math.round(resources.cpus * 1000)}m`;
  if (resources.memory) out.memory = String(resources.memory);
  if (resources.disk) out['ephemeral-storage'] = String(resources.disk);
  return out;
}

/**
 * The one-replica StatefulSet of a workspace. A StatefulSet, not a Deployment: it never runs two
 * pods of the workspace at once (a rolling Deployment would, both on one ReadWriteOnce volume).
 * It is created with 0 replicas; the driver scales it to 1 once its Secret and PVC (owned by it)
 * exist, so the pod never waits on a missing volume.
 */
export function statefulSetOf(input: WorkspaceInput, settings: PodSettings): k8s.V1StatefulSet {
  const labels = labelsOf(input);
  const { uid, gid } = settings.user;
  const limits = quantities(input.resources);
  const agentCommand = [
    ...nodeCommand(),
    SUPERVISOR, SOCKET, String(settings.restartDelayMs), String(settings.maxQuickCrashes), '--',
    ...nodeCommand(),
    `${RUNTIME_MOUNT}/agent/agent.mjs`,
    '--socket', SOCKET,
    '--root', WORKSPACE_DIR,
    '--home', HOME_DIR,
    '--host-key', `${KEY_DIR}/host_key`,
    '--authorized-keys', `${KEY_DIR}/authorized_keys`,
    ...settings.extraAgentArgs,
  ];
  const env = Object.entries({ ...settings.agentEnv, HOME: HOME_DIR, USER: 'wharf' })
    // The server's PATH names the server's folders; the image's own fits the image.
    .filter(([name]) => name !== 'PATH')
    .map(([name, value]) => ({ name, value }));
  const securityContext: k8s.V1SecurityContext = { runAsUser: uid, runAsGroup: gid, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: input.objectName,
      labels,
      annotations: {
        [ANNOTATIONS.name]: input.name,
        [ANNOTATIONS.createdAt]: input.createdAt,
        [ANNOTATIONS.hostPublicKey]: input.hostPublicKey,
        [ANNOTATIONS.image]: input.image,
        [ANNOTATIONS.resources]: JSON.stringify(input.resources),
        [ANNOTATIONS.desired]: 'running',
      },
    },
    spec: {
      replicas: 0,
      serviceName: input.objectName,
      selector: { matchLabels: labels },
      // One pod at a time, replaced whole: a new pod only once the old one is gone.
      podManagementPolicy: 'OrderedReady',
      template: {
        metadata: { labels },
        spec: {
          // A pause process as PID 1 reaps orphans and passes signals on (the docker driver's init):
          // the supervisor is not PID 1, and the agent can be killed like any process.
          shareProcessNamespace: true,
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: Math.max(1, Math.ceil(settings.stopGraceMs / 1000)),
          automountServiceAccountToken: settings.serviceAccount !== undefined,
          ...(settings.serviceAccount ? { serviceAccountName: settings.serviceAccount } : {}),
          ...(Object.keys(settings.nodeSelector).length ? { nodeSelector: settings.nodeSelector } : {}),
          ...(settings.tolerations.length ? { tolerations: settings.tolerations } : {}),
          // The PVC's files belong to the workspace user's group (fsGroup), so the user can write them.
          securityContext: { runAsUser: uid, runAsGroup: gid, runAsNonRoot: true, fsGroup: gid, seccompProfile: { type: 'RuntimeDefault' } },
          initContainers: [
            {
              name: INIT_CONTAINER,
              image: settings.runtimeImage,
              imagePullPolicy: 'IfNotPresent',
              // The wharf image writes node, its libraries, the agent and the supervisor into the
              // shared emptyDir, and makes the PVC's two folders (kubelet would make subPath
              // folders as root, which the workspace user could not write).
              command: ['wharf', 'agent', 'install-runtime', RUNTIME_MOUNT, '--mkdir', `${PVC_SETUP_MOUNT}/workspace`, '--mkdir', `${PVC_SETUP_MOUNT}/home`],
              securityContext,
              volumeMounts: [
                { name: 'runtime', mountPath: RUNTIME_MOUNT },
                { name: 'data', mountPath: PVC_SETUP_MOUNT },
              ],
            },
          ],
          containers: [
            {
              name: CONTAINER,
              image: input.image,
              imagePullPolicy: 'IfNotPresent',
              command: agentCommand.slice(0, 1),
              args: agentCommand.slice(1),
              workingDir: WORKSPACE_DIR,
              env,
              securityContext,
              ...(Object.keys(limits).length ? { resources: { limits, requests: limits } } : {}),
              volumeMounts: [
                { name: 'data', mountPath: WORKSPACE_DIR, subPath: 'workspace' },
                { name: 'data', mountPath: HOME_DIR, subPath: 'home' },
                { name: 'runtime', mountPath: RUNTIME_MOUNT, readOnly: true },
                { name: 'run', mountPath: RUN_DIR },
                { name: 'keys', mountPath: KEY_DIR, readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'data', persistentVolumeClaim: { claimName: input.objectName } },
            { name: 'runtime', emptyDir: {} },
            { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
            // 0440 with fsGroup: the agent's group may read the keys, nobody else.
            { name: 'keys', secret: { secretName: input.objectName, defaultMode: 0o440 } },
          ],
        },
      },
    },
  };
}

/** An owner reference to the StatefulSet: the garbage collector removes the owned object with it. */
export function ownedBy(set: k8s.V1StatefulSet): k8s.V1OwnerReference {
  return { apiVersion: 'apps/v1', kind: 'StatefulSet', name: set.metadata?.name ?? '', uid: set.metadata?.uid ?? '', controller: true, blockOwnerDeletion: true };
}

/** The agent's host private key and authorized_keys: in a Secret, never in an env var or annotation. */
export function secretOf(input: WorkspaceInput, keys: { hostPrivateKey: string; authorizedKeys: string }, owner: k8s.V1OwnerReference): k8s.V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: input.objectName, labels: labelsOf(input), ownerReferences: [owner] },
    type: 'Opaque',
    data: { host_key: Buffer.from(keys.hostPrivateKey).toString('base64'), authorized_keys: Buffer.from(keys.authorizedKeys).toString('base64') },
  };
}

/** `/workspace` and the agent's home, kept when the workspace is stopped (scaled to zero). */
export function claimOf(input: WorkspaceInput, settings: PodSettings, owner: k8s.V1OwnerReference): k8s.V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: input.objectName, labels: labelsOf(input), ownerReferences: [owner] },
    spec: {
      accessModes: ['ReadWriteOnce'],
      ...(settings.storageClass ? { storageClassName: settings.storageClass } : {}),
      resources: { requests: { storage: settings.storageSize } },
    },
  };
}
