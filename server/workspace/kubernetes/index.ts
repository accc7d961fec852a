export { createKubernetesDriver } from './kubernetes-driver.ts';
export type { KubernetesDriverOptions } from './kubernetes-driver.ts';
export { LABELS as KUBERNETES_LABELS, ANNOTATIONS as KUBERNETES_ANNOTATIONS } from './workspace-objects.ts';
export type { Toleration } from './workspace-objects.ts';
