import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair } from '../server/workspace/index.ts';

// The built agent's entries (scripts/build-agent.mjs) as drivers start them: agent.cjs with the
// V8 code cache made at build time, and agent.mjs kept for older callers.
const BUNDLE = join(dirname(dirname(fileURLToPath(import.meta.url))), 'dist', 'agent');
let dir = '';
let client: KeyPair;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-agent-entry-'));
  const host = generateKeyPair('wharf-entry-test');
  await writeFile(join(dir, 'host_key'), host.privateKey, { mode: 0o600 });
  client = generateKeyPair('server');
  await writeFile(join(dir, 'authorized_keys'), `${client.publicKey}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Starts an agent and gives what it wrote on stderr up to its "listening" line; `whileUp` runs
 * against its socket before it is stopped.
 */
async function startAgent(name: string, nodeFlags: string[], entry: string, whileUp?: (socket: string) => Promise<void>): Promise<string> {
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
    }).then(async (output) => {
      await whileUp?.(join(dir, `${name}.sock`));
      return output;
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

  it('serves a client that asks for compression (zlib, which the bundle loads only then)', async () => {
    await startAgent('compressed', [], 'agent.cjs', async (socket) => {
      await writeFile(join(dir, 'compressed', 'probe.txt'), 'probe');
      const ssh = new ssh2.Client();
      try {
        await new Promise<void>((resolve, reject) => {
          ssh.once('ready', resolve).once('error', reject);
          ssh.connect({ sock: connect(socket), username: 'wharf', privateKey: client.privateKey, algorithms: { compress: ['zlib@openssh.com', 'zlib'] } });
        });
        const names = await new Promise<string[]>((resolve, reject) =>
          ssh.sftp((err, sftp) => (err ? reject(err) : sftp.readdir('/', (e, list) => (e ? reject(e) : resolve(list.map((entry) => entry.filename)))))),
        );
        expect(names).toContain('probe.txt');
      } finally {
        ssh.end();
      }
    });
  }, 60_000);

  it('still starts as agent.mjs', async () => {
    const stderr = await startAgent('shim', [], 'agent.mjs');
    expect(stderr).not.toContain('code_cache_rejected');
  }, 60_000);
});
