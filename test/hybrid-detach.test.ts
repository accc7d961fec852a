import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../server/common/index.ts';
import { startTestServer, type TestServer } from './support/server.ts';
import { loginWharf, runProgram, userEnv, WHARF } from './support/wharf-cli.ts';

// `wharf up --detach` and `wharf down`, end to end on the process driver: the real helper started
// in the background from a project folder, a real local command, then stopped by name.

const WS = 'detached';
let server: TestServer;
let home: string;
let project: string;
const ports = { workspaceApp: 0, command: 0, forward: 0, reverse: 0 };
const leftovers: number[] = [];
let workspaceApp: ReturnType<typeof createHttpServer> | undefined;

async function freePorts(count: number): Promise<number[]> {
  const probes = Array.from({ length: count }, () => createServer());
  const found = await Promise.all(
    probes.map(async (probe) => {
      probe.listen(0, '127.0.0.1');
      await once(probe, 'listening');
      return (probe.address() as AddressInfo).port;
    }),
  );
  await Promise.all(probes.map((probe) => new Promise((r) => probe.close(r))));
  return found;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether this test could listen on the port itself: nothing holds it any more. */
async function isFree(port: number): Promise<boolean> {
  const probe = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => resolve(true));
  });
  await new Promise((r) => probe.close(r));
  return ok;
}

function httpText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end();
  });
}

const wharf = (args: string[]) => runProgram(process.execPath, [WHARF, ...args], { cwd: project, env: userEnv(home) });

function localPid(): number | undefined {
  const file = join(project, 'api', 'pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) || undefined : undefined;
}

beforeAll(async () => {
  const picked = await freePorts(Object.keys(ports).length);
  (Object.keys(ports) as Array<keyof typeof ports>).forEach((name, i) => (ports[name] = picked[i]));
  server = await startTestServer({ workspaces: [WS] });
  home = await server.tempDir('wharf-detach-home-');
  project = await server.tempDir('wharf-detach-project-');
  await loginWharf(server, home);
  // The workspace's side of the forward rule (the process driver shares the host's network).
  workspaceApp = createHttpServer((_req, res) => res.end('from-workspace'));
  workspaceApp.listen(ports.workspaceApp, '127.0.0.1');
  await once(workspaceApp, 'listening');
  await mkdir(join(project, 'api'));
  await writeFile(
    join(project, 'api', 'service.mjs'),
    `import http from 'node:http';
import { writeFileSync } from 'node:fs';
console.log('service starting');
http.createServer((q, s) => s.end('from-laptop pid=' + process.pid)).listen(${ports.command}, '127.0.0.1', () => writeFileSync('pid', String(process.pid)));
`,
  );
  await writeFile(
    join(project, 'okteto.yml'),
    `name: ${WS}
dev:
  api:
    mode: hybrid
    command: [${JSON.stringify(process.execPath)}, service.mjs]
    workdir: api
    forward:
      - ${ports.forward}:127.0.0.1:${ports.workspaceApp}
    reverse:
      - ${ports.reverse}:${ports.command}
`,
  );
});

afterAll(async () => {
  // Whatever a failed test left running.
  for (const pid of [...leftovers, localPid()]) {
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  workspaceApp?.close();
  await server?.dispose();
});

describe('wharf up --detach and wharf down', () => {
  it('runs the session in the background with a log, refuses a second one, and "wharf down" stops it and its local command', async () => {
    const up = await wharf(['up', 'api', '--detach']);
    const said = `${up.stdout}${up.stderr}`;
    expect(up.code, said).toBe(0);
    const pid = Number(/runs in the background, pid (\d+)/.exec(up.stdout)?.[1]);
    leftovers.push(pid);
    const logFile = join(home, '.local', 'state', 'wharf', `up-${WS}-api.log`);
    expect(up.stdout).toContain(`log: ${logFile}`);
    expect(up.stdout).toContain('stop it with: wharf down api');
    // What the session said while it connected is shown here too.
    expect(up.stderr).toMatch(/api: connected to workspace "detached"/);
    expect(isProcessAlive(pid)).toBe(true);

    // It works after the command that started it has gone, and writes to its log.
    const local = await waitFor('the local command', () => localPid());
    expect(await httpText(ports.forward)).toBe('from-workspace');
    expect(await waitFor('the reverse rule', async () => ((await canConnect(ports.reverse)) ? httpText(ports.reverse) : undefined))).toBe(`from-laptop pid=${local}`);
    await waitFor('the local command to write to the log', async () => (await readFile(logFile, 'utf8')).includes('service starting') || undefined);

    const again = await wharf(['up', 'api', '--detach']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`wharf up api for workspace "${WS}" already runs in the background (pid ${pid}`);

    const down = await wharf(['down', 'api']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toBe(`wharf down: stopped wharf up api (workspace "${WS}", pid ${pid}); its log: ${logFile}\n`);
    await waitFor('the helper to be gone', () => !isProcessAlive(pid) || undefined);
    await waitFor('the local command to be gone', () => !isProcessAlive(local) || undefined);
    expect(await isFree(ports.forward)).toBe(true);
    expect(await isFree(ports.command)).toBe(true);
    await waitFor('the reverse port in the workspace to close', async () => (await isFree(ports.reverse)) || undefined);
    expect(await readFile(logFile, 'utf8')).toMatch(/api: stopped after \d+s; reconnected 0 times/);
  }, 120_000);

  it('"wharf down" of something not running says so and fails', async () => {
    const none = await wharf(['down', 'api']);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe('wharf: no "wharf up api" runs in the background ("wharf up api --detach" starts one)\n');

    // A session that ended without "wharf down" (here: a pid that has exited) is reported and forgotten.
    const gone = spawn(process.execPath, ['-e', '0']);
    await once(gone, 'exit');
    const stateDir = join(home, '.local', 'state', 'wharf');
    await mkdir(stateDir, { recursive: true });
    const log = join(stateDir, `up-${WS}-api.log`);
    await writeFile(join(stateDir, `up-${WS}-api.json`), JSON.stringify({ name: 'api', workspace: WS, pid: gone.pid, log, cwd: project, startedAt: new Date().toISOString() }));
    const stale = await wharf(['down', 'api']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toBe(`wharf: wharf up api (workspace "${WS}", pid ${gone.pid}) is not running any more; its log: ${log}\n`);
    expect(existsSync(join(stateDir, `up-${WS}-api.json`))).toBe(false);
  }, 60_000);

  it('reports a session that cannot start, instead of leaving it to the log', async () => {
    const squatter = createServer();
    squatter.listen(ports.forward, '127.0.0.1');
    await once(squatter, 'listening');
    try {
      const up = await wharf(['up', 'api', '--detach']);
      expect(up.code).toBe(1);
      expect(up.stderr).toMatch(new RegExp(`port ${ports.forward} is already in use`));
      expect(up.stderr).toMatch(/api ended at once \(exit 1\); its log: /);
      expect((await wharf(['down', 'api'])).code).toBe(1);
    } finally {
      squatter.close();
    }
  }, 60_000);
});
