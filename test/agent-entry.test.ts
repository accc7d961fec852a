import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../server/workspace/index.ts';

// The built agent's entries (scripts/build-agent.mjs) as drivers start them: agent.cjs with the
// V8 code cache made at build time, and agent.mjs kept for older callers.
const BUNDLE = join(dirname(dirname(fileURLToPath(import.meta.url))), 'dist', 'agent');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-agent-entry-'));
  const host = generateKeyPair('wharf-entry-test');
  await writeFile(join(dir, 'host_key'), host.privateKey, { mode: 0o600 });
  await writeFile(join(dir, 'authorized_keys'), `${generateKeyPair('server').publicKey}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts an agent and gives what it wrote on stderr up to its "listening" line. */
async function startAgent(name: string, nodeFlags: string[], entry: string): Promise<string> {
  const root = join(dir, name);
  await mkdir(root);
  const child = spawn(process.execPath, [...nodeFlags, join(BUNDLE, entry), '--socket', join(dir, `${name}.sock`), '--root', root, '--home', root, '--host-key', join(dir, 'host_key'), '--authorized-keys', join(dir, 'authorized_keys')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c;
        if (stderr.includes('"event":"listening"')) resolve(stderr);
      });
      child.once('exit', (code) => reject(new Error(`the agent exited (${code}) before it listened: ${stderr}`)));
    });
  } finally {
    child.kill('SIGKILL');
  }
}

describe('the built agent', () => {
  it('ships a code cache of its bundle, which this node takes', async () => {
    const files = await readdir(BUNDLE);
    expect(files.filter((f) => /^agent-bundle-[0-9a-f]+\.cjs$/.test(f))).toHaveLength(1);
    expect(files.filter((f) => /^agent-bundle-[0-9a-f]+\.cjs\.v8-cache$/.test(f))).toHaveLength(1);
    const stderr = await startAgent('cached', [], 'agent.cjs');
    expect(stderr).not.toContain('code_cache_rejected');
  }, 60_000);

  it('starts without it, and says so, when V8 refuses the cache (other V8 flags)', async () => {
    const stderr = await startAgent('refused', ['--max-semi-space-size=2'], 'agent.cjs');
    expect(stderr).toContain('"event":"code_cache_rejected"');
  }, 60_000);

  it('still starts as agent.mjs', async () => {
    const stderr = await startAgent('shim', [], 'agent.mjs');
    expect(stderr).not.toContain('code_cache_rejected');
  }, 60_000);
});
