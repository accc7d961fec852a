import type * as k8s from '@kubernetes/client-node';
import type { WorkloadEnvironment } from '../driver.ts';
import { orMissing, selectorOf, type KubeApi } from './kube-api.ts';
import { LABELS } from './workspace-objects.ts';

/**
 * `$(VAR)` references as Kubernetes expands them in `env` values (third_party/forked/golang/
 * expansion): `$(NAME)` becomes the value of a variable defined before it (in `envFrom`, or
 * earlier in `env`) and stays as written when there is none; `$$` is a literal `$` (so
 * `$$(NAME)` stays `$(NAME)`); any other `$` is kept.
 */
export function expandReferences(value: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== '$' || i + 1 >= value.length) {
      out += c;
      continue;
    }
    const next = value[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = value.indexOf(')', i + 2);
      if (close < 0) {
        // No closing parenthesis: Kubernetes keeps the rest as written.
        out += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, close);
      const found = lookup(name);
      out += found ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

const decode = (data: Record<string, string> | undefined) => Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

/** A downward-API path (`metadata.labels['app']`, `status.podIP`) of a pod. */
function fieldOf(pod: k8s.V1Pod | undefined, namespace: string, path: string): string | undefined {
  const map = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (map) return pod?.metadata?.[map[1] as 'labels' | 'annotations']?.[map[2]];
  switch (path) {
    case 'metadata.namespace':
      return namespace;
    case 'metadata.name':
      return pod?.metadata?.name;
    case 'metadata.uid':
      return pod?.metadata?.uid;
    case 'spec.nodeName':
      return pod?.spec?.nodeName;
    case 'spec.serviceAccountName':
      return pod?.spec?.serviceAccountName;
    case 'status.hostIP':
      return pod?.status?.hostIP;
    case 'status.podIP':
      return pod?.status?.podIP;
    default:
      return undefined;
  }
}

type Workload = { kind: 'deployment' | 'statefulset'; name: string; template: k8s.V1PodTemplateSpec; selector: Record<string, string> };

/** `dev.<name>` by name (a Deployment first, then a StatefulSet), or by the manifest's `selector` labels. */
async function findWorkload(api: KubeApi, namespace: string, service: string, selector: Record<string, string> | undefined): Promise<Workload | undefined> {
  const of = (kind: Workload['kind'], w: k8s.V1Deployment | k8s.V1StatefulSet | undefined): Workload | undefined =>
    w?.spec && !w.metadata?.labels?.[LABELS.workspace] ? { kind, name: w.metadata?.name ?? '', template: w.spec.template, selector: w.spec.selector.matchLabels ?? {} } : undefined;
  if (selector && Object.keys(selector).length) {
    const labelSelector = selectorOf(selector);
    const deployments = await api.apps.listNamespacedDeployment({ namespace, labelSelector });
    const sets = await api.apps.listNamespacedStatefulSet({ namespace, labelSelector });
    return deployments.items.map((d) => of('deployment', d)).find(Boolean) ?? sets.items.map((s) => of('statefulset', s)).find(Boolean);
  }
  return (
    of('deployment', await orMissing(api.apps.readNamespacedDeployment({ name: service, namespace }))) ??
    of('statefulset', await orMissing(api.apps.readNamespacedStatefulSet({ name: service, namespace })))
  );
}

/**
 * Reads the original workload of a hybrid service and resolves its container's environment as
 * the kubelet would: `envFrom` first (configmaps and secrets, a later source winning), then
 * `env` in order, each value's `$(VAR)` expanded against what came before, `valueFrom` looked up
 * (configMapKeyRef, secretKeyRef, fieldRef against a running pod of the workload). The image's
 * environment is not read: the driver has no registry client, and says so.
 */
export async function readWorkloadEnvironment(api: KubeApi, namespace: string, service: string, selector: Record<string, string> | undefined): Promise<WorkloadEnvironment | undefined> {
  const workload = await findWorkload(api, namespace, service, selector);
  if (!workload) return undefined;
  const containers = workload.template.spec?.containers ?? [];
  const container = containers.find((c) => c.name === service) ?? containers[0];
  if (!container) return undefined;
  const notes: string[] = [];
  const configMaps = new Map<string, Record<string, string> | undefined>();
  const secrets = new Map<string, Record<string, string> | undefined>();
  const configMap = async (name: string) => {
    if (!configMaps.has(name)) configMaps.set(name, (await orMissing(api.core.readNamespacedConfigMap({ name, namespace })))?.data ?? undefined);
    return configMaps.get(name);
  };
  const secret = async (name: string) => {
    if (!secrets.has(name)) {
      const found = await orMissing(api.core.readNamespacedSecret({ name, namespace }));
      secrets.set(name, found ? { ...decode(found.data), ...(found.stringData ?? {}) } : undefined);
    }
    return secrets.get(name);
  };

  const defined = new Map<string, string>();
  const configSets: WorkloadEnvironment['configSets'] = [];
  const secretSets: WorkloadEnvironment['secretSets'] = [];
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    const ref = source.configMapRef ?? source.secretRef;
    if (!ref?.name) continue;
    const data = source.configMapRef ? await configMap(ref.name) : await secret(ref.name);
    if (!data) {
      if (!ref.optional) notes.push(`${source.configMapRef ? 'configmap' : 'secret'} "${ref.name}" of envFrom does not exist (the pod would not start)`);
      continue;
    }
    const variables = Object.fromEntries(Object.entries(data).map(([k, v]) => [`${prefix}${k}`, v]));
    for (const [k, v] of Object.entries(variables)) defined.set(k, v);
    (source.configMapRef ? configSets : secretSets).push({ name: ref.name, variables });
  }

  let pod: k8s.V1Pod | undefined | null = null;
  const podOfWorkload = async () => {
    if (pod === null) {
      const pods = await api.core.listNamespacedPod({ namespace, labelSelector: selectorOf(workload.selector) }).catch(() => undefined);
      pod = pods?.items.find((p) => p.status?.phase === 'Running') ?? pods?.items[0];
    }
    return pod;
  };

  const env: Record<string, string> = {};
  const secretEnv = new Set<string>();
  for (const variable of container.env ?? []) {
    let value: string | undefined;
    let fromSecret = false;
    const from = variable.valueFrom;
    if (!from) value = expandReferences(variable.value ?? '', (name) => defined.get(name));
    else if (from.configMapKeyRef) {
      value = (await configMap(from.configMapKeyRef.name ?? ''))?.[from.configMapKeyRef.key];
      if (value === undefined && !from.configMapKeyRef.optional) notes.push(`${variable.name}: key "${from.configMapKeyRef.key}" of configmap "${from.configMapKeyRef.name}" is missing`);
    } else if (from.secretKeyRef) {
      value = (await secret(from.secretKeyRef.name ?? ''))?.[from.secretKeyRef.key];
      fromSecret = true;
      if (value === undefined && !from.secretKeyRef.optional) notes.push(`${variable.name}: key "${from.secretKeyRef.key}" of secret "${from.secretKeyRef.name}" is missing`);
    } else if (from.fieldRef) {
      value = fieldOf(await podOfWorkload(), namespace, from.fieldRef.fieldPath);
      if (value === undefined) notes.push(`${variable.name}: ${from.fieldRef.fieldPath} is not known (no running pod of ${workload.kind}/${workload.name}, or a field the driver does not read)`);
    } else {
      notes.push(`${variable.name}: resourceFieldRef values are not resolved`);
    }
    if (value === undefined) continue;
    env[variable.name] = value;
    defined.set(variable.name, value);
    if (fromSecret) secretEnv.add(variable.name);
    else secretEnv.delete(variable.name);
  }
  notes.push(`the image's environment of ${workload.kind}/${workload.name} (${container.image ?? 'no image'}) is not read: the kubernetes driver has no registry client; the image layer is the workspace's base environment`);
  return {
    workload: `${workload.kind}/${workload.name}, container ${container.name}`,
    env,
    secretEnv: [...secretEnv],
    configSets,
    secretSets,
    image: undefined,
    notes,
  };
}

