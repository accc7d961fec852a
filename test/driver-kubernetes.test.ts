import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { generateKeyPair, type WorkspaceDriver } from '../server/workspace/index.ts';
import { runDriverContract, runInWorkspace, waitFor } from './driver-contract.ts';
import { startFakeKubeApi, type FakeKubeApi } from './support/fake-kube-api.ts';
import { engineRequest, requireEngine, type Engine } from './support/images.ts';
import { ensureBusyboxWorkspaceImage } from './support/workspace-images.ts';

// The kubernetes driver against test/support/fake-kube-api.ts (no API server runs here): its
// pods are real containers on the local dockerd, so exec reaches a running agent.
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const RUNTIME_IMAGE = 'wharf-test/k8s-wharf-runtime';
const DEADLINE_MS = 240_000;

function librariesOf(file: string): string[] {
  return execFileSync('ldd', [file], { encoding: 'utf8' }).split('\n').flatMap((line) => {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow) return [arrow[1]];
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    return bare ? [bare[1]] : [];
  });
}

/** A stand-in for the wharf image: node, bash and ldd with their libraries, the built helper and agent, and `wharf` on PATH. */
async function ensureRuntimeImage(engine: Engine): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const mtime = new Date(0);
  const dirs = new Set<string>();
  const addDir = (dir: string) => {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (!dirs.has(path)) {
        dirs.add(path);
        pack.entry({ name: `${path}/`, type: 'directory', mode: path === 'tmp' ? 0o1777 : 0o755, mtime });
      }
    }
  };
  const addFile = (name: string, body: Buffer | string, mode = 0o755) => {
    addDir(dirname(name));
    pack.entry({ name, mode, mtime }, body);
  };
  for (const d of ['tmp', 'bin', 'usr/bin', 'usr/local/bin', 'opt/wharf']) addDir(d);
  const files = new Map<string, string>();
  for (const program of [process.execPath, '/bin/bash']) {
    for (const lib of librariesOf(program)) files.set(lib.slice(1), realpathSync(lib));
  }
  for (const [name, source] of files) addFile(name, readFileSync(source));
  addFile('usr/local/bin/node', readFileSync(realpathSync(process.execPath)));
  addFile('bin/bash', readFileSync('/bin/bash'));
  addFile('usr/bin/ldd', readFileSync('/usr/bin/ldd'));
  addFile('bin/busybox', readFileSync('/bin/busybox'));
  for (const applet of ['sh', 'sed', 'cat', 'ls']) pack.entry({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox', mode: 0o777, mtime });
  addFile('opt/wharf/wharf.mjs', readFileSync(join(root, 'dist', 'wharf.mjs')), 0o644);
  for (const f of readdirSync(join(root, 'dist', 'agent'))) addFile(`opt/wharf/agent/${f}`, readFileSync(join(root, 'dist', 'agent', f)), 0o644);
  addFile('usr/local/bin/wharf', '#!/bin/sh\nexec /usr/local/bin/node /opt/wharf/wharf.mjs "$@"\n');
  pack.finalize();
  await done;
  const body = Buffer.concat(chunks);
  const tag = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const name = `${RUNTIME_IMAGE}:${tag}`;
  if ((await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`)).status === 200) return name;
  const res = await engineRequest(engine, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(RUNTIME_IMAGE)}&tag=${tag}`, body, { 'content-type': 'application/x-tar' });
  if (res.status !== 200) throw new Error(`runtime image import failed: ${res.status} ${res.body.toString()}`);
  return name;
}

const engine = requireEngine('docker');
let fake: FakeKubeApi;
let kubeDir = '';
let workspaceImage = '';
let runtimeImage = '';

beforeAll(async () => {
  fake = await startFakeKubeApi({ dockerSocket: engine.socketPath });
  kubeDir = await mkdtemp(join(tmpdir(), 'wharf-kube-'));
  await writeFile(join(kubeDir, 'config'), fake.kubeconfig('wharf-test'));
  workspaceImage = await ensureBusyboxWorkspaceImage(engine);
  runtimeImage = await ensureRuntimeImage(engine);
}, DEADLINE_MS);

afterAll(async () => {
  await fake?.close();
  if (kubeDir) await rm(kubeDir, { recursive: true, force: true });
}, DEADLINE_MS);

runDriverContract('kubernetes (fake API server, pods on dockerd)', {
  createDriver(dataDir) {
    const argv = ['--data-dir', dataDir, '--driver', 'kubernetes', '--kubeconfig', join(kubeDir, 'config'), '--workspace-image', workspaceImage, '--kube-runtime-image', runtimeImage];
    return createConfiguredDriver(loadServerConfig({ argv, env: {} }), () => {});
  },
  findLeftovers: (_dataDir, id) => fake.leftovers('wharf.dev/workspace', id),
});

/**
 * What only this driver does: its workspace volume kept across a stop, Kubernetes' reasons for a
 * pod in trouble, the v4 exec protocol of older API servers, and hybrid mode's layers read from
 * an original workload. Same fake API server, pods on dockerd.
 */
describe('kubernetes driver: volumes, pod trouble, exec v4, workload environment', () => {
  const serverKey = generateKeyPair('wharf-k8s-server');
  const dirs: string[] = [];
  const drivers: WorkspaceDriver[] = [];

  const podOf = (id: string) => fake.list('pods', 'wharf-test').find((p) => p.metadata.labels?.['wharf.dev/workspace'] === id && !p.metadata.deletionTimestamp);

  async function startDriver(kubeconfigDir: string): Promise<WorkspaceDriver> {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-k8s-data-'));
    dirs.push(dataDir);
    const argv = ['--data-dir', dataDir, '--driver', 'kubernetes', '--kubeconfig', join(kubeconfigDir, 'config'), '--workspace-image', workspaceImage, '--kube-runtime-image', runtimeImage];
    const driver = createConfiguredDriver(loadServerConfig({ argv, env: {} }), () => {});
    await driver.init();
    drivers.push(driver);
    return driver;
  }

  async function createOn(driver: WorkspaceDriver, id: string) {
    const host = generateKeyPair(`wharf-workspace-${id}`);
    await driver.create({ id, name: id, hostPrivateKey: host.privateKey, hostPublicKey: host.publicKey, authorizedKeys: `${serverKey.publicKey.trim()}\n` });
    await waitFor(`${id} to run`, async () => (await driver.get(id))?.status === 'running');
  }

  afterAll(async () => {
    for (const driver of drivers) {
      for (const w of await driver.list().catch(() => [])) await driver.remove(w.id).catch(() => {});
      await driver.shutdown({ stopAgents: true });
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, DEADLINE_MS);

  it('keeps /workspace across a stop and a start (the PVC stays; the pod goes)', async () => {
    const driver = await startDriver(kubeDir);
    await createOn(driver, 'keep');
    await runInWorkspace(driver, 'keep', serverKey, 'echo kept > /workspace/note.txt');
    const claims = () => fake.list('persistentvolumeclaims', 'wharf-test').filter((c) => c.metadata.labels?.['wharf.dev/workspace'] === 'keep');
    expect(claims()).toHaveLength(1);
    await driver.stop('keep');
    expect(podOf('keep')).toBeUndefined();
    expect(claims()).toHaveLength(1);
    await driver.start('keep');
    expect(await waitFor('the file after the start', () => runInWorkspace(driver, 'keep', serverKey, 'cat /workspace/note.txt'))).toBe('kept\n');
  }, DEADLINE_MS);

  it("reports an OOM-killed and an evicted pod as errors in Kubernetes' words, and starts again after", async () => {
    const driver = await startDriver(kubeDir);
    await createOn(driver, 'trouble');
    const pod = podOf('trouble');
    expect(pod).toBeDefined();
    await fake.oomKill('wharf-test', pod!.metadata.name, pod!.spec.containers[0].name);
    const oom = await waitFor('the OOM kill to show', async () => {
      const w = await driver.get('trouble');
      return w?.status === 'error' ? w : undefined;
    });
    expect(oom.statusReason).toMatch(/OOMKilled/);
    await driver.start('trouble');
    expect(await waitFor('an answer after the OOM kill', () => runInWorkspace(driver, 'trouble', serverKey, 'echo again'))).toBe('again\n');
    const current = podOf('trouble');
    await fake.evict('wharf-test', current!.metadata.name);
    const evicted = await waitFor('the eviction to show', async () => {
      const w = await driver.get('trouble');
      return w?.status === 'error' ? w : undefined;
    });
    expect(evicted.statusReason).toMatch(/Evicted/);
  }, DEADLINE_MS * 2);

  it('speaks v4.channel.k8s.io to an API server without v5', async () => {
    const old = await startFakeKubeApi({ dockerSocket: engine.socketPath, protocols: ['v4.channel.k8s.io'] });
    const oldDir = await mkdtemp(join(tmpdir(), 'wharf-kube-v4-'));
    dirs.push(oldDir);
    try {
      await writeFile(join(oldDir, 'config'), old.kubeconfig('wharf-test'));
      const driver = await startDriver(oldDir);
      await createOn(driver, 'oldapi');
      expect(await runInWorkspace(driver, 'oldapi', serverKey, 'echo v4')).toBe('v4\n');
      expect(old.execProtocols.length).toBeGreaterThan(0);
      expect(new Set(old.execProtocols)).toEqual(new Set(['v4.channel.k8s.io']));
      await driver.remove('oldapi');
    } finally {
      await old.close();
    }
  }, DEADLINE_MS * 2);

  it("reads an original Deployment's env, valueFrom, envFrom and $(VAR) for hybrid mode", async () => {
    const driver = await startDriver(kubeDir);
    await createOn(driver, 'hybrid');
    fake.put('configmaps', 'wharf-test', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'api-config' }, data: { LOG_LEVEL: 'debug', REGION: 'eu' } });
    fake.put('secrets', 'wharf-test', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'api-secret' }, data: { DB_PASSWORD: Buffer.from('hunter2').toString('base64') } });
    fake.put('deployments', 'wharf-test', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', labels: { app: 'api' } },
      spec: {
        selector: { matchLabels: { app: 'api' } },
        template: {
          metadata: { labels: { app: 'api' } },
          spec: {
            containers: [{
              name: 'api',
              image: 'example/api:1',
              env: [
                { name: 'HOST', value: 'db' },
                { name: 'URL', value: 'postgres://$(HOST):5432/$(MISSING)' },
                { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'api-config', key: 'LOG_LEVEL' } } },
                { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'api-secret', key: 'DB_PASSWORD' } } },
                { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ],
              envFrom: [{ configMapRef: { name: 'api-config' } }, { secretRef: { name: 'api-secret' } }],
            }],
          },
        },
      },
    });
    const env = await driver.workloadEnvironment!('hybrid', 'api');
    expect(env).toBeDefined();
    expect(env!.env).toMatchObject({ HOST: 'db', URL: 'postgres://db:5432/$(MISSING)', LEVEL: 'debug', PASSWORD: 'hunter2', NS: 'wharf-test' });
    expect(env!.secretEnv).toEqual(['PASSWORD']);
    expect(env!.configSets).toEqual([{ name: 'api-config', variables: { LOG_LEVEL: 'debug', REGION: 'eu' } }]);
    expect(env!.secretSets).toEqual([{ name: 'api-secret', variables: { DB_PASSWORD: 'hunter2' } }]);
    expect(env!.image).toBeUndefined();
    expect(env!.notes.join(' ')).toMatch(/image/);
    expect(await driver.workloadEnvironment!('hybrid', 'nothing-by-this-name')).toBeUndefined();
  }, DEADLINE_MS);
});
