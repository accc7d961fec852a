import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../server/common/index.ts';
import { sshThroughServer, startTestServer, type TestServer } from './support/server.ts';
import { loginWharf, userEnv, WHARF } from './support/wharf-cli.ts';

// `wharf up` end to end on the process driver: the real helper, a real local command, a real
// process in the workspace, the server restarted under them. The process driver's workspaces
// share the host's network, so both sides are on 127.0.0.1, on ports picked free for each run.

const WS = 'shop';
let server: TestServer;
let home: string;
let project: string;
let workspaceShell: ssh2.Client;
const ports = { workspaceApp: 0, localApp: 0, forward: 0, reverse: 0, wharf: 0 };

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
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

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `script` (JavaScript) in the workspace, as its own process, and returns what it printed. */
function runInWorkspace(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    workspaceShell.exec(`${JSON.stringify(process.execPath)} -e ${JSON.stringify(script).replace(/\$/g, '\\$')}`, (err, channel) => {
      if (err) return reject(err);
      let out = '';
      channel.on('data', (d: Buffer) => (out += d));
      channel.stderr.on('data', (d: Buffer) => (out += d));
      channel.on('close', () => resolve(out));
    });
  });
}

type Helper = { child: ChildProcess; output: () => string; exited: Promise<number | null> };

