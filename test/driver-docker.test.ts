import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { generateKeyPair, type KeyPair, type WorkspaceDriver } from '../server/workspace/index.ts';
import { createEngineClient, parseEngineEndpoint } from '../server/engine-api/index.ts';
import { createEngineCalls, pruneRuntimeVolumes, RUNTIME_VOLUME_PREFIX } from '../server/workspace/docker/index.ts';
import { runDriverContract } from './driver-contract.ts';
import { engineRequest, requireEngine, type Engine } from './support/images.ts';
import { ensureBusyboxWorkspaceImage, ensureDebianWorkspaceImage } from './support/workspace-images.ts';

/** Generous: engines on a busy 2-core machine with the vfs storage driver are slow. */
const DEADLINE_MS = 120_000;

/** The driver's label of a data dir's workspaces (server/main.ts derives it the same way). */
const instanceOf = (dataDir: string) => createHash('sha256').update(dataDir).digest('hex').slice(0, 12);

async function engineJson<T>(engine: Engine, path: string): Promise<T> {
  const res = await engineRequest(engine, 'GET', path);
  if (res.status !== 200) throw new Error(`${engine.name} GET ${path}: ${res.status} ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as T;
}

/** Containers and volumes of one instance (and workspace, if given) still on the engine. */
async function leftovers(engine: Engine, dataDir: string, id?: string): Promise<string[]> {
  // One label in the filter, the workspace checked here: Podman ORs several labels of a volume filter.
  const filters = encodeURIComponent(JSON.stringify({ label: [`dev.wharf.instance=${instanceOf(dataDir)}`] }));
  const ours = (labels: Record<string, string> | null) => id === undefined || labels?.['dev.wharf.workspace'] === id;
  const containers = await engineJson<Array<{ Names: string[]; Labels: Record<string, string> | null }>>(engine, `/containers/json?all=1&filters=${filters}`);
  const volumes = await engineJson<{ Volumes: Array<{ Name: string; Labels: Record<string, string> | null }> | null }>(engine, `/volumes?filters=${filters}`);
  return [
    ...containers.filter((c) => ours(c.Labels)).map((c) => `container ${c.Names.join(',')}`),
    ...(volumes.Volumes ?? []).filter((v) => ours(v.Labels)).map((v) => `volume ${v.Name}`),
  ];
}

async function removeLeftovers(engine: Engine, dataDir: string): Promise<void> {
  for (const line of await leftovers(engine, dataDir)) {
    const [kind, name] = line.split(' ');
    const path = kind === 'container' ? `/containers/${name.split(',')[0].replace(/^\//, '')}?force=1&v=1` : `/volumes/${name}?force=1`;
    await engineRequest(engine, 'DELETE', path);
  }
}

function driverFor(engine: Engine, dataDir: string, image: string, extra: string[] = []): WorkspaceDriver {
  const argv = ['--data-dir', dataDir, '--driver', 'docker', '--docker-host', engine.endpoint, '--workspace-image', image, ...extra];
  return createConfiguredDriver(loadServerConfig({ argv, env: {} }), () => {});
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

/** An SSH session with the workspace's agent over the driver's byte stream. */
async function sshTo(driver: WorkspaceDriver, id: string, serverKey: KeyPair): Promise<ssh2.Client> {
  const stream = await driver.connect(id);
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.on('error', reject);
    client.once('ready', () => resolve());
    client.connect({ sock: stream, username: 'wharf', privateKey: serverKey.privateKey, readyTimeout: DEADLINE_MS });
  });
  client.on('error', () => {});
  return client;
}

async function run(driver: WorkspaceDriver, id: string, serverKey: KeyPair, command: string): Promise<string> {
  const client = await sshTo(driver, id, serverKey);
  try {
    return await new Promise<string>((resolve, reject) => {
      client.exec(command, (err, channel) => {
        if (err) return reject(err);
        let out = '';
        channel.on('data', (d: Buffer) => (out += d));
        channel.stderr.on('data', (d: Buffer) => (out += d));
        channel.on('close', () => resolve(out));
      });
    });
  } finally {
    client.end();
  }
}

const engines = [requireEngine('docker'), requireEngine('podman')];
const dataDirs: Array<{ engine: Engine; dataDir: string }> = [];

afterAll(async () => {
  for (const { engine, dataDir } of dataDirs) await removeLeftovers(engine, dataDir).catch(() => {});
});

for (const engine of engines) {
  for (const flavour of ['busybox', 'debian'] as const) {
    describe(`${engine.name}, ${flavour} image`, () => {
      let image = '';
      beforeAll(async () => {
        image = flavour === 'busybox' ? await ensureBusyboxWorkspaceImage(engine) : await ensureDebianWorkspaceImage(engine);
      }, DEADLINE_MS);
      runDriverContract(`docker-${engine.name}-${flavour}`, {
        createDriver(dataDir) {
          if (!dataDirs.some((d) => d.dataDir === dataDir)) dataDirs.push({ engine, dataDir });
          return driverFor(engine, dataDir, image);
        },
        findLeftovers: (dataDir, id) => leftovers(engine, dataDir, id),
      });
    });
  }

  describe(`docker driver on ${engine.name}: what the contract does not cover`, () => {
    let dataDir: string;
    let driver: WorkspaceDriver;
    const serverKey = generateKeyPair('wharf-docker-test-server');
    const create = (id: string, extra: Record<string, unknown> = {}) => {
      const host = generateKeyPair(`wharf-workspace-${id}`);
      return driver.create({ id, name: id, hostPrivateKey: host.privateKey, hostPublicKey: host.publicKey, authorizedKeys: `${serverKey.publicKey.trim()}\n`, ...extra });
    };

    beforeAll(async () => {
      const image = await ensureBusyboxWorkspaceImage(engine);
      dataDir = await mkdtemp(join(tmpdir(), `wharf-docker-${engine.name}-`));
      dataDirs.push({ engine, dataDir });
      driver = driverFor(engine, dataDir, image, ['--workspace-pids', '200']);
      await driver.init();
      await create('alpha');
      await create('beta');
    }, DEADLINE_MS * 2);

    afterAll(async () => {
      await driver?.shutdown({ stopAgents: true });
      if (dataDir) {
        await removeLeftovers(engine, dataDir);
        await rm(dataDir, { recursive: true, force: true });
      }
    }, DEADLINE_MS);

    it('gives an interactive pty shell (node-pty runs in a busybox image)', async () => {
      const client = await sshTo(driver, 'alpha', serverKey);
      try {
        const out = await new Promise<string>((resolve, reject) => {
          client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, channel) => {
            if (err) return reject(err);
            let text = '';
            channel.on('data', (d: Buffer) => {
              text += d;
              if (text.includes('answer=42')) resolve(text);
            });
            channel.on('close', () => resolve(text));
            channel.write('tty; echo answer=$((6*7))\n');
          });
        });
        expect(out).toContain('answer=42');
        expect(out).toMatch(/\/dev\/pts\/\d+/);
      } finally {
        client.end();
      }
    }, DEADLINE_MS);

    it('runs as the non-root user: files it writes are that user\'s, with no capabilities and no new privileges', async () => {
      const out = await run(driver, 'alpha', serverKey, 'id -u; echo hi > /workspace/mine.txt; stat -c %u:%g /workspace/mine.txt /workspace; grep -E "^(CapEff|CapPrm|NoNewPrivs)" /proc/self/status; ls -ln /run/wharf; grep " /run/wharf " /proc/mounts; echo "key in my env: $(env | grep -c WHARF_HOST_KEY)"');
      const lines = out.trim().split('\n');
      expect(lines[0]).toBe('65534');
      expect(lines[1]).toBe('65534:65534');
      expect(lines[2]).toBe('65534:65534');
      expect(out).toMatch(/CapEff:\s+0000000000000000/);
      expect(out).toMatch(/CapPrm:\s+0000000000000000/);
      expect(out).toMatch(/NoNewPrivs:\s+1/);
      // The agent's key material: its user's alone.
      expect(out).toMatch(/-rw-------\s+1 65534\s+65534 .* host_key/);
      expect(out).toMatch(/-rw-------\s+1 65534\s+65534 .* authorized_keys/);
      // In memory, not on the container's disk; and handed over through the container's
      // environment, which the supervisor keeps from the agent and all it starts.
      expect(out).toMatch(/^tmpfs \/run\/wharf tmpfs /m);
      expect(out).toContain('key in my env: 0');
      const info = await engineJson<{ HostConfig: { CapDrop: string[]; SecurityOpt: string[]; NetworkMode: string; Init: boolean }; Mounts: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }> }>(engine, `/containers/wharf-${instanceOf(dataDir)}-alpha/json`);
      // Docker keeps "ALL" as asked; Podman lists every capability it dropped.
      const dropped = info.HostConfig.CapDrop.map((c) => c.replace(/^CAP_/, ''));
      expect(dropped.includes('ALL') || ['CHOWN', 'SETUID', 'SETGID', 'NET_RAW', 'DAC_OVERRIDE'].every((c) => dropped.includes(c))).toBe(true);
      expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
      expect(info.HostConfig.NetworkMode).toBe('none');
      expect(info.Mounts.some((m) => m.Destination.includes('docker.sock') || m.Destination.includes('podman.sock'))).toBe(false);
    }, DEADLINE_MS);

    it("does not show one workspace's volume to another", async () => {
      await run(driver, 'alpha', serverKey, 'echo alpha-secret > /workspace/alpha-only.txt');
      const listing = await run(driver, 'beta', serverKey, 'ls -a /workspace; cat /workspace/alpha-only.txt 2>&1; true');
      expect(listing).not.toContain('alpha-secret');
      const info = await engineJson<{ Mounts: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }> }>(engine, `/containers/wharf-${instanceOf(dataDir)}-beta/json`);
      const volumes = info.Mounts.filter((m) => m.Type === 'volume');
      expect(volumes.find((m) => m.Destination === '/workspace')?.Name).toBe(`wharf-${instanceOf(dataDir)}-beta`);
      expect(volumes.find((m) => m.Destination === '/.wharf')).toMatchObject({ RW: false });
      expect(volumes.filter((m) => m.Destination !== '/.wharf' && m.Destination !== '/workspace')).toEqual([]);
    }, DEADLINE_MS);

    it('takes a disk limit only where the storage driver can keep it, and says so otherwise', async () => {
      const attempt = await create('disky', { resources: { disk: 1024 ** 3 } }).then(
        () => undefined,
        (err: { code: string; message: string }) => err,
      );
      if (attempt === undefined) {
        const info = await engineJson<{ HostConfig: { StorageOpt: Record<string, string> } }>(engine, `/containers/wharf-${instanceOf(dataDir)}-disky/json`);
        expect(info.HostConfig.StorageOpt).toEqual({ size: String(1024 ** 3) });
        await driver.remove('disky');
      } else {
        // vfs here: the engine refuses, and the refusal is a clear 400 that leaves nothing behind.
        expect(attempt).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/a disk limit is not supported by this engine's storage driver/) });
        expect(await driver.get('disky')).toBeUndefined();
        expect(await leftovers(engine, dataDir, 'disky')).toEqual([]);
      }
    }, DEADLINE_MS);

    it('puts the limits into the container, and reports an OOM-killed workspace as an error that can be started again', async () => {
      const record = await create('hungry', { resources: { cpus: 0.5, memory: 160 * 1024 ** 2 } });
      expect(record.resources).toEqual({ pids: 200, cpus: 0.5, memory: 160 * 1024 ** 2 });
      const info = await engineJson<{ HostConfig: { NanoCpus: number; Memory: number; PidsLimit: number } }>(engine, `/containers/wharf-${instanceOf(dataDir)}-hungry/json`);
      expect(info.HostConfig).toMatchObject({ NanoCpus: 500_000_000, Memory: 160 * 1024 ** 2, PidsLimit: 200 });
      // The agent is made the kernel's first choice, then memory is eaten beyond the limit.
      await run(driver, 'hungry', serverKey, 'echo 1000 > /proc/$PPID/oom_score_adj; head -c 400m /dev/zero | tail').catch(() => '');
      const failed = await waitFor('the workspace to be in error', async () => {
        const r = await driver.get('hungry');
        return r?.status === 'error' ? r : undefined;
      });
      expect(failed.statusReason).toMatch(/out of memory/);
      await driver.start('hungry');
      expect(await waitFor('an answer after the start', () => run(driver, 'hungry', serverKey, 'echo back'))).toBe('back\n');
      expect((await driver.get('hungry'))?.status).toBe('running');
    }, DEADLINE_MS * 3);

    it('prunes runtime volumes of other builds that no container uses, once they are old enough', async () => {
      const endpoint = parseEngineEndpoint(engine.endpoint, 'engine');
      if (!endpoint.ok) throw new Error(endpoint.error);
      const calls = createEngineCalls(createEngineClient(endpoint.value), 60_000);
      // A label of this test's own: the engine is shared, and other runs' runtime volumes are theirs.
      const tag = `${Date.now().toString(36)}${process.pid}`;
      const label = `dev.wharf.test-prune-${tag}`;
      const [stale, used, current] = ['stale', 'used', 'current'].map((n) => `${RUNTIME_VOLUME_PREFIX}test-${tag}-${n}`);
      const user = `wharf-test-prune-${tag}`;
      try {
        for (const name of [stale, used, current]) await engineRequest(engine, 'POST', '/volumes/create', Buffer.from(JSON.stringify({ Name: name, Labels: { [label]: 'x' } })), { 'content-type': 'application/json' });
        // A stopped workspace of an older build still mounts its runtime: created, never started.
        const made = await engineRequest(engine, 'POST', `/containers/create?name=${user}`, Buffer.from(JSON.stringify({ Image: await ensureBusyboxWorkspaceImage(engine), Cmd: ['true'], HostConfig: { NetworkMode: 'none', Mounts: [{ Type: 'volume', Source: used, Target: '/.wharf', ReadOnly: true }] } })), { 'content-type': 'application/json' });
        expect(made.status, made.body.toString()).toBe(201);
        const log = () => {};
        // Younger than the minimum age: kept (another server may be about to use it).
        expect(await pruneRuntimeVolumes(calls, { keep: current, label, minAgeMs: 60 * 60_000, log })).toEqual([]);
        expect(await pruneRuntimeVolumes(calls, { keep: current, label, minAgeMs: 0, log })).toEqual([stale]);
        const left = await engineJson<{ Volumes: Array<{ Name: string }> | null }>(engine, `/volumes?filters=${encodeURIComponent(JSON.stringify({ label: [label] }))}`);
        expect((left.Volumes ?? []).map((v) => v.Name).sort()).toEqual([current, used].sort());
      } finally {
        await engineRequest(engine, 'DELETE', `/containers/${user}?force=1`);
        for (const name of [stale, used, current]) await engineRequest(engine, 'DELETE', `/volumes/${name}`);
      }
    }, DEADLINE_MS);
  });
}
