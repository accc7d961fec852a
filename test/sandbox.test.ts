import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSeededWorkspace, createWorkspace, execOver, sshThroughServer, startTestServer, type TestServer } from './support/server.ts';
import { createTerminal, TerminalClient } from './support/terminal-client.ts';

/** Processes whose command line mentions `needle` (the sandbox's bwrap and everything inside it). */
function processesMentioning(needle: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(needle) && !line.includes('ps -eo'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

describe('bubblewrap sandbox (--sandbox bwrap)', () => {
  let server: TestServer;
  let outside: string;
  const secretText = `outside-secret-${process.pid}`;
  const ENV_PROBE = `server-env-probe-${process.pid}`;

  const run = async (id: string, command: string) => {
    const client = await sshThroughServer(server, id);
    try {
      return await execOver(client, command);
    } finally {
      client.end();
    }
  };

  beforeAll(async () => {
    expect(existsSync('/usr/bin/bwrap'), 'bubblewrap must be installed (apt-get install bubblewrap)').toBe(true);
    // Agents started by this server must not inherit its environment (where WHARF_TOKEN may live).
    process.env.WHARF_SANDBOX_TEST_PROBE = ENV_PROBE;
    outside = await mkdtemp(join(tmpdir(), 'wharf-sandbox-outside-'));
    await writeFile(join(outside, 'secret.txt'), secretText);
    server = await startTestServer({ sandbox: 'bwrap', argv: [] });
    await createWorkspace(server, 'boxed');
    await createWorkspace(server, 'neighbour');
    await writeFile(join(server.dataDir, 'workspaces', 'boxed', 'files', 'hello.txt'), 'inside\n');
    await writeFile(join(server.dataDir, 'workspaces', 'neighbour', 'files', 'private.txt'), 'neighbour-private\n');
  });
  afterAll(async () => {
    delete process.env.WHARF_SANDBOX_TEST_PROBE;
    await server?.dispose();
    await rm(outside, { recursive: true, force: true });
  });

  it('shows the workspace at /workspace and keeps writes there', async () => {
    const res = await run('boxed', 'pwd; cat /workspace/hello.txt; echo made > /workspace/new.txt; echo "$HOME"');
    expect(res.stdout).toBe('/workspace\ninside\n/home/wharf\n');
    expect(await readFile(join(server.dataDir, 'workspaces', 'boxed', 'files', 'new.txt'), 'utf8')).toBe('made\n');
  });

  it('cannot read files outside its workspace', async () => {
    const targets = [
      join(outside, 'secret.txt'),
      join(server.dataDir, 'token'),
      join(server.dataDir, 'signing.key'),
      join(server.dataDir, 'server_ed25519'),
      join(server.dataDir, 'workspaces', 'neighbour', 'files', 'private.txt'),
      join(server.dataDir, 'workspaces', 'boxed', 'workspace.json'),
      '/etc/shadow',
    ];
    for (const target of targets) {
      const res = await run('boxed', `cat ${target}`);
      expect(res.code, `${target} must not be readable: ${res.stdout}`).not.toBe(0);
      expect(res.stdout).toBe('');
    }
    // Neither the admin token nor anything else of the server's environment leaks into what the
    // sandbox can read (the pattern is split so grep's own command line cannot match).
    for (const needle of [server.token, ENV_PROBE]) {
      const [a, b] = [needle.slice(0, 6), needle.slice(6)];
      const search = await run('boxed', `printf '%s%s' '${a}' '${b}' > /tmp/pattern; grep -rlsF --exclude=pattern -f /tmp/pattern /workspace /home /tmp /run /proc/*/environ /proc/*/cmdline 2>/dev/null; true`);
      expect(search.stdout, needle).toBe('');
    }
  });

  it('sees of the code checkout only what the agent runs from', async () => {
    const codeRoot = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
    const res = await run('boxed', `ls -A ${codeRoot}; ls -A ${codeRoot}/dist; test -e ${codeRoot}/.git && echo has-git; test -e ${codeRoot}/test && echo has-tests; true`);
    // The agent bundle (dist/agent: agent.cjs, its bundle and its add-ons), not the sources, packages or other artifacts.
    expect(res.stdout.trim().split('\n')).toEqual(['dist', 'agent']);
  });

  it('cannot see or reach other workspaces\' agents', async () => {
    const res = await run('boxed', `ls -a ${join(tmpdir())}/wharf-* ${join(server.dataDir, 'run')} 2>&1; ls /proc/*/root/ >/dev/null 2>&1; true`);
    expect(res.stdout).not.toMatch(/neighbour/);
  });

  it('runs workspace processes as an unprivileged user, so an escape is not root on the host', async () => {
    const res = await run('boxed', 'id -u; id -g; grep -E "^(CapPrm|CapBnd|NoNewPrivs)" /proc/self/status');
    const [uid, gid, ...status] = res.stdout.trim().split('\n');
    expect(Number(uid)).not.toBe(0);
    // As root the server hands the sandbox to "nobody" (--sandbox-user); otherwise it runs as the server's own user.
    const expected = process.getuid?.() === 0 ? 65534 : process.getuid?.();
    expect(Number(uid)).toBe(expected);
    expect(Number(gid)).not.toBe(0);
    expect(status.join('\n')).toMatch(/CapPrm:\s+0+\n/);
    expect(status.join('\n')).toMatch(/NoNewPrivs:\s+1/);
    if (process.getuid?.() === 0) expect(status.join('\n')).toMatch(/CapBnd:\s+0+\n/);
    // The processes really are that user on the host, not root mapped to another name.
    const owner = await run('boxed', 'echo probe > /workspace/owner-probe.txt');
    expect(owner.code).toBe(0);
    expect(statSync(join(server.dataDir, 'workspaces', 'boxed', 'files', 'owner-probe.txt')).uid).toBe(expected);
  });

  it('lets the unprivileged user reach its own home, where the agent keeps feature data', async () => {
    const home = await run('boxed', 'touch ~/home-probe && ls -ld /home | cut -c1-10');
    expect(home.code, home.stderr).toBe(0);
    expect(home.stdout.trim()).toBe('drwxr-xr-x');
    // The deploy history is feature data: read from the store in that home.
    const history = await server.api('/api/workspaces/boxed/deploys');
    expect(history.status, await history.clone().text()).toBe(200);
  });

  it('lets the files API edit what a terminal made, and a terminal edit what the files API and a seed made', async () => {
    const files = (path: string) => `/api/workspaces/boxed/files/${path}`;
    const term = await createTerminal(server, 'boxed');
    const client = await TerminalClient.open(server, 'boxed', term.id);
    client.type('echo from-terminal > made-in-terminal.txt && echo WROTE\r');
    await client.waitForText('WROTE');
    const put = await server.api(files('made-in-terminal.txt'), { method: 'PUT', body: 'edited through the API\n' });
    expect(put.status).toBeLessThan(300);
    const put2 = await server.api(files('made-by-api.txt'), { method: 'PUT', body: 'from the API\n' });
    expect(put2.status).toBeLessThan(300);
    client.type('echo appended >> made-by-api.txt && cat made-in-terminal.txt made-by-api.txt && echo DONE\r');
    await client.waitForText('DONE');
    expect(client.screenText()).toMatch(/edited through the API[\s\S]*from the API[\s\S]*appended/);
    client.close();

    // A seed is copied by the server (as root): the first start gives the copy to the sandbox's user.
    await createSeededWorkspace(server, 'seeded', { 'notes.txt': 'seeded\n', 'src/app.js': 'x\n' });
    const edit = await run('seeded', 'echo more >> notes.txt && mkdir -p src/new && echo y > src/app.js && cat notes.txt');
    expect(edit).toMatchObject({ code: 0, stdout: 'seeded\nmore\n' });
    expect((await server.api('/api/workspaces/seeded/files/src/app.js', { method: 'PUT', body: 'z\n' })).status).toBeLessThan(300);
    await server.api('/api/workspaces/seeded', { method: 'DELETE' });
  });

  it('runs in its own pid namespace without privileges', async () => {
    const res = await run('boxed', 'ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "; echo; cat /proc/1/cmdline | tr "\\0" " "; echo; grep CapEff /proc/self/status');
    const [pids, init, caps] = res.stdout.split('\n');
    const visible = pids.trim().split(' ').map(Number);
    // Only the sandbox's own few processes, numbered from 1; none of the host's.
    expect(visible[0]).toBe(1);
    expect(visible.length).toBeLessThan(15);
    expect(visible).not.toContain(process.pid);
    expect(init).toMatch(/bwrap/);
    expect(caps).toMatch(/CapEff:\s+0+$/);
    const mount = await run('boxed', 'mount -t tmpfs none /workspace 2>&1 || echo refused');
    expect(mount.stdout).toMatch(/refused/);
  });

  it('replaces an agent that dies inside the sandbox, leaving nothing of the old one', async () => {
    const outer = (JSON.parse(await readFile(join(server.dataDir, 'workspaces', 'boxed', 'workspace.json'), 'utf8')) as { agentPid: number }).agentPid;
    const init = Number(readFileSync(`/proc/${outer}/task/${outer}/children`, 'utf8').trim().split(/\s+/)[0]);
    const agent = Number(readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(/\s+/)[0]);
    expect(readFileSync(`/proc/${agent}/cmdline`, 'utf8')).toMatch(/dist\/agent\/agent\.cjs/);
    await run('boxed', 'nohup sleep 301 >/dev/null 2>&1 &');
    const sleeper = () => execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n').some((l) => l.trim() === 'sleep 301');
    expect(sleeper()).toBe(true);
    process.kill(agent, 'SIGKILL');
    let res: { stdout: string } | undefined;
    for (let i = 0; i < 100 && !res; i++) {
      await new Promise((r) => setTimeout(r, 150));
      res = await run('boxed', 'echo back').catch(() => undefined);
    }
    expect(res?.stdout).toBe('back\n');
    // Exactly one replacement, also once the restart timer (500 ms) would have fired: the clients
    // asking for the agent meanwhile must not have started a second one beside it.
    await new Promise((r) => setTimeout(r, 1500));
    const agentsOfBoxed = () =>
      execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => !/bwrap$/.test(l.trim().split(/\s+/)[0]) && /dist\/agent\/agent\.cjs/.test(l) && l.includes(join(server.dataDir, 'workspaces', 'boxed', 'agent')));
    expect(agentsOfBoxed()).toHaveLength(1);
    // The old namespace is torn down by the kernel once its init is killed: allow it a moment.
    // Its init may linger a moment as a zombie until bwrap reaps it, so wait for both.
    for (let i = 0; i < 50 && (sleeper() || existsSync(`/proc/${init}`)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(sleeper()).toBe(false);
    expect(existsSync(`/proc/${init}`)).toBe(false);
  });

  it('stops every sandboxed process with the workspace', async () => {
    const socketDirHint = join(server.dataDir, 'workspaces', 'neighbour');
    expect(processesMentioning(socketDirHint).length).toBeGreaterThan(0);
    await run('neighbour', 'nohup sleep 300 >/dev/null 2>&1 &');
    const res = await server.api('/api/workspaces/neighbour/stop', { method: 'POST' });
    expect(res.status).toBe(200);
    for (let i = 0; i < 50 && processesMentioning(socketDirHint).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesMentioning(socketDirHint)).toEqual([]);
  });
});
