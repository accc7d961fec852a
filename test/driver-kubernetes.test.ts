import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { connectAgent } from '../server/workspace/agent-connection.ts';
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

/** An SSH client on the workspace's agent with `privateKey`, through the driver's stream (as the server's tunnel gives the helper). */
async function sshAs(driver: WorkspaceDriver, id: string, privateKey: string, hostPublicKey: string): Promise<ssh2.Client> {
  const parsed = ssh2.utils.parseKey(hostPublicKey);
  if (parsed instanceof Error) throw parsed;
  const expected = (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
  const stream = await driver.connect(id);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({ sock: stream, username: 'wharf', privateKey, hostVerifier: (key: Buffer) => key.equals(expected), readyTimeout: DEADLINE_MS });
  });
  client.on('error', () => {});
  return client;
}

/** `GET /` through a direct-tcpip channel to host:port, dialled by the agent; the whole answer. */
function httpGetOver(client: ssh2.Client, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, host, port, (err, channel) => {
      if (err) return reject(err);
      let answer = '';
      channel.on('data', (d: Buffer) => (answer += d.toString()));
      channel.on('close', () => resolve(answer));
      channel.end(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
    });
  });
}

const engine = requireEngine('docker');
let fake: FakeKubeApi;
let kubeDir = '';
let workspaceImage = '';
let runtimeImage = '';

/** The cluster's pod network: a docker bridge of this run's own (see FakeKubeOptions.podNetwork). */
const POD_NETWORK = `wharf-test-pods-${process.pid}`;

beforeAll(async () => {
  const made = await engineRequest(engine, 'POST', '/networks/create', Buffer.from(JSON.stringify({ Name: POD_NETWORK, Driver: 'bridge', Labels: { 'wharf.dev/test': 'pods' } })), { 'content-type': 'application/json' });
  if (made.status !== 201) throw new Error(`cannot make the pod network: ${made.status} ${made.body.toString()}`);
  fake = await startFakeKubeApi({ dockerSocket: engine.socketPath, podNetwork: POD_NETWORK });
  kubeDir = await mkdtemp(join(tmpdir(), 'wharf-kube-'));
  await writeFile(join(kubeDir, 'config'), fake.kubeconfig('wharf-test'));
  workspaceImage = await ensureBusyboxWorkspaceImage(engine);
  runtimeImage = await ensureRuntimeImage(engine);
}, DEADLINE_MS);

afterAll(async () => {
  await fake?.close();
  await engineRequest(engine, 'DELETE', `/networks/${POD_NETWORK}`).catch(() => {});
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

  it("refuses a workspace whose image cannot be pulled in Kubernetes' words, leaving nothing behind", async () => {
    const driver = await startDriver(kubeDir);
    const host = generateKeyPair('wharf-workspace-nopull');
    const input = { id: 'nopull', name: 'nopull', image: 'wharf-test/no-such-image:1', hostPrivateKey: host.privateKey, hostPublicKey: host.publicKey, authorizedKeys: `${serverKey.publicKey.trim()}\n` };
    await expect(driver.create(input)).rejects.toThrow(/(ErrImagePull|ImagePullBackOff): .*wharf-test\/no-such-image:1/);
    expect(await driver.get('nopull')).toBeUndefined();
    await waitFor('its objects to go', async () => (await fake.leftovers('wharf.dev/workspace', 'nopull')).length === 0);
  }, DEADLINE_MS);

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

  it('dials a hybrid forward to service:port by its cluster DNS name from inside the pod', async () => {
    // A Service "backend" on the pod network: a container answering HTTP on 8080, under the names
    // cluster DNS gives a Service (docker's embedded DNS answers them inside the pods).
    const token = `from the backend service ${randomBytes(6).toString('hex')}`;
    const backend = `wharf-test-backend-${process.pid}`;
    const created = await engineRequest(
      engine,
      'POST',
      `/containers/create?name=${backend}`,
      Buffer.from(
        JSON.stringify({
          Image: workspaceImage,
          Entrypoint: ['/bin/busybox', 'sh', '-c'],
          Cmd: [`mkdir -p /tmp/www && echo '${token}' > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www`],
          HostConfig: { NetworkMode: POD_NETWORK },
          NetworkingConfig: { EndpointsConfig: { [POD_NETWORK]: { Aliases: ['backend', 'backend.wharf-test.svc.cluster.local'] } } },
        }),
      ),
      { 'content-type': 'application/json' },
    );
    expect(created.status, created.body.toString()).toBe(201);
    try {
      expect((await engineRequest(engine, 'POST', `/containers/${backend}/start`)).status).toBe(204);
      // The name means nothing on this machine: only a resolver inside the pod knows it.
      await expect(lookup('backend')).rejects.toThrow();

      const driver = await startDriver(kubeDir);
      await createOn(driver, 'dns');
      const record = (await driver.get('dns'))!;
      const admin = await connectAgent(await driver.connect('dns'), serverKey.privateKey, record.hostPublicKey, DEADLINE_MS);
      // What `wharf up` has the server do for a rule "18080:backend:8080": a session key granted that target only.
      const session = generateKeyPair('hybrid-dns');
      const added = await admin.control({ op: 'add-key', publicKey: session.publicKey, label: 'hybrid-dns', ttlMs: 120_000, forward: ['backend:8080'] });
      expect(added, JSON.stringify(added)).toMatchObject({ ok: true });
      const client = await sshAs(driver, 'dns', session.privateKey, record.hostPublicKey);
      try {
        // The backend's httpd may not listen yet: ask until it answers.
        const page = await waitFor('the backend service through the forward', async () => {
          const answer = await httpGetOver(client, 'backend', 8080).catch(() => undefined);
          return answer?.includes(token) ? answer : undefined;
        });
        expect(page).toMatch(/^HTTP\/1\.[01] 200/);
        // Another port of the same service was not granted: the agent refuses it.
        await expect(httpGetOver(client, 'backend', 8081)).rejects.toThrow();
      } finally {
        client.end();
        admin.close();
      }
      await driver.remove('dns');
    } finally {
      await engineRequest(engine, 'DELETE', `/containers/${backend}?force=1`).catch(() => {});
    }
  }, DEADLINE_MS);

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

    // dev.<name>.selector: a StatefulSet not named like the dev entry is found by its labels.
    fake.put('statefulsets', 'wharf-test', {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'payments-db-v2', labels: { tier: 'payments', app: 'db' } },
      spec: {
        serviceName: 'payments-db',
        selector: { matchLabels: { tier: 'payments' } },
        template: { metadata: { labels: { tier: 'payments' } }, spec: { containers: [{ name: 'db', image: 'example/db:1', env: [{ name: 'ROLE', value: 'primary' }] }] } },
      },
    });
    expect(await driver.workloadEnvironment!('hybrid', 'payments')).toBeUndefined();
    const bySelector = await driver.workloadEnvironment!('hybrid', 'payments', { tier: 'payments', app: 'db' });
    expect(bySelector?.env).toEqual({ ROLE: 'primary' });
    expect(await driver.workloadEnvironment!('hybrid', 'payments', { tier: 'billing' })).toBeUndefined();
  }, DEADLINE_MS);
});
