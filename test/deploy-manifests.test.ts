import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

// The install manifests checked against the Kubernetes API's JSON schemas (kubernetes-models
// compiles them with ajv); kubeconform is not installable from the registries here.
const dir = join(dirname(dirname(fileURLToPath(import.meta.url))), 'deploy', 'kubernetes');
const MODELS: Record<string, string> = {
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'v1/Service': 'kubernetes-models/v1/Service',
  'v1/PersistentVolumeClaim': 'kubernetes-models/v1/PersistentVolumeClaim',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'rbac.authorization.k8s.io/v1/Role': 'kubernetes-models/rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
  'networking.k8s.io/v1/NetworkPolicy': 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
};

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec?: { replicas?: number }; rules?: Array<{ resources: string[]; verbs: string[] }> };
const docsOf = (file: string) => parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Doc);

describe('deploy/kubernetes', () => {
  const all = [...docsOf('rbac.yaml'), ...docsOf('server.yaml')];

  it('every object is valid against its schema', async () => {
    for (const doc of all) {
      const path = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(path, `${doc.apiVersion} ${doc.kind} has a schema here`).toBeDefined();
      const model = (await import(path)) as Record<string, new (o: unknown) => { validate(): void }>;
      expect(() => new model[doc.kind](doc).validate(), `${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
  });

  it('is a kustomize base of both files, with a 2-replica server and the driver\'s exact verbs', () => {
    expect(docsOf('kustomization.yaml')[0]).toMatchObject({ kind: 'Kustomization', resources: ['rbac.yaml', 'server.yaml'] });
    expect(all.find((d) => d.kind === 'Deployment')?.spec?.replicas).toBe(2);
    const role = all.find((d) => d.kind === 'Role');
    const verbs = Object.fromEntries((role?.rules ?? []).flatMap((r) => r.resources.map((res) => [res, r.verbs])));
    expect(verbs).toEqual({
      statefulsets: ['create', 'get', 'list', 'patch', 'delete'],
      deployments: ['get', 'list'],
      pods: ['get', 'list', 'watch', 'delete'],
      'pods/exec': ['get', 'create'],
      secrets: ['create', 'get'],
      persistentvolumeclaims: ['create'],
      configmaps: ['get'],
    });
  });
});
