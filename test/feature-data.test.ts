import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { createWorkspaceService, generateKeyPair, type WorkspaceDriver, type WorkspaceService } from '../server/workspace/index.ts';
import { createWorkspace, startTestServer } from './support/server.ts';

/** Feature data (deploy history, share links) kept by each workspace's agent, not by the driver. */
describe('feature data in the agent store', () => {
  let dataDir: string;
  let driver: WorkspaceDriver;
  let replicas: WorkspaceService[];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-feature-data-'));
    const config = loadServerConfig({ argv: ['--data-dir', dataDir, '--sandbox', 'none', '--feature-data-max-bytes', '64KiB'], env: {} });
    driver = createConfiguredDriver(config, () => {});
    await driver.init();
    const serverKey = generateKeyPair('wharf-test-server');
    // Two services, each with its own SSH connection to the agent: two control-server replicas.
    replicas = [0, 1].map(() => createWorkspaceService({ driver, serverKey, agentTimeoutMs: 15_000, seedRoot: undefined, protectedDirs: [dataDir], featureDataMaxBytes: config.limits.featureDataMaxBytes }));
    await replicas[0].create({ name: 'store' });
  });

  afterAll(async () => {
    // The replicas share one driver, whose shutdown forgets the agents it supervised: the first
    // shutdown must be the one that stops them (shutting down with `false` first left the
    // workspace's agent running after the test, one per run).
    for (const r of replicas ?? []) await r.shutdown(true).catch(() => {});
    await driver?.shutdown({ stopAgents: true });
    await rm(dataDir, { recursive: true, force: true });
  });

  it('reads a key never written as undefined, and what was written from either replica', async () => {
    expect(await replicas[0].readFeatureData('store', 'nothing')).toBeUndefined();
    await replicas[0].updateFeatureData<string[]>('store', 'notes', () => ['a']);
    expect(await replicas[1].readFeatureData('store', 'notes')).toEqual(['a']);
  });

  it('loses no update when two replicas update one key at once', async () => {
    const appends = Array.from({ length: 30 }, (_, i) =>
      replicas[i % 2].updateFeatureData<number[]>('store', 'counter', (current) => [...(current ?? []), i]),
    );
    await Promise.all(appends);
    const final = (await replicas[0].readFeatureData<number[]>('store', 'counter')) ?? [];
    expect([...final].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('refuses a value beyond the bound, keeping the old one', async () => {
    await expect(replicas[0].updateFeatureData('store', 'notes', () => 'x'.repeat(100 * 1024))).rejects.toMatchObject({ code: 'payload_too_large' });
    expect(await replicas[0].readFeatureData('store', 'notes')).toEqual(['a']);
  });

  it('keeps the data in the workspace itself, across a stop and start', async () => {
    const file = join(dataDir, 'workspaces', 'store', 'home', '.cache', 'wharf', 'store', 'notes.json');
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ value: ['a'] });
    await replicas[0].stop('store');
    // Stopped: reached only through the agent, so reads and updates say to start it first.
    await expect(replicas[0].readFeatureData('store', 'notes')).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/stopped; start it first/) });
    await expect(replicas[1].updateFeatureData('store', 'notes', () => [])).rejects.toMatchObject({ code: 'conflict' });
    await replicas[0].start('store');
    expect(await replicas[1].readFeatureData('store', 'notes')).toEqual(['a']);
  });
});

describe('migrating feature data of an older process-driver meta', () => {
  it('moves `extra` of workspace.json into the agent store on the next start', async () => {
    let server = await startTestServer({ workspaces: [] });
    try {
      await createWorkspace(server, 'legacy');
      const dataDir = server.dataDir;
      await server.api('/api/workspaces/legacy/stop', { method: 'POST' });
      const metaFile = join(dataDir, 'workspaces', 'legacy', 'workspace.json');
      const run = { id: 'old-run', workspace: 'legacy', kind: 'deploy', mode: 'remote', status: 'success', startedAt: '2026-01-01T00:00:00.000Z', durationMs: 5, commands: [] };
      const meta = JSON.parse(await readFile(metaFile, 'utf8')) as Record<string, unknown>;
      await writeFile(metaFile, JSON.stringify({ ...meta, extra: { deploys: [run] } }));
      server = await server.restart();
      expect((await server.api('/api/workspaces/legacy/start', { method: 'POST' })).status).toBe(200);
      const listed = (await (await server.api('/api/workspaces/legacy/deploys')).json()) as { deploys: Array<{ id: string }> };
      expect(listed.deploys.map((d) => d.id)).toEqual(['old-run']);
      expect(JSON.parse(await readFile(metaFile, 'utf8'))).not.toHaveProperty('extra');
      expect(existsSync(join(dataDir, 'workspaces', 'legacy', 'agent', 'legacy-store.json'))).toBe(false);
    } finally {
      await server.dispose();
    }
  });
});
