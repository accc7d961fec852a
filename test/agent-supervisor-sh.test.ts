import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GAVE_UP_EXIT_CODE, KEY_ENV, SUPERVISOR_SH_SOURCE } from '../server/workspace/agent-supervisor.ts';

// The docker driver's supervisor (supervise.sh) run by this machine's /bin/sh, as the runtime's
// sh runs it in a container: with an agent that is a shell script here, so that what it sees
// (its environment, the signal it gets) and how often it is started can be looked at.
let dir = '';
let script = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-supervise-sh-'));
  script = join(dir, 'supervise.sh');
  await writeFile(script, SUPERVISOR_SH_SOURCE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function supervise(name: string, agent: string, options: { baseMs: number; maxQuick: number; env?: Record<string, string> }) {
  const child = spawn('/bin/sh', [script, join(dir, `${name}.sock`), String(options.baseMs), String(options.maxQuick), process.execPath, dir, '--', '/bin/sh', '-c', agent], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(options.env ?? {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

async function waitForFile(path: string, contains: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (text.includes(contains)) return text;
    if (Date.now() > deadline) throw new Error(`${path} never contained ${contains} (has ${JSON.stringify(text)})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('supervise.sh', () => {
  it('writes the keys from its environment (its user\'s alone), keeps them from the agent, and stops the agent on SIGTERM', async () => {
    const seen = join(dir, 'seen.txt');
    const agent = `env > ${seen}.env; trap 'echo got-term >> ${seen}; exit 0' TERM; echo started >> ${seen}; while :; do sleep 0.05; done`;
    const run = supervise('keys', agent, { baseMs: 100, maxQuick: 3, env: { [KEY_ENV.hostKey]: 'PRIVATE KEY TEXT', [KEY_ENV.authorizedKeys]: 'ssh-ed25519 AAAA server' } });
    await waitForFile(seen, 'started');
    expect(await readFile(join(dir, 'host_key'), 'utf8')).toBe('PRIVATE KEY TEXT\n');
    expect(await readFile(join(dir, 'authorized_keys'), 'utf8')).toBe('ssh-ed25519 AAAA server\n');
    expect((await stat(join(dir, 'host_key'))).mode & 0o777).toBe(0o600);
    const agentEnv = await readFile(`${seen}.env`, 'utf8');
    expect(agentEnv).not.toContain(KEY_ENV.hostKey);
    expect(agentEnv).not.toContain('PRIVATE KEY TEXT');
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(await readFile(seen, 'utf8')).toContain('got-term');
  }, 60_000);

  it('starts a crashed agent again with a growing delay, and gives up (its own exit code) after the quick crashes allowed', async () => {
    const starts = join(dir, 'starts.txt');
    const run = supervise('crash', `echo start >> ${starts}; exit 3`, { baseMs: 50, maxQuick: 3 });
    expect(await run.exited).toBe(GAVE_UP_EXIT_CODE);
    expect((await readFile(starts, 'utf8')).trim().split('\n')).toHaveLength(3);
    const events = run.stderr().trim().split('\n').map((line) => JSON.parse(line) as { event: string; code?: number; quick?: number });
    expect(events).toEqual([
      { component: 'supervisor', event: 'agent.exited', code: 3, quick: 1 },
      { component: 'supervisor', event: 'agent.exited', code: 3, quick: 2 },
      { component: 'supervisor', event: 'agent.exited', code: 3, quick: 3 },
      { component: 'supervisor', event: 'agent.gave_up', crashes: 3 },
    ]);
  }, 60_000);

  it('stops at once when told to during the wait before a restart', async () => {
    const starts = join(dir, 'starts-stop.txt');
    // A long delay: the supervisor sits in its backoff's sleep after the first crash.
    const run = supervise('stop', `echo start >> ${starts}; exit 1`, { baseMs: 20_000, maxQuick: 5 });
    await waitForFile(starts, 'start');
    await new Promise<void>((resolve) => {
      const check = () => (run.stderr().includes('agent.exited') ? resolve() : setTimeout(check, 20));
      check();
    });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect((await readFile(starts, 'utf8')).trim().split('\n')).toHaveLength(1);
  }, 60_000);
});
