import * as k8s from '@kubernetes/client-node';
import { WharfError } from '../../common/index.ts';

/** Where the cluster is: a kubeconfig file, or the pod's own service account (in-cluster). */
export type KubeTarget = { kubeconfig?: string; context?: string };

/** The API clients the driver uses, from one kubeconfig. */
export type KubeApi = {
  config: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  /** The kubeconfig context's namespace, when it names one. */
  contextNamespace: string | undefined;
  /** The API server's address, for messages. */
  server: string;
};

/**
 * `--kubeconfig` when given; else the in-cluster service account when the server runs in a pod
 * (client-node reads KUBERNETES_SERVICE_HOST and the mounted token itself); else the default
 * kubeconfig (`$KUBECONFIG`, `~/.kube/config`), as kubectl would.
 */
export function loadKubeApi(target: KubeTarget): KubeApi {
  const config = new k8s.KubeConfig();
  try {
    if (target.kubeconfig) config.loadFromFile(target.kubeconfig);
    else config.loadFromDefault();
    if (target.context) config.setCurrentContext(target.context);
  } catch (err) {
    throw new WharfError('bad_request', `cannot read the kubeconfig${target.kubeconfig ? ` ${target.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new WharfError('bad_request', 'the kubeconfig names no cluster (and the server does not run in a pod): pass --kubeconfig');
  const context = config.getContextObject(config.getCurrentContext());
  return {
    config,
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
    contextNamespace: context?.namespace || undefined,
    server: cluster.server,
  };
}

/** The HTTP status of a failed API call (client-node's ApiException), or undefined for a transport error. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

/** The API server's own words (a Status object's `message`), or the error's. */
export function messageOf(err: unknown): string {
  if (err instanceof k8s.ApiException) {
    const body = err.body as unknown;
    try {
      const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: string } | undefined;
      if (parsed?.message) return parsed.message;
    } catch {
      // not JSON: the body as it came
    }
    return typeof body === 'string' && body ? body.slice(0, 300) : `the API server answered ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}

/** A failed call as a WharfError: the cluster's refusal in its own words, an unreachable one `unavailable`. */
export function toWharfError(what: string, err: unknown): WharfError {
  if (err instanceof WharfError) return err;
  const status = statusOf(err);
  const code = status === 404 ? 'not_found' : status === 409 ? 'conflict' : status === 400 || status === 422 ? 'bad_request' : 'unavailable';
  return new WharfError(code, `${what}: ${messageOf(err)}`, status ? { status } : undefined);
}

/** A read that answers undefined for 404, and throws anything else. */
export async function orMissing<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/** `a=b,c=d`: an equality label selector. */
export function selectorOf(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Merge patches (RFC 7386): the driver changes only annotations and replicas, never whole objects. */
export const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
