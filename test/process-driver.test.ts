import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../server/common/index.ts';
import { createWorkspace, execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

type Meta = { agentPid?: number; desired: string };

/** Where a server on `dataDir` keeps its agents' sockets: a private folder inside it. */
function runDirOf(dataDir: string): string {
  return join(dataDir, 'run');
}

describe('process driver supervision', () => {
  let dataDir: string;
  let server: TestServer;

  const meta = async (id: string) => JSON.parse(await readFile(join(dataDir, 'workspaces', id, 'workspace.json'), 'utf8')) as Meta;
  const agentLog = (id: string) => readFile(join(dataDir, 'workspaces', id, 'agent.log'), 'utf8');
  /** A fresh SSH session through the server, running `echo` in the workspace. */
  const echo = async (id: string, text: string) => {
    const client = await sshThroughServer(server, id);
    try {
      return (await execOver(client, `echo ${text}`)).stdout;
    } finally {
      client.end();
    }
  };
  const status = async (id: string) => ((await (await server.api(`/api/workspaces/${id}`)).json()) as { status: string }).status;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wharf-driver-'));
    server = await startTestServer({ dataDir });
    await createWorkspace(server, 'alpha');
    await createWorkspace(server, 'beta');
  });
  afterAll(async () => {
    await server.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('restarts an agent that dies', async () => {
    const before = (await meta('alpha')).agentPid as number;
    expect(isProcessAlive(before)).toBe(true);
    expect(await echo('alpha', 'before')).toBe('before\n');
    process.kill(before, 'SIGKILL');
    await waitFor('the old agent to die', () => !isProcessAlive(before));
    const after = await waitFor('a new agent pid', async () => {
      const pid = (await meta('alpha')).agentPid;
      return pid && pid !== before && isProcessAlive(pid) ? pid : undefined;
    });
    expect(await waitFor('an exec on the new agent', () => echo('alpha', 'again'))).toBe('again\n');
    expect(await status('alpha')).toBe('running');
    expect((await meta('alpha')).agentPid).toBe(after);
  });

  it('stops and starts a workspace through the API', async () => {
    const pid = (await meta('beta')).agentPid as number;
    const stopped = await server.api('/api/workspaces/beta/stop', { method: 'POST' });
    expect(stopped.status).toBe(200);
    expect(((await stopped.json()) as { status: string }).status).toBe('stopped');
    expect(isProcessAlive(pid)).toBe(false);
    expect(await agentLog('beta')).toMatch(/"event":"stopped"/);
    expect((await meta('beta')).desired).toBe('stopped');
    expect(existsSync(join(runDirOf(dataDir), 'beta')), 'a stopped agent leaves no socket folder').toBe(false);
    expect(existsSync(join(runDirOf(dataDir), 'alpha'))).toBe(true);
    // A stopped workspace stays stopped: no restart behind the user's back, no SSH.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await status('beta')).toBe('stopped');
    const refused = await server.api('/api/workspaces/beta/session-keys', { method: 'POST', json: { publicKey: 'ssh-ed25519 AAAA' } });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toMatch(/stopped; start it first/);

    const started = await server.api('/api/workspaces/beta/start', { method: 'POST' });
    expect(started.status).toBe(200);
    expect(await status('beta')).toBe('running');
    const newPid = (await meta('beta')).agentPid as number;
    expect(newPid).not.toBe(pid);
    expect(isProcessAlive(newPid)).toBe(true);
    expect(await echo('beta', 'back')).toBe('back\n');
    await server.api('/api/workspaces/beta/stop', { method: 'POST' });
  });

  it('refuses start and stop of a workspace that does not exist', async () => {
    for (const op of ['start', 'stop']) {
      const res = await server.api(`/api/workspaces/ghost/${op}`, { method: 'POST' });
      expect(res.status).toBe(404);
    }
  });

  it('never lets a hostile id reach another workspace or the data dir', async () => {
    const failures: string[] = [];
    for (const id of ['..%2Fworkspaces%2Falpha', '..%2F..%2Falpha', 'alpha%00', '%00', 'ALPHA', 'a%2Fb', '%E0%A4%A']) {
      for (const [method, suffix] of [['GET', ''], ['POST', '/stop'], ['POST', '/start'], ['DELETE', ''], ['POST', '/session-keys']]) {
        const res = await server.api(`/api/workspaces/${id}${suffix}`, { method, json: suffix === '/session-keys' ? { publicKey: 'ssh-ed25519 AAAA' } : undefined });
        const text = await res.text();
        if (res.status !== 404 || !/does not exist/.test(text)) failures.push(`${method} ${id}${suffix}: ${res.status} ${text.slice(0, 100)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await status('alpha')).toBe('running');
    expect(await echo('alpha', 'untouched')).toBe('untouched\n');
  });

  it('stops agents cleanly with the server and brings running workspaces back on the next start', async () => {
    // beta is stopped by its user: it must stay stopped across the restart.
    expect((await server.api('/api/workspaces/beta/stop', { method: 'POST' })).status).toBe(200);
    const pid = (await meta('alpha')).agentPid as number;
    server = await server.restart();
    expect(isProcessAlive(pid)).toBe(false);
    expect(await agentLog('alpha')).toMatch(/"event":"stopped"/);

    const listed = (await (await server.api('/api/workspaces')).json()) as { workspaces: Array<{ id: string; status: string }> };
    expect(listed.workspaces.map((w) => [w.id, w.status])).toEqual([
      ['alpha', 'running'],
      ['beta', 'stopped'],
    ]);
    const newPid = (await meta('alpha')).agentPid as number;
    expect(newPid).not.toBe(pid);
    expect(isProcessAlive(newPid)).toBe(true);
    expect(await echo('alpha', 'found')).toBe('found\n');
  });

  it('re-adopts the same agent after a restart that keeps agents, and still supervises it', async () => {
    const pid = (await meta('alpha')).agentPid as number;
    server = await server.restart({ keepAgents: true });
    expect(isProcessAlive(pid)).toBe(true);
    expect((await meta('alpha')).agentPid).toBe(pid);
    expect(await status('alpha')).toBe('running');
    expect(await echo('alpha', 'adopted')).toBe('adopted\n');

    process.kill(pid, 'SIGKILL');
    const next = await waitFor('a replacement for the adopted agent', async () => {
      const p = (await meta('alpha')).agentPid;
      return p && p !== pid && isProcessAlive(p) ? p : undefined;
    });
    expect(await waitFor('an exec on the replacement', () => echo('alpha', 'replaced'))).toBe('replaced\n');
    expect(isProcessAlive(next)).toBe(true);
  });

  it('leaves no agent behind when the server stops while agents are starting', async () => {
    /** Agent processes whose workspace lives under `dir`. */
    const agentsUnder = (dir: string) =>
      readdirSync('/proc').filter((p) => {
        if (!/^\d+$/.test(p)) return false;
        try {
          const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return cmdline.includes('dist/agent/agent.cjs') && cmdline.includes(`${dir}/workspaces/`);
        } catch {
          return false;
        }
      });
    const dir = await mkdtemp(join(tmpdir(), 'wharf-driver-race-'));
    try {
      const racing = await startTestServer({ dataDir: dir });
      const ids = ['r1', 'r2', 'r3'];
      for (const id of ids) await createWorkspace(racing, id);
      for (const id of ids) await racing.api(`/api/workspaces/${id}/stop`, { method: 'POST' });
      // Starts still on their way when the server stops: each must end up stopped, not orphaned.
      const starts = ids.map((id) => racing.api(`/api/workspaces/${id}/start`, { method: 'POST' }).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 20));
      await racing.dispose();
      await Promise.all(starts);
      await new Promise((r) => setTimeout(r, 1000));
      expect(agentsUnder(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps agent sockets in a private folder of its own, never in a predictable shared one', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-rundir-'));
    // Where earlier versions put the sockets: another local user could have made it first.
    const predictable = join(tmpdir(), `wharf-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`);
    await mkdir(predictable, { mode: 0o777 });
    await chmod(predictable, 0o777);
    const own = await startTestServer({ dataDir, workspaces: ['delta'] });
    try {
      expect(readdirSync(predictable), 'nothing is put into the pre-made shared folder').toEqual([]);
      const stats = lstatSync(runDirOf(dataDir));
      expect(stats.isDirectory() && !stats.isSymbolicLink()).toBe(true);
      expect(stats.mode & 0o777).toBe(0o700);
      expect(stats.uid).toBe(process.getuid?.());
      expect(existsSync(join(runDirOf(dataDir), 'delta', 'agent.sock'))).toBe(true);
    } finally {
      await own.dispose();
      await rm(predictable, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a run folder that is a symlink or open to others, saying why', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-rundir-'));
    const elsewhere = await mkdtemp(join(tmpdir(), 'wharf-rundir-target-'));
    try {
      await symlink(elsewhere, runDirOf(dataDir));
      const linked = await startTestServer({ dataDir });
      const res = await linked.api('/api/workspaces', { method: 'POST', json: { name: 'eps' } });
      expect(res.status).toBe(500);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/symbolic link/);
      expect(readdirSync(elsewhere)).toEqual([]);
      await linked.dispose();
      await rm(runDirOf(dataDir));
      await mkdir(runDirOf(dataDir), { mode: 0o700 });
      await chmod(runDirOf(dataDir), 0o777);
      const open = await startTestServer({ dataDir });
      const again = await open.api('/api/workspaces', { method: 'POST', json: { name: 'zeta' } });
      expect(again.status).toBe(500);
      expect(((await again.json()) as { error: { message: string } }).error.message).toMatch(/mode is 777/);
      await open.dispose();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses to start a workspace when the agent is not built, naming "npm run build"', async () => {
    const unbuilt = await mkdtemp(join(tmpdir(), 'wharf-no-agent-'));
    const own = await startTestServer({ argv: ['--agent-bundle', unbuilt] });
    try {
      const res = await own.api('/api/workspaces', { method: 'POST', json: { name: 'unbuilt' } });
      expect(res.status).toBe(503);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('unavailable');
      expect(error.message).toContain(join(unbuilt, 'agent.cjs'));
      expect(error.message).toMatch(/npm run build/);
    } finally {
      await own.dispose();
      await rm(unbuilt, { recursive: true, force: true });
    }
  });

  it('leaves nothing in the temp dir once the server has stopped its agents', async () => {
    const own = await startTestServer({ workspaces: ['gamma'] });
    const runDir = runDirOf(own.dataDir);
    expect(existsSync(join(runDir, 'gamma', 'agent.sock'))).toBe(true);
    await own.dispose();
    expect(existsSync(runDir)).toBe(false);
  });
});
