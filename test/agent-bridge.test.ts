import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The runtime's bridge program (dist/agent/bridge.mjs) as container drivers exec it: stdio joined
// to the agent's unix socket, waiting (--wait-ms) for an agent that does not listen yet.
const BRIDGE = join(dirname(dirname(fileURLToPath(import.meta.url))), 'dist', 'agent', 'bridge.mjs');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-bridge-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A unix socket file nobody listens on, as a crashed agent leaves it (connecting is refused). */
function staleSocket(path: string): void {
  // A listener killed outright: nothing unlinks its socket file.
  const made = spawnSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", path]);
  if (made.signal !== 'SIGKILL') throw new Error(`cannot make a stale socket: ${made.stderr}`);
}

function runBridge(args: string[]) {
  const child = spawn(process.execPath, [BRIDGE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('bridge.mjs', () => {
  it('connects to an agent that starts listening while it waits, and relays both ways', async () => {
    const socket = join(dir, 'later.sock');
    staleSocket(socket);
    const bridge = runBridge(['--socket', socket, '--wait-ms', '60000']);
    bridge.child.stdin.write('hello agent\n');
    // The agent comes up: the stale file goes, a listener takes its place (as the supervisor and agent do).
    await rm(socket, { force: true });
    const agent = createServer((c) => {
      c.on('data', (d) => c.write(`agent got: ${d}`));
      c.on('end', () => c.end());
    });
    await new Promise<void>((resolve) => agent.listen(socket, resolve));
    try {
      while (!bridge.out().includes('agent got: hello agent')) {
        if (bridge.child.exitCode !== null) throw new Error(`the bridge ended: ${bridge.err()}`);
        await Promise.race([new Promise((r) => bridge.child.stdout.once('data', r)), bridge.exited]);
      }
      bridge.child.stdin.end();
      expect(await bridge.exited).toBe(0);
      expect(bridge.err()).toBe('');
    } finally {
      agent.close();
    }
  });

  it('keeps trying for --wait-ms against a refusing socket, then fails saying why', async () => {
    const socket = join(dir, 'refusing.sock');
    staleSocket(socket);
    const started = Date.now();
    const bridge = runBridge(['--socket', socket, '--wait-ms', '400']);
    expect(await bridge.exited).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(bridge.err()).toMatch(/refusing\.sock: connect ECONNREFUSED/);
  });

  it('fails at once without --wait-ms, and refuses bad arguments', async () => {
    const missing = runBridge(['--socket', join(dir, 'nope.sock')]);
    expect(await missing.exited).toBe(1);
    expect(missing.err()).toMatch(/nope\.sock: connect ENOENT/);
    const bad = runBridge(['--socket', join(dir, 'nope.sock'), '--wait-ms', 'soon']);
    expect(await bad.exited).toBe(2);
    expect(bad.err()).toMatch(/--wait-ms must be a number of milliseconds, got "soon"/);
    const none = runBridge([]);
    expect(await none.exited).toBe(2);
    expect(none.err()).toMatch(/usage: bridge\.mjs --socket <path>/);
  });
});
