import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../server/common/index.ts';
import { createWorkspace, startTestServer, type TestServer } from './support/server.ts';

/**
 * One workspace whose agent stops answering (frozen with SIGSTOP, as anyone with a shell in the
 * workspace can do to it, or pinned by busy work) must cost its own callers a clear 503 and
 * nothing more: the control server keeps running and every other workspace keeps working.
 */
const AGENT_TIMEOUT = '2s';

async function agentPidOf(server: TestServer, id: string): Promise<number> {
  const meta = JSON.parse(await readFile(join(server.dataDir, 'workspaces', id, 'workspace.json'), 'utf8')) as { agentPid?: number };
  if (!meta.agentPid || !isProcessAlive(meta.agentPid)) throw new Error(`workspace ${id} has no running agent`);
  return meta.agentPid;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

type Answer = { status: number; body: { error?: { code: string; message: string } } };

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Answer['body']) : {} };
}

/** Requests a user makes of a workspace, each through a different agent channel. */
function callsOf(server: TestServer, id: string): Array<[string, () => Promise<Response>]> {
  return [
    ['list files (sftp)', () => server.api(`/api/workspaces/${id}/files/`)],
    ['read a file (sftp)', () => server.api(`/api/workspaces/${id}/files/hello.txt`)],
    ['open a terminal (control + pty)', () => server.api(`/api/workspaces/${id}/terminals`, { method: 'POST', json: { cols: 80, rows: 24 } })],
    ['register a session key (control)', () => server.api(`/api/workspaces/${id}/session-keys`, { method: 'POST', json: { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2bRkmKmmRqaa6VjAVl4gsSfzEsVBp7wyA7rwzAi/xV test' } })],
  ];
}

describe('a workspace whose agent stops answering', () => {
  let server: TestServer;
  const frozen: number[] = [];

  beforeAll(async () => {
    server = await startTestServer({ argv: ['--agent-timeout', AGENT_TIMEOUT] });
    for (const id of ['stuck', 'fine']) {
      await createWorkspace(server, id);
      const put = await server.api(`/api/workspaces/${id}/files/hello.txt`, { method: 'PUT', body: `hello from ${id}\n` });
      expect(put.status).toBeLessThan(300);
    }
  });

  afterAll(async () => {
    for (const pid of frozen) if (isProcessAlive(pid)) process.kill(pid, 'SIGCONT');
    await server?.dispose();
  });

  async function expectWorkspaceWorks(id: string): Promise<void> {
    const res = await server.api(`/api/workspaces/${id}/files/hello.txt`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`hello from ${id}\n`);
  }

  async function resumeAndRecover(pid: number): Promise<void> {
    process.kill(pid, 'SIGCONT');
    await waitFor('the workspace to answer again', async () => {
      const res = await server.api('/api/workspaces/stuck/files/hello.txt');
      return res.status === 200 ? true : undefined;
    });
  }

  async function expectUnavailable(id: string): Promise<void> {
    // All at once, as a browser tab would: none may wait on another, and none may crash the server.
    const answers = await Promise.all(callsOf(server, id).map(async ([what, call]) => ({ what, ...(await answer(await call())) })));
    for (const a of answers) {
      expect({ what: a.what, status: a.status }).toEqual({ what: a.what, status: 503 });
      expect(a.body.error?.code).toBe('unavailable');
      expect(a.body.error?.message).toMatch(/workspace agent/);
    }
  }

  it('answers 503 for a frozen agent the server was already talking to, while other workspaces keep working', async () => {
    await expectWorkspaceWorks('stuck'); // the server now holds an SSH connection to this agent
    const pid = await agentPidOf(server, 'stuck');
    frozen.push(pid);
    process.kill(pid, 'SIGSTOP');

    const stuckCalls = expectUnavailable('stuck');
    // While those wait for the frozen agent, the other workspace answers as usual.
    await expectWorkspaceWorks('fine');
    await stuckCalls;
    // Twice: the first round's dead connection must not linger for the second.
    await expectUnavailable('stuck');

    expect((await server.api('/healthz')).status).toBe(200);
    await expectWorkspaceWorks('fine');

    // Once the agent runs again the workspace recovers without anyone restarting anything.
    await resumeAndRecover(pid);
  });

  it('answers 503 for an agent that accepts the connection but never completes the SSH handshake', async () => {
    // A new server process knows nothing of the agent: its first connection meets a frozen peer.
    const pid = await agentPidOf(server, 'stuck');
    process.kill(pid, 'SIGSTOP');
    server = await server.restart({ keepAgents: true });
    // Frozen for longer than ssh2's own handshake timeout (20 s), which is when an abandoned
    // connection used to report one more 'error' with nobody listening and kill the server.
    const frozenSince = Date.now();
    while (Date.now() - frozenSince < 25_000) await expectUnavailable('stuck');
    expect((await server.api('/healthz')).status).toBe(200);
    await expectWorkspaceWorks('fine');
    await resumeAndRecover(pid);
  });
});
