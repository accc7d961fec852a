import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import tar from 'tar-stream';
import { afterAll, beforeAll } from 'vitest';
import { loadServerConfig } from '../server/config/index.ts';
import { createConfiguredDriver } from '../server/main.ts';
import { runDriverContract } from './driver-contract.ts';
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