/** `wharf up api` as the checkout runs it, or through `program` (the self-contained executable) with `env`. */
function startUp(args: string[] = [], program?: { command: string; env: Record<string, string> }): Helper {
  const child = program
    ? spawn(program.command, ['up', 'api', '--workspace', WS, ...args], { cwd: project, env: program.env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [WHARF, 'up', 'api', '--workspace', WS, ...args], { cwd: project, env: userEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d));
  child.stderr?.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** What the local command wrote about itself: its pid and what it got through the forward rule. */
function localReport(): { pid: number; forwarded: string[] } | undefined {
  const file = join(project, 'api', 'report.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { pid: number; forwarded: string[] };
  } catch {
    return undefined; // half written
  }
}

beforeAll(async () => {
  for (const name of Object.keys(ports) as Array<keyof typeof ports>) ports[name] = await freePort();
  server = await startTestServer({ workspaces: [WS], argv: ['--port', String(ports.wharf)] });
  home = await server.tempDir('wharf-up-home-');
  project = await server.tempDir('wharf-up-project-');
  await loginWharf(server, home);
  workspaceShell = await sshThroughServer(server, WS);
  workspaceShell.on('error', () => {});
  // The service's dependency, inside the workspace.
  // Its own session (setsid), so it outlives the SSH connection that started it, as a service does.
  const app = `require('http').createServer((q, s) => s.end('from-workspace')).listen(${ports.workspaceApp}, '127.0.0.1')`;
  workspaceShell.exec(`setsid ${JSON.stringify(process.execPath)} -e ${JSON.stringify(app)} </dev/null >/dev/null 2>&1 &`, (err, channel) => {
    if (!err) channel.on('data', () => {});
  });
  await waitFor('the workspace app', () => canConnect(ports.workspaceApp));
  // The service itself, run on "the developer's machine" by wharf up: it answers the workspace
  // through the reverse rule and keeps calling its dependency through the forward rule.
  await mkdir(join(project, 'api'));
  await writeFile(
    join(project, 'api', 'service.mjs'),
    `import http from 'node:http';
import { writeFileSync } from 'node:fs';
const forwarded = [];
const save = () => writeFileSync('report.json', JSON.stringify({ pid: process.pid, forwarded }));
http.createServer((q, s) => s.end('from-laptop pid=' + process.pid + ' level=' + process.env.LOG_LEVEL)).listen(${ports.localApp}, '127.0.0.1');
setInterval(async () => {
  try {
    const text = await (await fetch('http://127.0.0.1:${ports.forward}/')).text();
    if (forwarded.at(-1) !== text || forwarded.length < 2) forwarded.push(text);
  } catch (err) {
    forwarded.push('error: ' + err.cause?.code);
  }
  if (forwarded.length > 50) forwarded.splice(0, forwarded.length - 50);
  save();
}, 200);
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
      - ${ports.reverse}:${ports.localApp}
    environment:
      LOG_LEVEL: debug
`,
  );
});

afterAll(async () => {
  workspaceShell?.end();
  await server?.dispose();
});

describe('wharf up', () => {
  it('bridges both ways, survives a server restart with the same local process, and leaves nothing behind on Ctrl-C', async () => {
    const helper = startUp();
    try {
      // Forward: the local command reaches the workspace's app.
      const first = await waitFor('the local command to reach the workspace', () => {
        const report = localReport();
        return report?.forwarded.includes('from-workspace') ? report : undefined;
      });
      // Reverse: a process in the workspace reaches the local command, with the manifest's environment.
      const reverse = `fetch('http://127.0.0.1:${ports.reverse}/').then((r) => r.text()).then(console.log, (e) => console.log('error', e.cause?.code))`;
      expect(await runInWorkspace(reverse)).toBe(`from-laptop pid=${first.pid} level=debug\n`);
      expect(helper.output()).toMatch(/forward 127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+: listening/);
      expect(helper.output()).toMatch(/reverse workspace:\d+ → 127\.0\.0\.1:\d+: listening/);

      // The control server goes away and comes back (its workspaces keep running).
      const reconnectsBefore = (helper.output().match(/connected again; every rule/g) ?? []).length;
      server = await server.restart({ keepAgents: true });
      workspaceShell = await sshThroughServer(server, WS);
      workspaceShell.on('error', () => {});
      await waitFor('the helper to reconnect', () => (helper.output().match(/connected again; every rule/g) ?? []).length > reconnectsBefore || undefined);
      expect(await runInWorkspace(reverse)).toBe(`from-laptop pid=${first.pid} level=debug\n`);
      await waitFor('the forward rule to work again', () => localReport()?.forwarded.at(-1) === 'from-workspace' || undefined);
      expect(localReport()?.pid).toBe(first.pid);
      expect(isProcessAlive(first.pid)).toBe(true);

      // Ctrl-C: the local command and its process group go, and so do the helper's ports.
      helper.child.kill('SIGINT');
      expect(await helper.exited).toBe(130);
      await waitFor('the local command to be gone', () => !isProcessAlive(first.pid) || undefined);
      expect(await canConnect(ports.forward)).toBe(false);
      await waitFor('the reverse port in the workspace to close', async () => !(await canConnect(ports.reverse)) || undefined);
      expect(helper.output()).toMatch(/api: stopped after \d+s; reconnected 1 time/);
      // Its session key went with it: the workspace lists no session (not one left until it expires).
      const keys = (await (await server.api(`/api/workspaces/${WS}/session-keys`)).json()) as { keys: { label: string }[] };
      expect(keys.keys.filter((k) => k.label.startsWith('wharf up')), JSON.stringify(keys.keys)).toEqual([]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- wharf up said:\n${helper.output()}`);
    } finally {
      helper.child.kill('SIGKILL');
    }
  }, 180_000);

  it('says which dev entries exist when the name is wrong, and what holds a local port already in use', async () => {
    const wrong = spawn(process.execPath, [WHARF, 'up', 'nope', '--workspace', WS], { cwd: project, env: userEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    wrong.stderr.on('data', (d: Buffer) => (stderr += d));
    expect(await new Promise((r) => wrong.once('exit', r))).toBe(1);
    expect(stderr).toMatch(/there is no dev\.nope; the manifest has "api"/);

    const squatter = createServer();
    squatter.listen(ports.forward, '127.0.0.1');
    await once(squatter, 'listening');
    try {
      const helper = startUp();
      expect(await helper.exited).toBe(1);
      expect(helper.output()).toMatch(new RegExp(`port ${ports.forward} is already in use by pid ${process.pid} `));
    } finally {
      squatter.close();
    }
  }, 60_000);

  // The downloadable executable carries its own Node: the developer's machine needs none.
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('runs from the self-contained executable with no node on PATH', async () => {
    const executable = join(import.meta.dirname, '..', 'dist', 'wharf-linux-x64');
    expect(existsSync(executable), 'npm run build makes dist/wharf-linux-x64').toBe(true);
    const before = localReport();
    const helper = startUp([], { command: executable, env: { ...userEnv(home), PATH: '/nonexistent' } });
    try {
      const report = await waitFor('the local command to reach the workspace', () => {
        const r = localReport();
        return r && r.pid !== before?.pid && r.forwarded.includes('from-workspace') ? r : undefined;
      });
      const reverse = `fetch('http://127.0.0.1:${ports.reverse}/').then((r) => r.text()).then(console.log, (e) => console.log('error', e.cause?.code))`;
      expect(await runInWorkspace(reverse)).toBe(`from-laptop pid=${report.pid} level=debug\n`);
      helper.child.kill('SIGINT');
      expect(await helper.exited).toBe(130);
      await waitFor('the local command to be gone', () => !isProcessAlive(report.pid) || undefined);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- wharf up said:\n${helper.output()}`);
    } finally {
      helper.child.kill('SIGKILL');
    }
  }, 180_000);
});
